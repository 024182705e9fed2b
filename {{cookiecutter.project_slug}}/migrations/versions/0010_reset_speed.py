"""ledger: the wallet check per statement instead of per row (weekly reset speed)

Revision ID: 0010_reset_speed
Revises: 0009
Create Date: 2026-12-03
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010_reset_speed"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The foreign key wallet_transactions.wallet_id -> wallets.id checked each ledger row on
# its own (one lookup and one KEY SHARE lock per row): a quarter of the weekly reset's
# time (bench/weekly_reset.py). Replaced by the same guarantee, and a stronger one:
# - one check per INSERT statement over all its rows (a transition table, one join),
#   which also proves each row's user_id is its wallet's owner;
# - wallets are never deleted nor re-keyed (no code does; a user is deactivated, their
#   wallet and history stay), so a wallet seen by that check cannot vanish later, and
#   no KEY SHARE lock is needed to keep it. TRUNCATE (a table owner's deliberate act,
#   the tests' cleanup) is not guarded, as with the append-only ledger.
# No `%` in the SQL: it would need escaping in offline (`--sql`) migrations.
WALLET_EXISTS_FUNCTION = """
CREATE FUNCTION wallet_transactions_wallet_exists() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    orphan record;
BEGIN
    SELECT t.id, t.wallet_id, t.user_id INTO orphan
    FROM inserted AS t
    WHERE NOT EXISTS (
        SELECT 1 FROM wallets AS w WHERE w.id = t.wallet_id AND w.user_id = t.user_id
    )
    LIMIT 1;
    IF FOUND THEN
        RAISE USING
            MESSAGE = 'ledger row ' || orphan.id || ': no wallet ' || orphan.wallet_id
                || ' of user ' || orphan.user_id,
            ERRCODE = 'foreign_key_violation',
            CONSTRAINT = 'wallet_transactions_wallet_exists';
    END IF;
    RETURN NULL;
END
$$
"""

WALLET_EXISTS_TRIGGER = """
CREATE TRIGGER wallet_transactions_wallet_exists
AFTER INSERT ON wallet_transactions
REFERENCING NEW TABLE AS inserted
FOR EACH STATEMENT EXECUTE FUNCTION wallet_transactions_wallet_exists()
"""

WALLETS_KEPT_FUNCTION = """
CREATE FUNCTION wallets_kept() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE USING
        MESSAGE = 'wallets are never deleted nor re-keyed: ' || TG_OP || ' of wallet '
            || OLD.id || ' refused (the ledger refers to it)',
        ERRCODE = 'foreign_key_violation',
        HINT = 'deactivate the user instead';
END
$$
"""

# UPDATE OF id, user_id: fires only for statements that set those columns, so the
# reset's and compliments' updates pay nothing for it.
WALLETS_KEPT_TRIGGER = """
CREATE TRIGGER wallets_kept
BEFORE DELETE OR UPDATE OF id, user_id ON wallets
FOR EACH ROW EXECUTE FUNCTION wallets_kept()
"""


def upgrade() -> None:
    op.execute(WALLETS_KEPT_FUNCTION)
    op.execute(WALLETS_KEPT_TRIGGER)
    op.execute(WALLET_EXISTS_FUNCTION)
    op.execute(WALLET_EXISTS_TRIGGER)
    op.drop_constraint(
        "fk_wallet_transactions_wallet_id_wallets", "wallet_transactions", type_="foreignkey"
    )


def downgrade() -> None:
    op.create_foreign_key(
        "fk_wallet_transactions_wallet_id_wallets",
        "wallet_transactions",
        "wallets",
        ["wallet_id"],
        ["id"],
    )
    op.execute("DROP TRIGGER wallet_transactions_wallet_exists ON wallet_transactions")
    op.execute("DROP FUNCTION wallet_transactions_wallet_exists()")
    op.execute("DROP TRIGGER wallets_kept ON wallets")
    op.execute("DROP FUNCTION wallets_kept()")
