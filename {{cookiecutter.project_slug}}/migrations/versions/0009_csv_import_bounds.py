"""csv imports: capped row errors (errors_total), deactivated users counted

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    for column in ("errors_total", "deactivated_count"):
        op.add_column(
            "csv_imports",
            sa.Column(column, sa.Integer(), server_default=sa.text("0"), nullable=False),
        )
    # Before this, every row error was kept: the rows above the cap stay readable.
    op.execute(
        "UPDATE csv_imports AS i SET errors_total ="
        " (SELECT count(*) FROM csv_import_errors AS e WHERE e.import_id = i.id)"
    )


def downgrade() -> None:
    op.drop_column("csv_imports", "deactivated_count")
    op.drop_column("csv_imports", "errors_total")
