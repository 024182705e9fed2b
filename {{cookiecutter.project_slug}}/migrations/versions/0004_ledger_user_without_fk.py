"""ledger: user_id without its foreign key (the wallet_id key already ties it to a user)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A per-row check on every ledger insert; the weekly reset writes one row per wallet.
    op.drop_constraint(
        "fk_wallet_transactions_user_id_users", "wallet_transactions", type_="foreignkey"
    )


def downgrade() -> None:
    op.create_foreign_key(
        "fk_wallet_transactions_user_id_users",
        "wallet_transactions",
        "users",
        ["user_id"],
        ["id"],
    )
