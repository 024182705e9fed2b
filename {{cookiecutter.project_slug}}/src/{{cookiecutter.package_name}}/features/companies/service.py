"""Company settings. Functions take a session and plain values; the caller commits."""

from uuid import UUID

from sqlmodel.ext.asyncio.session import AsyncSession

from ...lib.errors import DomainRuleError, NotFoundError
from .models import MAX_WEEKLY_AMOUNT, MIN_WEEKLY_AMOUNT, Company


class CompanyNotFoundError(NotFoundError):
    code = "company_not_found"


class AllowanceOutOfRangeError(DomainRuleError):
    code = "allowance_out_of_range"


async def get_company(session: AsyncSession, company_id: UUID) -> Company:
    company = await session.get(Company, company_id)
    if company is None:
        raise CompanyNotFoundError("no such company")
    return company


async def set_weekly_allowance(session: AsyncSession, company_id: UUID, amount: int) -> Company:
    """Set the coins each active user gets at every weekly reset (50..500).

    Balances are not touched now: the new amount applies from the next reset (and to
    users created from now on).
    """
    if not MIN_WEEKLY_AMOUNT <= amount <= MAX_WEEKLY_AMOUNT:
        raise AllowanceOutOfRangeError(
            f"the weekly allowance must be between {MIN_WEEKLY_AMOUNT} and {MAX_WEEKLY_AMOUNT}"
        )
    company = await get_company(session, company_id)
    company.weekly_renewal_amount = amount
    session.add(company)
    await session.flush()
    return company
