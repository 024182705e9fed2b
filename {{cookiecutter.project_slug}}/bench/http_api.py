"""HTTP benchmark: POST /compliments through a real uvicorn server, next to the same
transaction through psycopg directly, and GET /health, /me/wallet, /me/wallet/transactions.

    uv run python bench/http_api.py [--senders 200 --requests 5000 --concurrency 32]
                                    [--processes 1,2] [--tracing]

In a database of its own (migrated, then seeded with one company and `--senders` users,
each holding exactly the coins of their share of the compliments, as a RESET ledger
row):

1. the raw baseline: `--requests` compliments as the api's own send statement, each in
   its transaction, through psycopg directly (no HTTP, no auth, no SQLAlchemy), over as
   many connections as one api process may open (DATABASE_POOL_SIZE plus
   DATABASE_MAX_OVERFLOW) and
   `--concurrency` concurrent clients;
2. for each count in `--processes`: the api as a subprocess (uvicorn with that many
   worker processes, WEB_CONCURRENCY, no access log) on a free port, driven by
   `--concurrency` concurrent clients (each an httpx.AsyncClient with one keep-alive
   connection: one client sharing a pool costs three times the CPU per request, and the
   client would be what is measured), each request signed with the sender's own RS256
   token: `--requests` GET /health (no token, no database), GET /me/wallet,
   GET /me/wallet/transactions, then POST /compliments of 5 coins, spread over the
   senders round-robin, each to a different colleague in turn. The database
   connections the api really holds are sampled meanwhile (pg_stat_activity).
   With `--tracing`, each count is run twice, tracing off then on: the api's sampler as
   it ships (lib/telemetry.py keeps `API_SAMPLE_RATIO` of new traces), or keeping
   `--sample-share` of them (1 traces every request), exported over OTLP/HTTP to a
   receiver this script runs on 127.0.0.1, which only stores what it is sent; the spans
   it got are counted and the throughput ratio (on / off) printed.

Prints requests/s, p50 and p99 latency of each (with the CPU share of the clients and of
the server: the one near 100 % is what limits the rate), the ratios to /health and to
the raw baseline, then checks that every compliment got a 201, that the compliments
table holds exactly that many, that every sender spent exactly their coins and every
receiver got theirs, and that every wallet equals the sum of its ledger rows. Needs
Postgres and Redis (DATABASE_URL, REDIS_URL, as the app); the bench_ database and the
server are gone on exit, failure and Ctrl-C included.

(Not `bench/http.py`: run as a script, that file would shadow the standard library's
`http`, which httpx imports.)
"""

import argparse
import asyncio
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

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

from {{ cookiecutter.package_name }}.features.compliments.service import (
    RECEIVED_REASON,
    SEND_STATEMENT,
    SENT_REASON,
)
from {{ cookiecutter.package_name }}.lib.config import Settings
from {{ cookiecutter.package_name }}.lib.database import pool_size
from {{ cookiecutter.package_name }}.lib.telemetry import API_SAMPLE_RATIO

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
            f"{self.name:<27} {len(self.latencies):7,} requests {self.rate:9,.0f} req/s"
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


def seed(url: str, senders: int, coins: list[int]) -> tuple[uuid.UUID, list[uuid.UUID]]:
    """One company and its users, user i holding coins[i] (with the RESET ledger row a
    weekly reset would write); the company's id and the user ids, by index."""
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
    return uuid.UUID(str(row[0])), users


def start_api(
    env: dict[str, str], port: int, log: Path, processes: int
) -> "subprocess.Popen[bytes]":
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
        "--workers",
        str(processes),
    ]
    return start(args, env, log)


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time so far of a process and its children (uvicorn's worker
    processes), on Linux."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        if stat.parent.name == str(pid) or fields[1] == str(pid):
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


# The send statement in psycopg's parameter style (`:name` -> `%(name)s`, not `::type`).
RAW_SEND = re.sub(r"(?<![:\w]):(\w+)", r"%(\1)s", SEND_STATEMENT.text)

