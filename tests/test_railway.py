"""The rendered `.railway/railway.py`, evaluated by Railway's own railway-sdk."""

import importlib.metadata
import json
import shlex
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement

from .helpers import PROJECT_SETS, STARTER, answer, cron_of
from .railway_config import Resource, evaluate, reference, resources, services

# The starter's cron runs on a schedule of its own (not an answer): daily, at a quiet hour.
STARTER_SCHEDULE = "15 4 * * *"
POSTGRES_URL = reference("database.Postgres", "DATABASE_URL")
REDIS_URL = reference("database.Redis", "REDIS_URL")
# What the api refuses to start without, for each auth_provider answer.
AUTH_SETTINGS = {
    "auth0": {"AUTH0_DOMAIN", "AUTH_AUDIENCE"},
    "oidc": {"AUTH_ISSUER", "AUTH_JWKS_URL", "AUTH_AUDIENCE"},
}
OVERRIDES = (
    "RAILWAY_GITHUB_REPO",
    "RAILWAY_GITHUB_BRANCH",
    "RAILWAY_API_DOMAIN",
    "RAILWAY_API_REPLICAS",
    "RAILWAY_WORKER_REPLICAS",
)
# Optional: passed on to the api only when set where `railway config` runs.
EMAIL_CLAIMS = ("AUTH_EMAIL_CLAIM", "AUTH_EMAIL_VERIFIED_CLAIM")
# Optional: passed on to all three services only when set.
OBSERVABILITY = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_HEADERS", "SENTRY_DSN")


@pytest.fixture(scope="module")
def graphs(all_rendered: dict[str, tuple[Path, Path]]) -> dict[str, dict[str, Any]]:
    """Each answer set's evaluated graph, as the CLI sees it with no overrides set."""
    with pytest.MonkeyPatch.context() as env:
        for variable in (*OVERRIDES, *EMAIL_CLAIMS, *OBSERVABILITY):
            env.delenv(variable, raising=False)
        return {
            name: evaluate(project / ".railway" / "railway.py")
            for name, (project, _) in all_rendered.items()
        }


def deploy(graph: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: service.get("deploy", {}) for name, service in services(graph).items()}


def cron(name: str) -> str:
    """The project set's cron service."""
    return cron_of(name)[0]


@pytest.mark.parametrize("name", PROJECT_SETS)
def test_postgres_and_redis_databases(graphs: dict[str, dict[str, Any]], name: str) -> None:
    by_address = resources(graphs[name])
    postgres, redis = by_address["database.Postgres"], by_address["database.Redis"]
    assert (postgres["type"], postgres["engine"], postgres["output"]) == (
        "database",
        "postgres",
        "DATABASE_URL",
    )
    assert (redis["type"], redis["engine"], redis["output"]) == ("database", "redis", "REDIS_URL")


@pytest.mark.parametrize("name", PROJECT_SETS)
def test_three_services_from_one_repository_and_dockerfile(
    graphs: dict[str, dict[str, Any]], all_rendered: dict[str, tuple[Path, Path]], name: str
) -> None:
    graph = graphs[name]
    project, _ = all_rendered[name]
    assert graph["name"] == project.name
    app = services(graph)
    assert set(app) == {"api", "worker", cron(name)}
    repository = {"type": "github", "repo": f"OWNER/{project.name}", "branch": "main"}
    assert [service["source"] for service in app.values()] == [repository] * 3
    dockerfile = {"builder": "DOCKERFILE", "dockerfilePath": "Dockerfile"}
    assert [service["build"] for service in app.values()] == [dockerfile] * 3
    assert (project / "Dockerfile").is_file()


@pytest.mark.parametrize("name", PROJECT_SETS)
def test_start_commands_are_the_dockerfile_and_compose_ones(
    graphs: dict[str, dict[str, Any]], all_rendered: dict[str, tuple[Path, Path]], name: str
) -> None:
    project, _ = all_rendered[name]
    [cmd] = [
        line.removeprefix("CMD ")
        for line in (project / "Dockerfile").read_text().splitlines()
        if line.startswith("CMD ")
    ]
    compose = yaml.safe_load((project / "compose.yaml").read_text())["services"]
    # compose's api runs the image's CMD; the other two name their own command.
    assert "command" not in compose["api"]
    expected = {
        "api": shlex.join(json.loads(cmd)),
        "worker": shlex.join(compose["worker"]["command"]),
        cron(name): shlex.join(compose[cron(name)]["command"]),
    }
    actual = {service: d["startCommand"] for service, d in deploy(graphs[name]).items()}
    assert actual == expected


@pytest.mark.parametrize("name", PROJECT_SETS)
def test_cron_runs_on_the_answered_schedule_and_a_failed_run_is_retried(
    graphs: dict[str, dict[str, Any]], name: str
) -> None:
    by_service = deploy(graphs[name])
    if name == STARTER:
        schedule = STARTER_SCHEDULE
    else:
        schedule = answer(PROJECT_SETS[name], "weekly_reset_schedule")
    assert by_service[cron(name)]["cronSchedule"] == schedule
    # A failed run (exit 1) is retried the same day, a bounded number of times.
    assert by_service[cron(name)]["restartPolicyType"] == "ON_FAILURE"
    assert 1 <= by_service[cron(name)]["restartPolicyMaxRetries"] <= 10
    for other in ("api", "worker"):  # long-running: Railway's default, restart on failure
        assert "cronSchedule" not in by_service[other]
        assert "restartPolicyType" not in by_service[other]


