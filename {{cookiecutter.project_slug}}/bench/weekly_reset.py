"""Weekly reset benchmark: the project's reset against one raw UPDATE on the same data,
and against that UPDATE plus the ledger rows as one statement.

    uv run python bench/weekly_reset.py [--wallets 1000000 --companies 100 --repeat 3
                                         --batch-size 2000]

Builds a seed database once, then clones it (CREATE DATABASE ... TEMPLATE) for every
measurement so each run starts from the same rows. Every bench_ database it creates is
dropped on exit, including on failure and Ctrl-C.
"""

import argparse
import asyncio
import os
import signal
import statistics
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg
from bench_support import migrate
from psycopg import sql
from sqlalchemy import text
from sqlalchemy.engine import make_url

from {{ cookiecutter.package_name }}.features.wallets.service import (
    DEFAULT_BATCH_SIZE,
    ResetSummary,
    reset_weekly_balances,
)
from {{ cookiecutter.package_name }}.lib.config import Settings
from {{ cookiecutter.package_name }}.lib.database import (
    create_engine,
    create_session_factory,
)

# Company i gets an allowance spread over 50..500; the last company is inactive, so the
# reset must leave its wallets alone.
SEED_COMPANIES = """
    INSERT INTO companies (name, email_domain, is_active, weekly_renewal_amount)
    SELECT 'Company ' || i, 'company' || i || '.example', i <> %(companies)s,
           50 + (i * 37) %% 451
    FROM generate_series(1, %(companies)s) AS i
"""

# Users are dealt round-robin over the companies, each at its company's domain; one in
# a thousand is inactive.
SEED_USERS = """
    INSERT INTO users (company_id, email, name, is_active)
    SELECT c.ids[k], 'user' || i || '@' || c.domains[k], 'User ' || i, i %% 1000 <> 0
    FROM (SELECT array_agg(id ORDER BY name) AS ids,
                 array_agg(email_domain ORDER BY name) AS domains FROM companies) AS c,
         generate_series(1, %(wallets)s) AS i,
         LATERAL (SELECT 1 + i %% cardinality(c.ids) AS k) AS pick
"""

# Balances 0..600 against allowances 50..500: nearly every wallet changes, some go down.
SEED_WALLETS = """
    INSERT INTO wallets (user_id, compliment_balance)
    SELECT id, floor(random() * 601)::int FROM users
"""

# The baseline: what a reset costs with no ledger, no idempotency and no lock. Skipping
# wallets already at their allowance makes it touch exactly the rows ours changes.
RAW_RESET = """
    UPDATE wallets AS w SET compliment_balance = c.weekly_renewal_amount
    FROM users AS u JOIN companies AS c ON c.id = u.company_id
    WHERE u.id = w.user_id AND u.is_active AND c.is_active
      AND w.compliment_balance <> c.weekly_renewal_amount
"""

# The second baseline: the same UPDATE plus the ledger rows ours writes (same columns,
# same metadata, the same foreign key), as one statement over one snapshot: the least
# any exact ledger costs. Ours against it is what the batches, their locks and the
# per-wallet period marker cost.
RAW_RESET_WITH_LEDGER = """
    WITH due AS (
        SELECT w.id, w.user_id, w.compliment_balance AS previous,
               c.id AS company_id, c.weekly_renewal_amount AS allowance
        FROM wallets AS w
        JOIN users AS u ON u.id = w.user_id JOIN companies AS c ON c.id = u.company_id
        WHERE u.is_active AND c.is_active AND w.compliment_balance <> c.weekly_renewal_amount
    ), changed AS (
        UPDATE wallets AS w SET compliment_balance = d.allowance
        FROM due AS d WHERE w.id = d.id
        RETURNING w.id, w.user_id, d.previous, d.allowance, d.company_id
    )
    INSERT INTO wallet_transactions (
        wallet_id, user_id, kind, balance_type, amount,
        previous_balance, new_balance, reason, metadata
    )
    SELECT id, user_id, 'RESET', 'COMPLIMENT', allowance - previous, previous, allowance,
           'Weekly allowance reset',
           jsonb_build_object('company_id', company_id, 'allowance', allowance,
                              'run_id', gen_random_uuid(), 'period_start', current_date)
    FROM changed
"""

# Active wallets whose balance is not their company's allowance: must be none after a reset.
WRONG_BALANCES = """
    SELECT count(*) FROM wallets AS w
    JOIN users AS u ON u.id = w.user_id JOIN companies AS c ON c.id = u.company_id
    WHERE u.is_active AND c.is_active AND w.compliment_balance <> c.weekly_renewal_amount
"""

LEDGER_ROWS = "SELECT count(*) FROM wallet_transactions WHERE kind = 'RESET'"


@dataclass
class Timings:
    raw: list[float]
    ledger: list[float]
    ours: list[float]