CONNECTIONS = """
    SELECT count(*) FROM pg_stat_activity
    WHERE datname = current_database() AND backend_type = 'client backend'
      AND pid <> pg_backend_pid()
"""


async def timed(
    name: str, requests: int, concurrency: int, one: Callable[[int], Awaitable[int]], pid: int
) -> Phase:
    """`requests` calls of `one(k)` (a status), `concurrency` at a time, each timed."""
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    indexes = iter(range(requests))

    async def worker() -> None:
        for k in indexes:
            started = time.perf_counter()
            status = await one(k)
            latencies.append(time.perf_counter() - started)
            statuses[status] += 1

    started, cpu, server_cpu = time.perf_counter(), time.process_time(), cpu_seconds(pid)
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    seconds = time.perf_counter() - started
    return Phase(
        name,
        seconds,
        latencies,
        statuses,
        client_cpu=(time.process_time() - cpu) / seconds,
        server_cpu=(cpu_seconds(pid) - server_cpu) / seconds,
    )


async def measure_raw(
    url: str,
    company_id: uuid.UUID,
    users: list[uuid.UUID],
    pairs: list[tuple[int, int]],
    concurrency: int,
    connections: int,
) -> Phase:
    """The api's send statement through psycopg: a pool of `connections`, each
    compliment in its own transaction (201 when it was sent, 409 when not)."""
    pool: asyncio.Queue[psycopg.AsyncConnection[tuple[object, ...]]] = asyncio.Queue()
    # autocommit: transaction() below is then BEGIN ... COMMIT, not a savepoint.
    opened = [
        await psycopg.AsyncConnection.connect(url, autocommit=True) for _ in range(connections)
    ]
    for conn in opened:
        pool.put_nowait(conn)

    async def send(k: int) -> int:
        sender, receiver = pairs[k]
        params = {
            "company_id": company_id,
            "sender_id": users[sender],
            "receiver_id": users[receiver],
            "coins": COINS,
            "message": MESSAGE,
            "sent_reason": SENT_REASON,
            "received_reason": RECEIVED_REASON,
        }
        conn = await pool.get()
        try:
            async with conn.transaction():
                rows = await (await conn.execute(RAW_SEND, params)).fetchall()
        finally:
            pool.put_nowait(conn)
        # The compliment's id (column 4) is on every row when it was sent.
        return 201 if rows and rows[0][4] is not None else 409

    try:
        # Warm-up, not measured and moving nothing: a statement of each connection.
        await asyncio.gather(*(conn.execute("SELECT 1") for conn in opened))
        return await timed("raw psycopg", len(pairs), concurrency, send, os.getpid())
    finally:
        for conn in opened:
            await conn.close()


async def peak_connections(url: str, stop: asyncio.Event) -> int:
    """The most connections to the database seen at once until `stop` (every 20 ms)."""
    peak = 0
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        while not stop.is_set():
            row = await (await conn.execute(CONNECTIONS)).fetchone()
            peak = max(peak, row[0] if row else 0)
            await asyncio.sleep(0.02)
    return peak


