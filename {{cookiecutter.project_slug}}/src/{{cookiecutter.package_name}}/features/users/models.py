"""People of a company. `auth_sub` links a row to the identity provider's subject."""

from datetime import datetime
from enum import StrEnum
from uuid import UUID, uuid4

from sqlalchemy import CheckConstraint, Index, String, text
from sqlmodel import Field, SQLModel

from ...lib.models import timestamp_field

# The longest identity provider subject a user row can carry (`users.auth_sub`).
AUTH_SUB_MAX_LENGTH = 255


class Role(StrEnum):
    employee = "employee"
    admin = "admin"


class User(SQLModel, table=True):
    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint("role IN ('employee', 'admin')", name="role_known"),
        CheckConstraint("email = lower(email)", name="email_lowercase"),
        # A company's users in id order: the weekly reset walks them in batches by it.
        Index("ix_users_company_id_id", "company_id", "id"),
    )

    id: UUID = Field(
        default_factory=uuid4,
        primary_key=True,
        sa_column_kwargs={"server_default": text("gen_random_uuid()")},
    )
    company_id: UUID = Field(foreign_key="companies.id")
    email: str = Field(max_length=320, unique=True)
    name: str = Field(max_length=200)
    department: str | None = Field(default=None, max_length=120)
    job_title: str | None = Field(default=None, max_length=120)
    is_active: bool = Field(default=True, sa_column_kwargs={"server_default": text("true")})
    role: Role = Field(
        default=Role.employee,
        sa_type=String(20),
        sa_column_kwargs={"server_default": text("'employee'")},
    )
    auth_sub: str | None = Field(default=None, max_length=AUTH_SUB_MAX_LENGTH, unique=True)
    created_at: datetime | None = timestamp_field()
