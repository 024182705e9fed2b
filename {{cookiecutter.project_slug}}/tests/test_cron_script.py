"""The cron process, started as the scheduler starts it: a real subprocess."""

import json

from . import factories as f
from .conftest import run_module
from .factories import Db

MODULE = "{{ cookiecutter.package_name }}.scripts.run_weekly_reset"


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
