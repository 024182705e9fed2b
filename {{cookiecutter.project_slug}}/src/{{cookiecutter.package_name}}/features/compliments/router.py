"""Sending compliments, the caller's compliment history, and whom they can compliment."""

from typing import Annotated

from fastapi import APIRouter, Header, Query, Response

from ...lib.dependencies import Autocommit, Session
from ...lib.errors import error_responses
from ...lib.pagination import Page, PageQuery
from ..users.dependencies import ColleagueReader, Reader, Sender
from . import service
from .models import IDEMPOTENCY_KEY_MAX_LENGTH, IDEMPOTENCY_KEY_PATTERN
from .schemas import Colleague, ComplimentOut, SendCompliment

router = APIRouter(tags=["compliments"])


REPLAYED_HEADER = "Idempotent-Replayed"

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=IDEMPOTENCY_KEY_MAX_LENGTH,
        pattern=IDEMPOTENCY_KEY_PATTERN,
        description=(
            f"Any unique value of yours (a UUID), up to {IDEMPOTENCY_KEY_MAX_LENGTH} printable "
            "ASCII characters: a retry with the same key and body returns the first answer "
            "and moves no coins. Kept at least 24 hours."
        ),
    ),
]


@router.post(
    "/compliments",
    response_model=ComplimentOut,
    status_code=201,
    # The send is one statement: no transaction around it (lib/dependencies.py).
    dependencies=[Autocommit],
    summary="Send a compliment",
    description=(
        "Moves `coins` from the caller's compliment balance to the receiver's redeemable "
        "balance. 404 when the receiver is not a user of the caller's company; 409 "
        "`insufficient_balance` when the caller's compliment balance cannot cover the coins; "
        "422 for a broken rule (`self_compliment`, `receiver_inactive`, or a validation error)."
        "\n\nWith an `Idempotency-Key` header, a retry (same key, same body, same sender) "
        "returns the first 201 and its compliment again, with `Idempotent-Replayed: true`, "
        "and moves no coins, even when sent while the first is still running; the same "
        "key with another body is a 422 `idempotency_key_reused`; a malformed key is a "
        "422 `validation_error`. Only a sent compliment is kept: after a refusal (409, "
        "404, 422) the same key runs again."
    ),
    responses={
        **error_responses(400, 401, 403, 404, 409, 422, 503),
        201: {
            "headers": {
                REPLAYED_HEADER: {
                    "description": "`true` when this is the stored answer to an earlier "
                    "request with the same `Idempotency-Key`",
                    "schema": {"type": "string", "enum": ["true"]},
                }
            }
        },
    },
)
async def send_compliment(
    caller: Sender,
    session: Session,
    body: SendCompliment,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> ComplimentOut:
    sent = await service.send_compliment(
        session,
        company_id=caller.company_id,
        sender_id=caller.user_id,
        receiver_id=body.receiver_id,
        coins=body.coins,
        message=body.message,
        idempotency_key=idempotency_key,
    )
    if sent.replayed:
        response.headers[REPLAYED_HEADER] = "true"
    return ComplimentOut.model_validate(sent)


@router.get(
    "/compliments",
    response_model=Page[ComplimentOut],
    summary="Compliments I sent or received, newest first",
    responses=error_responses(401, 403, 422, 503),
)
async def list_compliments(
    caller: Reader,
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
    caller: ColleagueReader,
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
