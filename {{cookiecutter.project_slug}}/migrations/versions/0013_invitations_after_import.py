"""csv imports: invitations kept with the import, queued in the outbox after it commits

Revision ID: 0013_invitations_after_import
Revises: 0012_outbox_speed
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0013_invitations_after_import"
down_revision: str | None = "0012_outbox_speed"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# An import wrote one outbox row per new user in its own transaction, and they still
# added a third to its time at 200,000 rows after 0012 (bench/csv_import.py). It now keeps
# the new users' ids with the import, one array written with them, and queues them in
# the outbox right after it commits (features/user_import/processing.py).


def upgrade() -> None:
    op.add_column(
        "csv_imports",
        sa.Column("pending_invitations", postgresql.ARRAY(sa.Uuid()), nullable=True),
    )
    # What the reconciler looks for: imports whose invitations are not yet queued.
    op.create_index(
        "ix_csv_imports_pending_invitations",
        "csv_imports",
        ["id"],
        unique=False,
        postgresql_where=sa.text("pending_invitations IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_csv_imports_pending_invitations", table_name="csv_imports")
    op.drop_column("csv_imports", "pending_invitations")
