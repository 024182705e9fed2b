"""The signed-in user's own endpoints."""

from fastapi import APIRouter

from ...lib.errors import ErrorEnvelope, error_responses
from .dependencies import CurrentCaller
from .schemas import Me

ERROR_EXAMPLE = {"error": {"code": "token_expired", "message": "token has expired"}}

router = APIRouter(tags=["users"])


@router.get(
    "/me",
    response_model=Me,
    summary="The signed-in user",
    responses={
        401: {
            "model": ErrorEnvelope,
            "description": "No token, an invalid one, or no active user behind it",
            "content": {"application/json": {"example": ERROR_EXAMPLE}},
        },
        # The identity provider's signing keys could not be fetched.
        **error_responses(503),
    },
)
async def me(caller: CurrentCaller) -> Me:
    user = caller.user
    return Me(
        id=user.id,
        email=user.email,
        name=user.name,
        role=caller.role,
        company_id=caller.company_id,
        company_name=caller.company.name,
    )
