from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from ...companies.domains import DOMAIN_MAX_LENGTH
{%- if cookiecutter.examples == "kudos" %}
from ...companies.models import (
    MAX_WEEKLY_AMOUNT,
    MIN_WEEKLY_AMOUNT,
    Company,
    CompanySnapshot,
)
{%- else %}
from ...companies.models import Company, CompanySnapshot
{%- endif %}
from ...companies.service import OwnedDomain


class CompanySettings(BaseModel):
    """The caller's company."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "0b6c3d1e-2f4a-4b5c-8d9e-0a1b2c3d4e5f",
                    "name": "Acme",
                    "email_domain": "acme.example",
{%- if cookiecutter.examples == "kudos" %}
                    "weekly_renewal_amount": 100,
{%- endif %}
                    "timezone": "UTC",
                }
            ]
        }
    )

    id: UUID
    name: str
    email_domain: str
{%- if cookiecutter.examples == "kudos" %}
    weekly_renewal_amount: int = Field(description="Coins each active user gets every week")
{%- endif %}
    timezone: str

    @classmethod
    def of(cls, company: Company | CompanySnapshot) -> "CompanySettings":
        return cls(
            id=company.id,
            name=company.name,
            email_domain=company.email_domain,
{%- if cookiecutter.examples == "kudos" %}
            weekly_renewal_amount=company.weekly_renewal_amount,
{%- endif %}
            timezone=company.timezone,
        )
{%- if cookiecutter.examples == "kudos" %}


class WeeklyAllowance(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"weekly_renewal_amount": 150}]}
    )

    weekly_renewal_amount: int = Field(
        ge=MIN_WEEKLY_AMOUNT,
        le=MAX_WEEKLY_AMOUNT,
        description=f"Coins per user per week, {MIN_WEEKLY_AMOUNT} to {MAX_WEEKLY_AMOUNT}",
    )
{%- endif %}


class CompanyDomainOut(BaseModel):
    """A domain the caller's company owns: its users' emails are at one of these."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "domain": "acme.example",
                    "primary": True,
                    "users": 42,
                    "created_at": "2026-12-01T09:30:00Z",
                }
            ]
        }
    )

    domain: str
    primary: bool = Field(description="The company's first domain, which cannot be removed")
    users: int = Field(description="Users of the company (deactivated ones too) at it")
    created_at: datetime | None

    @classmethod
    def of(cls, owned: OwnedDomain) -> "CompanyDomainOut":
        return cls(
            domain=owned.domain,
            primary=owned.primary,
            users=owned.users,
            created_at=owned.created_at,
        )


class NewDomain(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"domain": "acme-labs.example"}]}
    )

    domain: str = Field(
        max_length=DOMAIN_MAX_LENGTH,
        description="A domain name; compared exactly (no subdomains) and lowercased",
    )
