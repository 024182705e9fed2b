"""The cron command, as Railway runs it: the weekly reset, the starter's dormant users."""

import json
from collections.abc import Callable

import psycopg
import pytest

from ..helpers import STARTER
from .containers import Container
from .deploy import (
    Service,
    add_company,
    add_starter_company,
    add_starter_user,
    add_user,
    compliment_balance,
    migrate,
)

pytestmark = [pytest.mark.slow, pytest.mark.image]


@pytest.mark.parametrize("variant", ["default"], indirect=True)
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


@pytest.mark.parametrize("variant", [STARTER], indirect=True)
def test_cron_command_deactivates_the_dormant_users_and_exits_0(
    railway: dict[str, Service], containers: Callable[[], Container], database: str, queue_name: str
) -> None:
    service, container = railway["cron"], containers()
    migrate(container, railway["api"], database, queue_name)
    with psycopg.connect(database, autocommit=True) as db:
        acme = add_starter_company(db, "Acme")
        dormant = add_starter_user(db, acme, "dora@acme.example", days_ago=400)
        recent = add_starter_user(db, acme, "rita@acme.example")

        done = container.run(service.command, service.env(database, queue_name))

        assert done.returncode == 0, done.stdout + done.stderr
        [line] = done.stdout.splitlines()
        summary = json.loads(line)
        assert summary["status"] == "ok", summary
        assert (summary["deactivated"], summary["companies"]) == (1, {acme: 1}), summary
        active: dict[str, bool] = dict(
            db.execute("SELECT id::text, is_active FROM users").fetchall()
        )
        assert active == {dormant: False, recent: True}
