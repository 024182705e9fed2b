"""mail: the outbox's user check per statement instead of per row (import speed)

Revision ID: 0012_outbox_speed
Revises: 0011_mail_outbox
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_outbox_speed"
down_revision: str | None = "0011_mail_outbox"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# An import with invitations writes one outbox row per new user in its transaction; the
# foreign keys mail_outbox.user_id -> users and company_id -> companies checked each row
# on its own and took most of what invitations added to an import (+48% of its time for
# 200,000 rows, bench/csv_import.py). Replaced as 0010_reset_speed did for the ledger,
# by the same guarantee and a stronger one:
# - one check per INSERT statement over all its rows (a transition table, one join),
#   which also proves each row's company is its user's;
# - users are never deleted nor moved to another company (no code does; a user is
#   deactivated), so a user seen by that check cannot vanish later. TRUNCATE is not
#   guarded (the tests' cleanup).
# Invitations have no announcement: the announcement index leaves them out.
# No `%` in the SQL: it would need escaping in offline (`--sql`) migrations.
USER_EXISTS_FUNCTION = """
CREATE FUNCTION mail_outbox_user_exists() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    orphan record;
BEGIN
    SELECT t.id, t.user_id, t.company_id INTO orphan
    FROM inserted AS t
    WHERE NOT EXISTS (
        SELECT 1 FROM users AS u WHERE u.id = t.user_id AND u.company_id = t.company_id
    )
    LIMIT 1;
    IF FOUND THEN
        RAISE USING
            MESSAGE = 'outbox row ' || orphan.id || ': no user ' || orphan.user_id
                || ' in company ' || orphan.company_id,
            ERRCODE = 'foreign_key_violation',
            CONSTRAINT = 'mail_outbox_user_exists';
    END IF;
    RETURN NULL;
END
$$
"""

USER_EXISTS_TRIGGER = """
CREATE TRIGGER mail_outbox_user_exists
AFTER INSERT ON mail_outbox
REFERENCING NEW TABLE AS inserted
FOR EACH STATEMENT EXECUTE FUNCTION mail_outbox_user_exists()
"""

# Re-pointing a row at another user would dodge the insert check: refused.
OUTBOX_KEPT_FUNCTION = """
CREATE FUNCTION mail_outbox_recipient_kept() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE USING
        MESSAGE = 'an outbox row keeps its recipient: update of row ' || OLD.id || ' refused',
        ERRCODE = 'foreign_key_violation';
END
$$
"""

OUTBOX_KEPT_TRIGGER = """
CREATE TRIGGER mail_outbox_recipient_kept
BEFORE UPDATE OF user_id, company_id ON mail_outbox
FOR EACH ROW EXECUTE FUNCTION mail_outbox_recipient_kept()
"""

USERS_KEPT_FUNCTION = """
CREATE FUNCTION users_kept() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE USING
        MESSAGE = 'users are never deleted nor moved: ' || TG_OP || ' of user '
            || OLD.id || ' refused (their mail and history refer to them)',
        ERRCODE = 'foreign_key_violation',
        HINT = 'deactivate the user instead';
END
$$
"""

# UPDATE OF id, company_id: fires only for statements that set those columns, so sign-in
# and profile updates pay nothing for it.
USERS_KEPT_TRIGGER = """
CREATE TRIGGER users_kept
BEFORE DELETE OR UPDATE OF id, company_id ON users
FOR EACH ROW EXECUTE FUNCTION users_kept()
"""


def upgrade() -> None:
    for statement in (
        USERS_KEPT_FUNCTION,
        USERS_KEPT_TRIGGER,
        OUTBOX_KEPT_FUNCTION,
        OUTBOX_KEPT_TRIGGER,
        USER_EXISTS_FUNCTION,
        USER_EXISTS_TRIGGER,
    ):
        op.execute(statement)
    op.drop_constraint("fk_mail_outbox_user_id_users", "mail_outbox", type_="foreignkey")
    op.drop_constraint("fk_mail_outbox_company_id_companies", "mail_outbox", type_="foreignkey")
    op.drop_index("ix_mail_outbox_announcement_id_status", table_name="mail_outbox")
    op.create_index(
        "ix_mail_outbox_announcement_id_status",
        "mail_outbox",
        ["announcement_id", "status"],
        unique=False,
        postgresql_where=sa.text("announcement_id IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_mail_outbox_announcement_id_status", table_name="mail_outbox")
    op.create_index(
        "ix_mail_outbox_announcement_id_status",
        "mail_outbox",
        ["announcement_id", "status"],
        unique=False,
    )
    op.create_foreign_key(
        "fk_mail_outbox_company_id_companies", "mail_outbox", "companies", ["company_id"], ["id"]
    )
    op.create_foreign_key(
        "fk_mail_outbox_user_id_users", "mail_outbox", "users", ["user_id"], ["id"]
    )
    for name, table in (
        ("mail_outbox_user_exists", "mail_outbox"),
        ("mail_outbox_recipient_kept", "mail_outbox"),
        ("users_kept", "users"),
    ):
        op.execute(f"DROP TRIGGER {name} ON {table}")
    for function in ("mail_outbox_user_exists", "mail_outbox_recipient_kept", "users_kept"):
        op.execute(f"DROP FUNCTION {function}()")