@pytest.mark.parametrize("name", PROJECT_SETS)
def test_one_replica_of_each_by_default_and_never_of_the_cron(
    graphs: dict[str, dict[str, Any]], name: str
) -> None:
    by_service = deploy(graphs[name])
    assert by_service["api"]["numReplicas"] == 1
    assert by_service["worker"]["numReplicas"] == 1
    assert "numReplicas" not in by_service[cron(name)]


def test_api_and_worker_replicas_come_from_the_environment(
    rendered: dict[str, tuple[Path, Path]],
) -> None:
    project, _ = rendered["default"]
    with pytest.MonkeyPatch.context() as env:
        env.setenv("RAILWAY_API_REPLICAS", "3")
        env.setenv("RAILWAY_WORKER_REPLICAS", "2")
        by_service = deploy(evaluate(project / ".railway" / "railway.py"))
    assert by_service["api"]["numReplicas"] == 3
    assert by_service["worker"]["numReplicas"] == 2
    assert "numReplicas" not in by_service["cron-weekly"]


@pytest.mark.parametrize("name", PROJECT_SETS)
def test_only_the_api_is_health_checked_public_and_migrates(
    graphs: dict[str, dict[str, Any]], name: str
) -> None:
    app = services(graphs[name])
    api = app["api"]
    assert api["deploy"]["healthcheckPath"] == "/health/ready"
    assert api["deploy"]["preDeployCommand"] == ["alembic upgrade head"]
    # The public domain routes to the port the api listens on ($PORT).
    [(domain, target)] = api["networking"]["serviceDomains"].items()
    assert domain.endswith(".up.railway.app")
    assert api["variables"]["PORT"] == {"type": "literal", "value": str(target["port"])}
    for other in ("worker", cron(name)):
        assert "healthcheckPath" not in app[other]["deploy"]
        assert "preDeployCommand" not in app[other]["deploy"]
        assert "networking" not in app[other]


@pytest.mark.parametrize("name", PROJECT_SETS)
def test_urls_reference_the_databases(graphs: dict[str, dict[str, Any]], name: str) -> None:
    def references(service: Resource) -> dict[str, Any]:
        variables = service["variables"].items()
        return {key: value for key, value in variables if value["type"] == "reference"}

    app = services(graphs[name])
    both = {"DATABASE_URL": POSTGRES_URL, "REDIS_URL": REDIS_URL}
    assert references(app["api"]) == both
    assert references(app["worker"]) == both
    assert references(app[cron(name)]) == {"DATABASE_URL": POSTGRES_URL}


@pytest.mark.parametrize("name", PROJECT_SETS)
def test_only_the_api_gets_the_chosen_providers_settings(
    graphs: dict[str, dict[str, Any]], name: str
) -> None:
    app = services(graphs[name])
    provider = answer(PROJECT_SETS[name], "auth_provider")
    auth = set().union(*AUTH_SETTINGS.values())
    assert set(app["api"]["variables"]) & auth == AUTH_SETTINGS[provider]
    assert set(app["worker"]["variables"]) & auth == set()
    assert set(app[cron(name)]["variables"]) & auth == set()


def test_email_claims_reach_the_api_only_when_set(
    rendered: dict[str, tuple[Path, Path]], graphs: dict[str, dict[str, Any]]
) -> None:
    assert not set(services(graphs["default"])["api"]["variables"]) & set(EMAIL_CLAIMS)
    project, _ = rendered["default"]
    claims = {name: f"https://kudos.example/{name.lower()}" for name in EMAIL_CLAIMS}
    with pytest.MonkeyPatch.context() as env:
        for name, value in claims.items():
            env.setenv(name, value)
        app = services(evaluate(project / ".railway" / "railway.py"))
    literals = {name: {"type": "literal", "value": value} for name, value in claims.items()}
    assert {name: app["api"]["variables"].get(name) for name in EMAIL_CLAIMS} == literals
    assert not set(app["worker"]["variables"]) & set(EMAIL_CLAIMS)


def test_observability_settings_reach_every_service_only_when_set(
    rendered: dict[str, tuple[Path, Path]], graphs: dict[str, dict[str, Any]]
) -> None:
    for app in services(graphs["default"]).values():
        assert not set(app.get("variables", {})) & set(OBSERVABILITY)
    project, _ = rendered["default"]
    values = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": "https://otlp.example:4318",
        "OTEL_EXPORTER_OTLP_HEADERS": "authorization=Basic%20x",
        "SENTRY_DSN": "https://key@sentry.example/1",
    }
    with pytest.MonkeyPatch.context() as env:
        for name, value in values.items():
            env.setenv(name, value)
        app = services(evaluate(project / ".railway" / "railway.py"))
    literals = {name: {"type": "literal", "value": value} for name, value in values.items()}
    for name in ("api", "worker", "cron-weekly"):
        assert {key: app[name]["variables"].get(key) for key in values} == literals, name


def test_evaluated_with_the_sdk_version_users_install(
    rendered: dict[str, tuple[Path, Path]],
) -> None:
    project, _ = rendered["default"]
    lines = (project / ".railway" / "requirements.txt").read_text().splitlines()
    [pinned] = [Requirement(line) for line in lines if line.strip() and not line.startswith("#")]
    assert pinned.name == "railway-sdk"
    assert importlib.metadata.version("railway-sdk") in pinned.specifier
    # A deploy tool, not an app dependency: the generated project never installs it.
    pyproject = tomllib.loads((project / "pyproject.toml").read_text())
    groups = pyproject.get("dependency-groups", {}).values()
    requirements = [*pyproject["project"]["dependencies"], *(r for g in groups for r in g)]
    assert "railway-sdk" not in {Requirement(r).name for r in requirements}
