"""Job pickup benchmark: how soon a real arq worker starts a job, how many it runs, and
what an idle one costs Redis, for the project's poll delay next to arq's default.

    uv run python bench/jobs.py [--poll-delays 0.5,0.05,0.02,0.01 --jobs 10000]

For each poll delay it starts a worker process (arq's own Worker, with the project's
WorkerSettings except the functions), against a Redis server of its own (`redis-server`
on PATH, so no other client is counted) or `--redis-url`, and measures:

1. idle load: Redis commands per second while the worker waits for work
   (`--idle-seconds`, 5);
2. pickup: `--pickup` jobs (200) enqueued 25 ms apart, enqueue-to-start p50/p99/max;
3. throughput: `--jobs` no-op jobs queued at once, jobs/s from the first start to the
   last end.

`bench/jobs.py worker ...` is the worker process itself (started by the benchmark).
"""

import argparse
import asyncio
import inspect
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from arq import create_pool
from arq.connections import ArqRedis, RedisSettings
from arq.worker import Worker, func
from bench_support import private_redis, run_project_worker, stop, until

QUEUE = "bench:jobs"
STARTS = "bench:starts"  # pickup jobs push "<job id> <start time>"
DONE = "bench:done"  # no-op jobs count themselves...
FIRST = "bench:first"  # ...and the first one notes when it started
PICKUP_GAP = 0.025


def arq_default(name: str) -> Any:
    return inspect.signature(Worker.__init__).parameters[name].default


# The worker side ------------------------------------------------------------------


async def stamp(ctx: dict[str, Any]) -> None:
    await ctx["redis"].rpush(STARTS, f"{ctx['job_id']} {time.time()}")


async def noop(ctx: dict[str, Any]) -> None:
    await ctx["redis"].set(FIRST, time.time(), nx=True)
    await ctx["redis"].incr(DONE)


def worker_main(redis_url: str, poll_delay: float) -> None:
    """The project's worker settings, with the benchmark's functions and no cron jobs
    (they need the database); only the poll delay differs between the runs."""
    run_project_worker(
        [func(stamp, name="stamp"), func(noop, name="noop")],
        redis_url,
        QUEUE,
        health_check_key=f"{QUEUE}:health-check",
        on_startup=None,
        on_job_start=None,
        on_shutdown=None,
        poll_delay=poll_delay,
    )


# The benchmark side ---------------------------------------------------------------


async def commands_processed(redis: ArqRedis) -> int:
    return int((await redis.info("stats"))["total_commands_processed"])


def start_worker(redis_url: str, poll_delay: float, log: Path) -> "subprocess.Popen[bytes]":
    args = ["worker", "--redis-url", redis_url, "--poll-delay", str(poll_delay)]
    return subprocess.Popen(
        [sys.executable, __file__, *args], stdout=log.open("ab"), stderr=subprocess.STDOUT
    )


@dataclass(frozen=True)
class Plan:
    jobs: int  # no-op jobs for the throughput
    pickup_jobs: int  # jobs enqueued PICKUP_GAP apart for the pickup latency
    idle_seconds: float  # how long the idle command rate is counted


async def idle_and_pickup(
    redis: ArqRedis, worker: "subprocess.Popen[bytes]", plan: Plan
) -> dict[str, float]:
    # Up: the worker writes its health-check key once it polls.
    await until(lambda: redis.exists(f"{QUEUE}:health-check"), "the worker", 30, worker)
    await asyncio.sleep(1)  # past start-up's own commands
    before = await commands_processed(redis)
    await asyncio.sleep(plan.idle_seconds)
    # Minus this measurement's own INFO command.
    idle = (await commands_processed(redis) - before - 1) / plan.idle_seconds

    enqueued: dict[str, float] = {}
    for i in range(plan.pickup_jobs):
        job_id = f"pickup-{i}"
        enqueued[job_id] = time.time()
        await redis.enqueue_job("stamp", _job_id=job_id)
        await asyncio.sleep(PICKUP_GAP)

    async def all_started() -> bool:
        return await cast("Awaitable[int]", redis.llen(STARTS)) >= plan.pickup_jobs

    await until(all_started, "the pickup jobs", 60, worker)
    waits = []
    for entry in await cast("Awaitable[list[bytes]]", redis.lrange(STARTS, 0, -1)):
        job_id, started = entry.decode().split()
        waits.append((float(started) - enqueued[job_id]) * 1000)
    waits.sort()
    return {
        "idle": idle,
        "p50": statistics.median(waits),
        "p99": waits[int(len(waits) * 0.99) - 1],
        "max": waits[-1],
    }


