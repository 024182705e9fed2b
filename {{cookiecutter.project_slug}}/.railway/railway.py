"""Railway Infrastructure as Code for {{ cookiecutter.project_slug }}.

Evaluated by the Railway CLI (`railway config plan` / `railway config apply`),
which imports this file, calls `main()` and serialises the returned project.
Requires `pip install railway-sdk` (see .railway/requirements.txt).

One GitHub repository, one Dockerfile, three services that differ only in their
start command: api (public, health-checked), worker and {% if cookiecutter.examples == "kudos" %}cron-weekly{% else %}cron{% endif %}.
"""

import os

from railway_sdk import define_railway, github, postgres, project, redis, service

PROJECT = "{{ cookiecutter.project_slug }}"
PACKAGE = "{{ cookiecutter.package_name }}"

# GitHub repository Railway builds from, as "owner/name".
# Replace OWNER with your GitHub user/org, or set RAILWAY_GITHUB_REPO when
# running `railway config plan|apply`.
GITHUB_REPO = os.environ.get("RAILWAY_GITHUB_REPO", f"OWNER/{PROJECT}")
GITHUB_BRANCH = os.environ.get("RAILWAY_GITHUB_BRANCH", "main")

# Railway-provided public domain for the api (<name>.up.railway.app). It must be
# free on Railway; after `railway config pull` keep whatever Railway generated.
API_DOMAIN = os.environ.get("RAILWAY_API_DOMAIN", f"{PROJECT}-api-production.up.railway.app")
# Port the api listens on inside the container. The domain routes to this port and
# the api's PORT variable says the same, so uvicorn (`--port $PORT`), Railway's
# health check and the domain always agree.
API_PORT = 8080

# Every app service builds the repository's root Dockerfile.
DOCKER_BUILD = {"builder": "DOCKERFILE", "dockerfilePath": "Dockerfile"}

# The Dockerfile's CMD: runs `alembic upgrade head`, then execs uvicorn on $PORT
# (WEB_CONCURRENCY processes, a variable of the api service: default 1).
API_START = "sh ./scripts/docker-entrypoint.sh"
WORKER_START = f"arq {PACKAGE}.worker.WorkerSettings"
CRON_START = f"python -m {PACKAGE}.scripts.{% if cookiecutter.examples == "kudos" %}run_weekly_reset{% else %}deactivate_dormant_users{% endif %}"
# The api refuses to start without authentication settings. They are read from your
# environment when you run `railway config plan|apply` (the same names as .env.example),
# so no tenant or audience is committed here.
{%- if cookiecutter.auth_provider == "auth0" %}
AUTH_VARIABLES = ("AUTH0_DOMAIN", "AUTH_AUDIENCE")
{%- else %}
AUTH_VARIABLES = ("AUTH_ISSUER", "AUTH_JWKS_URL", "AUTH_AUDIENCE")
{%- endif %}
AUTH_ENV = {name: os.environ.get(name, f"set-{name}-before-deploying") for name in AUTH_VARIABLES}
{%- if cookiecutter.examples == "kudos" %}
# Optional: which token claims carry a verified email, for the first sign-in of a user an
# admin or an import created (README, "First sign-in"). Passed on only when you set them.
{%- else %}
# Optional: which token claims carry a verified email, for the first sign-in of a user an
# admin created (README, "First sign-in"). Passed on only when you set them.
{%- endif %}
AUTH_ENV |= {
    name: os.environ[name]
    for name in ("AUTH_EMAIL_CLAIM", "AUTH_EMAIL_VERIFIED_CLAIM")
    if name in os.environ
}
{%- if cookiecutter.examples == "kudos" %}
# E-mail: the worker sends through SMTP_URL (your provider's SMTP server, e.g.
# smtp://apikey:<key>@smtp.sendgrid.net:587?starttls or smtps://user:pass@host:465) as
# MAIL_FROM, linking invitations to APP_URL; the api names Message-IDs after MAIL_FROM.
# Read from your environment like the auth settings; until SMTP_URL is set, the worker
# retries every message against a host whose name says what to do, and sends nothing.
MAIL_ENV = {
    "SMTP_URL": os.environ.get("SMTP_URL", "smtp://set-SMTP_URL-before-deploying:587?starttls"),
    **{name: os.environ[name] for name in ("MAIL_FROM", "APP_URL") if name in os.environ},
}
# Optional worker settings (.env.example), passed on only when you set them.
MAIL_WORKER_ENV = {
    name: os.environ[name]
    for name in ("MAIL_RATE_PER_SECOND", "MAIL_MAX_IN_FLIGHT")
    if name in os.environ
}
{%- endif %}
# Optional, all three services (docs/operations.md): traces and metrics to a hosted OTLP
# backend, error reports to Sentry. Passed on only when set where `railway config
# plan|apply` runs; Railway itself sets RAILWAY_GIT_COMMIT_SHA, the release they carry.
OBSERVABILITY_VARIABLES = (
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_TRACES_SAMPLER",
    "OTEL_TRACES_SAMPLER_ARG",
    "SENTRY_DSN",
)
OBSERVABILITY_ENV = {
    name: os.environ[name] for name in OBSERVABILITY_VARIABLES if name in os.environ
}
# Replicas of the long-running services, from RAILWAY_API_REPLICAS and
# RAILWAY_WORKER_REPLICAS where `railway config plan|apply` runs (default 1). Both may
# run several copies: the api keeps no state between requests, and a job runs on one
# worker at a time (arq's in-progress key; {% if cookiecutter.examples == "kudos" %}imports and resets also lock in Postgres{% else %}an export also locks its row in Postgres{% endif %}).
# The cron never gets replicas: it is a scheduled run, one per schedule (docs/deploy.md).
API_REPLICAS = int(os.environ.get("RAILWAY_API_REPLICAS", "1"))
WORKER_REPLICAS = int(os.environ.get("RAILWAY_WORKER_REPLICAS", "1"))
{%- if cookiecutter.examples == "kudos" %}
# Five fields, UTC (Railway runs cron schedules in UTC).
WEEKLY_RESET_SCHEDULE = "{{ cookiecutter.weekly_reset_schedule }}"
# Restarts of a failed weekly reset (Railway's free plan allows up to 10).
CRON_MAX_RETRIES = 5
{%- else %}
# Five fields, UTC (Railway runs cron schedules in UTC): daily, at a quiet hour.
DORMANT_USERS_SCHEDULE = "15 4 * * *"
# Restarts of a failed run (Railway's free plan allows up to 10).
CRON_MAX_RETRIES = 5
{%- endif %}


