"""`cli.py dev`: the whole development stack in one command.

Running the stack (database created, migrated, api and worker up, both stopped by
Ctrl-C) is the template's test of this README's quickstart, which pastes it as written
into a fresh render (tests/test_quickstart.py in the template): here, only what it says
when a server it needs does not answer.
"""

import pytest

from {{ cookiecutter.package_name }} import cli
from {{ cookiecutter.package_name }}.lib.config import get_settings

from .api_process import free_port
from .conftest import PROJECT_ROOT


@pytest.mark.parametrize(
    ("setting", "url", "named"),
    [
        ("DATABASE_URL", "postgresql://postgres@127.0.0.1:1/dev", "Postgres"),
        ("REDIS_URL", "redis://127.0.0.1:1/0", "Redis"),
    ],
)
def test_dev_names_the_server_that_does_not_answer(
    process_env: dict[str, str],
    setting: str,
    url: str,
    named: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for key, value in {**process_env, "ENVIRONMENT": "development", setting: url}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(PROJECT_ROOT)
    get_settings.cache_clear()
    try:
        assert cli.main(["dev", "--port", str(free_port())]) == 1
    finally:
        get_settings.cache_clear()
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1, err
    assert f"{named} does not answer at 127.0.0.1:1" in err
    assert "apt install" in err
    assert "brew install" in err
    assert "docker compose up -d postgres redis" in err
