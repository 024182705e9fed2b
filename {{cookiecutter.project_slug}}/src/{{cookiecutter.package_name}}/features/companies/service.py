"""Company settings. Functions take a session and plain values; the caller commits."""

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from psycopg.errors import ForeignKeyViolation, UniqueViolation
from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ...lib.errors import ConflictError, DomainRuleError, NotFoundError
from ..users.models import User
from .domains import is_domain, normalize_domain
{%- if cookiecutter.examples == "kudos" %}
from .models import (
    MAX_WEEKLY_AMOUNT,
    MIN_WEEKLY_AMOUNT,
    Company,
    CompanyDomain,
    CompanySnapshot,
)
{%- else %}
from .models import Company, CompanyDomain, CompanySnapshot
{%- endif %}

# Domains one company may own (its primary one included): enough for a group of brands,
# few enough that one tenant cannot squat on a registry's worth of names.
MAX_DOMAINS_PER_COMPANY = 50


class CompanyNotFoundError(NotFoundError):
    code = "company_not_found"
{%- if cookiecutter.examples == "kudos" %}


class AllowanceOutOfRangeError(DomainRuleError):
    code = "allowance_out_of_range"
{%- endif %}


class InvalidCompanyError(DomainRuleError):
    code = "invalid_company"


class DomainTakenError(ConflictError):
    code = "domain_taken"


class InvalidDomainError(DomainRuleError):
    code = "invalid_domain"


class TooManyDomainsError(DomainRuleError):
    code = "too_many_domains"


class DomainNotFoundError(NotFoundError):
    code = "domain_not_found"


class PrimaryDomainError(DomainRuleError):
    code = "primary_domain"


class DomainInUseError(ConflictError):
    code = "domain_in_use"
{%- if cookiecutter.examples == "kudos" %}


def _check_allowance(amount: int) -> None:
    if not MIN_WEEKLY_AMOUNT <= amount <= MAX_WEEKLY_AMOUNT:
        raise AllowanceOutOfRangeError(
            f"the weekly allowance must be between {MIN_WEEKLY_AMOUNT} and {MAX_WEEKLY_AMOUNT}"
        )


async def create_company(
    session: AsyncSession, *, name: str, email_domain: str, weekly_allowance: int = 100
) -> Company:
{%- else %}


async def create_company(session: AsyncSession, *, name: str, email_domain: str) -> Company:
{%- endif %}
    """Add a company (a tenant). The name is trimmed, the domain lowercased and unique."""
    name, email_domain = name.strip(), normalize_domain(email_domain)
    if not 2 <= len(name) <= 200:
        raise InvalidCompanyError("the company name must be 2 to 200 characters")
    if not is_domain(email_domain):
        raise InvalidCompanyError(f"'{email_domain}' is not a domain name (e.g. acme.example)")
{%- if cookiecutter.examples == "kudos" %}
    _check_allowance(weekly_allowance)
{%- endif %}
    if await company_owning(session, email_domain) is not None:
        raise DomainTakenError(f"a company with the domain {email_domain} already exists")
{%- if cookiecutter.examples == "kudos" %}
    company = Company(name=name, email_domain=email_domain, weekly_renewal_amount=weekly_allowance)
{%- else %}
    company = Company(name=name, email_domain=email_domain)
{%- endif %}
    try:
        async with session.begin_nested():
            session.add(company)
            await session.flush()
    except IntegrityError as exc:
        # Someone else took the domain between the check and the insert (the trigger
        # that adds it to company_domains, or companies' own unique key, says so).
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
{%- if cookiecutter.examples == "kudos" %}


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
{%- endif %}


async def company_owning(session: AsyncSession, domain: str) -> UUID | None:
    """The id of the company that owns this (normalised) domain, if any."""
    statement = select(CompanyDomain.company_id).where(col(CompanyDomain.domain) == domain)
    return (await session.exec(statement)).first()


async def domains_of(session: AsyncSession, company_id: UUID) -> set[str]:
    """Every domain the company owns, its primary one included."""
    statement = select(CompanyDomain.domain).where(col(CompanyDomain.company_id) == company_id)
    return set((await session.exec(statement)).all())


@dataclass(frozen=True)
class OwnedDomain:
    domain: str
    primary: bool
    users: int  # users of the company (active or not) with an address at it
    created_at: datetime | None


