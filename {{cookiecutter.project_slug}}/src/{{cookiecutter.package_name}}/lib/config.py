"""Settings for every process, read from the environment (and `.env` locally)."""

from functools import lru_cache
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SQLALCHEMY_SCHEME = "postgresql+psycopg"


def to_sqlalchemy_url(url: str) -> str:
    """Accept the URLs Railway and Heroku hand out (`postgresql://`, `postgres://`)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError("DATABASE_URL must look like postgresql://user:password@host:5432/db")
    if scheme in {"postgres", "postgresql", "postgresql+psycopg"}:
        return f"{SQLALCHEMY_SCHEME}://{rest}"
    raise ValueError(f"DATABASE_URL scheme '{scheme}' is not supported; use postgresql://")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    environment: Literal["development", "production", "test"] = "development"
    database_url: str = "postgresql://postgres@127.0.0.1:5432/{{ cookiecutter.package_name }}"
    redis_url: str = "redis://127.0.0.1:6379/0"
    # One Redis can serve several deployments (or test runs) with distinct queues.
    queue_name: str = "{{ cookiecutter.project_slug }}:queue"
    database_pool_size: int = Field(default=5, ge=1)
    # Readiness checks must answer before Railway's health check gives up.
    health_timeout_seconds: float = Field(default=2.0, gt=0)
    log_level: str = "INFO"

    @field_validator("database_url")
    @classmethod
    def _sqlalchemy_url(cls, value: str) -> str:
        return to_sqlalchemy_url(value)


@lru_cache
def get_settings() -> Settings:
    return Settings()
