"""User rules shared by the admin api and the CSV import.

Functions take a session and plain values, raise lib/errors AppError subclasses, and
know nothing of HTTP. They work inside the session's transaction and never commit: the
caller commits (one request, or one batch of an import), so several changes can share
one transaction.
"""

import re
from dataclasses import dataclass
from uuid import UUID

from psycopg.errors import UniqueViolation
from sqlalchemy import func, or_
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ...lib.errors import ConflictError, DomainRuleError, NotFoundError
from ..companies.models import Company
from ..wallets.models import BalanceType, TransactionKind, Wallet, WalletTransaction
from .models import Role, User

NAME_MIN_LENGTH = 2
NAME_MAX_LENGTH = 200
EMAIL_MAX_LENGTH = 320
TEXT_MAX_LENGTH = 120  # department, job title
# Well formed enough to be someone's address: one @, no spaces or control characters,
# a dot in the domain.
EMAIL_PATTERN = r"^[^@\s\x00-\x1f\x7f]+@[^@\s\x00-\x1f\x7f]+\.[^@\s\x00-\x1f\x7f]+$"
# Names and other text: no control characters (Postgres refuses NUL in text).
PLAIN_TEXT_PATTERN = r"^[^\x00-\x1f\x7f]*$"
_EMAIL = re.compile(EMAIL_PATTERN)
_PLAIN_TEXT = re.compile(PLAIN_TEXT_PATTERN)
INITIAL_ALLOWANCE_REASON = "Initial weekly allowance"


class EmailTakenError(ConflictError):
    code = "email_taken"


class UserNotFoundError(NotFoundError):
    code = "user_not_found"


class InvalidUserError(DomainRuleError):
    code = "invalid_user"


class CannotDeactivateSelfError(DomainRuleError):
    code = "cannot_deactivate_self"


@dataclass(frozen=True)
class UserWithWallet:
    user: User
    wallet: Wallet | None


def normalize_email(email: str) -> str:
    return email.strip().lower()


def _clean(value: str | None) -> str | None:
    """Trimmed text, or None for a missing or blank value."""
    if value is None:
        return None
    return value.strip() or None


def _check(name: str, email: str, department: str | None, job_title: str | None) -> None:
    problems: list[dict[str, str]] = []
    if not NAME_MIN_LENGTH <= len(name) <= NAME_MAX_LENGTH:
        problems.append(
            {
                "field": "name",
                "message": f"must be {NAME_MIN_LENGTH} to {NAME_MAX_LENGTH} characters",
            }
        )
    if len(email) > EMAIL_MAX_LENGTH or not _EMAIL.fullmatch(email):
        problems.append({"field": "email", "message": "is not a well-formed email address"})
    for field, value in (("department", department), ("job_title", job_title)):
        if value is not None and len(value) > TEXT_MAX_LENGTH:
            problems.append(
                {"field": field, "message": f"must be at most {TEXT_MAX_LENGTH} characters"}
            )
    for field, value in (("name", name), ("department", department), ("job_title", job_title)):
        if value is not None and not _PLAIN_TEXT.fullmatch(value):
            problems.append({"field": field, "message": "must not contain control characters"})
    if problems:
        fields = ", ".join(problem["field"] for problem in problems)
        raise InvalidUserError(f"the user is not valid: {fields}", details=problems)


async def email_taken(session: AsyncSession, email: str) -> bool:
    """Whether any user, of any company, has this email (emails are unique globally)."""
    statement = select(User.id).where(col(User.email) == normalize_email(email))
    return (await session.exec(statement)).first() is not None


async def create_user(
    session: AsyncSession,
    company: Company,
    *,
    name: str,
    email: str,
    department: str | None = None,
    job_title: str | None = None,
    role: Role = Role.employee,
) -> UserWithWallet:
    """Add a user to `company`, with a wallet holding the company's weekly allowance.

    The email is trimmed and lowercased and must not belong to anyone yet (409
    `email_taken`); the name is trimmed. The wallet's compliment balance starts at the
    company's allowance and one RESET ledger row records it, so the balances equal the
    sum of the ledger from the first moment. Flushed in a savepoint: a refused user
    leaves the caller's transaction usable (the import carries on with the next row).
    """
    name = name.strip()
    email = normalize_email(email)
    department, job_title = _clean(department), _clean(job_title)
    _check(name, email, department, job_title)
    if await email_taken(session, email):
        raise EmailTakenError(f"a user with the email {email} already exists")

    allowance = company.weekly_renewal_amount
    user = User(
        company_id=company.id,
        email=email,
        name=name,
        department=department,
        job_title=job_title,
        role=role,
    )
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
    try:
        async with session.begin_nested():
            session.add(user)
            await session.flush()
            session.add(wallet)
            await session.flush()
            session.add(entry)
            await session.flush()
    except IntegrityError as exc:
        # Someone else created this email between the check and the insert.
        if isinstance(exc.orig, UniqueViolation) and "email" in str(exc.orig):
            raise EmailTakenError(f"a user with the email {email} already exists") from None
        raise
    return UserWithWallet(user=user, wallet=wallet)


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
) -> tuple[list[UserWithWallet], int]:
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


async def deactivate_user(
    session: AsyncSession, company_id: UUID, user_id: UUID, *, acting_user_id: UUID
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
