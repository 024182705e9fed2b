"""Admins read and change their own company's settings."""

from typing import Annotated

from fastapi import APIRouter, Path, Response

from ....lib.dependencies import Session
from ....lib.errors import error_responses
from ...companies import service
from ...companies.domains import DOMAIN_MAX_LENGTH
from ...users.dependencies import CompanyAdmin, DomainOwner
{%- if cookiecutter.examples == "kudos" %}
from .schemas import CompanyDomainOut, CompanySettings, NewDomain, WeeklyAllowance
{%- else %}
from .schemas import CompanyDomainOut, CompanySettings, NewDomain
{%- endif %}

router = APIRouter(prefix="/company", tags=["admin"])

DomainName = Annotated[str, Path(max_length=DOMAIN_MAX_LENGTH, examples=["acme-labs.example"])]


@router.get(
    "",
    response_model=CompanySettings,
    summary="The company's settings",
    responses=error_responses(401, 403, 503),
)
async def get_company(caller: CompanyAdmin) -> CompanySettings:
    return CompanySettings.of(caller.company)
{%- if cookiecutter.examples == "kudos" %}


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
{%- endif %}


@router.get(
    "/domains",
    response_model=list[CompanyDomainOut],
    summary="The company's email domains",
    description=(
        "Every user's email is at one of these domains (exact match, case-insensitive: "
        "`eu.acme.example` is not `acme.example`). The primary domain comes first."
    ),
    responses=error_responses(401, 403, 503),
)
async def list_domains(caller: DomainOwner, session: Session) -> list[CompanyDomainOut]:
    return [CompanyDomainOut.of(d) for d in await service.list_domains(session, caller.company)]


@router.post(
    "/domains",
    response_model=CompanyDomainOut,
    status_code=201,
    summary="Add an email domain to the company",
    description=(
        "Users can then be added (and sign in) with addresses at it. A domain belongs to "
        "at most one company: one already registered, to this company or another, is a "
        "409 `domain_taken` (which never says which company). 422 `invalid_domain`, "
        "`too_many_domains`."
    ),
    responses=error_responses(400, 401, 403, 409, 422, 503),
)
async def add_domain(caller: DomainOwner, session: Session, body: NewDomain) -> CompanyDomainOut:
    added = await service.add_domain(session, caller.company, body.domain)
    await session.commit()
    return CompanyDomainOut.of(added)


@router.delete(
    "/domains/{domain}",
    status_code=204,
    response_class=Response,
    summary="Remove an email domain from the company",
    description=(
        "Refused while any user of the company (deactivated ones too) has an address at "
        "it (409 `domain_in_use`), and for the primary domain (422 `primary_domain`). A "
        "domain that is not the company's is not found (404 `domain_not_found`), whoever "
        "owns it."
    ),
    responses=error_responses(401, 403, 404, 409, 422, 503),
)
async def remove_domain(caller: DomainOwner, session: Session, domain: DomainName) -> Response:
    await service.remove_domain(session, caller.company, domain)
    await session.commit()
    return Response(status_code=204)
