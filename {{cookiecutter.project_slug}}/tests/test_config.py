import pytest
from pydantic import ValidationError

from {{ cookiecutter.package_name }}.lib.config import Settings


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
