"""Users: create, list, deactivate, sign in. Their fields' rules are in `rules.py`.

Functions take a session and plain values, raise lib/errors AppError subclasses, and
know nothing of HTTP. They work inside the session's transaction and never commit: the
caller commits {% if cookiecutter.examples == "kudos" %}(one request, or one batch of an import){% else %}(one request, say){% endif %}, so several changes can share
one transaction.
"""

import logging
from contextlib import nullcontext
from dataclasses import dataclass
from uuid import UUID

from psycopg.errors import ForeignKeyViolation, UniqueViolation
from sqlalchemy import func, or_, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.elements import TextClause
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ...lib.errors import AppError, ConflictError, DomainRuleError, NotFoundError
from ..companies.domains import belongs_to, domain_of, outside_message
from ..companies.models import Company, CompanySnapshot
from ..companies.service import domains_of
{%- if cookiecutter.examples == "kudos" %}
from ..wallets.models import BalanceType, TransactionKind, Wallet, WalletTransaction
{%- endif %}
from . import rules
from .models import AUTH_SUB_MAX_LENGTH, Role, User, UserSnapshot
{%- if cookiecutter.examples == "kudos" %}

logger = logging.getLogger(__name__)

INITIAL_ALLOWANCE_REASON = "Initial weekly allowance"
{%- else %}

logger = logging.getLogger(__name__)
{%- endif %}


class EmailTakenError(ConflictError):
    code = "email_taken"


class EmailOutsideDomainsError(DomainRuleError):
    code = "email_outside_company_domains"


class UserNotFoundError(NotFoundError):
    code = "user_not_found"


class InvalidUserError(DomainRuleError):
    code = "invalid_user"


class CannotDeactivateSelfError(DomainRuleError):
    code = "cannot_deactivate_self"


class SignInRefusedError(AppError):
    """A genuine token that names no user who may sign in; `code` says why (401)."""

    status_code = 401
    code = "unknown_user"
{%- if cookiecutter.examples == "kudos" %}


@dataclass(frozen=True)
class UserWithWallet:
    user: User
    wallet: Wallet | None
{%- endif %}


def _check(name: str, email: str, department: str | None, job_title: str | None) -> None:
    problems = rules.problems(name=name, email=email, department=department, job_title=job_title)
    if problems:
        fields = ", ".join(problem.field for problem in problems)
        raise InvalidUserError(
            f"the user is not valid: {fields}",
            details=[{"field": p.field, "message": p.message} for p in problems],
        )


def _outside(email: str, domains: set[str]) -> EmailOutsideDomainsError:
    message = outside_message(domains)
    return EmailOutsideDomainsError(
        f"{email} {message}: add its domain to the company first",
        details=[{"field": "email", "message": message}],
    )


async def email_taken(session: AsyncSession, email: str) -> bool:
    """Whether any user has this email. Emails are unique globally, but an address can
    only be at a domain of one company (companies/domains.py), so for an address at the
    caller's own domains this answers about the caller's company only."""
    statement = select(User.id).where(col(User.email) == rules.normalize_email(email))
    return (await session.exec(statement)).first() is not None


