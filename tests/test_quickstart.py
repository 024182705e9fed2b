"""The generated README's quickstart, pasted top to bottom into a fresh render.

Its shell blocks run as written, with three stated substitutions: the api's port
(`localhost:8000` and `dev --port`, a free one here), and the database and queue named
in the environment (which wins over `.env`), so the run touches nobody's data. The
stack's command runs in the background in its own process group, as in a terminal; the
other blocks run in one bash (the second terminal), every request with
`--fail-with-body`, so any 4xx or 5xx fails it. Then the worker must have done the jobs
the requests asked for, and a Ctrl-C (SIGINT to the group) must stop the api and the
worker. Prints the time from the render to the first successful request.
"""

import contextlib
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest

from .helpers import clean_env, render_cookiecutter

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
PACKAGE = "kudos"
STEP = "@@step "


def quickstart_blocks(readme: str) -> list[str]:
    section = readme.split("\n## Quickstart\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^```sh\n(.*?)^```$", section, re.S | re.M)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def get(url: str, token: str | None = None) -> Any:
    """The JSON answer of a GET; OSError when nothing answers (URLError is one)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 (http://127.0.0.1 only)
    with urllib.request.urlopen(request, timeout=10) as r:  # noqa: S310
        return json.loads(r.read())


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def with_steps(block: str) -> str:
    """Each `# comment` line that opens a request also prints a marker, to split output."""
    lines = []
    for line in block.splitlines():
        if line.startswith("# "):
            lines.append(f"echo; echo {shlex.quote(STEP + line[2:])}")
        lines.append(line)
    return "\n".join(lines)


def test_readme_quickstart_runs_as_written(tmp_path: Path) -> None:
    started = time.monotonic()
    (tmp_path / "out").mkdir()
    project = render_cookiecutter({}, tmp_path / "out")
    port = free_port()
    blocks = [
        block.replace("localhost:8000", f"localhost:{port}")
        for block in quickstart_blocks((project / "README.md").read_text())
    ]
    assert len(blocks) == 3, blocks
    setup, first_request, flows = blocks
    *prepare, stack_command = setup.strip().splitlines()
    assert stack_command.startswith(f"uv run python -m {PACKAGE}.cli dev"), stack_command
    name = f"template_quickstart_{uuid.uuid4().hex[:8]}"
    env = clean_env(
        DATABASE_URL=f"postgresql://postgres@127.0.0.1:5432/{name}",
        QUEUE_NAME=f"quickstart-{name}",
    )
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", "\n".join(prepare)],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    log = tmp_path / "stack.log"
    with log.open("w") as out:
        stack = subprocess.Popen(
            ["bash", "-c", f"{stack_command} --port {port}"],
            cwd=project,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                get(f"http://127.0.0.1:{port}/health")
                break
            except OSError:
                pass
            assert stack.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        script = "\n".join(
            [
                first_request,
                'echo; echo "@@first-request $(date +%s.%N)"',
                with_steps(flows),
                "echo; declare -p TOKEN BRUNO IMPORT",
            ]
        )
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, f"{done.stdout}\n{done.stderr}\n{log.read_text()}"
        output = done.stdout
        first_at = float(re.search(r"@@first-request (\S+)", output)[1])  # type: ignore[index]
        render_to_first = first_at - (time.time() - (time.monotonic() - started))
        print(f"quickstart: fresh render to first successful request: {render_to_first:.1f} s")
        me = output.split("@@first-request")[0]
        assert '"email":"ana@acme.example"' in me, me
        assert '"role":"admin"' in me, me
        assert "created user ana@acme.example" in done.stderr, done.stderr
        # Each request's answer, by the first two words of the comment above it.
        steps = {
            " ".join(part.split(" ", 2)[:2]): part.split("\n", 1)[1]
            for part in output.split(STEP)[1:]
        }
        assert '"status":' in steps["Import colleagues"], steps
        assert '"coins":10' in steps["Send Bruno"], steps
        ledger = steps["Read Ana's"]
        assert '"kind":"DEBIT"' in ledger, ledger
        assert '"kind":"RESET"' in ledger, ledger
        assert '"status_url":"/admin/jobs/' in steps["Reset the"], steps
        variables = dict(re.findall(r'declare -- (\w+)="([^"]*)"', output))
        token, import_url = variables["TOKEN"], variables["IMPORT"]
        reset_url = re.search(r'"status_url":"([^"]+)"', steps["Reset the"])[1]  # type: ignore[index]
        # The worker of the stack did what the requests handed it.
        deadline = time.monotonic() + 60
        for url, finished in ((import_url, "completed"), (reset_url, "complete")):
            while True:
                body = get(f"http://127.0.0.1:{port}{url}", token)
                if body["status"] == finished:
                    break
                assert time.monotonic() < deadline, (body, log.read_text())
                time.sleep(0.2)
        colleagues = get(f"http://127.0.0.1:{port}/admin/users", token)
        emails = {user["email"] for user in colleagues["items"]}
        assert {"bruno@acme.example", "carla@acme.example"} <= emails, colleagues

        os.killpg(stack.pid, signal.SIGINT)  # Ctrl-C in the terminal
        assert stack.wait(timeout=60) == 0, log.read_text()
        # Checked before the group is killed below: the Ctrl-C alone stopped them.
        output = log.read_text()
        pids = [int(p) for p in re.findall(r"(?:api|worker) started \(pid=(\d+)\)", output)]
        assert len(pids) == 2, output
        assert not any(alive(pid) for pid in pids), output
        with pytest.raises(urllib.error.URLError, match="Connection refused"):
            get(f"http://127.0.0.1:{port}/health")
    finally:
        # The whole group, whatever failed: the shell may be gone with honcho, the api or
        # the worker still running (a failed assertion above, a stuck Ctrl-C).
        with contextlib.suppress(ProcessLookupError):
            os.killpg(stack.pid, signal.SIGKILL)
        stack.wait()
        with psycopg.connect(POSTGRES, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
