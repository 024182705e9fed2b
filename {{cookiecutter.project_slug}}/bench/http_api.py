"""HTTP benchmark: POST /compliments through a real uvicorn server, next to its /health.

    uv run python bench/http_api.py [--senders 200 --requests 5000 --concurrency 32]

In a database of its own (migrated, then seeded with one company and `--senders` users,
each holding exactly the coins of their share of the compliments, as a RESET ledger
row), starts the api as a subprocess (uvicorn, one process, the default connection
pool, no access log) on a free port and drives it with `--concurrency` concurrent
clients (each an httpx.AsyncClient with one keep-alive connection: one client sharing a
pool costs three times the CPU per request, and the client would be what is measured),
each request signed with the sender's own RS256 token:

1. the baseline: `--requests` GET /health (no token, no database);
2. `--requests` POST /compliments of 5 coins, spread over the senders round-robin,
   each to a different colleague in turn.

Prints requests/s, p50 and p99 latency of both (with the CPU share of the clients and of
the server: the one near 100 % is what limits the rate) and their ratio, then checks that
every compliment got a 201, that the compliments table holds exactly that many, that every
sender spent exactly their coins and every receiver got theirs, and that every wallet
equals the sum of its ledger rows. Needs Postgres and Redis (DATABASE_URL, REDIS_URL, as
the app); the bench_ database and the server are gone on exit, failure and Ctrl-C
included.

(Not `bench/http.py`: run as a script, that file would shadow the standard library's
`http`, which httpx imports.)
"""

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
from bench_support import (
    BIN,
    PACKAGE,
    database,
    free_port,
    local_signer,
    migrate,
    process_env,
    start,
    stop,
    wait_http,
    with_database,
)

from {{ cookiecutter.package_name }}.lib.config import Settings

COINS = 5
MESSAGE = "Thanks for carrying the benchmark!"

# Every way a wallet and its ledger disagree (none, after a correct run).
LEDGER_MISMATCHES = """
    SELECT count(*) FROM (
        SELECT w.id FROM wallets AS w LEFT JOIN wallet_transactions AS t ON t.wallet_id = w.id
        GROUP BY w.id
        HAVING w.compliment_balance
               <> coalesce(sum(t.amount) FILTER (WHERE t.balance_type = 'COMPLIMENT'), 0)
            OR w.redeemable_balance
               <> coalesce(sum(t.amount) FILTER (WHERE t.balance_type = 'REDEEMABLE'), 0)
    ) AS wrong
"""


@dataclass(frozen=True)
class Phase:
    name: str
    seconds: float
    latencies: list[float]
    statuses: Counter[int]
    # CPU time over wall time, of this process (the clients) and of the server: one of
    # them near 100 % is what limits the rate.
    client_cpu: float
    server_cpu: float

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds

    def percentile(self, p: int) -> float:
        """The p-th percentile latency, in milliseconds."""
        return statistics.quantiles(self.latencies, n=100, method="inclusive")[p - 1] * 1000

    def line(self) -> str:
        return (
            f"{self.name:<18} {len(self.latencies):7,} requests {self.rate:9,.0f} req/s"
            f"   p50 {self.percentile(50):7.1f} ms   p99 {self.percentile(99):7.1f} ms"
            # Not the `%` format spec: its closing brace would read as template syntax.
            f"   (CPU: clients {self.client_cpu * 100:3.0f}%,"
            f" server {self.server_cpu * 100:3.0f}%)"
        )


