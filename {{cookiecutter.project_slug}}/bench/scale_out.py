"""Scale-out benchmark: what 1, 2 and 3 worker processes give on one queue.

    uv run python bench/scale_out.py [--workers 1,2,3 --jobs 1000 --job-ms 50
                                      --imports 3 --rows 20000]

1. I/O-bound jobs: `--jobs` jobs that each wait `--job-ms` on Postgres (`pg_sleep`
   through the project's engine, as a real job waits on its queries), run by 1, 2, 3
   workers (the project's WorkerSettings, with this benchmark's function) on a Redis of
   the benchmark's own: jobs/s per worker count, next to the ceiling one worker's
   `max_jobs` allows (max_jobs / job time).
2. CSV imports: `--imports` companies each upload a file at once through a real api,
   imported by the real workers (`arq <pkg>.worker.WorkerSettings`), for each worker
   count: the time until all completed, and the check that each import ran exactly
   once (one attempt) with exact counts, users, wallets and ledger rows.

`bench/scale_out.py worker ...` is the worker process of part 1 (started by the benchmark).
"""

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
from arq import create_pool
from arq.connections import RedisSettings
from arq.worker import func
from bench_support import (
    BIN,
    PACKAGE,
    database,
    free_port,
    local_signer,
    migrate,
    private_redis,
    process_env,
    run_project_worker,
    start,
    stop,
    until,
    wait_http,
    with_database,
)
from csv_import import seed, write_csv
from sqlalchemy import text

from {{ cookiecutter.package_name }}.lib.config import Settings

QUEUE = "bench:scale-out"
DONE = "bench:done"
FIRST = "bench:first"
FAILED = "bench:failed"  # the first job error, to stop the benchmark with it
IMPORT_SECONDS = 1800


# Part 1, the worker side ---------------------------------------------------------


async def wait_on_postgres(ctx: dict[str, Any], seconds: float) -> None:
    await ctx["redis"].set(FIRST, time.time(), nx=True)
    try:
        async with ctx["session_factory"]() as session:
            await session.execute(text("SELECT pg_sleep(:s)"), {"s": seconds})
    except Exception as exc:
        await ctx["redis"].set(FAILED, repr(exc), nx=True)
        raise
    await ctx["redis"].incr(DONE)


def health_key(index: int) -> str:
    return f"{QUEUE}:health-check:{index}"


def worker_main(redis_url: str, index: int) -> None:
    run_project_worker(
        [func(wait_on_postgres, name="wait_on_postgres")],
        redis_url,
        QUEUE,
        health_check_key=health_key(index),
    )


# Part 1, the benchmark side ------------------------------------------------------