async def measure(
    url: str,
    base: str,
    headers: list[dict[str, str]],
    users: list[uuid.UUID],
    pairs: list[tuple[int, int]],
    concurrency: int,
    server: int,
) -> tuple[list[Phase], int]:
    """The api's phases (/health, the wallet, its transactions, the compliments) and
    the most database connections it held during the compliments."""
    async with AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(
                httpx.AsyncClient(base_url=base, limits=httpx.Limits(max_connections=1), timeout=60)
            )
            for _ in range(concurrency)
        ]
        # Each concurrent request takes a free client (one request at a time each).
        free: asyncio.Queue[httpx.AsyncClient] = asyncio.Queue()
        for client in clients:
            free.put_nowait(client)

        def get(path: str, signed: bool = True) -> Callable[[int], Awaitable[int]]:
            async def one(k: int) -> int:
                client = await free.get()
                try:
                    extra = headers[k % len(headers)] if signed else None
                    return (await client.get(path, headers=extra)).status_code
                finally:
                    free.put_nowait(client)

            return one

        async def compliment(k: int) -> int:
            sender, receiver = pairs[k]
            body = {"receiver_id": str(users[receiver]), "coins": COINS, "message": MESSAGE}
            client = await free.get()
            try:
                response = await client.post("/compliments", json=body, headers=headers[sender])
            finally:
                free.put_nowait(client)
            return response.status_code

        requests = len(pairs)
        # Warm-up, not measured: connections opened, signing keys fetched, pool filled.
        warm = await timed("warm-up", 4 * concurrency, concurrency, get("/me"), server)
        if set(warm.statuses) != {200}:
            raise SystemExit(f"GET /me during the warm-up: {dict(warm.statuses)}")
        phases = [
            await timed(name, requests, concurrency, get(path, signed), server)
            for name, path, signed in (
                ("GET /health", "/health", False),
                ("GET /me/wallet", "/me/wallet", True),
                ("GET /me/wallet/transactions", "/me/wallet/transactions", True),
            )
        ]
        for phase in phases:
            if set(phase.statuses) != {200}:
                raise SystemExit(f"{phase.name}: {dict(phase.statuses)}")
        stop = asyncio.Event()
        sampler = asyncio.create_task(peak_connections(url, stop))
        phases.append(await timed("POST /compliments", requests, concurrency, compliment, server))
        stop.set()
        peak = await sampler
    return phases, peak


@dataclass
class OtlpSink:
    """An OTLP/HTTP endpoint that answers 200 and keeps the bodies, for counting later."""

    bodies: list[bytes] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    def __enter__(self) -> "OtlpSink":
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if self.path.endswith("/v1/traces"):
                    sink.bodies.append(body)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.shutdown()
        self.server.server_close()

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def spans(self) -> int:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
        )

        return sum(
            len(scope.spans)
            for body in self.bodies
            for resource in ExportTraceServiceRequest.FromString(body).resource_spans
            for scope in resource.scope_spans
        )


