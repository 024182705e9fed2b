"""Who is calling: the user row behind the token's `sub`, and what their role allows.

    @router.get("/me")
    async def me(caller: CurrentCaller) -> ...

    @router.post("/users")
    async def create(caller: Annotated[Caller, Depends(require(Permission.manage_users))]): ...

The company always comes from the caller's user row, never from the request.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated
from uuid import UUID

from fastapi import Depends
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ...lib.auth import Claims, forbidden, token_claims, unauthorized
from ...lib.dependencies import get_session
from ..companies.models import Company
from .models import Role, User
from .permissions import Permission, has_permission


@dataclass(frozen=True)
class Caller:
    user: User
    company: Company

    @property
    def user_id(self) -> UUID:
        return self.user.id

    @property
    def company_id(self) -> UUID:
        return self.company.id

    @property
    def role(self) -> Role:
        return Role(self.user.role)

    def can(self, permission: Permission) -> bool:
        return has_permission(self.role, permission)


async def current_caller(
    claims: Annotated[Claims, Depends(token_claims)],
    session: Annotated[AsyncSession, Depends(get_session)],
) -> Caller:
    """401 unless the token's subject is an active user of an active company."""
    statement = (
        select(User, Company)
        .join(Company, col(User.company_id) == col(Company.id))
        .where(col(User.auth_sub) == claims["sub"])
    )
    row = (await session.exec(statement)).first()
    if row is None:
        raise unauthorized("unknown_user", "no user is linked to this token's subject")
    user, company = row
    if not user.is_active:
        raise unauthorized("inactive_user", "this user has been deactivated")
    if not company.is_active:
        raise unauthorized("inactive_company", "this user's company has been deactivated")
    return Caller(user=user, company=company)


CurrentCaller = Annotated[Caller, Depends(current_caller)]


def require(permission: Permission) -> Callable[[Caller], Awaitable[Caller]]:
    """A dependency giving the caller when their role has `permission`, 403 otherwise."""

    async def dependency(caller: CurrentCaller) -> Caller:
        if not caller.can(permission):
            raise forbidden("forbidden", f"the '{caller.role}' role does not allow '{permission}'")
        return caller

    return dependency
