"""Company settings. Functions take a session and plain values; the caller commits."""

import re
from uuid import UUID

from psycopg.errors import UniqueViolation
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ...lib.errors import ConflictError, DomainRuleError, NotFoundError
from .models import MAX_WEEKLY_AMOUNT, MIN_WEEKLY_AMOUNT, Company

# Lowercase labels of letters, digits and inner hyphens, at least one dot.
_DOMAIN = re.compile(r"(?=.{4,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}")


class CompanyNotFoundError(NotFoundError):
    code = "company_not_found"


class AllowanceOutOfRangeError(DomainRuleError):
    code = "allowance_out_of_range"


class InvalidCompanyError(DomainRuleError):
    code = "invalid_company"


class DomainTakenError(ConflictError):
    code = "domain_taken"


def _check_allowance(amount: int) -> None:
    if not MIN_WEEKLY_AMOUNT <= amount <= MAX_WEEKLY_AMOUNT:
        raise AllowanceOutOfRangeError(
            f"the weekly allowance must be between {MIN_WEEKLY_AMOUNT} and {MAX_WEEKLY_AMOUNT}"
        )


async def create_company(
    session: AsyncSession, *, name: str, email_domain: str, weekly_allowance: int = 100
) -> Company:
    """Add a company (a tenant). The name is trimmed, the domain lowercased and unique."""
    name, email_domain = name.strip(), email_domain.strip().lower()
    if not 2 <= len(name) <= 200:
        raise InvalidCompanyError("the company name must be 2 to 200 characters")
    if not _DOMAIN.fullmatch(email_domain):
        raise InvalidCompanyError(f"'{email_domain}' is not a domain name (e.g. acme.example)")
    _check_allowance(weekly_allowance)
    taken = select(Company.id).where(col(Company.email_domain) == email_domain)
    if (await session.exec(taken)).first() is not None:
        raise DomainTakenError(f"a company with the domain {email_domain} already exists")
    company = Company(name=name, email_domain=email_domain, weekly_renewal_amount=weekly_allowance)
    try:
        async with session.begin_nested():
            session.add(company)
            await session.flush()
    except IntegrityError as exc:
        # Someone else took the domain between the check and the insert.
        if isinstance(exc.orig, UniqueViolation):
            message = f"a company with the domain {email_domain} already exists"
            raise DomainTakenError(message) from None
        raise
    return company


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
    _check_allowance(amount)
    company = await get_company(session, company_id)
    company.weekly_renewal_amount = amount
    session.add(company)
    await session.flush()
    return company
