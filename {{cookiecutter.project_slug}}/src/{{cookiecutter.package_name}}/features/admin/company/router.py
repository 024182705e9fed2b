"""Admins read and change their own company's settings."""

from typing import Annotated

from fastapi import APIRouter, Depends
from sqlmodel.ext.asyncio.session import AsyncSession

from ....lib.dependencies import get_session
from ....lib.errors import error_responses
from ...companies import service
from ...users.dependencies import Caller, require
from ...users.permissions import Permission
from .schemas import CompanySettings, WeeklyAllowance

router = APIRouter(prefix="/company", tags=["admin"])

CompanyAdmin = Annotated[Caller, Depends(require(Permission.manage_company))]
Session = Annotated[AsyncSession, Depends(get_session)]


@router.get(
    "",
    response_model=CompanySettings,
    summary="The company's settings",
    responses=error_responses(401, 403, 503),
)
async def get_company(caller: CompanyAdmin) -> CompanySettings:
    return CompanySettings.of(caller.company)


@router.put(
    "/weekly-allowance",
    response_model=CompanySettings,
    summary="Set the weekly allowance",
    description=(
        "The coins every active user of the company gets to give each week (50 to 500). "
        "Balances are not changed now: the new amount applies from the next weekly reset, "
        "and to users added from now on."
    ),
    responses=error_responses(400, 401, 403, 422, 503),
)
async def set_weekly_allowance(
    caller: CompanyAdmin, session: Session, body: WeeklyAllowance
) -> CompanySettings:
    company = await service.set_weekly_allowance(
        session, caller.company_id, body.weekly_renewal_amount
    )
    await session.commit()
    return CompanySettings.of(company)
