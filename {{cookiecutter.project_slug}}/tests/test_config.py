import os

import pytest
from pydantic import ValidationError
from sqlalchemy import make_url

from {{ cookiecutter.package_name }}.lib.config import Settings

from .conftest import POSTGRES_URL


@pytest.mark.parametrize(
    "given",
    [
        "postgresql://u:p@db.railway.internal:5432/railway",
        "postgres://u:p@db.railway.internal:5432/railway",
        "postgresql+psycopg://u:p@db.railway.internal:5432/railway",
    ],
)
def test_railway_and_heroku_urls_work_as_given(given: str) -> None:
    settings = Settings(database_url=given)
    assert settings.database_url == "postgresql+psycopg://u:p@db.railway.internal:5432/railway"


@pytest.mark.parametrize("given", ["mysql://root@db/app", "not a url"])
def test_other_urls_are_refused(given: str) -> None:
    with pytest.raises(ValidationError, match="DATABASE_URL"):
        Settings(database_url=given)


def test_the_tests_never_use_the_development_database_or_redis(settings: Settings) -> None:
    """The session's database is its own, created through the server's maintenance
    database; its Redis is another database number than the development stack's."""
    development = Settings(_env_file=None)  # the defaults .env.example documents
    assert make_url(settings.database_url).database != make_url(development.database_url).database
    assert make_url(POSTGRES_URL).database == "postgres"
    if "TEST_REDIS_URL" not in os.environ:
        assert settings.redis_url != development.redis_url
        assert settings.redis_url.endswith("/15")