class Server:
    """Creates bench_ databases on one Postgres server and remembers them for cleanup."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self.prefix = f"bench_reset_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        self.created: list[str] = []

    def url(self, name: str) -> str:
        return make_url(self.admin_url).set(database=name).render_as_string(hide_password=False)

    def admin(self, statement: sql.SQL | sql.Composed) -> None:
        # CREATE/DROP DATABASE cannot run inside a transaction block.
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(statement)

    def create(self, suffix: str, template: str | None = None) -> str:
        name = f"{self.prefix}_{suffix}"
        self.created.append(name)
        query = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template:
            query += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
        self.admin(query)
        return name

    def drop(self, name: str) -> None:
        # FORCE: a failed run may have left a connection open.
        self.admin(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        self.created.remove(name)

    @contextmanager
    def clone(self, template: str, suffix: str) -> Iterator[str]:
        name = self.create(suffix, template)
        try:
            # Flush the clone's dirty pages now, so no measurement pays for writing them.
            self.admin(sql.SQL("CHECKPOINT"))
            yield name
        finally:
            self.drop(name)


def build_seed(server: Server, wallets: int, companies: int) -> str:
    name = server.create("seed")
    migrate(server.url(name))
    params = {"wallets": wallets, "companies": companies}
    with psycopg.connect(server.url(name), autocommit=True) as conn:
        conn.execute("SELECT setseed(0.42)")  # the same balances on every bench run
        with conn.transaction():
            for statement in (SEED_COMPANIES, SEED_USERS, SEED_WALLETS):
                conn.execute(statement, params)
        # Fresh statistics and visibility map, as on a long-lived production table.
        conn.execute("VACUUM ANALYZE")
    return name


def time_raw(url: str, statement: str = RAW_RESET) -> tuple[float, int]:
    with psycopg.connect(url) as conn:
        started = time.perf_counter()
        with conn.transaction():
            changed = conn.execute(statement).rowcount
        return time.perf_counter() - started, changed


async def time_ours(url: str, batch_size: int) -> tuple[float, ResetSummary]:
    engine = create_engine(Settings(database_url=url))
    try:
        async with engine.connect():
            pass  # open the pooled connection outside the timed part, as raw does
        async with create_session_factory(engine)() as session:
            started = time.perf_counter()
            summary = await reset_weekly_balances(session, batch_size=batch_size)
            elapsed = time.perf_counter() - started
            wrong = await session.scalar(text(WRONG_BALANCES))
            ledger = await session.scalar(text(LEDGER_ROWS))
    finally:
        await engine.dispose()
    assert wrong == 0, f"{wrong} active wallets are not at their allowance"
    assert ledger == summary.ledger_rows == summary.wallets_reset, (ledger, summary)
    return elapsed, summary


def run(args: argparse.Namespace, server: Server) -> None:
    started = time.perf_counter()
    seed = build_seed(server, args.wallets, args.companies)
    print(f"seed {seed}: {args.wallets:,} wallets built in {time.perf_counter() - started:.1f}s")
    timings = Timings(raw=[], ledger=[], ours=[])
    raw_changed = ledger_rows = 0
    summary: ResetSummary | None = None
    for i in range(args.repeat):
        # Swap the order every other round so neither side always runs on a warmer cache.
        sides = ("raw", "ledger", "ours")
        for side in sides if i % 2 == 0 else reversed(sides):
            with server.clone(seed, f"{side}{i}") as db:
                if side == "raw":
                    elapsed, raw_changed = time_raw(server.url(db))
                    timings.raw.append(elapsed)
                elif side == "ledger":
                    elapsed, ledger_rows = time_raw(server.url(db), RAW_RESET_WITH_LEDGER)
                    timings.ledger.append(elapsed)
                else:
                    elapsed, summary = asyncio.run(time_ours(server.url(db), args.batch_size))
                    timings.ours.append(elapsed)
            print(f"  round {i + 1} {side:<6} {elapsed:8.2f}s")
    assert summary is not None
    # Same seed, same rule: both must change exactly the same wallets.
    assert summary.wallets_reset == raw_changed == ledger_rows, (summary, raw_changed, ledger_rows)
    report(args, timings, raw_changed, summary)


def report(
    args: argparse.Namespace, timings: Timings, raw_changed: int, summary: ResetSummary
) -> None:
    raw_med, raw_min = statistics.median(timings.raw), min(timings.raw)
    led_med, led_min = statistics.median(timings.ledger), min(timings.ledger)
    ours_med, ours_min = statistics.median(timings.ours), min(timings.ours)
    print()
    print(
        f"weekly reset, {args.wallets:,} wallets, {args.companies} companies,"
        f" batches of {args.batch_size:,}, x{args.repeat}"
    )
    print(f"{'':<22}{'median':>10}{'min':>10}")
    print(f"{'raw UPDATE':<26}{raw_med:>9.2f}s{raw_min:>9.2f}s")
    print(f"{'raw UPDATE + ledger':<26}{led_med:>9.2f}s{led_min:>9.2f}s")
    print(f"{'ours (with ledger)':<26}{ours_med:>9.2f}s{ours_min:>9.2f}s")
    print(f"{'ratio ours / raw':<26}{ours_med / raw_med:>10.2f}{ours_min / raw_min:>10.2f}")
    print(
        f"{'ratio ours / raw + ledger':<26}{ours_med / led_med:>10.2f}{ours_min / led_min:>10.2f}"
    )
    print()
    print(f"raw rows updated      {raw_changed:>10,}")
    print(f"ours wallets changed  {summary.wallets_reset:>10,}")
    print(f"ours ledger rows      {summary.ledger_rows:>10,}")
    print(f"ours wallets created  {summary.wallets_created:>10,}")
    print(f"ours companies reset  {summary.companies:>10,}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--wallets", type=int, default=1_000_000)
    parser.add_argument("--companies", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE)
    parser.add_argument(
        "--admin-url",
        default=os.environ.get("BENCH_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
        help="a database on the server to benchmark, used to create and drop bench_ databases",
    )
    args = parser.parse_args()
    # A plain `kill` should clean up too: turn SIGTERM into SystemExit so `finally` runs.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    server = Server(args.admin_url)
    try:
        run(args, server)
    finally:
        for name in list(server.created):
            server.drop(name)


if __name__ == "__main__":
    main()