def plan(senders: int, requests: int) -> list[tuple[int, int]]:
    """(sender, receiver) of each compliment: senders round-robin, so concurrent requests
    mostly lock different wallets; each sender's receivers rotate over the others."""
    return [
        (k % senders, (k % senders + 1 + (k // senders) % (senders - 1)) % senders)
        for k in range(requests)
    ]


def seed(url: str, senders: int, coins: list[int]) -> list[uuid.UUID]:
    """One company and its users, user i holding coins[i] (with the RESET ledger row a
    weekly reset would write); the user ids, by index."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "INSERT INTO companies (name, email_domain) VALUES ('Bench', 'bench.example')"
            " RETURNING id"
        ).fetchone()
        assert row is not None
        rows = conn.execute(
            "INSERT INTO users (company_id, email, name, auth_sub)"
            " SELECT %s, 'user' || i || '@bench.example', 'User ' || i, 'bench|' || i"
            " FROM generate_series(0, %s - 1) AS i RETURNING id, auth_sub",
            (row[0], senders),
        ).fetchall()
        ids = {str(sub): uuid.UUID(str(user_id)) for user_id, sub in rows}
        users = [ids[f"bench|{i}"] for i in range(senders)]
        conn.execute(
            "WITH w AS ("
            "  INSERT INTO wallets (user_id, compliment_balance)"
            "  SELECT * FROM unnest(%s::uuid[], %s::int[])"
            "  RETURNING id, user_id, compliment_balance)"
            " INSERT INTO wallet_transactions (wallet_id, user_id, kind, balance_type, amount,"
            "   previous_balance, new_balance, reason)"
            " SELECT id, user_id, 'RESET', 'COMPLIMENT', compliment_balance, 0,"
            "   compliment_balance, 'bench allowance' FROM w",
            (users, coins),
        )
    return users


def start_api(env: dict[str, str], port: int, log: Path) -> "subprocess.Popen[bytes]":
    args = [
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
    ]
    return start(args, env, log)


Send = Callable[[httpx.AsyncClient, int], Awaitable[httpx.Response]]


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def drive(
    clients: list[httpx.AsyncClient], name: str, requests: int, send: Send, server: int
) -> Phase:
    """`requests` calls of `send(client, k)`, one at a time per client, each timed."""
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    # One iterator shared by the clients: each takes the next request when it is free.
    indexes = iter(range(requests))

    async def one_client(client: httpx.AsyncClient) -> None:
        for k in indexes:
            started = time.perf_counter()
            response = await send(client, k)
            latencies.append(time.perf_counter() - started)
            statuses[response.status_code] += 1

    started, cpu, server_cpu = time.perf_counter(), time.process_time(), cpu_seconds(server)
    await asyncio.gather(*(one_client(client) for client in clients))
    seconds = time.perf_counter() - started
    return Phase(
        name,
        seconds,
        latencies,
        statuses,
        client_cpu=(time.process_time() - cpu) / seconds,
        server_cpu=(cpu_seconds(server) - server_cpu) / seconds,
    )


async def measure(
    base: str,
    headers: list[dict[str, str]],
    users: list[uuid.UUID],
    pairs: list[tuple[int, int]],
    concurrency: int,
    server: int,
) -> tuple[Phase, Phase]:
    async with AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(
                httpx.AsyncClient(base_url=base, limits=httpx.Limits(max_connections=1), timeout=60)
            )
            for _ in range(concurrency)
        ]

        async def health(client: httpx.AsyncClient, k: int) -> httpx.Response:
            return await client.get("/health")

        async def me(client: httpx.AsyncClient, k: int) -> httpx.Response:
            return await client.get("/me", headers=headers[k % len(headers)])

        async def compliment(client: httpx.AsyncClient, k: int) -> httpx.Response:
            sender, receiver = pairs[k]
            body = {"receiver_id": str(users[receiver]), "coins": COINS, "message": MESSAGE}
            return await client.post("/compliments", json=body, headers=headers[sender])

        # Warm-up, not measured: connections opened, signing keys fetched, pool filled.
        warm = await drive(clients, "warm-up", 4 * concurrency, me, server)
        if set(warm.statuses) != {200}:
            raise SystemExit(f"GET /me during the warm-up: {dict(warm.statuses)}")
        baseline = await drive(clients, "GET /health", len(pairs), health, server)
        sent = await drive(clients, "POST /compliments", len(pairs), compliment, server)
    return baseline, sent


def check(url: str, users: list[uuid.UUID], pairs: list[tuple[int, int]], sent: Phase) -> None:
    """Every compliment went through, once, and the money adds up."""
    problems = []
    if sent.statuses != Counter({201: len(pairs)}):
        problems.append(f"statuses {dict(sent.statuses)}, expected {len(pairs)} x 201")
    received = Counter(receiver for _, receiver in pairs)
    with psycopg.connect(url) as conn:
        count = conn.execute("SELECT count(*) FROM compliments").fetchone()
        if count is None or count[0] != len(pairs):
            problems.append(f"{count} compliments stored, expected {len(pairs)}")
        balances = {
            uuid.UUID(str(user_id)): (compliment, redeemable)
            for user_id, compliment, redeemable in conn.execute(
                "SELECT user_id, compliment_balance, redeemable_balance FROM wallets"
            )
        }
        for i, user_id in enumerate(users):
            # Each sender was given exactly what they send: nothing may be left.
            if balances[user_id] != (0, COINS * received[i]):
                problems.append(f"user {i}: balances {balances[user_id]}")
        wrong = conn.execute(LEDGER_MISMATCHES).fetchone()
        if wrong is None or wrong[0] != 0:
            problems.append(f"{wrong} wallets differ from their ledger")
    if problems:
        raise SystemExit("check failed:\n  " + "\n  ".join(problems[:20]))
    print(
        f"checked: {len(pairs):,} compliments stored (all 201), every sender spent exactly"
        " their coins, every receiver got theirs, every wallet equals its ledger"
    )


def run(options: argparse.Namespace, admin_url: str, settings: Settings, tmp: Path) -> None:
    pairs = plan(options.senders, options.requests)
    sends = Counter(sender for sender, _ in pairs)
    run_id = uuid.uuid4().hex[:8]
    with database(admin_url, f"bench_http_{run_id}") as url:
        migrate(url)
        users = seed(url, options.senders, [COINS * sends[i] for i in range(options.senders)])
        jwks_url, sign = local_signer(tmp)
        headers = [
            {"Authorization": f"Bearer {sign(f'bench|{i}')}"} for i in range(options.senders)
        ]
        port = free_port()
        env = process_env(url, settings.redis_url, f"bench-http-{run_id}", jwks_url)
        log = tmp / "api.log"
        api = start_api(env, port, log)
        try:
            base = f"http://127.0.0.1:{port}"
            wait_http(f"{base}/health", api, log)
            baseline, sent = asyncio.run(
                measure(base, headers, users, pairs, options.concurrency, api.pid)
            )
        finally:
            stop(api)
        print(
            f"api: uvicorn, 1 process, pool of {settings.database_pool_size} connections;"
            f" {options.senders} senders, {options.concurrency} concurrent clients"
        )
        if set(baseline.statuses) != {200}:
            raise SystemExit(f"GET /health: {dict(baseline.statuses)}")
        print(baseline.line())
        print(sent.line())
        print(f"ratio (compliments / health, requests/s): {sent.rate / baseline.rate:.2f}")
        check(url, users, pairs, sent)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--senders", type=int, default=200)
    parser.add_argument("--requests", type=int, default=5000, help="per phase")
    parser.add_argument("--concurrency", type=int, default=32)
    options = parser.parse_args()
    if options.senders < 2 or options.requests < options.senders or options.concurrency < 1:
        parser.error("needs --senders >= 2, --requests >= --senders, --concurrency >= 1")
    # A plain `kill` should clean up too: turn SIGTERM into SystemExit so `finally` runs.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    settings = Settings()
    # Any database on the server will do to create and drop ours.
    admin_url = with_database(settings.database_url, "postgres")
    with tempfile.TemporaryDirectory() as tmp:
        run(options, admin_url, settings, Path(tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main())
