from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from ...companies.models import MAX_WEEKLY_AMOUNT, MIN_WEEKLY_AMOUNT, Company


class CompanySettings(BaseModel):
    """The caller's company."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "0b6c3d1e-2f4a-4b5c-8d9e-0a1b2c3d4e5f",
                    "name": "Acme",
                    "email_domain": "acme.example",
                    "weekly_renewal_amount": 100,
                    "timezone": "UTC",
                }
            ]
        }
    )

    id: UUID
    name: str
    email_domain: str
    weekly_renewal_amount: int = Field(description="Coins each active user gets every week")
    timezone: str

    @classmethod
    def of(cls, company: Company) -> "CompanySettings":
        return cls(
            id=company.id,
            name=company.name,
            email_domain=company.email_domain,
            weekly_renewal_amount=company.weekly_renewal_amount,
            timezone=company.timezone,
        )


class WeeklyAllowance(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"weekly_renewal_amount": 150}]}
    )

    weekly_renewal_amount: int = Field(
        ge=MIN_WEEKLY_AMOUNT,
        le=MAX_WEEKLY_AMOUNT,
        description=f"Coins per user per week, {MIN_WEEKLY_AMOUNT} to {MAX_WEEKLY_AMOUNT}",
    )