async def create_user(
    session: AsyncSession,
    company: Company | CompanySnapshot,
    *,
    name: str,
    email: str,
    department: str | None = None,
    job_title: str | None = None,
    role: Role = Role.employee,
{%- if cookiecutter.examples == "kudos" %}
) -> UserWithWallet:
    """Add a user to `company`, with a wallet holding the company's weekly allowance.
{%- else %}
) -> User:
    """Add a user to `company`.
{%- endif %}

    The email is trimmed and lowercased, must be at one of the company's domains (422
    `email_outside_company_domains`, checked first, so an address of another company is
    refused exactly like any other outside address) and must not belong to anyone yet
    (409 `email_taken`: only ever one of this company's users). The fields follow
    `rules.py` (422 `invalid_user`), {% if cookiecutter.examples == "kudos" %}as the import's rows and the api's schema do{% else %}as the api's schema and the CLI do{% endif %}.
{%- if cookiecutter.examples == "kudos" %}
    The wallet's compliment balance starts at the company's allowance and one RESET
    ledger row records it, so the balances equal the sum of the ledger from the first
    moment. Flushed in a savepoint: a refused user leaves the caller's transaction
{%- else %}
    Flushed in a savepoint: a refused user leaves the caller's transaction
{%- endif %}
    usable.
    """
    _check(name, email, department, job_title)
    name, email = rules.normalize_name(name), rules.normalize_email(email)
    department, job_title = rules.clean_text(department), rules.clean_text(job_title)
    domains = await domains_of(session, company.id)
    if not belongs_to(email, domains):
        raise _outside(email, domains)
    if await email_taken(session, email):
        raise EmailTakenError(f"a user with the email {email} already exists")
{%- if cookiecutter.examples == "kudos" %}

    allowance = company.weekly_renewal_amount
{%- endif %}
    user = User(
        company_id=company.id,
        email=email,
        name=name,
        department=department,
        job_title=job_title,
        role=role,
    )
{%- if cookiecutter.examples == "kudos" %}
    wallet = Wallet(user_id=user.id, compliment_balance=allowance)
    entry = WalletTransaction(
        wallet_id=wallet.id,
        user_id=user.id,
        kind=TransactionKind.RESET,
        balance_type=BalanceType.COMPLIMENT,
        amount=allowance,
        previous_balance=0,
        new_balance=allowance,
        reason=INITIAL_ALLOWANCE_REASON,
        meta={"company_id": str(company.id), "allowance": allowance, "source": "user_created"},
    )
{%- endif %}
    try:
        async with session.begin_nested():
            session.add(user)
{%- if cookiecutter.examples == "kudos" %}
            await session.flush()
            session.add(wallet)
            await session.flush()
            session.add(entry)
            await session.flush()
{%- else %}
            await session.flush()
{%- endif %}
    except IntegrityError as exc:
        # Someone else created this email between the check and the insert.
        if isinstance(exc.orig, UniqueViolation) and "email" in str(exc.orig):
            raise EmailTakenError(f"a user with the email {email} already exists") from None
        # The domain was removed from the company meanwhile.
        if isinstance(exc.orig, ForeignKeyViolation) and "company_domains" in str(exc.orig):
            raise _outside(email, await domains_of(session, company.id)) from None
        raise
    return {% if cookiecutter.examples == "kudos" %}UserWithWallet(user=user, wallet=wallet){% else %}user{% endif %}


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def list_users(
    session: AsyncSession,
    company_id: UUID,
    *,
    active: bool | None = None,
    role: Role | None = None,
    search: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[{% if cookiecutter.examples == "kudos" %}UserWithWallet{% else %}User{% endif %}], int]:
    """A page of the company's users (by name), and how many match in all.

    `search` matches part of the name or email, case-insensitively.
    """
    conditions = [col(User.company_id) == company_id]
    if active is not None:
        conditions.append(col(User.is_active) == active)
    if role is not None:
        conditions.append(col(User.role) == role.value)
    if search and search.strip():
        pattern = f"%{_escape_like(search.strip())}%"
        conditions.append(
            or_(
                col(User.name).ilike(pattern, escape="\\"),
                col(User.email).ilike(pattern, escape="\\"),
            )
        )
    count = select(func.count()).select_from(User).where(*conditions)
    total = (await session.exec(count)).one()
{%- if cookiecutter.examples == "kudos" %}
    statement = (
        select(User, Wallet)
        .outerjoin(Wallet, col(Wallet.user_id) == col(User.id))
        .where(*conditions)
        .order_by(func.lower(col(User.name)), col(User.id))
        .limit(limit)
        .offset(offset)
    )
    rows = (await session.exec(statement)).all()
    return [UserWithWallet(user=user, wallet=wallet) for user, wallet in rows], int(total)
{%- else %}
    statement = (
        select(User)
        .where(*conditions)
        .order_by(func.lower(col(User.name)), col(User.id))
        .limit(limit)
        .offset(offset)
    )
    return list((await session.exec(statement)).all()), int(total)
{%- endif %}
{%- if cookiecutter.examples == "kudos" %}


async def get_user(session: AsyncSession, company_id: UUID, user_id: UUID) -> UserWithWallet:
    """A user of this company; another company's user is not found (404), not forbidden."""
    statement = (
        select(User, Wallet)
        .outerjoin(Wallet, col(Wallet.user_id) == col(User.id))
        .where(col(User.id) == user_id, col(User.company_id) == company_id)
    )
    row = (await session.exec(statement)).first()
    if row is None:
        raise UserNotFoundError("no such user in your company")
    user, wallet = row
    return UserWithWallet(user=user, wallet=wallet)
{%- else %}


async def get_user(session: AsyncSession, company_id: UUID, user_id: UUID) -> User:
    """A user of this company; another company's user is not found (404), not forbidden."""
    statement = select(User).where(col(User.id) == user_id, col(User.company_id) == company_id)
    user = (await session.exec(statement)).first()
    if user is None:
        raise UserNotFoundError("no such user in your company")
    return user
{%- endif %}


async def deactivate_user(
    session: AsyncSession, company_id: UUID, user_id: UUID, *, acting_user_id: UUID
{%- if cookiecutter.examples == "kudos" %}
) -> UserWithWallet:
    """Deactivate a user of this company; doing it again changes nothing.

    A deactivated user's tokens are refused from the next request on, and the weekly
    reset skips their wallet. Nobody can deactivate themselves (a company always keeps
    the admin who is acting).
    """
    found = await get_user(session, company_id, user_id)
    if user_id == acting_user_id:
        raise CannotDeactivateSelfError("you cannot deactivate yourself")
    if found.user.is_active:
        found.user.is_active = False
        session.add(found.user)
        await session.flush()
    return found
{%- else %}
) -> User:
    """Deactivate a user of this company; doing it again changes nothing.

    A deactivated user's tokens are refused from the next request on. Nobody can
    deactivate themselves (a company always keeps the admin who is acting).
    """
    found = await get_user(session, company_id, user_id)
    if user_id == acting_user_id:
        raise CannotDeactivateSelfError("you cannot deactivate yourself")
    if found.is_active:
        found.is_active = False
        session.add(found)
        await session.flush()
    return found
{%- endif %}