def spawn_worker(
    redis_url: str, database_url: str, index: int, log: Path
) -> "subprocess.Popen[bytes]":
    env = process_env(database_url, redis_url, QUEUE, "file:/dev/null")
    return subprocess.Popen(
        [sys.executable, __file__, "worker", "--redis-url", redis_url, "--index", str(index)],
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


async def io_bound(
    redis_url: str, database_url: str, workers: int, jobs: int, seconds: float, log: Path
) -> float:
    """Jobs/s of `workers` processes on `jobs` queued jobs of `seconds` each."""
    redis = await create_pool(RedisSettings.from_dsn(redis_url), default_queue_name=QUEUE)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        await redis.flushdb()
        procs += [spawn_worker(redis_url, database_url, i, log) for i in range(workers)]
        for i, proc in enumerate(procs):  # every worker polling before the jobs are due
            await until(lambda i=i: redis.exists(health_key(i)), "a worker", 60, proc)
        # All due at the same moment, after the enqueuing: the workers are timed, not it.
        due = datetime.now(UTC) + timedelta(seconds=1 + jobs / 500)
        for i in range(jobs):
            await redis.enqueue_job(
                "wait_on_postgres", seconds, _job_id=f"io-{i}", _defer_until=due
            )

        async def all_done() -> bool:
            if failed := await redis.get(FAILED):
                raise SystemExit(f"a job failed: {failed.decode()}")
            return int(await redis.get(DONE) or 0) >= jobs

        await until(all_done, "the jobs", 600, procs[0])
        return jobs / (time.time() - float(await redis.get(FIRST)))
    finally:
        await redis.aclose()
        for proc in procs:
            stop(proc)


# Part 2 ----------------------------------------------------------------------------


def imports_at_once(
    url: str, settings: Settings, tmp: Path, workers: int, files: list[tuple[str, Path]]
) -> float:
    """Seconds until every company's upload is completed, with `workers` real workers."""
    jwks_url, sign = local_signer(tmp)
    queue = f"bench-scale-{uuid.uuid4().hex[:8]}"
    largest = max(path.stat().st_size for _, path in files)
    env = process_env(
        url, settings.redis_url, queue, jwks_url, CSV_IMPORT_MAX_BYTES=str(largest + 2**20)
    )
    port = free_port()
    api = start(
        [str(BIN / "uvicorn"), f"{PACKAGE}.app:create_app", "--factory", "--port", str(port)],
        env,
        tmp / "api.log",
    )
    procs = [
        start([str(BIN / "arq"), f"{PACKAGE}.worker.WorkerSettings"], env, tmp / f"worker{i}.log")
        for i in range(workers)
    ]
    try:
        base = f"http://127.0.0.1:{port}"
        wait_http(f"{base}/health", api, tmp / "api.log")
        return asyncio.run(upload_all(base, sign, files, procs))
    finally:
        for proc in (api, *procs):
            stop(proc)


async def upload_all(
    base: str, sign: Any, files: list[tuple[str, Path]], procs: "list[subprocess.Popen[bytes]]"
) -> float:
    async with httpx.AsyncClient(base_url=base, timeout=600) as client:

        async def one(sub: str, path: Path) -> dict[str, Any]:
            content = await asyncio.to_thread(path.read_bytes)
            headers = {"Authorization": f"Bearer {sign(sub)}"}
            response = await client.post(
                "/admin/users/imports",
                files={"file": ("people.csv", content, "text/csv")},
                headers=headers,
            )
            response.raise_for_status()
            deadline = time.monotonic() + IMPORT_SECONDS
            while True:
                state: dict[str, Any] = (
                    await client.get(response.json()["status_url"], headers=headers)
                ).json()
                if state["status"] in {"completed", "failed"}:
                    return state
                if any(proc.poll() is not None for proc in procs):
                    raise SystemExit("a worker exited during the imports")
                if time.monotonic() > deadline:
                    raise SystemExit(f"an import is still {state['status']}")
                await asyncio.sleep(0.2)

        started = time.perf_counter()
        states = await asyncio.gather(*(one(sub, path) for sub, path in files))
        elapsed = time.perf_counter() - started
    for state in states:
        if state["status"] != "completed" or state["attempts"] != 1:
            raise SystemExit(f"an import did not complete in exactly one attempt: {state}")
    return elapsed


def check_imports(url: str, companies: list[uuid.UUID], created: int) -> None:
    """Each company: `created` imported users, each with one wallet and one ledger row."""
    with psycopg.connect(url) as conn:
        for company in companies:
            row = conn.execute(
                "SELECT count(DISTINCT u.id), count(DISTINCT w.id), count(t.id)"
                " FROM users AS u JOIN wallets AS w ON w.user_id = u.id"
                " JOIN wallet_transactions AS t ON t.wallet_id = w.id"
                " WHERE u.company_id = %s",
                (company,),
            ).fetchone()
            if row != (created, created, created):
                raise SystemExit(f"company {company}: users, wallets, ledger rows = {row}")


def expected_created(rows: int) -> int:
    """What `write_csv` makes importable: all but the invalid and the repeated rows."""
    return sum(1 for i in range(rows) if i % 500 != 499 and i % 1000 != 998)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("mode", nargs="?", choices=["bench", "worker"], default="bench")
    parser.add_argument("--redis-url", help="worker mode: the benchmark's Redis")
    parser.add_argument("--index", type=int, default=0, help="worker mode: its number")
    parser.add_argument("--workers", default="1,2,3", help="comma-separated counts")
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--job-ms", type=float, default=50)
    parser.add_argument("--imports", type=int, default=3)
    parser.add_argument("--rows", type=int, default=20_000, help="rows per imported file")
    args = parser.parse_args()
    if args.mode == "worker":
        worker_main(args.redis_url, args.index)
        return 0

    from {{ cookiecutter.package_name }}.worker import WorkerSettings

    counts = [int(n) for n in args.workers.split(",")]
    settings = Settings()
    admin_url = with_database(settings.database_url, "postgres")
    run = uuid.uuid4().hex[:8]
    io_rates: dict[int, float] = {}
    import_times: dict[int, float] = {}
    with tempfile.TemporaryDirectory() as tmp_name, private_redis() as redis_url:
        tmp = Path(tmp_name)
        # pg_sleep needs no tables: any database on the server will do.
        for n in counts:
            io_rates[n] = asyncio.run(
                io_bound(redis_url, admin_url, n, args.jobs, args.job_ms / 1000, tmp / "io.log")
            )
            print(f"  {n} worker(s), I/O-bound jobs: {io_rates[n]:,.0f} jobs/s", flush=True)
        for n in counts:
            with database(admin_url, f"bench_scale_{run}_{n}") as url:
                migrate(url)
                files, companies = [], []
                for i in range(args.imports):
                    name = f"Scale{i}"
                    company, sub = seed(url, name)
                    path = tmp / f"{name}.csv"
                    write_csv(path, args.rows, f"{name.lower()}.example")
                    files.append((sub, path))
                    companies.append(company)
                import_times[n] = imports_at_once(url, settings, tmp, n, files)
                check_imports(url, companies, expected_created(args.rows))
            print(f"  {n} worker(s), {args.imports} imports: {import_times[n]:.1f} s", flush=True)

    ceiling = WorkerSettings.max_jobs / (args.job_ms / 1000)
    print()
    print(
        f"{args.jobs:,} jobs of {args.job_ms:g} ms on Postgres; {args.imports} imports of"
        f" {args.rows:,} rows uploaded at once"
    )
    print(f"{'workers':<9}{'jobs/s':>9}{'x one':>8}{'imports':>10}{'x one':>8}")
    for n in counts:
        print(
            f"{n:<9}{io_rates[n]:>9,.0f}{io_rates[n] / io_rates[counts[0]]:>8.2f}"
            f"{import_times[n]:>9.1f}s{import_times[counts[0]] / import_times[n]:>8.2f}"
        )
    print(f"one worker's ceiling, max_jobs / job time: {ceiling:,.0f} jobs/s")
    print("checked: every import completed in one attempt, users, wallets and ledger rows exact")
    return 0


if __name__ == "__main__":
    sys.exit(main())
