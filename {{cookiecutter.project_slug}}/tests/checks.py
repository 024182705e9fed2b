"""What many tests assert or wait for, written once."""

import asyncio
import time
from typing import Any

import httpx

from .factories import Db


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The response is the error envelope, `{"error": {...}}`, with this status and code,
    and the request id of its header; returns the error without the id (which differs
    from one response to the next), to compare or read its message."""
    assert response.status_code == status, response.text
    body = response.json()
    assert list(body) == ["error"], body
    error: dict[str, Any] = body["error"]
    assert error["code"] == code, body
    assert error.pop("request_id") == response.headers["x-request-id"]
    return error


async def wait_for_lock_waiters(db: Db, count: int, seconds: float = 10) -> None:
    """Until at least `count` sessions of the test database wait for a lock."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        row = db.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        ).fetchone()
        if row is not None and row[0] >= count:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"no {count} session(s) waiting for a lock after {seconds}s")


async def wait_for_status(
    client: httpx.AsyncClient,
    url: str,
    headers: dict[str, str],
    status: str = "done",
    seconds: float = 10,
) -> dict[str, Any]:
    """Poll a job's status URL (each read a 200) until it says `status`; its body."""
    deadline = time.monotonic() + seconds
    while True:
        response = await client.get(url, headers=headers)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        if body["status"] == status:
            return body
        assert time.monotonic() < deadline, f"still {body['status']} after {seconds} s"
        await asyncio.sleep(0.05)