@dataclass(frozen=True)
class SignedIn:
    user: UserSnapshot
    company: CompanySnapshot
    # True when this call linked the token's subject to the user: the caller commits.
    linked: bool


# The first-sign-in link: one conditional statement, so that of several first requests
# at once (with different subjects for one email) exactly one links the row; the others
# wait for its row lock, see `auth_sub` set, and update nothing. Only a user of the
# company that owns the email's domain is linked (the foreign key on users says so for
# every row but those older than the rule: see migration 0006).
_LINK_BY_EMAIL = text("""
    UPDATE users SET auth_sub = :sub
    FROM companies, company_domains AS owned
    WHERE users.email = :email
      AND users.auth_sub IS NULL
      AND users.is_active
      AND companies.id = users.company_id
      AND companies.is_active
      AND owned.domain = :domain
      AND owned.company_id = users.company_id
    RETURNING users.id
""")

# Every request's caller, user and company in one statement of SQLAlchemy Core, read
# into plain values (no ORM objects, no statement built per request). By subject on
# every request; by id or email only on a first sign-in.
_CALLER = """
    SELECT u.id, u.company_id, u.email, u.name, u.role, u.is_active, u.auth_sub,
{%- if cookiecutter.examples == "kudos" %}
           c.name AS company_name, c.email_domain, c.is_active AS company_active,
           c.weekly_renewal_amount, c.timezone
{%- else %}
           c.name AS company_name, c.email_domain, c.is_active AS company_active, c.timezone
{%- endif %}
    FROM users AS u JOIN companies AS c ON c.id = u.company_id
"""
_CALLER_BY_SUB = text(_CALLER + "WHERE u.auth_sub = :value")
_CALLER_BY_ID = text(_CALLER + "WHERE u.id = :value")
_CALLER_BY_EMAIL = text(_CALLER + "WHERE u.email = :value")


async def _user_and_company(
    session: AsyncSession, statement: TextClause, value: object
) -> tuple[UserSnapshot, CompanySnapshot] | None:
    conn = await session.connection()
    row = (await conn.execute(statement, {"value": value})).first()
    if row is None:
        return None
    user = UserSnapshot(
        id=row.id,
        company_id=row.company_id,
        email=row.email,
        name=row.name,
        role=Role(row.role),
        is_active=row.is_active,
        auth_sub=row.auth_sub,
    )
    company = CompanySnapshot(
        id=row.company_id,
        name=row.company_name,
        email_domain=row.email_domain,
        is_active=row.company_active,
{%- if cookiecutter.examples == "kudos" %}
        weekly_renewal_amount=row.weekly_renewal_amount,
{%- endif %}
        timezone=row.timezone,
    )
    return user, company