@define_railway
def main(ctx=None):
    db = postgres("Postgres")
    cache = redis("Redis")

    source = github(GITHUB_REPO, branch=GITHUB_BRANCH)

    api = service(
        "api",
        source=source,
        build=DOCKER_BUILD,
        start=API_START,
        # Migrations run once per deploy before the new version starts; the
        # entrypoint's own `alembic upgrade head` then finds nothing to do.
        preDeploy="alembic upgrade head",
        healthcheck="/health/ready",
        replicas=API_REPLICAS,
        deploy={"drainingSeconds": 30},
        networking={"serviceDomains": {API_DOMAIN: {"port": API_PORT}}},
        env={
            "DATABASE_URL": db.env.DATABASE_URL,
            "REDIS_URL": cache.env.REDIS_URL,
            "PORT": str(API_PORT),
            "ENVIRONMENT": "production",
            **AUTH_ENV,
{%- if cookiecutter.examples == "kudos" %}
            **{name: value for name, value in MAIL_ENV.items() if name == "MAIL_FROM"},
{%- endif %}
            **OBSERVABILITY_ENV,
        },
    )

    worker = service(
        "worker",
        source=source,
        build=DOCKER_BUILD,
        start=WORKER_START,
        # No healthcheck: the worker serves no HTTP. On SIGTERM arq lets running
        # jobs finish for 20 s (WORKER_SHUTDOWN_WAIT_SECONDS), inside these 30 s.
        replicas=WORKER_REPLICAS,
        deploy={"drainingSeconds": 30},
        env={
            "DATABASE_URL": db.env.DATABASE_URL,
            "REDIS_URL": cache.env.REDIS_URL,
            "ENVIRONMENT": "production",
{%- if cookiecutter.examples == "kudos" %}
            **MAIL_ENV,
            **MAIL_WORKER_ENV,
{%- endif %}
            **OBSERVABILITY_ENV,
        },
    )
{%- if cookiecutter.examples == "kudos" %}

    cron = service(
        "cron-weekly",
        source=source,
        build=DOCKER_BUILD,
        start=CRON_START,
        # The job runs once and exits (0 done, non-zero when a company due this week
        # was left unreset). A failed run is restarted a few times: each run continues
        # where the last stopped and never resets a wallet twice in a week. What the
        # retries do not finish, the worker's catch-up does (docs/cron.md).
        deploy={
            "cronSchedule": WEEKLY_RESET_SCHEDULE,
{%- else %}

    cron = service(
        "cron",
        source=source,
        build=DOCKER_BUILD,
        start=CRON_START,
        # The job runs once and exits (0 done, non-zero when the database failed it). It
        # is one idempotent statement: a restarted run deactivates nobody twice.
        deploy={
            "cronSchedule": DORMANT_USERS_SCHEDULE,
{%- endif %}
            "restartPolicyType": "ON_FAILURE",
            "restartPolicyMaxRetries": CRON_MAX_RETRIES,
        },
        env={
            "DATABASE_URL": db.env.DATABASE_URL,
            "ENVIRONMENT": "production",
            **OBSERVABILITY_ENV,
        },
    )

    return project(PROJECT, resources=[db, cache, api, worker, cron])