def check(
    url: str, users: list[uuid.UUID], pairs: list[tuple[int, int]], sent: list[Phase]
) -> None:
    """Every compliment went through, once, and the money adds up."""
    problems = []
    for phase in sent:
        if set(phase.statuses) != {201}:
            problems.append(f"{phase.name}: statuses {dict(phase.statuses)}, expected all 201")
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
    # Each api run: its process count, and whether it traces (off, then on, per count).
    modes = (False, True) if options.tracing else (False,)
    runs = [(n, traced) for n in options.processes for traced in modes]
    # The raw baseline's share first, then each api run's.
    rounds = 1 + len(runs)
    pairs = plan(options.senders, options.requests * rounds)
    shares = [pairs[i * options.requests : (i + 1) * options.requests] for i in range(rounds)]
    sends = Counter(sender for sender, _ in pairs)
    run_id = uuid.uuid4().hex[:8]
    # What one api process may open: its pool plus overflow (DATABASE_MAX_OVERFLOW).
    connections = pool_size(settings) + settings.database_max_overflow
    with database(admin_url, f"bench_http_{run_id}") as url:
        migrate(url)
        company_id, users = seed(
            url, options.senders, [COINS * sends[i] for i in range(options.senders)]
        )
        raw = asyncio.run(
            measure_raw(url, company_id, users, shares[0], options.concurrency, connections)
        )
        print(
            f"raw baseline: the api's send statement through psycopg, {connections}"
            f" connections, {options.concurrency} concurrent clients"
        )
        print(raw.line())
        jwks_url, sign = local_signer(tmp)
        headers = [
            {"Authorization": f"Bearer {sign(f'bench|{i}')}"} for i in range(options.senders)
        ]
        env = process_env(url, settings.redis_url, f"bench-http-{run_id}", jwks_url)
        # Off unless asked for, whatever the environment says.
        env = {k: v for k, v in env.items() if not k.startswith("OTEL_")}
        kept = API_SAMPLE_RATIO if options.sample_share is None else options.sample_share
        tracing = {"OTEL_TRACES_SAMPLER_ARG": str(kept)}
        kept_share = f"{kept * 100:.0f} %"
        sampled = f"on (parent-based, {kept_share} of new traces kept, OTLP/HTTP to 127.0.0.1)"
        sent = [raw]
        untraced: dict[int, float] = {}
        sink = OtlpSink().__enter__()  # unused unless --tracing
        for (processes, traced), share in zip(runs, shares[1:], strict=True):
            port = free_port()
            log = tmp / f"api-{processes}-{traced}.log"
            run_env = {**env, **tracing, "OTEL_EXPORTER_OTLP_ENDPOINT": sink.url} if traced else env
            sink.bodies.clear()
            api = start_api(run_env, port, log, processes)
            try:
                base = f"http://127.0.0.1:{port}"
                wait_http(f"{base}/health", api, log)
                phases, peak = asyncio.run(
                    measure(url, base, headers, users, share, options.concurrency, api.pid)
                )
            finally:
                stop(api)
            print(
                f"api: uvicorn, {processes} process{'es' if processes > 1 else ''},"
                f" tracing {sampled if traced else 'off'},"
                f" each a pool of {pool_size(settings)}"
                f" + {settings.database_max_overflow} overflow"
                f" = at most {processes * connections} connections; {peak} open at most"
                f" during POST /compliments; {options.senders} senders,"
                f" {options.concurrency} concurrent clients"
            )
            for phase in phases:
                print(phase.line())
            health, compliments = phases[0], phases[-1]
            print(f"ratio (compliments / health, requests/s): {compliments.rate / health.rate:.2f}")
            ratio = compliments.rate / raw.rate
            print(f"ratio (compliments / raw psycopg, per second): {ratio:.2f}")
            sent.append(compliments)
            if not traced:
                untraced[processes] = compliments.rate
            else:
                # The api exported what was left when it stopped.
                print(
                    f"tracing: {sink.spans():,} spans received by the OTLP endpoint;"
                    f" ratio (compliments traced / untraced, per second):"
                    f" {compliments.rate / untraced[processes]:.2f}"
                )
        sink.__exit__()
        if len(options.processes) > 1:
            rates = ", ".join(
                f"{n} -> {phase.rate:,.0f} req/s"
                for (n, traced), phase in zip(runs, sent[1:], strict=True)
                if not traced
            )
            print(f"POST /compliments by api processes: {rates}")
        check(url, users, pairs, sent)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--senders", type=int, default=200)
    parser.add_argument("--requests", type=int, default=5000, help="per phase")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument(
        "--processes",
        type=lambda value: [int(n) for n in value.split(",")],
        default=[1, 2],
        help="api worker processes of each run, comma-separated",
    )
    parser.add_argument(
        "--tracing",
        action="store_true",
        help="run each count with tracing off, then on (exported to a local receiver)",
    )
    parser.add_argument(
        "--sample-share",
        type=float,
        help=f"with --tracing: the share of new traces kept (default {API_SAMPLE_RATIO}, as the"
        " api ships; 1 traces every request)",
    )
    options = parser.parse_args()
    if options.senders < 2 or options.requests < options.senders or options.concurrency < 1:
        parser.error("needs --senders >= 2, --requests >= --senders, --concurrency >= 1")
    if not options.processes or min(options.processes) < 1:
        parser.error("needs --processes of at least 1 each")
    if options.sample_share is not None and not 0 <= options.sample_share <= 1:
        parser.error("needs --sample-share from 0 to 1")
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
