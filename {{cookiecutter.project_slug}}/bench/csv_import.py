"""CSV user import benchmark: end to end through the real api and worker processes.

    uv run python bench/csv_import.py [--rows 1000000]

Generates a CSV of `--rows` people (streamed to a temporary file, with a few invalid and
duplicate rows), then in a database of its own:

1. the baseline: the same file `COPY`'d into a bare table, then one `INSERT ... SELECT`
   of users, wallets and ledger rows (what the import must do, with none of its checks),
   in a clone of the empty database;
2. the import: an api (uvicorn) and a worker (arq) started as subprocesses, the file
   uploaded over HTTP, the status URL polled until `completed`; once with
   `send_invitations=false`, then in a fresh database with the invitations (the new
   users' ids kept with the import in its transaction, then one outbox row per user,
   queued by the worker right after it; the e-mails are sent after that).

Prints rows/s of the baseline and of both imports, the import's ratio to the baseline,
what the invitations add and how long after `completed` they are all in the outbox,
the worker's peak RSS, and the api's RSS before and after the
upload. Needs Postgres and Redis (DATABASE_URL, REDIS_URL, as the app);
every bench_ database it creates is dropped on exit.
"""

import argparse
import sys
import tempfile
import time
import uuid
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

IMPORT_SECONDS = 3600  # the import job's own timeout
# How often the status is read: the end-to-end time is known to this much, so keep it
# small next to a fraction of the import (a 100k-row import takes about 4 s).
POLL_SECONDS = 0.02

RAW_INSERT = """
    WITH new_users AS (
        INSERT INTO users (company_id, email, name, department, job_title)
        SELECT DISTINCT ON (lower(email)) %(company)s, lower(email), name,
               nullif(department, ''), nullif(job_title, '')
        FROM raw_people
        WHERE length(trim(name)) >= 2 AND email LIKE '%%_@_%%._%%'
        ORDER BY lower(email)
        ON CONFLICT (email) DO NOTHING
        RETURNING id
    ), new_wallets AS (
        INSERT INTO wallets (user_id, compliment_balance)
        SELECT id, 100 FROM new_users RETURNING id, user_id
    )
    INSERT INTO wallet_transactions (wallet_id, user_id, kind, balance_type, amount,
                                     previous_balance, new_balance, reason)
    SELECT id, user_id, 'RESET', 'COMPLIMENT', 100, 0, 100, 'initial allowance'
    FROM new_wallets
"""


def write_csv(path: Path, rows: int, domain: str = "bench.example") -> int:
    """`rows` data rows at `domain`; one in 500 invalid, one in 1000 repeating an earlier
    email."""
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("name,email,department,job_title\r\n")
        for i in range(rows):
            if i % 500 == 499:
                out.write(f"X,not-an-email-{i},,\r\n")
            elif i % 1000 == 998:
                out.write(f"Again {i},person{i - 1}@{domain},,\r\n")
            else:
                out.write(f"Person {i},person{i}@{domain},Dept {i % 40},Engineer\r\n")
    return path.stat().st_size


def rss_kb(pid: int, field: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def seed(url: str, name: str = "Bench") -> tuple[uuid.UUID, str]:
    """A company (at <name>.example) and its admin; returns the company id and the
    admin's token subject."""
    domain, sub = f"{name.lower()}.example", f"bench|{name.lower()}-admin"
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "INSERT INTO companies (name, email_domain) VALUES (%s, %s) RETURNING id",
            (name, domain),
        ).fetchone()
        assert row is not None
        company = uuid.UUID(str(row[0]))
        conn.execute(
            "INSERT INTO users (company_id, email, name, role, auth_sub)"
            " VALUES (%s, %s, 'Admin', 'admin', %s)",
            (company, f"admin@{domain}", sub),
        )
    return company, sub