async def throughput(redis: ArqRedis, worker: "subprocess.Popen[bytes]", jobs: int) -> float:
    async def all_done() -> bool:
        return int(await redis.get(DONE) or 0) >= jobs

    await until(all_done, "the no-op jobs", 600, worker)
    finished = time.time()
    return jobs / (finished - float(await redis.get(FIRST)))


async def bench_one(redis_url: str, poll_delay: float, plan: Plan, log: Path) -> dict[str, float]:
    redis = await create_pool(RedisSettings.from_dsn(redis_url), default_queue_name=QUEUE)
    try:
        await redis.flushdb()
        worker = start_worker(redis_url, poll_delay, log)
        try:
            result = await idle_and_pickup(redis, worker, plan)
        finally:
            stop(worker)
        # Queued while no worker runs, so the worker is timed, not the enqueuing.
        for i in range(plan.jobs):
            await redis.enqueue_job("noop", _job_id=f"noop-{i}")
        worker = start_worker(redis_url, poll_delay, log)
        try:
            result["jobs_per_s"] = await throughput(redis, worker, plan.jobs)
        finally:
            stop(worker)
        return result
    finally:
        await redis.aclose()


def report(results: list[tuple[float, dict[str, float]]], ours: float, jobs: int) -> None:
    print()
    print(f"job pickup, one worker (max_jobs {arq_default('max_jobs')}), {jobs:,} no-op jobs")
    header = (
        f"{'poll delay':<22}{'idle cmd/s':>11}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}{'jobs/s':>9}"
    )
    print(header)
    for delay, r in results:
        label = f"{delay:g} s" + (" (ours)" if delay == ours else "")
        label += " (arq default)" if delay == arq_default("poll_delay") else ""
        print(
            f"{label:<22}{r['idle']:>11.1f}{r['p50']:>9.1f}{r['p99']:>9.1f}"
            f"{r['max']:>9.1f}{r['jobs_per_s']:>9,.0f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("mode", nargs="?", choices=["bench", "worker"], default="bench")
    parser.add_argument("--redis-url", help="default: a redis-server of the benchmark's own")
    parser.add_argument("--poll-delay", type=float, help="worker mode: its poll delay")
    parser.add_argument("--poll-delays", default=None, help="comma-separated seconds")
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--pickup", type=int, default=200)
    parser.add_argument("--idle-seconds", type=float, default=5.0)
    args = parser.parse_args()
    if args.mode == "worker":
        worker_main(args.redis_url, args.poll_delay)
        return

    from {{ cookiecutter.package_name }}.lib.config import Settings

    ours = Settings().worker_poll_delay_seconds
    default = float(arq_default("poll_delay"))
    delays = (
        [float(d) for d in args.poll_delays.split(",")] if args.poll_delays else [default, ours]
    )
    plan = Plan(args.jobs, args.pickup, args.idle_seconds)
    results = []
    with (
        tempfile.TemporaryDirectory() as tmp,
        private_redis() if args.redis_url is None else _given(args.redis_url) as redis_url,
    ):
        for delay in delays:
            result = asyncio.run(bench_one(redis_url, delay, plan, Path(tmp) / "worker.log"))
            print(f"  poll delay {delay:g} s: {result}", flush=True)
            results.append((delay, result))
    report(results, ours, args.jobs)


@contextmanager
def _given(url: str) -> Iterator[str]:
    print("note: a shared Redis: the idle command rate counts every client", file=sys.stderr)
    yield url


if __name__ == "__main__":
    main()
