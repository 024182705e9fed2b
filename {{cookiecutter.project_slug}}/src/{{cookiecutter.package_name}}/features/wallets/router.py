"""The signed-in user's wallet: balances and ledger."""

import re
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.exceptions import RequestValidationError
from pydantic import BeforeValidator

from ...lib.dependencies import Session
from ...lib.errors import error_responses
from ...lib.pagination import Page, PageQuery
from ..users.dependencies import Reader
from . import service
from .models import BalanceType, TransactionKind
from .schemas import Transaction, WalletBalances

router = APIRouter(prefix="/me/wallet", tags=["wallets"])


def _utc(moment: datetime | None) -> datetime | None:
    """A datetime without an offset is taken as UTC."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


# A date and a time, then anything ISO 8601 allows (seconds, fraction, offset).
_ISO_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")


def _iso_8601(value: object) -> object:
    """Refuse what is not ISO 8601 text: pydantic also reads numbers as Unix timestamps."""
    if not isinstance(value, str) or not _ISO_DATE_TIME.match(value):
        raise ValueError("expected an ISO 8601 date and time, e.g. 2026-01-31T09:00:00Z")
    return value


Moment = Annotated[datetime, BeforeValidator(_iso_8601)]


async def transaction_filters(
    balance_type: Annotated[
        BalanceType | None, Query(description="Only changes of this balance")
    ] = None,
    kind: Annotated[TransactionKind | None, Query(description="Only this kind of change")] = None,
    created_from: Annotated[
        Moment | None,
        Query(
            alias="from",
            description="Only rows created at or after this ISO 8601 moment (UTC if no offset)",
        ),
    ] = None,
    created_to: Annotated[
        Moment | None,
        Query(
            alias="to",
            description="Only rows created before this ISO 8601 moment (UTC if no offset)",
        ),
    ] = None,
) -> service.TransactionFilters:
    created_from, created_to = _utc(created_from), _utc(created_to)
    if created_from is not None and created_to is not None and created_from > created_to:
        raise RequestValidationError(
            [
                {
                    "type": "date_range",
                    "loc": ("query", "from"),
                    "msg": "'from' must not be later than 'to'",
                    "input": created_from.isoformat(),
                }
            ]
        )
    return service.TransactionFilters(
        balance_type=balance_type, kind=kind, created_from=created_from, created_to=created_to
    )


@router.get(
    "",
    response_model=WalletBalances,
    summary="My balances",
    responses=error_responses(401, 403, 503),
)
async def my_wallet(caller: Reader, session: Session) -> WalletBalances:
    allowance = caller.company.weekly_renewal_amount
    wallet = await service.get_wallet(session, caller.user_id)
    if wallet is None:
        return WalletBalances(
            compliment_balance=0, redeemable_balance=0, weekly_allowance=allowance, updated_at=None
        )
    return WalletBalances(
        compliment_balance=wallet.compliment_balance,
        redeemable_balance=wallet.redeemable_balance,
        weekly_allowance=allowance,
        updated_at=wallet.updated_at,
    )


@router.get(
    "/transactions",
    response_model=Page[Transaction],
    summary="My ledger, newest first",
    responses=error_responses(401, 403, 422, 503),
)
async def my_transactions(
    caller: Reader,
    session: Session,
    page: PageQuery,
    filters: Annotated[service.TransactionFilters, Depends(transaction_filters)],
) -> Page[Transaction]:
    rows, total = await service.list_transactions(
        session, caller.user_id, filters, limit=page.limit, offset=page.offset
    )
    items = [Transaction.model_validate(row) for row in rows]
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)
