"""The default project, rendered and installed, run as its three processes and used over HTTP.

The story itself (what is done, and what the domain rules say must come of it) is in
tools/story/, shared with the demo (tools/demo.py). Here: a fresh database and a Redis
database of the test's own, and the end state checked once more against numbers worked
out by hand from the story's steps.
"""

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tools import story

from .helpers import POSTGRES

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

# Redis database 9: the story's keys never mix with the other tests' (database 0).
REDIS_URL = "redis://127.0.0.1:6379/9"

# (compliment balance, redeemable balance) of each user at the end, by hand:
# allowance 100 while Bruno, Carla, Davi (admin-added) and Elis, Fábio (CSV) join,
# then 150 (Gil joins); compliments Bruno->Carla 30, Carla->Bruno 50, Bruno->Davi 60,
# Elis->Fábio 100, Fábio->Gil 25; Davi deactivated; the reset sets every active
# balance to 150 (Ana's wallet created); Bruno->Carla 40; a second reset changes nothing.
FINAL_BALANCES = {
    "ana@acme.example": (150, 0),
    "bruno@acme.example": (110, 50),
    "carla@acme.example": (150, 70),
    "davi@acme.example": (100, 60),
    "elis@acme.example": (150, 0),
    "fabio@acme.example": (150, 100),
    "gil@acme.example": (150, 25),
}


@pytest.fixture(scope="module")
def services() -> None:
    problems = story.service_problems(POSTGRES, REDIS_URL)
    if problems:
        pytest.fail(
            "the end-to-end test needs Postgres and Redis on 127.0.0.1 (bash .ci/run starts "
            "them):\n" + "\n".join(problems),
            pytrace=False,
        )


@pytest.fixture(scope="module")
def project(services: None, installed_projects: Callable[[str], Path]) -> Path:
    return installed_projects("default")


@pytest.fixture
def database(services: None) -> Iterator[str]:
    with story.fresh_database(POSTGRES, prefix="template_e2e") as url:
        yield url


def test_the_story_over_http_against_the_real_processes(
    project: Path, database: str, tmp_path: Path
) -> None:
    started = time.monotonic()
    stack = story.Stack(
        project, database_url=database, redis_url=REDIS_URL, work_dir=tmp_path, say=print
    )
    readme = (project / "README.md").read_text()
    for command in stack.readme_commands():
        assert command in readme, f"the story runs `{command}`, which the README does not give"

    with stack:
        outcome = story.tell(stack)

    print(f"story {outcome.seconds}, whole test {time.monotonic() - started:.1f} s")
    assert outcome.balances == FINAL_BALANCES
    assert outcome.import_counts == {
        "rows": 5,
        "created": 2,
        "skipped": 1,
        "deactivated": 0,
        "invalid": 2,
    }
    assert outcome.refusals == ["insufficient_balance", "receiver_inactive"]
    first, second = outcome.resets
    assert first["companies"] == 1
    assert first["wallets_created"] == 0  # everyone got a wallet when they were added
    assert first["wallets_reset"] == first["ledger_rows"] == 5
    assert second["companies"] == 0
    assert second["companies_already_reset"] == 1
    assert second["ledger_rows"] == 0
    # Both processes stopped on SIGTERM, promptly and cleanly.
    assert [s.name for s in stack.stopped] == ["api", "worker"]
    for stopped in stack.stopped:
        assert stopped.clean, stopped
        assert stopped.seconds < 10, stopped
