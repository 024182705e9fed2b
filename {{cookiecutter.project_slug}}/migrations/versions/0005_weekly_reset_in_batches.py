"""weekly reset in batches: per-wallet period marker, completed runs, users by company and id

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("wallets", sa.Column("reset_period", sa.Date(), nullable=True))
    op.add_column(
        "weekly_reset_runs",
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
    )
    # Runs recorded before this revision did all their work in one transaction.
    op.execute("UPDATE weekly_reset_runs SET completed_at = created_at")
    # (company_id, id) serves everything (company_id) did, and the reset's batches.
    op.create_index("ix_users_company_id_id", "users", ["company_id", "id"], unique=False)
    op.drop_index("ix_users_company_id", table_name="users")


def downgrade() -> None:
    op.create_index("ix_users_company_id", "users", ["company_id"], unique=False)
    op.drop_index("ix_users_company_id_id", table_name="users")
    op.drop_column("weekly_reset_runs", "completed_at")
    op.drop_column("wallets", "reset_period")
