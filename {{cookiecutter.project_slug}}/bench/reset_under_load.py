"""Weekly reset under live traffic: the real cron while compliments flow through the api.

    uv run python bench/reset_under_load.py [--wallets 1000000 --companies 100 --rate 100]

Builds the seed of bench/weekly_reset.py (with a ledger row for every wallet's starting
balance, so the ledger check below covers every wallet) and gives `--senders` users of
the company with the largest allowance a token. Then, on two clones of it:

1. idle: the cron (`python -m <pkg>.scripts.run_weekly_reset`, a subprocess) with no
   traffic;
2. under traffic: the api as a uvicorn subprocess, `--rate` POST /compliments per second
   (open loop: a request is sent on schedule whether or not earlier ones have answered)
   for `--before` seconds, then the same cron while the requests go on, until it exits.

Prints both reset times (the cron's own `elapsed_seconds`) and their ratio, the
compliments' p50/p99 and status counts before and during the cron process (its start-up
included), and checks afterwards that the cron succeeded on its first
run, that every wallet equals its ledger and every previous balance the one before it,
that every active wallet was reset exactly once, and that every 201 is a stored
compliment. Exits non-zero when a check fails (not for the speed targets, which it prints).
"""

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
from bench_support import (
    BIN,
    PACKAGE,
    free_port,
    local_signer,
    process_env,
    start,
    stop,
    wait_http,
)
from weekly_reset import Server, build_seed

from {{ cookiecutter.package_name }}.lib.config import Settings

COINS = 5
MESSAGE = "Thanks for keeping things running!"
CRON = [str(BIN / "python"), "-m", f"{PACKAGE}.scripts.run_weekly_reset"]

# The senders: the first users of the active company with the largest allowance, each
# with a token subject and 500 coins; then every wallet's balance as a ledger row.
PREPARE = """
    WITH company AS (
        SELECT id FROM companies WHERE is_active
        ORDER BY weekly_renewal_amount DESC, id LIMIT 1
    ), senders AS (
        SELECT u.id, row_number() OVER (ORDER BY u.id) - 1 AS n
        FROM users AS u, company WHERE u.company_id = company.id AND u.is_active
        ORDER BY u.id LIMIT %(senders)s
    ), named AS (
        UPDATE users AS u SET auth_sub = 'bench|' || s.n FROM senders AS s WHERE u.id = s.id
    )
    UPDATE wallets AS w SET compliment_balance = 500 FROM senders AS s WHERE w.user_id = s.id
"""
SEED_LEDGER = """
    INSERT INTO wallet_transactions (wallet_id, user_id, kind, balance_type, amount,
        previous_balance, new_balance, reason)
    SELECT id, user_id, 'RESET', 'COMPLIMENT', compliment_balance, 0, compliment_balance,
           'bench seed'
    FROM wallets
"""
SENDERS = "SELECT auth_sub, id FROM users WHERE auth_sub LIKE 'bench|%%'"

CHECKS = {
    "wallets that differ from their ledger": """
        SELECT count(*) FROM (
            SELECT w.id FROM wallets AS w
            LEFT JOIN wallet_transactions AS t ON t.wallet_id = w.id
            GROUP BY w.id
            HAVING w.compliment_balance
                   <> coalesce(sum(t.amount) FILTER (WHERE t.balance_type = 'COMPLIMENT'), 0)
                OR w.redeemable_balance
                   <> coalesce(sum(t.amount) FILTER (WHERE t.balance_type = 'REDEEMABLE'), 0)
        ) AS wrong
    """,
    "ledger rows whose previous balance is not the one before": """
        SELECT count(*) FROM (
            SELECT previous_balance, coalesce(lag(new_balance)
                OVER (PARTITION BY wallet_id, balance_type ORDER BY id), 0) AS expected
            FROM wallet_transactions
        ) AS t WHERE previous_balance <> expected
    """,
    "active wallets not reset this week": """
        SELECT count(*) FROM wallets AS w
        JOIN users AS u ON u.id = w.user_id JOIN companies AS c ON c.id = u.company_id
        WHERE u.is_active AND c.is_active
          AND w.reset_period IS DISTINCT FROM date_trunc('week', now() AT TIME ZONE 'UTC')::date
    """,
    "wallets reset twice this week": """
        SELECT count(*) FROM (
            SELECT wallet_id FROM wallet_transactions
            WHERE kind = 'RESET' AND metadata ? 'run_id'
            GROUP BY wallet_id HAVING count(*) > 1
        ) AS twice
    """,
}


