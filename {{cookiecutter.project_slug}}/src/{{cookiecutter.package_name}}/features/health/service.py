"""Readiness checks: can this process reach what it needs right now?"""

import asyncio
from collections.abc import Awaitable

from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

OK = "ok"


async def _probe(check: Awaitable[object], seconds: float) -> str:
    try:
        await asyncio.wait_for(check, seconds)
    except TimeoutError:
        return "unavailable: timed out"
    except Exception as exc:  # any failure at all means "not ready"
        return f"unavailable: {type(exc).__name__}"
    return OK


async def _select_one(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))


async def check_dependencies(engine: AsyncEngine, redis: Redis, seconds: float) -> dict[str, str]:
    postgres, redis_state = await asyncio.gather(
        _probe(_select_one(engine), seconds), _probe(redis.ping(), seconds)
    )
    return {"postgres": postgres, "redis": redis_state}