def _check_active(user: UserSnapshot, company: CompanySnapshot) -> None:
    if not user.is_active:
        raise SignInRefusedError("this user has been deactivated", code="inactive_user")
    if not company.is_active:
        raise SignInRefusedError(
            "this user's company has been deactivated", code="inactive_company"
        )


def _unknown() -> SignInRefusedError:
    return SignInRefusedError("no user is linked to this token's subject", code="unknown_user")


async def sign_in(
    session: AsyncSession, *, sub: str, email: str | None, email_verified: bool
) -> SignedIn:
    """The active user (and company) behind a verified token's subject.

    A user carries the identity provider's subject (`auth_sub`) from their first sign-in
    on; users added {% if cookiecutter.examples == "kudos" %}by an admin or by a CSV import{% else %}by an admin or by the CLI{% endif %} start without one. When no user has
    `sub` yet, the token's email links it, if the provider says the email is verified:
    the active user with that email (compared lowercased, as stored) whose `auth_sub` is
    still empty gets `sub`, in one conditional UPDATE. A user is never re-linked: an
    email whose user already has another subject is refused. The company always comes
    from the user's row, so the email cannot reach anyone but that one user, and only
    when that user's company owns the email's domain.

    Raises SignInRefusedError: `unknown_user`, `email_not_verified`,
    `email_already_linked`, `inactive_user`, `inactive_company` or
    `email_outside_company_domains`. When `linked` is
    True the caller must commit (like every function here, this one never does).
    """
    found = await _user_and_company(session, _CALLER_BY_SUB, sub)
    if found is not None:
        _check_active(*found)
        return SignedIn(*found, linked=False)
    if email is None or len(sub) > AUTH_SUB_MAX_LENGTH:
        raise _unknown()
    if not email_verified:
        raise SignInRefusedError(
            "no user is linked to this token's subject, and the token's email is not"
            " verified: verify it with the identity provider, then sign in again",
            code="email_not_verified",
        )
    email = rules.normalize_email(email)
    if rules.email_problem(email) is not None:
        raise _unknown()

    params = {"sub": sub, "email": email, "domain": domain_of(email)}
    conn = await session.connection()
    # In a transaction, a savepoint keeps it usable when the link fails; a session in
    # autocommit (lib/dependencies.py `Autocommit`) has none to keep, nor may it open one.
    options = conn.sync_connection.get_execution_options() if conn.sync_connection else {}
    autocommit = options.get("isolation_level") == "AUTOCOMMIT"
    try:
        async with nullcontext() if autocommit else session.begin_nested():
            linked = (await conn.execute(_LINK_BY_EMAIL, params)).first()
    except IntegrityError as exc:
        # The same subject was linked to another user (through another email) meanwhile.
        if not (isinstance(exc.orig, UniqueViolation) and "auth_sub" in str(exc.orig)):
            raise
        linked = None
    if linked is not None:
        found = await _user_and_company(session, _CALLER_BY_ID, linked.id)
        assert found is not None
        logger.info("user %s signed in for the first time: linked to their subject", linked.id)
        return SignedIn(*found, linked=True)

    # Nothing linked: say why, from what the database holds now.
    found = await _user_and_company(session, _CALLER_BY_SUB, sub)
    if found is None:
        found = await _user_and_company(session, _CALLER_BY_EMAIL, email)
    if found is None:
        raise _unknown()
    user, company = found
    if user.auth_sub is not None and user.auth_sub != sub:
        raise SignInRefusedError(
            "the user with this token's email is already linked to another sign-in"
            " (another account at the identity provider)",
            code="email_already_linked",
        )
    _check_active(user, company)
    if user.auth_sub == sub:
        # Another request with the same subject linked it a moment ago.
        return SignedIn(user, company, linked=False)
    if not belongs_to(email, await domains_of(session, company.id)):
        # Only a user added before domains were enforced can be here (migration 0006).
        raise SignInRefusedError(
            "this email's domain is not one of its company's domains: an admin of the"
            " company must add the domain before this user can sign in",
            code="email_outside_company_domains",
        )
    raise _unknown()
