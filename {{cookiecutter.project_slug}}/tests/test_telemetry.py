"""Traces, metrics and trace ids in the logs, from the real processes to a real OTLP receiver."""

import re
import subprocess
import sys
from pathlib import Path

import httpx

from {{ cookiecutter.package_name }}.lib.telemetry import SCOPE

from . import factories as f
from .api_process import free_port, running_api
{%- if cookiecutter.examples == "none" %}
from .checks import wait_for_status
{%- endif %}
from .conftest import CRON as CRON_MODULE
from .conftest import WORKER as WORKER_SETTINGS
{%- if cookiecutter.examples == "kudos" %}
from .conftest import StartWorker, run_module
from .csv_helpers import IMPORTS, finished, people, upload
from .csv_helpers import wait_for as wait_for_import
{%- else %}
from .conftest import StartWorker, run_module
{%- endif %}
from .factories import Db, admin
from .receivers import OtlpReceiver, Span, wait_for
from .tokens import Bearer

SERVER, CONSUMER = 2, 5  # OTLP's SpanKind numbers
API, WORKER, CRON = (f"{SCOPE}-{process}" for process in ("api", "worker", "cron"))
{%- if cookiecutter.examples == "none" %}
EXPORTS = "/admin/users/exports"
{%- endif %}


def otel_env(receiver: OtlpReceiver) -> dict[str, str]:
    return {
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,
        # Every trace: the api's default keeps a share of them (lib/telemetry.py).
        "OTEL_TRACES_SAMPLER": "parentbased_always_on",
        # Export within a fraction of a second, not the default 5 s (spans) and 60 s.
        "OTEL_BSP_SCHEDULE_DELAY": "50",
        "OTEL_METRIC_EXPORT_INTERVAL": "200",
    }


def job_trace(
    otlp: OtlpReceiver, route: str, job_name: str
) -> tuple[Span, Span, list[Span]] | None:
    """The trace of the api's request to `route`, once it holds the job `job_name` and
    the worker's SQL: (the request's span, the job's span, every span of the trace)."""
    spans = otlp.spans()
    request = next(
        (
            s
            for s in spans
            if s.service == API and s.kind == SERVER and s.attributes.get("http.route") == route
        ),
        None,
    )
    if request is None:
        return None
    trace = [s for s in spans if s.trace_id == request.trace_id]
    job = next((s for s in trace if s.name == job_name), None)
    sql = [s for s in trace if s.attributes.get("db.system") == "postgresql"]
    if job is None or not any(s.service == WORKER for s in sql):
        return None
    return request, job, trace
{%- if cookiecutter.examples == "kudos" %}


async def test_one_trace_holds_the_upload_the_import_job_and_its_sql(
    db: Db,
    bearer: Bearer,
    process_env: dict[str, str],
    start_worker: StartWorker,
    tmp_path: Path,
) -> None:
    acme = f.company(db, "Acme")
    headers = bearer(admin(db, acme, "boss@acme.example"))
    with OtlpReceiver() as otlp:
        worker = start_worker(**otel_env(otlp))
        metrics_port = free_port()
        with running_api(
            process_env,
            tmp_path / "api.log",
            **otel_env(otlp),
            METRICS_PORT=str(metrics_port),
            METRICS_HOST="127.0.0.1",
        ) as api:
            async with httpx.AsyncClient(base_url=api.url, timeout=30) as client:
                response = await upload(client, headers, people(3))
                assert response.status_code == 202, response.text
                state = await wait_for_import(
                    client, response.json()["status_url"], headers, finished
                )
            assert state["status"] == "completed", state

            request, job, trace = wait_for(
                lambda: job_trace(otlp, IMPORTS, "import_users_csv"), "the upload's trace"
            )

            # The job is the child of a span of the request (the enqueue's Redis call's
            # parent), on the worker, and its SQL statements are its children.
            api_spans = {s.span_id for s in trace if s.service == API}
            assert job.service == WORKER
            assert job.kind == CONSUMER
            assert job.parent_id in api_spans
            assert job.attributes["job.outcome"] == "success"
            assert job.attributes["job.result.created"] == 3
            # A job the import enqueued (the invitations' mail drain) continues the trace
            # as the import job's child.
            jobs = {s.span_id for s in trace if s.service == WORKER and s.kind == CONSUMER}
            assert all(
                s.span_id == job.span_id or s.parent_id == job.span_id
                for s in trace
                if s.span_id in jobs
            )
            worker_sql = [s for s in trace if s.service == WORKER and "db.system" in s.attributes]
            assert {s.parent_id for s in worker_sql} <= jobs
            own_sql = [s for s in worker_sql if s.parent_id == job.span_id]
            assert any("csv_import_chunks" in s.attributes["db.statement"] for s in own_sql)
            # The request's own SQL (storing the file) and the enqueue (Redis) are there.
            assert any(
                s.service == API
                and "INSERT INTO csv_import_chunks" in s.attributes.get("db.statement", "")
                for s in trace
            )
            assert any(s.attributes.get("db.system") == "redis" for s in trace)
            assert request.attributes["request.id"] == response.headers["x-request-id"]

            names = wait_for(
                lambda: (
                    (n := otlp.metric_names())
                    and {"http.server.request.duration", "queue.depth", "queue.oldest_job_age"}
                    <= n.get(API, set())
                    and {"job.duration", "csv_import.rows"} <= n.get(WORKER, set())
                    and n
                ),
                "the api's and the worker's metrics",
            )
            assert names
            # The optional Prometheus endpoint serves the same metrics.
            async with httpx.AsyncClient(timeout=10) as client:
                scraped = (await client.get(f"http://127.0.0.1:{metrics_port}/metrics")).text
            assert "http_server_request_duration_seconds_bucket" in scraped
            assert "queue_depth" in scraped
        worker.terminate()
        worker_log, _ = worker.communicate(timeout=30)

    # Every line about the job, arq's own included, carries the job's trace and span ids.
    job_lines = [line for line in worker_log.splitlines() if "job_id=csv-import:" in line]
    assert job_lines, worker_log
    assert all(f"trace_id={job.trace_id}" in line for line in job_lines), job_lines
    assert any(re.search(r"span_id=[0-9a-f]{16}", line) for line in job_lines)
{%- else %}


