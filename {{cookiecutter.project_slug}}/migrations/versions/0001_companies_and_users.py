"""companies and users: the tenants, their email domains, their users, and user exports

Revision ID: 0001
Revises:
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "companies",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("email_domain", sa.String(length=253), nullable=False),
        sa.Column("is_active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column(
            "timezone",
            sa.String(length=64),
            server_default=sa.text("'UTC'"),
            nullable=False,
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_companies")),
        sa.UniqueConstraint("email_domain", name=op.f("uq_companies_email_domain")),
    )
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
    # A company's primary domain is always one of its domains, whatever path wrote it.
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
    op.create_table(
        "users",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("company_id", sa.Uuid(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column(
            "email_domain",
            sa.Text(),
            sa.Computed("substring(email FROM '[^@]*$')", persisted=True),
            nullable=False,
        ),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("department", sa.String(length=120), nullable=True),
        sa.Column("job_title", sa.String(length=120), nullable=True),
        sa.Column("is_active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column(
            "role", sa.String(length=20), server_default=sa.text("'employee'"), nullable=False
        ),
        sa.Column("auth_sub", sa.String(length=255), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("role IN ('employee', 'admin')", name=op.f("ck_users_role_known")),
        sa.CheckConstraint("email = lower(email)", name=op.f("ck_users_email_lowercase")),
        sa.ForeignKeyConstraint(
            ["company_id", "email_domain"],
            ["company_domains.company_id", "company_domains.domain"],
            name=op.f("fk_users_company_id_company_domains"),
        ),
        sa.ForeignKeyConstraint(
            ["company_id"], ["companies.id"], name=op.f("fk_users_company_id_companies")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("auth_sub", name=op.f("uq_users_auth_sub")),
        sa.UniqueConstraint("email", name=op.f("uq_users_email")),
    )
    op.create_index("ix_users_company_id_id", "users", ["company_id", "id"], unique=False)
    op.create_table(
        "user_exports",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("company_id", sa.Uuid(), nullable=False),
        sa.Column("requested_by", sa.Uuid(), nullable=False),
        sa.Column(
            "status", sa.String(length=20), server_default=sa.text("'pending'"), nullable=False
        ),
        sa.Column("rows", sa.Integer(), nullable=True),
        sa.Column("content", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'done')", name=op.f("ck_user_exports_status_known")
        ),
        sa.ForeignKeyConstraint(
            ["company_id"], ["companies.id"], name=op.f("fk_user_exports_company_id_companies")
        ),
        sa.ForeignKeyConstraint(
            ["requested_by"], ["users.id"], name=op.f("fk_user_exports_requested_by_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_exports")),
    )
    op.create_index(
        "ix_user_exports_company_id_created_at",
        "user_exports",
        ["company_id", "created_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_user_exports_company_id_created_at", table_name="user_exports")
    op.drop_table("user_exports")
    op.drop_index("ix_users_company_id_id", table_name="users")
    op.drop_table("users")
    op.execute("DROP TRIGGER companies_primary_domain ON companies")
    op.execute("DROP FUNCTION company_primary_domain()")
    op.drop_table("company_domains")
    op.drop_table("companies")
