"""Each rendered project, installed in a fresh virtualenv, passes its own checks and tests."""

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from .helpers import ANSWER_SETS, clean_env, run

pytestmark = pytest.mark.slow

# How long the project's whole suite may take before it counts as hung: it takes 5 to
# 10 minutes on two cores, depending on what else runs there.
SUITE_TIMEOUT_SECONDS = 1800


def uv_run(project: Path, *args: str, timeout: float = 600, **env: str) -> tuple[int, str]:
    done = run(["uv", "run", "--frozen", *args], cwd=project, env=clean_env(**env), timeout=timeout)
    return done.returncode, done.stdout + done.stderr


class ProjectChecks:
    """The checks of one answer set's installed render.

    A class per answer set, so that pytest-xdist's `--dist loadscope` gives each its own
    group: the two projects' suites then run at once on two workers instead of one after
    the other on one.
    """

    answers: str

    @pytest.fixture(scope="class")
    @classmethod
    def project(cls, installed_projects: Callable[[str], Path]) -> Path:
        """The answer set's render, installed once for the run (`uv sync --frozen`)."""
        return installed_projects(cls.answers)

    def test_lock_file_is_consistent(self, project: Path) -> None:
        done = run(["uv", "lock", "--check"], cwd=project, env=clean_env())
        assert done.returncode == 0, done.stderr

    def test_ruff_check_and_format(self, project: Path) -> None:
        code, output = uv_run(project, "ruff", "check", ".")
        assert code == 0, output
        code, output = uv_run(project, "ruff", "format", "--check", ".")
        assert code == 0, output

    def test_mypy_strict(self, project: Path) -> None:
        code, output = uv_run(project, "mypy")
        assert code == 0, output
        assert "Success: no issues found" in output

    def test_migrations_apply_and_match_the_models(self, project: Path, database: str) -> None:
        code, output = uv_run(project, "alembic", "upgrade", "head", DATABASE_URL=database)
        assert code == 0, output
        code, output = uv_run(project, "alembic", "check", DATABASE_URL=database)
        assert code == 0, output
        assert "No new upgrade operations detected" in output

    def test_generated_test_suite_passes(self, project: Path) -> None:
        args = ("pytest", "-q", "-p", "no:cacheprovider")
        code, output = uv_run(project, *args, timeout=SUITE_TIMEOUT_SECONDS)
        assert code == 0, output
        summary = output.strip().splitlines()[-1]
        assert " passed" in summary
        assert "failed" not in summary
        assert "skipped" not in summary
        assert "error" not in summary

    def test_benchmark_runs_on_a_small_dataset(self, project: Path) -> None:
        code, output = uv_run(
            project,
            "python",
            "bench/weekly_reset.py",
            "--wallets",
            "2000",
            "--companies",
            "5",
            "--repeat",
            "1",
        )
        assert code == 0, output
        assert "ratio" in output.lower()

    def test_reset_under_load_benchmark_runs_on_a_small_dataset(self, project: Path) -> None:
        code, output = uv_run(
            project,
            "python",
            "bench/reset_under_load.py",
            "--wallets",
            "3000",
            "--companies",
            "3",
            "--senders",
            "10",
            "--rate",
            "40",
            "--before",
            "1",
        )
        assert code == 0, output
        ratio = r"^ratio \(under traffic / idle\): \d+\.\d\d$"
        assert re.search(ratio, output, re.MULTILINE), output
        for phase in ("before", "during"):
            assert re.search(rf"^  {phase} +[\d,]+ requests +p50 .* 5xx 0 ", output, re.M), output
        assert "checked: every wallet equals its ledger" in output

    def test_csv_import_benchmark_runs_on_a_small_dataset(self, project: Path) -> None:
        code, output = uv_run(project, "python", "bench/csv_import.py", "--rows", "5000")
        assert code == 0, output
        assert "ratio" in output.lower()
        assert "worker peak RSS" in output

    def test_jobs_benchmark_runs_on_a_small_dataset(self, project: Path) -> None:
        args = ("--jobs", "200", "--pickup", "20", "--idle-seconds", "0.5")
        code, output = uv_run(project, "python", "bench/jobs.py", *args)
        assert code == 0, output
        for label in (r"0\.5 s \(arq default\)", r"0\.02 s \(ours\)"):
            row = rf"^{label} +[\d.]+ +[\d.]+ +[\d.]+ +[\d.]+ +[\d,]+$"
            assert re.search(row, output, re.M), output

    def test_scale_out_benchmark_runs_on_a_small_dataset(self, project: Path) -> None:
        args = ("--workers", "1,2", "--jobs", "100", "--imports", "2", "--rows", "500")
        code, output = uv_run(project, "python", "bench/scale_out.py", *args)
        assert code == 0, output
        assert re.search(r"^2 +[\d,]+ +[\d.]+ +[\d.]+s +[\d.]+$", output, re.M), output
        assert "checked: every import completed in one attempt" in output

    def test_http_benchmark_runs_on_a_small_dataset(self, project: Path) -> None:
        code, output = uv_run(
            project,
            "python",
            "bench/http_api.py",
            "--senders",
            "10",
            "--requests",
            "200",
            "--concurrency",
            "4",
        )
        assert code == 0, output
        names = ("raw psycopg", "GET /health", "GET /me/wallet", "GET /me/wallet/transactions")
        for name in (*names, "POST /compliments"):
            line = rf"^{name} +200 requests +[\d,]+ req/s +p50 +[\d.]+ ms +p99 +[\d.]+ ms +\(CPU: "
            assert re.search(line, output, re.MULTILINE), output
        for ratio in ("compliments / health, requests/s", "compliments / raw psycopg, per second"):
            assert re.search(rf"^ratio \({ratio}\): \d+\.\d\d$", output, re.M), output
        assert re.search(r"^api: uvicorn, 2 processes, .* \d+ open at most", output, re.M), output
        by_processes = r"^POST /compliments by api processes: 1 -> [\d,]+ req/s, 2 -> "
        assert re.search(by_processes, output, re.M), output
        # The raw baseline's 200 and each api run's.
        assert "checked: 600 compliments stored (all 201)" in output


class TestDefaultAnswers(ProjectChecks):
    answers = "default"


class TestCustomAnswers(ProjectChecks):
    answers = "custom"


def test_every_answer_set_is_checked() -> None:
    checked = {cls.answers for cls in ProjectChecks.__subclasses__()}
    assert checked == set(ANSWER_SETS)