async def test_one_trace_holds_the_export_request_its_job_and_its_sql(
    db: Db,
    bearer: Bearer,
    process_env: dict[str, str],
    start_worker: StartWorker,
    tmp_path: Path,
) -> None:
    acme = f.company(db, "Acme")
    headers = bearer(admin(db, acme, "boss@acme.example"))
    with OtlpReceiver() as otlp:
        worker = start_worker(**otel_env(otlp))
        metrics_port = free_port()
        with running_api(
            process_env,
            tmp_path / "api.log",
            **otel_env(otlp),
            METRICS_PORT=str(metrics_port),
            METRICS_HOST="127.0.0.1",
        ) as api:
            async with httpx.AsyncClient(base_url=api.url, timeout=30) as client:
                response = await client.post(EXPORTS, headers=headers)
                assert response.status_code == 202, response.text
                await wait_for_status(client, response.json()["status_url"], headers, seconds=30)

            request, job, trace = wait_for(
                lambda: job_trace(otlp, EXPORTS, "export_users"), "the export's trace"
            )

            # The job is the child of a span of the request (the enqueue's Redis call's
            # parent), on the worker, and its SQL statements are its children.
            api_spans = {s.span_id for s in trace if s.service == API}
            assert job.service == WORKER
            assert job.kind == CONSUMER
            assert job.parent_id in api_spans
            assert job.attributes["job.outcome"] == "success"
            worker_sql = [s for s in trace if s.service == WORKER and "db.system" in s.attributes]
            assert {s.parent_id for s in worker_sql} == {job.span_id}
            assert any("user_exports" in s.attributes["db.statement"] for s in worker_sql)
            # The request's own SQL (recording the export) and the enqueue (Redis) are there.
            assert any(
                s.service == API
                and "INSERT INTO user_exports" in s.attributes.get("db.statement", "")
                for s in trace
            )
            assert any(s.attributes.get("db.system") == "redis" for s in trace)
            assert request.attributes["request.id"] == response.headers["x-request-id"]

            names = wait_for(
                lambda: (
                    (n := otlp.metric_names())
                    and {"http.server.request.duration", "queue.depth", "queue.oldest_job_age"}
                    <= n.get(API, set())
                    and {"job.duration"} <= n.get(WORKER, set())
                    and n
                ),
                "the api's and the worker's metrics",
            )
            assert names
            # The optional Prometheus endpoint serves the same metrics.
            async with httpx.AsyncClient(timeout=10) as client:
                scraped = (await client.get(f"http://127.0.0.1:{metrics_port}/metrics")).text
            assert "http_server_request_duration_seconds_bucket" in scraped
            assert "queue_depth" in scraped
        worker.terminate()
        worker_log, _ = worker.communicate(timeout=30)

    # Every line about the job, arq's own included, carries the job's trace and span ids.
    job_lines = [line for line in worker_log.splitlines() if "job_id=user-export:" in line]
    assert job_lines, worker_log
    assert all(f"trace_id={job.trace_id}" in line for line in job_lines), job_lines
    assert any(re.search(r"span_id=[0-9a-f]{16}", line) for line in job_lines)
{%- endif %}


