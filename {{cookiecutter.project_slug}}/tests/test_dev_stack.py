"""`cli.py dev`: the whole development stack in one command, stopped by Ctrl-C."""

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from {{ cookiecutter.package_name }} import cli
from {{ cookiecutter.package_name }}.lib.config import get_settings

from .api_process import free_port
from .conftest import PROJECT_ROOT, drop_database, with_database


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _wait_for(predicate: Callable[[], object], what: str, deadline: float, log: Path) -> None:
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not happen in time; output:\n{log.read_text()}")
        time.sleep(0.1)


def test_dev_runs_the_api_and_the_worker_until_ctrl_c(
    process_env: dict[str, str], tmp_path: Path
) -> None:
    name = f"dev_stack_{uuid.uuid4().hex[:8]}"
    port = free_port()
    env = {
        **process_env,
        "ENVIRONMENT": "development",
        "DATABASE_URL": with_database(process_env["DATABASE_URL"], name),
    }
    log = tmp_path / "dev.log"
    with log.open("w") as out:
        stack = subprocess.Popen(
            [sys.executable, "-m", cli.__name__, "dev", "--port", str(port)],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 90

        def healthy() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200
            except httpx.TransportError:
                return False

        _wait_for(healthy, "/health answering", deadline, log)
        started = re.compile(r"worker +\| .* INFO arq.worker: Starting worker")
        _wait_for(lambda: started.search(log.read_text()), "the worker starting", deadline, log)
        stack.send_signal(signal.SIGINT)
        assert stack.wait(timeout=30) == 0, log.read_text()
    finally:
        if stack.poll() is None:
            stack.kill()
            stack.wait()
        drop_database(name)
    output = log.read_text()
    assert f"dev: created the database {name}" in output
    pids = [int(pid) for pid in re.findall(r"(?:api|worker) started \(pid=(\d+)\)", output)]
    assert len(pids) == 2, output
    assert not any(_alive(pid) for pid in pids), output
    assert re.search(r"api +\| .* INFO uvicorn.error: Uvicorn running", output), output
    assert re.search(r"worker +\| .* INFO arq.worker: shutdown on SIGTERM", output), output
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{port}/health")


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
