"""company domains: a user's email is at one of their company's domains

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02

`company_domains` holds every domain a company owns (a domain belongs to at most one
company); a trigger adds each company's primary `email_domain` to it, so every way of
creating a company keeps the two in step. `users.email_domain` is generated from the
email, and a foreign key ties (company_id, email_domain) to `company_domains`.

Existing users outside their company's domains (written before this rule) are not
touched and no domain is granted for them: the foreign key is added NOT VALID, then
validated when every row passes. Otherwise it stays NOT VALID (new and changed rows are
checked, old ones are not) and a notice says so; README, "Tenants and their domains",
says how to find those users and finish the job.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FK_NAME = "fk_users_company_id_company_domains"


def upgrade() -> None:
    op.create_table(
        "company_domains",
        sa.Column("domain", sa.String(length=253), nullable=False),
        sa.Column("company_id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "domain = lower(domain)", name=op.f("ck_company_domains_domain_lowercase")
        ),
        sa.ForeignKeyConstraint(
            ["company_id"], ["companies.id"], name=op.f("fk_company_domains_company_id_companies")
        ),
        sa.PrimaryKeyConstraint("domain", name=op.f("pk_company_domains")),
        sa.UniqueConstraint("company_id", "domain", name=op.f("uq_company_domains_company_id")),
    )
    op.execute("""
        CREATE FUNCTION company_primary_domain() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            -- Another company owning it fails on the primary key: at most one owner.
            INSERT INTO company_domains (domain, company_id)
            VALUES (NEW.email_domain, NEW.id)
            ON CONFLICT (company_id, domain) DO NOTHING;
            RETURN NULL;
        END $$
    """)
    op.execute("""
        CREATE TRIGGER companies_primary_domain
        AFTER INSERT OR UPDATE OF email_domain ON companies
        FOR EACH ROW EXECUTE FUNCTION company_primary_domain()
    """)
    op.execute(
        "INSERT INTO company_domains (domain, company_id, created_at)"
        " SELECT email_domain, id, created_at FROM companies"
    )
    op.add_column(
        "users",
        sa.Column(
            "email_domain",
            sa.Text(),
            sa.Computed("substring(email FROM '[^@]*$')", persisted=True),
            nullable=False,
        ),
    )
    op.execute(
        f"ALTER TABLE users ADD CONSTRAINT {FK_NAME} FOREIGN KEY (company_id, email_domain)"
        " REFERENCES company_domains (company_id, domain) NOT VALID"
    )
    op.execute(f"""
        DO $$
        BEGIN
            ALTER TABLE users VALIDATE CONSTRAINT {FK_NAME};
        EXCEPTION WHEN foreign_key_violation THEN
            RAISE NOTICE 'some users are outside their company''s domains: {FK_NAME}'
                ' stays NOT VALID (see the README, "Tenants and their domains")';
        END $$
    """)


def downgrade() -> None:
    op.drop_constraint(FK_NAME, "users", type_="foreignkey")
    op.drop_column("users", "email_domain")
    op.execute("DROP TRIGGER companies_primary_domain ON companies")
    op.execute("DROP FUNCTION company_primary_domain()")
    op.drop_table("company_domains")
