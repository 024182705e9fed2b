"""Settings for every process, read from the environment (and `.env` locally)."""

from dataclasses import dataclass
from functools import lru_cache
from typing import Literal
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, field_validator
{%- if cookiecutter.examples == "kudos" %}
from pydantic_settings import BaseSettings, SettingsConfigDict

from . import smtp
{%- else %}
from pydantic_settings import BaseSettings, SettingsConfigDict
{%- endif %}

SQLALCHEMY_SCHEME = "postgresql+psycopg"


def to_sqlalchemy_url(url: str) -> str:
    """Accept the URLs Railway and Heroku hand out (`postgresql://`, `postgres://`)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError("DATABASE_URL must look like postgresql://user:password@host:5432/db")
    if scheme in {"postgres", "postgresql", "postgresql+psycopg"}:
        return f"{SQLALCHEMY_SCHEME}://{rest}"
    raise ValueError(f"DATABASE_URL scheme '{scheme}' is not supported; use postgresql://")


@dataclass(frozen=True)
class AuthSettings:
    """Where tokens come from: the issuer they name, the audience, and the signing keys."""

    issuer: str
    audience: str
    jwks_url: str


class AuthConfigError(ValueError):
    """The api cannot verify tokens with the settings it was given."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    # Unset means production: the development-only paths (`dev-token`, `file:` and
    # `http:` key sets) need ENVIRONMENT=development or test, said explicitly.
    environment: Literal["development", "production", "test"] = "production"
    database_url: str = Field(
        default="postgresql://postgres@127.0.0.1:5432/{{ cookiecutter.package_name }}",
    )
    redis_url: str = "redis://127.0.0.1:6379/0"
    # The queue's Redis key. It does not namespace arq's job and result keys
    # (`arq:job:<id>`): deployments sharing a Redis need their own database number.
    queue_name: str = "{{ cookiecutter.project_slug }}:queue"
    database_pool_size: int = Field(default=5, ge=1)
    # Connections a pool may open beyond DATABASE_POOL_SIZE under load, closed again
    # when returned (lib/database.py). 0: the pool is what the process uses, at most.
    database_max_overflow: int = Field(default=0, ge=0)
    # The api's database sessions only (0 turns one off): how long a statement may wait
    # for a lock {% if cookiecutter.examples == "kudos" %}(e.g. a wallet the weekly reset holds){% else %}(e.g. a row another transaction holds){% endif %} or run, and how long a session
    # may sit idle inside a transaction, before Postgres cancels it. A request cut short
    # answers 503 and gives its pooled connection back; the worker and cron set their own.
    database_lock_timeout_seconds: float = Field(default=2.0, ge=0)
    database_statement_timeout_seconds: float = Field(default=15.0, ge=0)
    database_idle_in_transaction_timeout_seconds: float = Field(default=30.0, ge=0)
{%- if cookiecutter.examples == "kudos" %}
    # Wallets the weekly reset changes per transaction (cron and worker): the longest a
    # compliment waits for the reset is about one batch.
    weekly_reset_batch_size: int = Field(default=5000, ge=1, le=100_000)
{%- endif %}
    # Readiness checks must answer before Railway's health check gives up.
    health_timeout_seconds: float = Field(default=2.0, gt=0)
    log_level: str = "INFO"
{%- if cookiecutter.examples == "kudos" %}
    # The largest CSV an admin may upload for a user import (the api streams it to Postgres).
    csv_import_max_bytes: int = Field(default=50 * 1024 * 1024, ge=1024)
    # Per company, at most this many imports pending or processing at once: one more is
    # refused (429 with Retry-After) before its file is read.
    csv_import_max_active_per_company: int = Field(default=3, ge=1)
    # The worker only: an uploaded file (personal data) is deleted when its import
    # finishes; one still unfinished this long after its upload is failed and deleted.
    csv_import_file_retention_hours: int = Field(default=24, ge=1)
{%- else %}
    # The worker only: a user export (personal data) is deleted this long after it was
    # asked for, finished or not (hourly).
    user_export_retention_hours: int = Field(default=24, ge=1)
    # The cron only: a user who never signed in is deactivated this many days after
    # being added (scripts/deactivate_dormant_users.py).
    dormant_user_days: int = Field(default=90, ge=1, le=3650)
{%- endif %}
    # Request bounds, the api only (lib/request_limits.py), checked before authentication:
    # the largest body of {% if cookiecutter.examples == "kudos" %}any other route{% else %}any route{% endif %} (413), and how long a body may take to arrive:
    # each wait for more at most REQUEST_READ_TIMEOUT_SECONDS, the whole body that plus a
    # second per REQUEST_MIN_BYTES_PER_SECOND received (408).
    request_max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    request_read_timeout_seconds: float = Field(default=10, gt=0)
    request_min_bytes_per_second: int = Field(default=16 * 1024, ge=1)
    # Serve the API's documentation (/docs, /redoc) and its schema (/openapi.json).
    api_docs_enabled: bool = True
    # The worker only: on SIGTERM, how long running jobs may finish before they are
    # cancelled (and run again by the next worker). Keep it below the platform's drain
    # time (Railway's drainingSeconds, compose's stop_grace_period: 30 s).
    worker_shutdown_wait_seconds: int = Field(default=20, ge=0)
    # The worker only: how long an idle worker waits before asking Redis for jobs again.
    # A job waits about half of it on average before it starts; an idle worker sends
    # Redis about one command per poll ({% if cookiecutter.examples == "kudos" %}bench/jobs.py measures both{% else %}the template's bench measured both{% endif %}).
    worker_poll_delay_seconds: float = Field(default=0.02, gt=0, le=5)
{%- if cookiecutter.examples == "kudos" %}
    # The worker only: `Idempotency-Key`s of POST /compliments older than this are purged
    # (hourly). Never below 24 h, the least a client may count on for its retries.
    idempotency_key_retention_hours: int = Field(default=24, ge=24)
    # E-mail (features/mail): the SMTP server the worker sends through, as
    # smtp://user:password@host:port (plain, upgraded with STARTTLS when the server offers
    # it; add ?starttls to require it) or smtps://... (TLS from the first byte, port 465).
    # The default is the local mail catcher (compose's Mailpit, web UI on port 8025).
    smtp_url: str = "smtp://127.0.0.1:1025"
    smtp_timeout_seconds: float = Field(default=30, gt=0)
    # The sender, an address or `Name <address>`; its domain names each Message-ID.
    mail_from: str = "no-reply@{{ cookiecutter.project_slug }}.example"
    # Where invitations tell people to sign in.
    app_url: str = "http://127.0.0.1:8000"
    # The worker only: messages per second each worker sends at most (0: no limit), and
    # how many it has claimed but not yet marked sent. A worker killed mid-batch sends at
    # most MAIL_MAX_IN_FLIGHT messages again; larger batches are fewer database writes.
    mail_rate_per_second: float = Field(default=0, ge=0)
    mail_max_in_flight: int = Field(default=50, ge=1, le=1000)
    # A claimed batch nobody marks (its worker died) is taken again after this long, plus
    # the time the rate limit gives the batch.
    mail_lease_seconds: float = Field(default=120, gt=0)
    # Temporary failures (SMTP 4xx, connection lost) retry after MAIL_RETRY_SECONDS
    # * 2**(attempt - 1), at most an hour apart; after MAIL_MAX_ATTEMPTS a message fails.
    mail_retry_seconds: float = Field(default=30, gt=0)
    mail_max_attempts: int = Field(default=10, ge=1)
{%- endif %}
    # Authentication (the api only). Auth0: AUTH0_DOMAIN and AUTH_AUDIENCE. Any other
    # OpenID provider: AUTH_ISSUER, AUTH_AUDIENCE and AUTH_JWKS_URL. See `auth_settings`.
    auth0_domain: str | None = None
    auth_issuer: str | None = None
    auth_audience: str | None = None
    auth_jwks_url: str | None = None
    # Seconds of clock skew tolerated on `exp` and `nbf`.
    auth_leeway_seconds: float = Field(default=30, ge=0, le=300)
    # Keys are refetched after this long, and on an unknown `kid` at most once per
    # AUTH_JWKS_MIN_REFRESH_SECONDS (so a flood of made-up key ids cannot hammer the provider).
    auth_jwks_cache_seconds: float = Field(default=3600, gt=0)
    auth_jwks_min_refresh_seconds: float = Field(default=30, ge=0)
    # The claims a token carries its email and whether the provider verified it in. A
    # subject no user has yet is linked, on its first sign-in, to the user with that email
    # (when verified). Auth0 access tokens carry them only as namespaced custom claims
    # added by an Action, see the README; e.g.
    # https://{{ cookiecutter.project_slug }}.example/email
    auth_email_claim: str = Field(default="email", min_length=1)
    auth_email_verified_claim: str = Field(default="email_verified", min_length=1)

    # Error reports (lib/error_reports.py): with SENTRY_DSN set, unhandled errors of the
    # three processes go to Sentry, personal data scrubbed; unset, the SDK is not loaded.
    sentry_dsn: str | None = None
    # The deployed version, on traces and error reports: SENTRY_RELEASE, else the commit
    # Railway deploys (RAILWAY_GIT_COMMIT_SHA, which it sets itself).
    release: str | None = Field(
        default=None, validation_alias=AliasChoices("SENTRY_RELEASE", "RAILWAY_GIT_COMMIT_SHA")
    )
    # The api only: serve Prometheus metrics on this port (unset: no endpoint). Keep it
    # off the public network (Railway routes the public domain to PORT only).
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    metrics_host: str = "::"

    @field_validator("database_url")
    @classmethod
    def _sqlalchemy_url(cls, value: str) -> str:
        return to_sqlalchemy_url(value)
{%- if cookiecutter.examples == "kudos" %}

    @field_validator("smtp_url")
    @classmethod
    def _smtp_url(cls, value: str) -> str:
        smtp.parse_smtp_url(value)  # ValueError saying what is wrong
        return value

    @field_validator("mail_from")
    @classmethod
    def _mail_from(cls, value: str) -> str:
        smtp.sender_domain(value)
        return value
{%- endif %}

    @property
    def is_development(self) -> bool:
        """True only when ENVIRONMENT says development or test: it defaults to production."""
        return self.environment in {"development", "test"}

    def auth_settings(self) -> AuthSettings:
        """The issuer, audience and JWKS URL, or AuthConfigError saying what is missing.

        Only the api needs them, so the worker and cron start without them; the api
        refuses to start instead (there is no way to run it without authentication).
        """
        problems: list[str] = []
        issuer, jwks_url = self.auth_issuer, self.auth_jwks_url
        if self.auth0_domain:
            if issuer or jwks_url:
                problems.append("set AUTH0_DOMAIN or AUTH_ISSUER + AUTH_JWKS_URL, not both")
            domain = self.auth0_domain.strip().removeprefix("https://").strip("/")
            issuer = f"https://{domain}/"
            jwks_url = f"https://{domain}/.well-known/jwks.json"
        elif not (issuer and jwks_url):
            problems.append(
                "set AUTH0_DOMAIN (Auth0) or both AUTH_ISSUER and AUTH_JWKS_URL (other providers)"
            )
        if not self.auth_audience:
            problems.append("set AUTH_AUDIENCE (the API identifier tokens are issued for)")
        if jwks_url:
            scheme = urlsplit(jwks_url).scheme
            if scheme not in {"https", "http", "file"}:
                problems.append(f"AUTH_JWKS_URL scheme '{scheme}' is not https, http or file")
            elif scheme != "https" and not self.is_development:
                problems.append(
                    "AUTH_JWKS_URL must be an https:// URL unless ENVIRONMENT is development "
                    "or test (unset means production)"
                )
        if problems or not (issuer and jwks_url and self.auth_audience):
            raise AuthConfigError("authentication is not configured: " + "; ".join(problems))
        return AuthSettings(issuer=issuer, audience=self.auth_audience, jwks_url=jwks_url)


@lru_cache
def get_settings() -> Settings:
    return Settings()
