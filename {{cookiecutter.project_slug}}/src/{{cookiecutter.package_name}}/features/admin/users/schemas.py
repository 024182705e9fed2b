from collections.abc import Callable
from datetime import datetime
from typing import Annotated
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from ...users import rules
{%- if cookiecutter.examples == "kudos" %}
from ...users.models import Role
from ...users.service import UserWithWallet
{%- else %}
from ...users.models import Role, User
{%- endif %}


def _checked(check: Callable[[str], str | None]) -> AfterValidator:
    """A schema check that asks the users feature's rules, so the api answers as the
    import and the CLI do."""

    def validate(value: str) -> str:
        if (message := check(value)) is not None:
            raise ValueError(message)
        return value

    return AfterValidator(validate)


Name = Annotated[
    str,
    StringConstraints(strip_whitespace=True),
    _checked(rules.name_problem),
    AfterValidator(rules.normalize_name),
]
Email = Annotated[
    str,
    StringConstraints(strip_whitespace=True, to_lower=True),
    _checked(rules.email_problem),
]
Text = Annotated[
    str,
    StringConstraints(strip_whitespace=True),
    _checked(rules.text_problem),
]


USER_ID_EXAMPLE = "5f0c2a4e-8b1d-4c3e-9a7f-2d6b1e0c9a84"


class NewUser(BaseModel):
    """A person to add to the caller's company (always the caller's: never given here)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "Bruno Lima",
                    "email": "Bruno.Lima@acme.example",
                    "department": "Engineering",
                    "job_title": "Backend developer",
                    "role": "employee",
                }
            ]
        },
    )

    name: Name = Field(description="At least 2 characters after trimming")
    email: Email = Field(description="Stored lowercased; at one of the company's domains; unique")
    department: Text | None = None
    job_title: Text | None = None
{%- if cookiecutter.examples == "kudos" %}
    role: Role = Role.employee
    # Strict: a JSON boolean, not 0 nor "no".
    send_invitation: bool = Field(
        default=True,
        strict=True,
        description="E-mail them an invitation to sign in (sent by the worker)",
    )


class UserWallet(BaseModel):
    compliment_balance: int = Field(description="Weekly allowance left to give")
    redeemable_balance: int = Field(description="Coins received, to spend")
{%- else %}
    role: Role = Role.employee
{%- endif %}


class AdminUser(BaseModel):
    """A user of the caller's company, as an admin sees them."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": USER_ID_EXAMPLE,
                    "email": "bruno.lima@acme.example",
                    "name": "Bruno Lima",
                    "department": "Engineering",
                    "job_title": "Backend developer",
                    "role": "employee",
                    "is_active": True,
                    "signed_in": False,
                    "created_at": "2025-03-03T12:00:00Z",
{%- if cookiecutter.examples == "kudos" %}
                    "wallet": {"compliment_balance": 100, "redeemable_balance": 0},
{%- endif %}
                }
            ]
        }
    )

    id: UUID
    email: str
    name: str
    department: str | None
    job_title: str | None
    role: Role
    is_active: bool
    signed_in: bool = Field(description="Whether the user has signed in at least once")
    created_at: datetime | None
{%- if cookiecutter.examples == "kudos" %}
    wallet: UserWallet | None

    @classmethod
    def of(cls, found: UserWithWallet) -> "AdminUser":
        user, wallet = found.user, found.wallet
        return cls(
{%- else %}

    @classmethod
    def of(cls, user: User) -> "AdminUser":
        return cls(
{%- endif %}
            id=user.id,
            email=user.email,
            name=user.name,
            department=user.department,
            job_title=user.job_title,
            role=Role(user.role),
            is_active=user.is_active,
            signed_in=user.auth_sub is not None,
{%- if cookiecutter.examples == "kudos" %}
            created_at=user.created_at,
            wallet=None
            if wallet is None
            else UserWallet(
                compliment_balance=wallet.compliment_balance,
                redeemable_balance=wallet.redeemable_balance,
            ),
{%- else %}
            created_at=user.created_at,
{%- endif %}
        )
