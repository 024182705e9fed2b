"""Who is calling: the user row behind the token's `sub`, and what their role allows.

On a subject's first sign-in the token's verified email links it to its user
(`service.sign_in`; the claims read are AUTH_EMAIL_CLAIM and AUTH_EMAIL_VERIFIED_CLAIM).

    @router.get("/me")
    async def me(caller: CurrentCaller) -> ...

    @router.post("/users")
    async def create(caller: UserAdmin): ...

Each permission a route asks for has its alias here, next to `require`.

The company always comes from the caller's user row, never from the request.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated
from uuid import UUID

from fastapi import Depends

from ...lib.auth import Claims, forbidden, token_claims, unauthorized
from ...lib.dependencies import AppSettings, Session
from ..companies.models import CompanySnapshot
from . import service
from .models import Role, UserSnapshot
from .permissions import Permission, has_permission


@dataclass(frozen=True)
class Caller:
    user: UserSnapshot
    company: CompanySnapshot

    @property
    def user_id(self) -> UUID:
        return self.user.id

    @property
    def company_id(self) -> UUID:
        return self.company.id

    @property
    def role(self) -> Role:
        return self.user.role

    def can(self, permission: Permission) -> bool:
        return has_permission(self.role, permission)


async def current_caller(
    claims: Annotated[Claims, Depends(token_claims)],
    session: Session,
    settings: AppSettings,
) -> Caller:
    """401 unless the token's subject is (or, on first sign-in, becomes) an active user."""
    email = claims.get(settings.auth_email_claim)
    try:
        signed_in = await service.sign_in(
            session,
            sub=claims["sub"],
            email=email if isinstance(email, str) else None,
            email_verified=claims.get(settings.auth_email_verified_claim) is True,
        )
    except service.SignInRefusedError as exc:
        raise unauthorized(exc.code, exc.message) from None
    if signed_in.linked:
        await session.commit()
    return Caller(user=signed_in.user, company=signed_in.company)


CurrentCaller = Annotated[Caller, Depends(current_caller)]


def require(permission: Permission) -> Callable[[Caller], Awaitable[Caller]]:
    """A dependency giving the caller when their role has `permission`, 403 otherwise."""

    async def dependency(caller: CurrentCaller) -> Caller:
        if not caller.can(permission):
            raise forbidden("forbidden", f"the '{caller.role}' role does not allow '{permission}'")
        return caller

    return dependency


# The caller, when their role allows what the route does.
Reader = Annotated[Caller, Depends(require(Permission.read_self))]
{%- if cookiecutter.examples == "kudos" %}
Sender = Annotated[Caller, Depends(require(Permission.send_compliments))]
ColleagueReader = Annotated[Caller, Depends(require(Permission.list_colleagues))]
{%- endif %}
UserAdmin = Annotated[Caller, Depends(require(Permission.manage_users))]
{%- if cookiecutter.examples == "kudos" %}
Importer = Annotated[Caller, Depends(require(Permission.import_users))]
{%- else %}
Exporter = Annotated[Caller, Depends(require(Permission.export_users))]
{%- endif %}
CompanyAdmin = Annotated[Caller, Depends(require(Permission.manage_company))]
DomainOwner = Annotated[Caller, Depends(require(Permission.manage_domains))]
{%- if cookiecutter.examples == "kudos" %}
ResetAdmin = Annotated[Caller, Depends(require(Permission.reset_balances))]
Announcer = Annotated[Caller, Depends(require(Permission.send_announcements))]
{%- endif %}
