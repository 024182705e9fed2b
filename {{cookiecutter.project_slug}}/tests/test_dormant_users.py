"""The cron process, started as the scheduler starts it: a real subprocess deactivating
the users who never signed in within DORMANT_USER_DAYS."""

import json
import subprocess
import sys
from uuid import UUID

from . import factories as f
from .conftest import CRON, PROJECT_ROOT, run_module
from .factories import Db


def added_days_ago(db: Db, user_id: UUID, days: int) -> None:
    db.execute(
        "UPDATE users SET created_at = now() - make_interval(days => %s) WHERE id = %s",
        (days, user_id),
    )


def active(db: Db, user_id: UUID) -> bool:
    row = db.execute("SELECT is_active FROM users WHERE id = %s", (user_id,)).fetchone()
    assert row is not None
    return bool(row[0])


def test_deactivates_only_dormant_users_and_prints_a_one_line_summary(
    db: Db, process_env: dict[str, str]
) -> None:
    acme, globex = f.company(db, "Acme"), f.company(db, "Globex")
    dormant = f.user(db, acme, "dormant@acme.example")
    added_days_ago(db, dormant, 91)
    recent = f.user(db, acme, "recent@acme.example")
    added_days_ago(db, recent, 89)
    # Signed in once (a subject), however long ago: never dormant.
    signed_in = f.member(db, acme, "old@acme.example")
    added_days_ago(db, signed_in, 400)
    other = f.user(db, globex, "dormant@globex.example")
    added_days_ago(db, other, 200)

    done = run_module(CRON, process_env)

    assert done.returncode == 0, done.stderr
    [line] = done.stdout.splitlines()
    summary = json.loads(line)
    assert summary == {
        "status": "ok",
        "dormant_user_days": 90,
        "deactivated": 2,
        "companies": dict(sorted({str(acme): 1, str(globex): 1}.items())),
    }
    assert [active(db, u) for u in (dormant, recent, signed_in, other)] == [
        False,
        True,
        True,
        False,
    ]

    # Idempotent: a second run finds nobody new.
    again = run_module(CRON, process_env)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["deactivated"] == 0
    assert json.loads(again.stdout)["companies"] == {}


def test_the_threshold_is_dormant_user_days(db: Db, process_env: dict[str, str]) -> None:
    acme = f.company(db, "Acme")
    user = f.user(db, acme, "new@acme.example")
    added_days_ago(db, user, 8)

    done = run_module(CRON, {**process_env, "DORMANT_USER_DAYS": "7"})

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["deactivated"] == 1
    assert not active(db, user)


def test_two_runs_at_once_deactivate_each_user_once(db: Db, process_env: dict[str, str]) -> None:
    acme = f.company(db, "Acme")
    for n in range(200):
        added_days_ago(db, f.user(db, acme, f"user{n}@acme.example"), 100)
    command = [sys.executable, "-m", CRON]
    runs = [
        subprocess.Popen(
            command, env=process_env, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outputs = [run.communicate(timeout=60)[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0]
    assert sum(json.loads(out)["deactivated"] for out in outputs) == 200
    assert db.execute("SELECT count(*) FROM users WHERE is_active").fetchone() == (0,)


def test_unreachable_database_fails_with_one_line(process_env: dict[str, str]) -> None:
    env = {**process_env, "DATABASE_URL": "postgresql://postgres@127.0.0.1:1/nowhere"}

    done = run_module(CRON, env)

    assert done.returncode == 1
    assert done.stdout == ""
    [reason] = done.stderr.splitlines()
    assert reason.startswith("dormant users failed: OperationalError:")
    assert "127.0.0.1" in reason


def test_bad_configuration_fails_with_one_line(process_env: dict[str, str]) -> None:
    env = {**process_env, "DORMANT_USER_DAYS": "0"}

    done = run_module(CRON, env)

    assert done.returncode == 2
    [reason] = done.stderr.splitlines()
    assert reason.startswith("dormant users failed: bad configuration:")
    assert "dormant_user_days" in reason
