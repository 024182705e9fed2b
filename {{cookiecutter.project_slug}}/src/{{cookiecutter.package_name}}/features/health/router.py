"""`/health` says the process is up; `/health/ready` that it can serve requests."""

from fastapi import APIRouter, Response

from ...lib.dependencies import AppSettings, Engine, Queue
from .schemas import Liveness, Readiness
from .service import OK, check_dependencies

router = APIRouter(prefix="/health", tags=["health"])


@router.get("", response_model=Liveness)
async def liveness() -> Liveness:
    return Liveness()


@router.get(
    "/ready",
    response_model=Readiness,
    responses={503: {"model": Readiness}},
)
async def readiness(
    response: Response, engine: Engine, queue: Queue, settings: AppSettings
) -> Readiness:
    checks = await check_dependencies(engine, queue, settings.health_timeout_seconds)
    ready = all(value == OK for value in checks.values())
    if not ready:
        response.status_code = 503
    return Readiness(status="ready" if ready else "unavailable", checks=checks)
