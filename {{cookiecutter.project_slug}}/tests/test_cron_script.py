"""The cron process, started as the scheduler starts it: a real subprocess."""

import json
import subprocess
import sys
import time

from . import factories as f
from .conftest import CRON, PROJECT_ROOT, run_module
from .factories import Db

MODULE = CRON


def test_resets_and_prints_a_one_line_summary(db: Db, process_env: dict[str, str]) -> None:
    acme = f.company(db, "Acme", allowance=120)
    alice = f.user(db, acme, "alice@acme.example", compliment=3)
    f.user(db, acme, "bob@acme.example")

    done = run_module(MODULE, process_env)

    assert done.returncode == 0, done.stderr
    [line] = done.stdout.splitlines()
    summary = json.loads(line)
    assert summary["status"] == "ok"
    assert summary["companies"] == 1
    assert summary["wallets_created"] == 1
    assert summary["wallets_reset"] == summary["ledger_rows"] == 2
    assert isinstance(summary["elapsed_seconds"], float)
    assert f.balances(db, alice) == (120, 0)

    again = run_module(MODULE, process_env)

    assert again.returncode == 0, again.stderr
    repeat = json.loads(again.stdout)
    assert (repeat["companies"], repeat["companies_already_reset"], repeat["ledger_rows"]) == (
        0,
        1,
        0,
    )


def test_unreachable_database_fails_with_one_line(process_env: dict[str, str]) -> None:
    env = {**process_env, "DATABASE_URL": "postgresql://postgres@127.0.0.1:1/nowhere"}

    done = run_module(MODULE, env)

    assert done.returncode == 1
    assert done.stdout == ""
    [reason] = done.stderr.splitlines()
    assert reason.startswith("weekly reset failed: OperationalError:")
    assert "127.0.0.1" in reason


def test_bad_configuration_fails_with_one_line(process_env: dict[str, str]) -> None:
    env = {**process_env, "DATABASE_URL": "mysql://root@127.0.0.1/app"}

    done = run_module(MODULE, env)

    assert done.returncode == 2
    [reason] = done.stderr.splitlines()
    assert reason.startswith("weekly reset failed: bad configuration:")
    assert "database_url" in reason


def test_a_company_that_fails_is_named_and_the_others_are_reset(
    db: Db, process_env: dict[str, str]
) -> None:
    healthy = f.company(db, "Healthy", allowance=120)
    broken = f.company(db, "Broken", allowance=77)
    hana = f.user(db, healthy, "hana@healthy.example", compliment=3)
    bruno = f.user(db, broken, "bruno@broken.example", compliment=3)
    # The database refuses Broken's reset (a real error, not a transient conflict).
    db.execute(
        "CREATE FUNCTION refuse_77() RETURNS trigger LANGUAGE plpgsql AS"
        " $$BEGIN RAISE EXCEPTION 'refused for the test'; END$$;"
        " CREATE TRIGGER refuse_77 BEFORE UPDATE ON wallets FOR EACH ROW"
        " WHEN (NEW.compliment_balance = 77) EXECUTE FUNCTION refuse_77()"
    )
    try:
        done = run_module(MODULE, process_env)
    finally:
        db.execute("DROP TRIGGER refuse_77 ON wallets; DROP FUNCTION refuse_77()")

    assert done.returncode == 1, done.stdout
    summary = json.loads(done.stdout)
    assert summary["status"] == "incomplete"
    assert summary["companies"] == 1
    [failure] = summary["companies_failed"]
    assert failure["company_id"] == str(broken)
    assert "refused for the test" in failure["reason"]
    [reason] = done.stderr.strip().splitlines()[-1:]
    assert reason.startswith("weekly reset failed: 1 companies left unreset:")
    assert str(broken) in reason
    assert f.balances(db, hana) == (120, 0)
    assert f.balances(db, bruno) == (3, 0)

    # The next run (Railway's restart, or the worker's catch-up) finishes only Broken.
    again = run_module(MODULE, process_env)

    assert again.returncode == 0, again.stderr
    repeat = json.loads(again.stdout)
    assert (repeat["companies"], repeat["companies_already_reset"]) == (1, 1)
    assert f.balances(db, bruno) == (77, 0)
    assert f.balances(db, hana) == (120, 0)
    assert [row[2:5] for row in f.ledger(db, bruno)] == [(74, 3, 77)]
    assert [row[2:5] for row in f.ledger(db, hana)] == [(117, 3, 120)]


def test_a_run_killed_halfway_is_continued_without_refilling_anyone(
    db: Db, process_env: dict[str, str]
) -> None:
    acme = f.company(db, "Acme", allowance=100)
    db.execute(
        "WITH u AS (INSERT INTO users (company_id, email, name)"
        "  SELECT %s, 'u' || i || '@acme.example', 'User ' || i"
        "  FROM generate_series(1, 5000) AS i RETURNING id)"
        " INSERT INTO wallets (user_id, compliment_balance) SELECT id, 0 FROM u",
        (acme,),
    )
    reset_wallets = "SELECT count(*) FROM wallets WHERE reset_period IS NOT NULL"
    env = {**process_env, "WEEKLY_RESET_BATCH_SIZE": "20"}
    cron = subprocess.Popen(
        [sys.executable, "-m", MODULE], env=env, cwd=PROJECT_ROOT, stdout=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 60
        while (done := _count(db, reset_wallets)) == 0:
            assert cron.poll() is None, "the reset ended before it could be killed"
            assert time.monotonic() < deadline, "the reset committed no batch within 60 s"
            time.sleep(0.005)
        cron.kill()  # SIGKILL between (or in) batches: no chance to clean up
    finally:
        cron.kill()
        cron.wait()
    done = _count(db, reset_wallets)
    assert 0 < done < 5000, done
    # Those already reset spend their allowance before the next run.
    db.execute("UPDATE wallets SET compliment_balance = 35 WHERE reset_period IS NOT NULL")

    again = run_module(MODULE, process_env)

    assert again.returncode == 0, again.stderr
    summary = json.loads(again.stdout)
    assert (summary["companies"], summary["wallets_reset"]) == (1, 5000 - done)
    balances: dict[int, int] = dict(
        db.execute("SELECT compliment_balance, count(*) FROM wallets GROUP BY 1").fetchall()
    )
    assert balances == {35: done, 100: 5000 - done}
    # One RESET row per wallet in all, across the two runs.
    assert _count(db, "SELECT count(DISTINCT wallet_id) FROM wallet_transactions") == 5000
    assert _count(db, "SELECT count(*) FROM wallet_transactions") == 5000


def _count(db: Db, query: str) -> int:
    row = db.execute(query).fetchone()
    assert row is not None
    return int(row[0])
