"""Arranging and checking CSV imports in tests."""

import asyncio
import time
from collections.abc import Callable
from typing import Any
from uuid import UUID

import httpx

from {{ cookiecutter.package_name }}.features.user_import import (
    processing as csv_processing,
)
from {{ cookiecutter.package_name }}.features.user_import.models import (
    IMPORT_LOCK_NAMESPACE,
)

from .conftest import libpq_url
from .factories import Db

IMPORTS = "/admin/users/imports"


async def upload(
    api: httpx.AsyncClient,
    headers: dict[str, str],
    content: bytes,
    *,
    name: str = "users.csv",
    content_type: str = "text/csv",
    dry_run: bool = False,
) -> httpx.Response:
    return await api.post(
        IMPORTS,
        params={"dry_run": str(dry_run).lower()},
        files={"file": (name, content, content_type)},
        headers=headers,
    )


async def imported(
    api: httpx.AsyncClient,
    headers: dict[str, str],
    database_url: str,
    content: bytes,
    *,
    dry_run: bool = False,
) -> dict[str, Any]:
    """Upload `content`, process it as the worker does, and return the import's state."""
    response = await upload(api, headers, content, dry_run=dry_run)
    assert response.status_code == 202, response.text
    await process(database_url, response.json()["id"])
    state = await api.get(response.json()["status_url"], headers=headers)
    assert state.status_code == 200, state.text
    body: dict[str, Any] = state.json()
    return body


async def process(database_url: str, import_id: str) -> dict[str, Any]:
    """Run the worker's processing in this process (the real worker is tested apart)."""
    outcome = await asyncio.to_thread(
        csv_processing.run_import, libpq_url(database_url), UUID(import_id)
    )
    return outcome.as_dict()


def people(n: int, start: int = 0) -> bytes:
    """A CSV of persons start..n-1 (person<i>@acme.example), all valid."""
    lines = ["name,email,department,job_title"]
    lines += [f"Person {i},person{i}@acme.example,Dept {i % 7},Title" for i in range(start, n)]
    return ("\n".join(lines) + "\n").encode()


def import_lock_held(db: Db, import_id: UUID) -> bool:
    """Whether a worker holds the import's advisory lock (as the reconciler checks)."""
    row = db.execute(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 2"
        " AND classid = CAST(%s AS oid)"
        " AND objid = (hashtext(%s)::bigint & 4294967295)::oid",
        (IMPORT_LOCK_NAMESPACE, str(import_id)),
    ).fetchone()
    return bool(row and row[0])


def counts(db: Db) -> dict[str, int]:
    tables = ("csv_imports", "csv_import_chunks", "csv_import_errors", "users", "wallets")
    return {
        table: int(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # type: ignore[index]  # noqa: S608
        for table in tables
    }


def imported_users(db: Db, company_id: UUID) -> dict[str, tuple[Any, ...]]:
    """email -> (name, department, job_title, balance) of the company's non-admin users."""
    rows = db.execute(
        "SELECT u.email, u.name, u.department, u.job_title, w.compliment_balance"
        " FROM users AS u LEFT JOIN wallets AS w ON w.user_id = u.id"
        " WHERE u.company_id = %s AND u.role = 'employee' AND u.auth_sub IS NULL",
        (company_id,),
    ).fetchall()
    return {row[0]: tuple(row[1:]) for row in rows}


async def wait_for(
    api: httpx.AsyncClient,
    url: str,
    headers: dict[str, str],
    done: Callable[[dict[str, Any]], bool],
    within: float = 90,
) -> dict[str, Any]:
    deadline = time.monotonic() + within
    while True:
        response = await api.get(url, headers=headers)
        assert response.status_code == 200, response.text
        state: dict[str, Any] = response.json()
        if done(state):
            return state
        assert time.monotonic() < deadline, f"gave up waiting: {state}"
        await asyncio.sleep(0.2)


def finished(state: dict[str, Any]) -> bool:
    return state["status"] in {"completed", "failed"}
