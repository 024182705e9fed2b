"""The weekly reset's cron command, as Railway runs it."""

import json
from collections.abc import Callable

import psycopg
import pytest

from .containers import Container
from .deploy import Service, add_company, add_user, compliment_balance, migrate

pytestmark = [pytest.mark.slow, pytest.mark.image]


def test_cron_command_runs_the_weekly_reset_and_exits_0(
    railway: dict[str, Service], containers: Callable[[], Container], database: str, queue_name: str
) -> None:
    service, container = railway["cron-weekly"], containers()
    migrate(container, railway["api"], database, queue_name)
    with psycopg.connect(database, autocommit=True) as db:
        acme = add_company(db, "Acme", allowance=120)
        alice = add_user(db, acme, "alice@acme.example", compliment=3)

        done = container.run(service.command, service.env(database, queue_name))

        assert done.returncode == 0, done.stdout + done.stderr
        [line] = done.stdout.splitlines()
        summary = json.loads(line)
        assert summary["status"] == "ok", summary
        assert (summary["companies"], summary["ledger_rows"]) == (1, 1), summary
        assert compliment_balance(db, alice) == 120