def baseline(url: str, csv_path: Path, company: uuid.UUID) -> float:
    """Seconds for a bare COPY of the file plus one INSERT ... SELECT of the same rows."""
    started = time.perf_counter()
    with psycopg.connect(url) as conn:
        conn.execute(
            "CREATE TEMP TABLE raw_people (name text, email text, department text,"
            " job_title text) ON COMMIT DROP"
        )
        with (
            conn.cursor().copy("COPY raw_people FROM STDIN WITH (FORMAT csv, HEADER true)") as copy,
            csv_path.open("rb") as file,
        ):
            while block := file.read(1024 * 1024):
                copy.write(block)
        conn.execute(RAW_INSERT, {"company": company})
        conn.commit()
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=1_000_000)
    options = parser.parse_args()
    settings = Settings()
    # Any database on the server will do to create and drop ours.
    admin_url = with_database(settings.database_url, "postgres")
    run = uuid.uuid4().hex[:8]
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        csv_path = tmp / "people.csv"
        size = write_csv(csv_path, options.rows)
        print(f"file: {options.rows:,} rows, {size / 1e6:.1f} MB")
        with database(admin_url, f"bench_csv_raw_{run}") as raw_url:
            migrate(raw_url)
            raw_company, _ = seed(raw_url)
            raw_seconds = baseline(raw_url, csv_path, raw_company)
        runs = {}
        queued_after: dict[bool, float] = {}
        for invitations in (False, True):
            with database(admin_url, f"bench_csv_{run}_{int(invitations)}") as url:
                migrate(url)
                _, admin_sub = seed(url)
                runs[invitations], queued_after[invitations] = end_to_end(
                    url,
                    settings,
                    tmp,
                    csv_path,
                    size,
                    f"{run}-{int(invitations)}",
                    admin_sub,
                    invitations=invitations,
                )
    raw_rate = options.rows / raw_seconds
    quiet, invited = runs[False], runs[True]
    rate, invited_rate = options.rows / quiet[0], options.rows / invited[0]
    print(f"baseline (COPY + INSERT ... SELECT): {raw_seconds:8.2f} s {raw_rate:12,.0f} rows/s")
    print(f"import end to end (upload..completed): {quiet[0]:6.2f} s {rate:12,.0f} rows/s")
    print(f"ratio (import / baseline rate): {rate / raw_rate:.2f}")
    print(
        f"import with invitations: {invited[0]:6.2f} s {invited_rate:12,.0f} rows/s"
        f" ({(invited[0] / quiet[0] - 1) * 100:+.0f} % time;"
        f" ratio to baseline {invited_rate / raw_rate:.2f}); an invitation per created user"
        f" in the outbox {queued_after[True]:.2f} s after the import completed"
    )
    for label, (_, worker_peak, api_before, api_after) in (
        ("", quiet),
        (" (invitations)", invited),
    ):
        print(f"worker peak RSS{label}: {worker_peak / 1024:.0f} MB")
        print(
            f"api RSS before / after the upload{label}:"
            f" {api_before / 1024:.0f} / {api_after / 1024:.0f} MB"
        )
    return 0


def outbox_filled(url: str, expected: int) -> float:
    """Seconds until the outbox holds `expected` rows (the worker queues an import's
    invitations right after it commits); fails on more, or after IMPORT_SECONDS."""
    started = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        while True:
            row = conn.execute("SELECT count(*) FROM mail_outbox").fetchone()
            queued = int(row[0]) if row else 0
            if queued == expected:
                return time.perf_counter() - started
            if queued > expected or time.perf_counter() - started > IMPORT_SECONDS:
                raise SystemExit(f"{queued:,} invitations queued for {expected:,} users")
            time.sleep(0.05)


def end_to_end(
    url: str,
    settings: Settings,
    tmp: Path,
    csv_path: Path,
    size: int,
    run: str,
    admin_sub: str,
    *,
    invitations: bool,
) -> tuple[tuple[float, int, int, int], float]:
    """(seconds, the worker's peak RSS, the api's RSS before and after), and the seconds
    from `completed` until an invitation per created user is in the outbox."""
    jwks_url, sign = local_signer(tmp)
    port = free_port()
    env = process_env(
        url,
        settings.redis_url,
        f"bench-csv-{run}",
        jwks_url,
        CSV_IMPORT_MAX_BYTES=str(size + 1024 * 1024),
    )
    api = start(
        [str(BIN / "uvicorn"), f"{PACKAGE}.app:create_app", "--factory", "--port", str(port)],
        env,
        tmp / "api.log",
    )
    worker_log = tmp / "worker.log"
    worker = start([str(BIN / "arq"), f"{PACKAGE}.worker.WorkerSettings"], env, worker_log)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_http(f"{base}/health", api, tmp / "api.log")
        headers = {"Authorization": f"Bearer {sign(admin_sub)}"}
        with httpx.Client(base_url=base, headers=headers, timeout=600) as client:
            client.get("/admin/users/import/template").raise_for_status()
            api_before = rss_kb(api.pid)
            started = time.perf_counter()
            with csv_path.open("rb") as file:
                response = client.post(
                    "/admin/users/imports",
                    files={"file": ("people.csv", file, "text/csv")},
                    data={"send_invitations": str(invitations).lower()},
                )
            response.raise_for_status()
            api_after = rss_kb(api.pid)
            status_url = response.json()["status_url"]
            deadline = time.monotonic() + IMPORT_SECONDS
            while True:
                state = client.get(status_url).json()
                if state["status"] in {"completed", "failed"}:
                    break
                if worker.poll() is not None:
                    raise SystemExit(f"the worker exited:\n{worker_log.read_text()}")
                if time.monotonic() > deadline:
                    raise SystemExit(f"the import is still {state['status']}")
                time.sleep(POLL_SECONDS)
            elapsed = time.perf_counter() - started
        if state["status"] != "completed":
            raise SystemExit(f"import failed: {state}")
        print(f"import: {state['counts']}, timings {state['timings']}")
        created = int(state["counts"]["created"])
        queued_after = outbox_filled(url, created if invitations else 0)
        rss = rss_kb(worker.pid, "VmHWM"), api_before, api_after
        return (elapsed, *rss), queued_after
    finally:
        for proc in (api, worker):
            stop(proc)


if __name__ == "__main__":
    sys.exit(main())
