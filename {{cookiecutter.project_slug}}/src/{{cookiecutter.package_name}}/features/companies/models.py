"""The tenant root: every other row belongs to exactly one company."""

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID, uuid4

from sqlalchemy import CheckConstraint, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from ...lib.models import timestamp_field
from .domains import DOMAIN_MAX_LENGTH
{%- if cookiecutter.examples == "kudos" %}

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
{%- else %}


class Company(SQLModel, table=True):
    __tablename__ = "companies"
{%- endif %}

    id: UUID = Field(
        default_factory=uuid4,
        primary_key=True,
        sa_column_kwargs={"server_default": text("gen_random_uuid()")},
    )
    name: str = Field(max_length=200)
    # The primary domain: given at creation, never removed. Every domain the company
    # owns, this one included, is a row of company_domains (a trigger adds this one).
    email_domain: str = Field(max_length=DOMAIN_MAX_LENGTH, unique=True)
    is_active: bool = Field(default=True, sa_column_kwargs={"server_default": text("true")})
{%- if cookiecutter.examples == "kudos" %}
    weekly_renewal_amount: int = Field(
        default=100, sa_column_kwargs={"server_default": text("100")}
    )
{%- endif %}
    timezone: str = Field(
        default="UTC", max_length=64, sa_column_kwargs={"server_default": text("'UTC'")}
    )
    created_at: datetime | None = timestamp_field()


class CompanyDomain(SQLModel, table=True):
    """A domain a company owns: its users' emails are at one of these (`domains.py`).

    The domain is the key: it belongs to at most one company. `users` refers to
    (company_id, domain), so a domain still used by a user cannot be removed.
    """

    __tablename__ = "company_domains"
    __table_args__ = (
        UniqueConstraint("company_id", "domain"),
        CheckConstraint("domain = lower(domain)", name="domain_lowercase"),
    )

    domain: str = Field(primary_key=True, max_length=DOMAIN_MAX_LENGTH)
    company_id: UUID = Field(foreign_key="companies.id")
    created_at: datetime | None = timestamp_field()


@dataclass(frozen=True)
class CompanySnapshot:
    """A company as read with its caller (users/service.py `sign_in`): plain values, no
    ORM object. The services that take a `Company` take this too."""

    id: UUID
    name: str
    email_domain: str
{%- if cookiecutter.examples == "kudos" %}
    is_active: bool
    weekly_renewal_amount: int
{%- else %}
    is_active: bool
{%- endif %}
    timezone: str
