"""Error reports from the three real processes to a local endpoint standing in for a
Sentry DSN: the SDK's real envelopes, with the personal data scrubbed."""

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from .api_process import running_api
from .conftest import CRON, StartWorker, create_database, drop_database, libpq_url, run_module
from .receivers import SentryReceiver, wait_for
from .tokens import SigningKey, claims_for

EMAIL = "jane.roe@example.com"
NAME = "Jane Roe"
{%- if cookiecutter.examples == "kudos" %}
CSV_ROW = "Jane Roe;jane.roe@example.com;Sales;Account manager"
{%- endif %}
RELEASE = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def empty_database() -> Iterator[str]:
    """A database without the schema: every statement fails, unexpectedly for the code."""
    name = f"{% if cookiecutter.examples == "kudos" %}kudos{% else %}app{% endif %}_empty_{uuid.uuid4().hex[:8]}"
    url = create_database(name)
    yield libpq_url(url)
    drop_database(name)


@pytest.fixture
def sentry() -> Iterator[SentryReceiver]:
    with SentryReceiver() as receiver:
        yield receiver


def reporting(sentry: SentryReceiver, database_url: str) -> dict[str, str]:
    return {
        "SENTRY_DSN": sentry.dsn(),
        "RAILWAY_GIT_COMMIT_SHA": RELEASE,
        "DATABASE_URL": database_url,
    }


def assert_scrubbed(raw: bytes, *secrets: str) -> None:
    for secret in (EMAIL, NAME,{% if cookiecutter.examples == "kudos" %} CSV_ROW,{% else %}{% endif %} "Bearer ", *secrets):
        assert secret.encode() not in raw, f"{secret!r} was sent to Sentry"


async def test_the_apis_unhandled_errors_are_reported_without_personal_data(
    sentry: SentryReceiver,
    empty_database: str,
    process_env: dict[str, str],
    signing_key: SigningKey,
    tmp_path: Path,
) -> None:
    token = signing_key.sign(claims_for("test|jane", email=EMAIL, email_verified=True, name=NAME))
    headers = {"Authorization": f"Bearer {token}", "X-Request-ID": "req-sentry-1"}
    env = reporting(sentry, empty_database)
    with running_api(process_env, tmp_path / "api.log", **env) as api:
        async with httpx.AsyncClient(base_url=api.url, headers=headers, timeout=30) as client:
{%- if cookiecutter.examples == "kudos" %}
            sent = await client.post(
                "/compliments",
                params={"note": EMAIL},
                json={"to_email": EMAIL, "coins": 1, "message": f"Thanks, {NAME}!"},
            )
            uploaded = await client.post(
                "/admin/users/imports",
                files={"file": ("users.csv", f"nome;email;departamento;cargo\n{CSV_ROW}\n")},
            )
        assert sent.status_code == uploaded.status_code == 500
{%- else %}
            sent = await client.post(
                "/admin/users", params={"note": EMAIL}, json={"name": NAME, "email": EMAIL}
            )
            exported = await client.post("/admin/users/exports", params={"for": EMAIL})
        assert sent.status_code == exported.status_code == 500
{%- endif %}
        events = wait_for(lambda: (e := sentry.events())[1:] and e, "two events")

    event = events[0]
    assert event["environment"] == "test"
    assert event["release"] == RELEASE
    assert event["tags"]["process"] == "api"
    assert event["tags"]["request_id"] == "req-sentry-1"
    exception = event["exception"]["values"][-1]
    assert exception["type"] == "ProgrammingError"
    assert "does not exist" in exception["value"]
    # The statement stays; the values SQLAlchemy lists after it do not.
    assert "[parameters: [Filtered]]" in exception["value"]
    assert set(event["request"].get("headers", {})) <= {
        "content-type",
        "content-length",
        "user-agent",
        "x-request-id",
        "accept",
        "host",
    }
    assert_scrubbed(sentry.raw(), token)


def test_failed_jobs_and_cron_runs_are_reported_with_their_job(
    sentry: SentryReceiver,
    empty_database: str,
    process_env: dict[str, str],
    start_worker: StartWorker,
) -> None:
    env = reporting(sentry, empty_database)
    start_worker(**env)
    # The worker's start-up cron jobs fail on the empty database: each is reported.
    job = wait_for(
        lambda: next(
            (e for e in sentry.events() if e["tags"].get("job.name") == "{% if cookiecutter.examples == "kudos" %}reconcile_csv_imports{% else %}tidy_user_exports{% endif %}"),
            None,
        ),
        "the failed job's event",
    )
    assert job["tags"]["process"] == "worker"
    assert job["tags"]["job.id"]
    assert job["tags"]["job.try"] == "1"
    assert job["release"] == RELEASE
    assert job["extra"]["arq-job"]["args"] == "[Filtered]"

    result = run_module(CRON, {**process_env, **env})
    assert result.returncode == 1, result.stderr
    cron = wait_for(
        lambda: next((e for e in sentry.events() if e["tags"].get("process") == "cron"), None),
        "the cron's event",
    )
    assert cron["exception"]["values"][-1]["type"] == "ProgrammingError"
    assert_scrubbed(sentry.raw())