async def list_domains(
    session: AsyncSession, company: Company | CompanySnapshot
) -> list[OwnedDomain]:
    """The company's domains, the primary one first, with how many users each has."""
    users = (
        select(func.count())
        .select_from(User)
        .where(
            col(User.company_id) == col(CompanyDomain.company_id),
            col(User.email_domain) == col(CompanyDomain.domain),
        )
        .scalar_subquery()
    )
    statement = (
        select(CompanyDomain, users)
        .where(col(CompanyDomain.company_id) == company.id)
        .order_by(col(CompanyDomain.domain) != company.email_domain, col(CompanyDomain.domain))
    )
    rows = (await session.exec(statement)).all()
    return [
        OwnedDomain(row.domain, row.domain == company.email_domain, int(count), row.created_at)
        for row, count in rows
    ]


async def add_domain(
    session: AsyncSession, company: Company | CompanySnapshot, domain: str
) -> OwnedDomain:
    """Give the company one more domain; its users may then have addresses there.

    A domain belongs to at most one company: one another company owns is refused (409
    `domain_taken`), saying only that, never which company. Nothing proves the company
    controls the domain (no DNS check): README, "Tenants and their domains".
    """
    domain = normalize_domain(domain)
    if not is_domain(domain):
        raise InvalidDomainError(f"'{domain}' is not a domain name (e.g. acme.example)")
    owner = await company_owning(session, domain)
    if owner == company.id:
        raise DomainTakenError(f"{domain} is already one of your company's domains")
    if owner is not None:
        raise _taken_elsewhere(domain)
    # Adds for one company wait for each other, so the cap holds under concurrency (NO
    # KEY UPDATE: users being inserted meanwhile, which KEY SHARE the row, do not wait).
    lock = select(Company.id).where(col(Company.id) == company.id).with_for_update(key_share=True)
    await session.exec(lock)
    if len(await domains_of(session, company.id)) >= MAX_DOMAINS_PER_COMPANY:
        raise TooManyDomainsError(f"a company can have at most {MAX_DOMAINS_PER_COMPANY} domains")
    row = CompanyDomain(domain=domain, company_id=company.id)
    try:
        async with session.begin_nested():
            session.add(row)
            await session.flush()
    except IntegrityError as exc:
        if isinstance(exc.orig, UniqueViolation):  # taken meanwhile
            raise _taken_elsewhere(domain) from None
        raise
    return OwnedDomain(domain, primary=False, users=0, created_at=row.created_at)


def _taken_elsewhere(domain: str) -> DomainTakenError:
    return DomainTakenError(
        f"{domain} is registered to another company, and a domain belongs to at most one"
        " company; if it is yours, ask the service's operators to move it"
    )


async def remove_domain(
    session: AsyncSession, company: Company | CompanySnapshot, domain: str
) -> None:
    """Take a domain from the company; refused while any of its users has an address there.

    Refused for the primary domain (422 `primary_domain`) and while users (active or
    not) have an address at it (409 `domain_in_use`): a user is never left outside their
    company's domains. Another company's domain is not found, like an unknown one.
    """
    domain = normalize_domain(domain)
    statement = (
        select(CompanyDomain)
        .where(col(CompanyDomain.domain) == domain, col(CompanyDomain.company_id) == company.id)
        .with_for_update()
    )
    row = (await session.exec(statement)).first()
    if row is None:
        raise DomainNotFoundError(f"{domain} is not one of your company's domains")
    if domain == company.email_domain:
        raise PrimaryDomainError(f"{domain} is the company's primary domain; it stays")
    users = (
        select(func.count())
        .select_from(User)
        .where(col(User.company_id) == company.id, col(User.email_domain) == domain)
    )
    count = int((await session.exec(users)).one())
    if count:
        raise _in_use(domain, count)
    try:
        async with session.begin_nested():
            await session.delete(row)
            await session.flush()
    except IntegrityError as exc:
        # A user at this domain was added between the count and the delete.
        if isinstance(exc.orig, ForeignKeyViolation):
            raise _in_use(domain, 1) from None
        raise


def _in_use(domain: str, count: int) -> DomainInUseError:
    people = "1 user has" if count == 1 else f"{count} users have"
    return DomainInUseError(
        f"{people} an address at {domain} (deactivated users included); a domain can be"
        " removed only when no user of the company uses it"
    )
