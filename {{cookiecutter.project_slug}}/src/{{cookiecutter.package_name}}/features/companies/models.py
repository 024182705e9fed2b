"""The tenant root: every other row belongs to exactly one company."""

from datetime import datetime
from uuid import UUID, uuid4

from sqlalchemy import CheckConstraint, text
from sqlmodel import Field, SQLModel

from ...lib.models import timestamp_field

MIN_WEEKLY_AMOUNT = 50
MAX_WEEKLY_AMOUNT = 500


class Company(SQLModel, table=True):
    __tablename__ = "companies"
    __table_args__ = (
        CheckConstraint(
            f"weekly_renewal_amount BETWEEN {MIN_WEEKLY_AMOUNT} AND {MAX_WEEKLY_AMOUNT}",
            name="weekly_renewal_amount_range",
        ),
    )

    id: UUID = Field(
        default_factory=uuid4,
        primary_key=True,
        sa_column_kwargs={"server_default": text("gen_random_uuid()")},
    )
    name: str = Field(max_length=200)
    email_domain: str = Field(max_length=253, unique=True)
    is_active: bool = Field(default=True, sa_column_kwargs={"server_default": text("true")})
    weekly_renewal_amount: int = Field(
        default=100, sa_column_kwargs={"server_default": text("100")}
    )
    timezone: str = Field(
        default="UTC", max_length=64, sa_column_kwargs={"server_default": text("'UTC'")}
    )
    created_at: datetime | None = timestamp_field()
