"""`python -m tools.demo --no-wait` as a person runs it: story told, URLs printed, cleaned up."""

import re
import sys
from pathlib import Path

import psycopg
import pytest

from .helpers import POSTGRES, TEMPLATE, run

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


def test_demo_tells_the_story_prints_the_urls_and_cleans_up() -> None:
    done = run([sys.executable, "-m", "tools.demo", "--no-wait", "--port", "0"], cwd=TEMPLATE)
    output = done.stdout + done.stderr

    assert done.returncode == 0, output
    assert "every check passed" in output
    [api] = re.findall(r"^  API +(http://127\.0\.0\.1:\d+)$", output, re.MULTILINE)
    assert f"  API docs       {api}/docs\n" in output
    assert f'curl -s -H "Authorization: Bearer $TOKEN" {api}/admin/users' in output
    assert re.search(r"export TOKEN=[\w-]+\.[\w-]+\.[\w-]+$", output, re.MULTILINE), output
    # api and worker stopped cleanly, the database dropped, the folder removed.
    assert re.search(r"^api stopped [\d.]+ s after SIGTERM \(exit (0|-15)\)$", output, re.M)
    assert re.search(r"^worker stopped [\d.]+ s after SIGTERM \(exit (0|-15)\)$", output, re.M)
    [database] = re.findall(r"^dropping the database (\w+)$", output, re.MULTILINE)
    with psycopg.connect(POSTGRES) as admin:
        row = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone()
    assert row is None, f"{database} was not dropped"
    [folder] = re.findall(r"^removed (/\S+)$", output, re.MULTILINE)
    assert not Path(folder).exists()
