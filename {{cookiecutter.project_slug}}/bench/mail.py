"""E-mail benchmark: invitations through the outbox and a real worker into a local SMTP
sink, next to a raw aiosmtplib loop sending the same messages to the same sink.

    uv run python bench/mail.py [--messages 100000] [--in-flight 50]

In a database of its own, against an SMTP sink of its own (aiosmtpd in a process of its
own, `bench/mail.py sink PORT`, which accepts every message and counts it):

1. raw: one aiosmtplib connection sends `--messages` messages, each composed as the
   worker composes it (features/mail/messages.py), one after another;
2. writing: `--messages` users with wallets and ledger rows in one statement, as the CSV
   import writes them, once without and once with their invitations in the outbox (the
   import's own `INSERT ... SELECT`): what queueing the e-mails adds to an import;
3. outbox: a worker process (`arq <pkg>.worker.WorkerSettings`, no rate limit) drains
   the invitations; messages/s from its first to its last `sent_at`, and its RSS sampled
   as it goes (peak: VmHWM).

Prints both rates and their ratio, the writing times, and the worker's RSS at each
quarter of the run. Needs Postgres and Redis (DATABASE_URL, REDIS_URL, as the app);
the bench_ database it creates is dropped on exit.
"""

import argparse
import asyncio
import logging
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiosmtplib
import psycopg
from aiosmtpd.controller import Controller
from bench_support import (
    BIN,
    PACKAGE,
    database,
    free_port,
    migrate,
    process_env,
    start,
    stop,
    with_database,
)

from {{ cookiecutter.package_name }}.features.mail.messages import Letter, compose
from {{ cookiecutter.package_name }}.features.mail.models import MailKind
from {{ cookiecutter.package_name }}.lib.config import Settings

SENDER = "no-reply@bench.example"
DOMAIN = "bench.example"

# What a CSV import writes per new user (user_import/processing.py, _INSERT), from generate_series
# instead of the staging table; with INVITE, the invitation rows too.
USERS = """
    WITH new_users AS (
        INSERT INTO users (company_id, email, name)
        SELECT %(company)s, 'person' || i || '@' || %(domain)s, 'Person ' || i
        FROM generate_series(1, %(n)s) AS i
        RETURNING id
    ), new_wallets AS (
        INSERT INTO wallets (user_id, compliment_balance)
        SELECT id, 100 FROM new_users RETURNING id, user_id
    ), ledger AS (
        INSERT INTO wallet_transactions (wallet_id, user_id, kind, balance_type, amount,
                                         previous_balance, new_balance, reason)
        SELECT id, user_id, 'RESET', 'COMPLIMENT', 100, 0, 100, 'initial allowance'
        FROM new_wallets
    ), invitations AS (
        INSERT INTO mail_outbox (company_id, user_id, kind)
        SELECT %(company)s, id, 'invitation' FROM new_users WHERE %(invite)s
    )
    SELECT count(*) FROM new_users
"""


# The sink ---------------------------------------------------------------------------


class Counting:
    def __init__(self) -> None:
        self.count = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.count += 1
        return "250 OK"


def run_sink(port: int) -> None:
    """Accept and count until SIGTERM, then print the count."""
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    handler = Counting()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    print("ready", flush=True)
    while not done.wait(0.5):
        pass
    controller.stop()
    print(handler.count, flush=True)


# The benchmark ----------------------------------------------------------------------


def letters(n: int) -> Iterator[Letter]:
    for i in range(n):
        yield Letter(
            id=uuid.uuid4(),
            kind=MailKind.invitation,
            to_address=f"person{i}@{DOMAIN}",
            to_name=f"Person {i}",
            company="Bench",
        )


async def raw_loop(port: int, n: int, app_url: str) -> float:
    """Seconds for one connection to send n composed messages, one after another."""
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False)
    await client.connect()
    started = time.perf_counter()
    for letter in letters(n):
        await client.send_message(compose(letter, sender=SENDER, domain=DOMAIN, app_url=app_url))
    elapsed = time.perf_counter() - started
    await client.quit()
    return elapsed


def seed_company(conn: psycopg.Connection[Any], name: str) -> uuid.UUID:
    row = conn.execute(
        "INSERT INTO companies (name, email_domain) VALUES (%s, %s) RETURNING id",
        (name, f"{name.lower()}.example"),
    ).fetchone()
    assert row is not None
    return uuid.UUID(str(row[0]))


