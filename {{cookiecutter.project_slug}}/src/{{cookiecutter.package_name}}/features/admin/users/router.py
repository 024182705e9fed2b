"""Admins manage the users of their own company: list, create, deactivate."""

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Path, Query

{%- if cookiecutter.examples == "kudos" %}

from ....lib.dependencies import (
    AppSettings,
    Queue,
    Session,
)
{%- else %}

from ....lib.dependencies import Session
{%- endif %}
from ....lib.errors import error_responses
from ....lib.pagination import Page, PageQuery
from ....lib.text import PLAIN_TEXT_PATTERN
{%- if cookiecutter.examples == "kudos" %}
from ...mail import outbox
{%- endif %}
from ...users import service
from ...users.dependencies import UserAdmin
from ...users.models import Role
from .schemas import USER_ID_EXAMPLE, AdminUser, NewUser

router = APIRouter(prefix="/users", tags=["admin"])

UserId = Annotated[UUID, Path(examples=[USER_ID_EXAMPLE])]


@router.get(
    "",
    response_model=Page[AdminUser],
    summary="List the company's users",
    responses=error_responses(401, 403, 422, 503),
)
async def list_users(
    caller: UserAdmin,
    session: Session,
    page: PageQuery,
    active: Annotated[bool | None, Query(description="Only active or inactive users")] = None,
    role: Annotated[Role | None, Query(description="Only users with this role")] = None,
    search: Annotated[
        str | None,
        Query(max_length=100, pattern=PLAIN_TEXT_PATTERN, description="Part of the name or email"),
    ] = None,
) -> Page[AdminUser]:
    found, total = await service.list_users(
        session,
        caller.company_id,
        active=active,
        role=role,
        search=search,
        limit=page.limit,
        offset=page.offset,
    )
    return Page(
        items=[AdminUser.of(item) for item in found],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )


@router.post(
    "",
    response_model=AdminUser,
    status_code=201,
    summary="Add a user to the company",
{%- if cookiecutter.examples == "kudos" %}
    description=(
        "The user joins the caller's company with a wallet holding the company's weekly "
        "allowance (recorded as one RESET ledger row). The email is lowercased, must be at "
        "one of the company's domains (422 `email_outside_company_domains`, the same answer "
        "whether or not another company has that person) and must not belong to anyone yet "
        "(409 `email_taken`). The user's first sign-in with a token "
        "whose verified email is this one links them to their identity provider subject "
        "(see `signed_in`). Unless `send_invitation` is false, they get an invitation "
        "e-mail, queued in the same transaction and sent by the worker."
    ),
    responses=error_responses(400, 401, 403, 409, 422, 503),
)
async def create_user(
    caller: UserAdmin, session: Session, queue: Queue, settings: AppSettings, new: NewUser
) -> AdminUser:
{%- else %}
    description=(
        "The user joins the caller's company. The email is lowercased, must be at one of "
        "the company's domains (422 `email_outside_company_domains`, the same answer "
        "whether or not another company has that person) and must not belong to anyone yet "
        "(409 `email_taken`). The user's first sign-in with a token "
        "whose verified email is this one links them to their identity provider subject "
        "(see `signed_in`)."
    ),
    responses=error_responses(400, 401, 403, 409, 422, 503),
)
async def create_user(caller: UserAdmin, session: Session, new: NewUser) -> AdminUser:
{%- endif %}
    created = await service.create_user(
        session,
        caller.company,
        name=new.name,
        email=new.email,
        department=new.department,
        job_title=new.job_title,
        role=new.role,
    )
{%- if cookiecutter.examples == "kudos" %}
    if new.send_invitation:
        await outbox.queue_invitation(session, caller.company_id, created.user.id)
    await session.commit()
    if new.send_invitation:
        await outbox.wake(queue, settings.queue_name, f"user:{created.user.id}")
{%- else %}
    await session.commit()
{%- endif %}
    return AdminUser.of(created)


# `:uuid`: only an id matches, so {% if cookiecutter.examples == "kudos" %}`GET /admin/users/imports`{% else %}`GET /admin/users/exports`{% endif %} is a 405 (that path takes
# POST), not this route refusing {% if cookiecutter.examples == "kudos" %}"imports"{% else %}"exports"{% endif %} as an id.
@router.get(
    "/{user_id:uuid}",
    response_model=AdminUser,
    summary="One user of the company",
    responses=error_responses(401, 403, 404, 422, 503),
)
async def get_user(caller: UserAdmin, session: Session, user_id: UserId) -> AdminUser:
    return AdminUser.of(await service.get_user(session, caller.company_id, user_id))


@router.post(
    "/{user_id:uuid}/deactivate",
    response_model=AdminUser,
    summary="Deactivate a user of the company",
    description=(
{%- if cookiecutter.examples == "kudos" %}
        "The user's tokens are refused from the next request on and the weekly reset "
        "skips their wallet; balances and history are kept. Deactivating an inactive "
        "user changes nothing (200). Admins cannot deactivate themselves (422 "
        "`cannot_deactivate_self`)."
{%- else %}
        "The user's tokens are refused from the next request on; the user's row is "
        "kept. Deactivating an inactive user changes nothing (200). Admins cannot "
        "deactivate themselves (422 `cannot_deactivate_self`)."
{%- endif %}
    ),
    responses=error_responses(401, 403, 404, 422, 503),
)
async def deactivate_user(caller: UserAdmin, session: Session, user_id: UserId) -> AdminUser:
    found = await service.deactivate_user(
        session, caller.company_id, user_id, acting_user_id=caller.user_id
    )
    await session.commit()
    return AdminUser.of(found)