@dataclass
class Traffic:
    """Each request's phase, latency and status (0: no answer)."""

    results: list[tuple[str, float, int]] = field(default_factory=list)
    phase: str = "before"

    def line(self, phase: str) -> str:
        mine = [(latency, status) for p, latency, status in self.results if p == phase]
        if not mine:
            return f"{phase:<7} no requests"
        latencies = [latency * 1000 for latency, _ in mine]
        cuts = statistics.quantiles(latencies, n=100, method="inclusive") if len(mine) > 1 else []
        p50, p99 = (cuts[49], cuts[98]) if cuts else (latencies[0], latencies[0])
        statuses = Counter(status for _, status in mine)
        five = sum(n for status, n in statuses.items() if status >= 500 or status == 0)
        shown = ", ".join(f"{status or 'no answer'}: {n}" for status, n in sorted(statuses.items()))
        return (
            f"{phase:<7} {len(mine):6,} requests   p50 {p50:7.1f} ms   p99 {p99:7.1f} ms"
            f"   5xx {five}   ({shown})"
        )


def prepare_seed(server: Server, seed: str, senders: int) -> None:
    with psycopg.connect(server.url(seed), autocommit=True) as conn:
        with conn.transaction():
            conn.execute(PREPARE, {"senders": senders})
            conn.execute(SEED_LEDGER)
        conn.execute("VACUUM ANALYZE")


def run_cron(env: dict[str, str]) -> dict[str, Any]:
    done = subprocess.run(CRON, env=env, capture_output=True, text=True, check=False)
    return finished(done.returncode, done.stdout, done.stderr)


def finished(code: int | None, stdout: str, stderr: str) -> dict[str, Any]:
    """The cron's summary; it must have succeeded on its first run."""
    if code != 0:
        raise SystemExit(f"the reset failed on its first run (exit {code}):\n{stdout}{stderr}")
    summary: dict[str, Any] = json.loads(stdout)
    return summary