def write_users(url: str, n: int) -> tuple[float, float, uuid.UUID]:
    """Seconds to write n users without, then n users with, their invitations."""
    seconds = []
    with psycopg.connect(url, autocommit=True) as conn:
        for name, invite in (("Plain", False), ("Bench", True)):
            company = seed_company(conn, name)
            started = time.perf_counter()
            with conn.transaction():
                conn.execute(
                    USERS,
                    {
                        "company": company,
                        "domain": f"{name.lower()}.example",
                        "n": n,
                        "invite": invite,
                    },
                )
            seconds.append(time.perf_counter() - started)
        conn.execute("VACUUM ANALYZE mail_outbox")
    return seconds[0], seconds[1], company


def rss_kb(pid: int, field: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def drain(
    url: str, settings: Settings, tmp: Path, port: int, n: int, in_flight: int, run: str
) -> tuple[float, float, list[int], int]:
    """A worker sends the outbox: (messages/s first..last sent_at, wall seconds, RSS at
    each quarter in kB, peak RSS in kB)."""
    env = process_env(
        url,
        settings.redis_url,
        f"bench-mail-{run}",
        "file:/nonexistent",
        SMTP_URL=f"smtp://127.0.0.1:{port}",
        MAIL_FROM=SENDER,
        MAIL_MAX_IN_FLIGHT=str(in_flight),
        MAIL_RATE_PER_SECOND="0",
    )
    log = tmp / "worker.log"
    started = time.perf_counter()
    # Its start-up drain finds the rows: nothing else wakes it.
    worker = start([str(BIN / "arq"), f"{PACKAGE}.worker.WorkerSettings"], env, log)
    quarters: list[int] = []
    peak = 0
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            while True:
                row = conn.execute(
                    "SELECT count(*) FILTER (WHERE status = 'sent'),"
                    " count(*) FILTER (WHERE status = 'failed') FROM mail_outbox"
                ).fetchone()
                assert row is not None
                sent, failed = int(row[0]), int(row[1])
                if worker.poll() is not None:
                    raise SystemExit(f"the worker exited:\n{log.read_text()}")
                while len(quarters) < 4 and sent >= n * (len(quarters) + 1) / 4:
                    quarters.append(rss_kb(worker.pid))
                if sent + failed >= n:
                    break
                time.sleep(0.2)
            wall = time.perf_counter() - started
            peak = rss_kb(worker.pid, "VmHWM")
            span = conn.execute(
                "SELECT extract(epoch FROM max(sent_at) - min(sent_at)) FROM mail_outbox"
            ).fetchone()
            assert span is not None
            if failed:
                print(f"warning: {failed} messages failed", file=sys.stderr)
    finally:
        stop(worker)
    return n / max(float(span[0]), 1e-9), wall, quarters, peak


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--in-flight", type=int, default=Settings().mail_max_in_flight)
    options = parser.parse_args()
    n = options.messages
    settings = Settings()
    admin_url = with_database(settings.database_url, "postgres")
    run = uuid.uuid4().hex[:8]
    port = free_port()
    sink = subprocess.Popen(
        [sys.executable, __file__, "sink", str(port)], stdout=subprocess.PIPE, text=True
    )
    assert sink.stdout is not None
    if sink.stdout.readline().strip() != "ready":
        raise SystemExit("the SMTP sink did not start")
    try:
        raw_seconds = asyncio.run(raw_loop(port, n, settings.app_url))
        with (
            tempfile.TemporaryDirectory() as tmp_name,
            database(admin_url, f"bench_mail_{run}") as url,
        ):
            migrate(url)
            plain_seconds, invited_seconds, _ = write_users(url, n)
            rate, wall, quarters, peak = drain(
                url, settings, Path(tmp_name), port, n, options.in_flight, run
            )
    finally:
        sink.send_signal(signal.SIGTERM)
        received = int(sink.communicate(timeout=30)[0].strip() or 0)
    raw_rate = n / raw_seconds
    print(f"messages: {n:,}; batch (MAIL_MAX_IN_FLIGHT): {options.in_flight}")
    print(f"raw aiosmtplib loop:      {raw_seconds:8.2f} s {raw_rate:10,.0f} messages/s")
    print(
        f"outbox + worker:          {n / rate:8.2f} s {rate:10,.0f} messages/s"
        f" ({wall:.1f} s from the worker's start)"
    )
    print(f"ratio (outbox / raw):     {rate / raw_rate:.2f}")
    print(
        f"users written without / with invitations: {plain_seconds:.2f} s / "
        f"{invited_seconds:.2f} s (+{(invited_seconds / plain_seconds - 1) * 100:.0f}%)"
    )
    print(
        "worker RSS at 25/50/75/100%: "
        + " / ".join(f"{kb / 1024:.0f}" for kb in quarters)
        + f" MB; peak {peak / 1024:.0f} MB"
    )
    print(f"sink received: {received:,} (expected {2 * n:,})")
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["sink"]:
        run_sink(int(sys.argv[2]))
        sys.exit(0)
    sys.exit(main())