async def test_the_api_samples_new_traces_and_keeps_a_sampled_parent_whole(
    db: Db, bearer: Bearer, process_env: dict[str, str], tmp_path: Path
) -> None:
    headers = bearer(admin(db, f.company(db, "Acme"), "boss@acme.example"))
    with OtlpReceiver() as otlp:
        # The default sampler, keeping none of the new traces.
        env = {k: v for k, v in otel_env(otlp).items() if k != "OTEL_TRACES_SAMPLER"}
        with running_api(
            process_env, tmp_path / "api.log", **env, OTEL_TRACES_SAMPLER_ARG="0"
        ) as api:
            async with httpx.AsyncClient(base_url=api.url, timeout=30) as client:
                for _ in range(20):
                    assert (await client.get("/me", headers=headers)).status_code == 200
                # A caller whose own trace is sampled: the api's part of it is kept.
                trace_id, parent = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
                traced = {**headers, "traceparent": f"00-{trace_id}-{parent}-01"}
                assert (await client.get("/me", headers=traced)).status_code == 200

            def kept() -> list[Span] | None:
                spans = otlp.spans()
                sql = [s for s in spans if s.attributes.get("db.system") == "postgresql"]
                return spans if any(s.parent_id == parent for s in spans) and sql else None

            spans = wait_for(kept, "the sampled request's spans")
    assert {s.trace_id for s in spans} == {trace_id}
    [request] = [s for s in spans if s.kind == SERVER]
    assert request.parent_id == parent
{%- if cookiecutter.examples == "kudos" %}


def test_a_cron_run_is_a_trace_with_its_summary(db: Db, process_env: dict[str, str]) -> None:
    acme = f.company(db, "Acme", allowance=50)
    f.user(db, acme, "ana@acme.example")
    with OtlpReceiver() as otlp:
        result = run_module(CRON_MODULE, {**process_env, **otel_env(otlp)})
        assert result.returncode == 0, result.stderr
        # Exported before the process exited.
        spans = otlp.spans()
        names = otlp.metric_names()
    [run] = [s for s in spans if s.name == "weekly_reset" and s.service == CRON]
    assert run.parent_id == ""
    assert run.attributes["weekly_reset.companies"] == 1
    assert run.attributes["weekly_reset.wallets_reset"] == 1
    assert run.attributes["weekly_reset.companies_failed.count"] == 0
    sql = [s for s in spans if s.trace_id == run.trace_id and "db.statement" in s.attributes]
    assert sql
    assert {"weekly_reset.duration", "weekly_reset.wallets"} <= names[CRON]
{%- else %}


def test_a_cron_run_is_a_trace_with_its_summary(db: Db, process_env: dict[str, str]) -> None:
    acme = f.company(db, "Acme")
    dormant = f.user(db, acme, "ana@acme.example")
    db.execute("UPDATE users SET created_at = now() - interval '100 days' WHERE id = %s", [dormant])
    with OtlpReceiver() as otlp:
        result = run_module(CRON_MODULE, {**process_env, **otel_env(otlp)})
        assert result.returncode == 0, result.stderr
        # Exported before the process exited.
        spans = otlp.spans()
    [run] = [s for s in spans if s.name == "deactivate_dormant_users" and s.service == CRON]
    assert run.parent_id == ""
    assert run.attributes["dormant_users.deactivated"] == 1
    sql = [s for s in spans if s.trace_id == run.trace_id and "db.statement" in s.attributes]
    assert sql
{%- endif %}


def test_without_otel_or_sentry_variables_no_sdk_is_loaded(process_env: dict[str, str]) -> None:
    code = (
        "import sys\n"
        "from {{ cookiecutter.package_name }}.app import create_app\n"
        f"import {WORKER_SETTINGS.rsplit('.', 1)[0]}\n"
        f"import {CRON_MODULE}\n"
        "create_app()\n"
        "loaded = [m for m in sys.modules if m.startswith(('opentelemetry.sdk', 'sentry_sdk',"
        " 'opentelemetry.instrumentation'))]\n"
        "assert not loaded, loaded\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], env=process_env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