async def under_traffic(
    base: str,
    env: dict[str, str],
    headers: list[dict[str, str]],
    receivers: list[str],
    options: argparse.Namespace,
) -> tuple[dict[str, Any], Traffic]:
    traffic = Traffic()
    limits = httpx.Limits(max_connections=options.concurrency)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:

        async def send(k: int) -> None:
            sender = k % len(headers)
            body = {
                "receiver_id": receivers[(sender + 1) % len(receivers)],
                "coins": COINS,
                "message": MESSAGE,
            }
            phase, started = traffic.phase, time.perf_counter()
            try:
                status = (
                    await client.post("/compliments", json=body, headers=headers[sender])
                ).status_code
            except httpx.HTTPError:
                status = 0
            traffic.results.append((phase, time.perf_counter() - started, status))

        # Warm-up, not measured: connections opened, keys fetched, pool filled.
        for response in await asyncio.gather(
            *(client.get("/me", headers=h) for h in headers[: options.concurrency])
        ):
            if response.status_code != 200:
                raise SystemExit(f"GET /me during the warm-up: {response.status_code}")

        stop = asyncio.Event()
        tasks: set[asyncio.Task[None]] = set()

        async def offer() -> None:
            t0, k = time.perf_counter(), 0
            while not stop.is_set():
                delay = t0 + k / options.rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                task = asyncio.create_task(send(k))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                k += 1

        offering = asyncio.create_task(offer())
        await asyncio.sleep(options.before)
        traffic.phase = "during"
        cron = await asyncio.create_subprocess_exec(
            *CRON, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        stdout, stderr = await cron.communicate()
        traffic.phase = "after"
        stop.set()
        await offering
        await asyncio.gather(*tasks)
    return finished(cron.returncode, stdout.decode(), stderr.decode()), traffic


def check(url: str, traffic: Traffic) -> list[str]:
    created = sum(1 for _, _, status in traffic.results if status == 201)
    problems = [] if created else ["no compliment succeeded"]
    with psycopg.connect(url) as conn:
        for name, query in CHECKS.items():
            row = conn.execute(query).fetchone()
            if row is None or row[0] != 0:
                problems.append(f"{row and row[0]} {name}")
        row = conn.execute("SELECT count(*) FROM compliments").fetchone()
        if row is None or row[0] != created:
            problems.append(f"{row and row[0]} compliments stored, {created} answered 201")
    return problems


def run(options: argparse.Namespace, server: Server, settings: Settings, tmp: Path) -> int:
    started = time.perf_counter()
    seed = build_seed(server, options.wallets, options.companies)
    prepare_seed(server, seed, options.senders)
    print(
        f"seed: {options.wallets:,} wallets, {options.companies} companies, with their"
        f" ledger, built in {time.perf_counter() - started:.1f}s"
    )
    jwks_url, sign = local_signer(tmp)
    with psycopg.connect(server.url(seed)) as conn:
        senders = {str(sub): str(user_id) for sub, user_id in conn.execute(SENDERS)}
    subjects = sorted(senders, key=lambda sub: int(sub.split("|")[1]))
    headers = [{"Authorization": f"Bearer {sign(sub)}"} for sub in subjects]
    receivers = [senders[sub] for sub in subjects]
    queue = f"bench-reset-{uuid.uuid4().hex[:8]}"
    batch = {"WEEKLY_RESET_BATCH_SIZE": str(options.batch_size)} if options.batch_size else {}

    with server.clone(seed, "idle") as idle:
        env = process_env(server.url(idle), settings.redis_url, queue, jwks_url, **batch)
        idle_summary = run_cron(env)
        idle_seconds = float(idle_summary["elapsed_seconds"])
    print(f"idle reset: {idle_seconds:.2f}s, {idle_summary['ledger_rows']:,} ledger rows")

    with server.clone(seed, "traffic") as busy:
        url = server.url(busy)
        env = process_env(url, settings.redis_url, queue, jwks_url, **batch)
        port, log = free_port(), tmp / "api.log"
        api = start(
            [
                str(BIN / "uvicorn"),
                f"{PACKAGE}.app:create_app",
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--no-access-log",
                "--log-level",
                "warning",
            ],
            env,
            log,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            wait_http(f"{base}/health", api, log)
            busy_summary, traffic = asyncio.run(
                under_traffic(base, env, headers, receivers, options)
            )
        finally:
            stop(api)
        problems = check(url, traffic)
    busy_seconds = float(busy_summary["elapsed_seconds"])
    wall = sum(1 for phase, _, _ in traffic.results if phase == "during") / options.rate

    print(
        f"reset under traffic: {busy_seconds:.2f}s, {busy_summary['ledger_rows']:,} ledger"
        f" rows, {busy_summary['retries']} retries, first run: ok"
    )
    print(f"ratio (under traffic / idle): {busy_seconds / idle_seconds:.2f}")
    print(
        f"compliments offered at {options.rate:g}/s, {options.concurrency} connections"
        f" (the cron process ran about {wall:.1f}s of them):"
    )
    for phase in ("before", "during", "after"):
        print("  " + traffic.line(phase))
    if problems:
        print("check failed:\n  " + "\n  ".join(problems))
        return 1
    print(
        "checked: every wallet equals its ledger, every previous balance the one before,"
        " every active wallet reset exactly once, every 201 a stored compliment"
    )
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--wallets", type=int, default=1_000_000)
    parser.add_argument("--companies", type=int, default=100)
    parser.add_argument("--senders", type=int, default=500)
    parser.add_argument("--rate", type=float, default=100, help="compliments per second")
    parser.add_argument("--before", type=float, default=10, help="seconds before the reset")
    parser.add_argument("--concurrency", type=int, default=32, help="connections to the api")
    parser.add_argument("--batch-size", type=int, default=0, help="0: the setting's default")
    parser.add_argument(
        "--admin-url",
        default=os.environ.get("BENCH_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
    )
    options = parser.parse_args()
    if options.senders < 2 or options.rate <= 0 or options.wallets < options.companies * 10:
        parser.error("needs --senders >= 2, --rate > 0, --wallets >= 10 x --companies")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    server = Server(options.admin_url)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            return run(options, server, Settings(), Path(tmp))
    finally:
        for name in list(server.created):
            server.drop(name)


if __name__ == "__main__":
    sys.exit(main())
