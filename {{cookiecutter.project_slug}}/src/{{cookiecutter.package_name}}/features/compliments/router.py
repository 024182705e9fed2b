"""Sending compliments, the caller's compliment history, and whom they can compliment."""

from typing import Annotated

from fastapi import APIRouter, Depends, Query, status
from sqlmodel.ext.asyncio.session import AsyncSession

from ...lib.dependencies import get_session
from ...lib.errors import error_responses
from ...lib.pagination import Page, PageQuery
from ..users.dependencies import Caller, require
from ..users.permissions import Permission
from . import service
from .schemas import Colleague, ComplimentOut, SendCompliment

router = APIRouter(tags=["compliments"])

Session = Annotated[AsyncSession, Depends(get_session)]


@router.post(
    "/compliments",
    response_model=ComplimentOut,
    status_code=status.HTTP_201_CREATED,
    summary="Send a compliment",
    description=(
        "Moves `coins` from the caller's compliment balance to the receiver's redeemable "
        "balance. 404 when the receiver is not a user of the caller's company; 409 "
        "`insufficient_balance` when the caller's compliment balance cannot cover the coins; "
        "422 for a broken rule (`self_compliment`, `receiver_inactive`, or a validation error)."
    ),
    responses=error_responses(400, 401, 403, 404, 409, 422, 503),
)
async def send_compliment(
    caller: Annotated[Caller, Depends(require(Permission.send_compliments))],
    session: Session,
    body: SendCompliment,
) -> ComplimentOut:
    sent = await service.send_compliment(
        session,
        company_id=caller.company_id,
        sender_id=caller.user_id,
        receiver_id=body.receiver_id,
        coins=body.coins,
        message=body.message,
    )
    return ComplimentOut.model_validate(sent)


@router.get(
    "/compliments",
    response_model=Page[ComplimentOut],
    summary="Compliments I sent or received, newest first",
    responses=error_responses(401, 403, 422, 503),
)
async def list_compliments(
    caller: Annotated[Caller, Depends(require(Permission.read_self))],
    session: Session,
    page: PageQuery,
    direction: Annotated[service.Direction, Query(description="`sent` by me or `received` by me")],
) -> Page[ComplimentOut]:
    items, total = await service.list_compliments(
        session,
        company_id=caller.company_id,
        user_id=caller.user_id,
        direction=direction,
        limit=page.limit,
        offset=page.offset,
    )
    return Page(
        items=[ComplimentOut.model_validate(item) for item in items],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )


@router.get(
    "/colleagues",
    response_model=Page[Colleague],
    summary="People I can compliment",
    description="Active users of the caller's company other than the caller, by name.",
    responses=error_responses(401, 403, 422, 503),
)
async def list_colleagues(
    caller: Annotated[Caller, Depends(require(Permission.list_colleagues))],
    session: Session,
    page: PageQuery,
    search: Annotated[
        str | None,
        Query(
            alias="q",
            max_length=100,
            pattern=r"^[^\x00]*$",
            description="Part of the name or email, case-insensitive",
        ),
    ] = None,
) -> Page[Colleague]:
    users, total = await service.list_colleagues(
        session,
        company_id=caller.company_id,
        user_id=caller.user_id,
        search=search,
        limit=page.limit,
        offset=page.offset,
    )
    return Page(
        items=[Colleague.model_validate(user) for user in users],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )
