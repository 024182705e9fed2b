"""Traces and metrics (OpenTelemetry) for the three processes, exported only when asked.

Set the standard variables and each process exports over OTLP/HTTP (protobuf):
`OTEL_EXPORTER_OTLP_ENDPOINT` (or the per-signal `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`,
`OTEL_EXPORTER_OTLP_METRICS_ENDPOINT`), or `OTEL_TRACES_EXPORTER` / `OTEL_METRICS_EXPORTER`
(`otlp`, `console` or `none`); `OTEL_SDK_DISABLED=true` turns it all off. With none of
them set, `configure` installs nothing and the SDK is never imported: the instruments
below stay the API's no-ops. `METRICS_PORT` (the api only) adds a Prometheus scrape
endpoint on that port, for the private network, never the public one.
{%- if cookiecutter.examples == "kudos" %}

Traced: the api's requests (FastAPI), every SQL statement (psycopg, under SQLAlchemy
and in the import's own connection), the api's Redis calls and outgoing HTTP (the key
set). The trace context travels with each job (lib/queue.py puts it in the job's
payload), and the worker's job span continues it: one trace holds the upload request,
its import job and the job's SQL. Each cron run and worker cron job is a trace of its own.
{%- else %}

Traced: the api's requests (FastAPI), every SQL statement (psycopg, under SQLAlchemy),
the api's Redis calls and outgoing HTTP (the key set). The trace context travels with
each job (lib/queue.py puts it in the job's payload), and the worker's job span
continues it: one trace holds the export request, its job and the job's SQL. Each cron
run and worker cron job is a trace of its own.
{%- endif %}
"""

import asyncio
import dataclasses
import functools
import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Literal

from opentelemetry import context as otel_context
from opentelemetry import metrics, propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from .config import Settings

if TYPE_CHECKING:
    from fastapi import FastAPI

logger = logging.getLogger(__name__)

Process = Literal["api", "worker", "cron"]
# The package's name: the instrumentation scope, and the services' names (`<pkg>-api`).
SCOPE = __name__.split(".")[0]

tracer = trace.get_tracer(SCOPE)
meter = metrics.get_meter(SCOPE)

# The metrics the operations guide names (docs/operations.md). Until `configure` sets a
# provider they record nothing.
job_duration = meter.create_histogram(
    "job.duration",
    unit="s",
    description="Time a worker job ran, by job.name and job.outcome "
    "(success, retry, failed, cancelled)",
)
{%- if cookiecutter.examples == "kudos" %}
csv_import_rows = meter.create_counter(
    "csv_import.rows",
    unit="{row}",
    description="Rows of CSV user imports processed, by row.outcome (created, skipped, invalid)",
)
weekly_reset_duration = meter.create_histogram(
    "weekly_reset.duration",
    unit="s",
    description="Time a weekly reset run took, by status (complete, incomplete)",
)
weekly_reset_wallets = meter.create_counter(
    "weekly_reset.wallets",
    unit="{wallet}",
    description="Wallets whose balance a weekly reset set",
)
{%- endif %}

_JOB = "telemetry.job"
_OUTCOME = "telemetry.job_outcome"
# What the worker's job deserializer found in the payload it is about to run: the job's
# function name and the trace context it was enqueued with (lib/queue.py).
_incoming_job: ContextVar[tuple[str, Mapping[str, str]] | None] = ContextVar(
    "incoming_job", default=None
)
_configured: set[str] = set()


def _env(name: str) -> str:
    return os.environ.get(name, "").strip()


def exporting(signal: Literal["TRACES", "METRICS"]) -> bool:
    """Whether the OTEL_* variables ask for this signal to be exported."""
    if _env("OTEL_SDK_DISABLED").lower() == "true":
        return False
    if exporter := _env(f"OTEL_{signal}_EXPORTER").lower():
        return exporter != "none"
    return bool(
        _env("OTEL_EXPORTER_OTLP_ENDPOINT") or _env(f"OTEL_EXPORTER_OTLP_{signal}_ENDPOINT")
    )


def configure(settings: Settings, process: Process) -> None:
    """Install the SDK for what the environment asks for; nothing when it asks for nothing.

    Once per process (the later calls of tests and uvicorn reloads do nothing)."""
    export_traces = exporting("TRACES")
    export_metrics = exporting("METRICS")
    scrape = settings.metrics_port is not None and process == "api"
    if _configured or not (export_traces or export_metrics or scrape):
        return
    _configured.add(process)
    # The stable HTTP semantic conventions: `http.server.request.duration` in seconds,
    # by `http.route`, `http.request.method` and `http.response.status_code`.
    os.environ.setdefault("OTEL_SEMCONV_STABILITY_OPT_IN", "http")

    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
    from opentelemetry.sdk.resources import Resource

    resource = Resource.create(
        {
            "service.name": _env("OTEL_SERVICE_NAME") or f"{SCOPE}-{process}",
            "service.namespace": SCOPE,
            "deployment.environment.name": settings.environment,
            **({"service.version": settings.release} if settings.release else {}),
        }
    )
    if export_traces:
        _install_tracing(resource, process)
    if export_metrics or scrape:
        _install_metrics(resource, settings, export=export_metrics, scrape=scrape)
    # Every statement, {% if cookiecutter.examples == "kudos" %}under SQLAlchemy and on the import's own connection{% else %}under SQLAlchemy or on a raw connection{% endif %}; statements
    # are recorded as written (parameters, which hold personal data, are not).
    PsycopgInstrumentor().instrument(skip_dep_check=True)
    HTTPXClientInstrumentor().instrument()
    if process == "api":
        # Not the worker's: its idle polling would be a trace every 20 ms.
        from opentelemetry.instrumentation.redis import RedisInstrumentor

        RedisInstrumentor().instrument()


# The api's default share of requests traced (OTEL_TRACES_SAMPLER_ARG changes it).
API_SAMPLE_RATIO = 0.1


def _sampler(process: Process) -> Any:
    """OTEL_TRACES_SAMPLER when set (the SDK reads it); else parent-based: a span whose
    parent was sampled is sampled, one whose parent was not is not, so a trace is kept
    whole across api, queue and worker or not at all. A new trace (a root) is kept for
    OTEL_TRACES_SAMPLER_ARG (0.1) of the api's requests: tracing every request cost the
    api half its throughput ({% if cookiecutter.examples == "kudos" %}bench/http_api.py --tracing{% else %}measured by the template's bench{% endif %}). The worker's and cron's own
    roots (cron runs, scheduled jobs) are rare and always kept."""
    from opentelemetry.sdk.trace.sampling import ALWAYS_ON, ParentBased, TraceIdRatioBased

    if _env("OTEL_TRACES_SAMPLER"):
        return None
    if process != "api":
        return ParentBased(ALWAYS_ON)
    try:
        ratio = float(_env("OTEL_TRACES_SAMPLER_ARG") or API_SAMPLE_RATIO)
    except ValueError:
        ratio = -1
    if not 0 <= ratio <= 1:
        logger.warning("OTEL_TRACES_SAMPLER_ARG is not a ratio from 0 to 1: using 0.1")
        ratio = API_SAMPLE_RATIO
    return ParentBased(TraceIdRatioBased(ratio))


def _install_tracing(resource: Any, process: Process) -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        ConsoleSpanExporter,
        SpanExporter,
    )

    exporter: SpanExporter
    if _env("OTEL_TRACES_EXPORTER").lower() == "console":
        exporter = ConsoleSpanExporter()
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter()
    # Batching follows OTEL_BSP_* (the SDK's defaults: up to 512 spans every 5 s).
    provider = TracerProvider(resource=resource, sampler=_sampler(process))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)


def _install_metrics(resource: Any, settings: Settings, *, export: bool, scrape: bool) -> None:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import (
        ConsoleMetricExporter,
        MetricExporter,
        MetricReader,
        PeriodicExportingMetricReader,
    )

    readers: list[MetricReader] = []
    if export:
        exporter: MetricExporter
        if _env("OTEL_METRICS_EXPORTER").lower() == "console":
            exporter = ConsoleMetricExporter()
        else:
            from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
                OTLPMetricExporter,
            )

            exporter = OTLPMetricExporter()
        # Every OTEL_METRIC_EXPORT_INTERVAL ms (60 s by default).
        readers.append(PeriodicExportingMetricReader(exporter))
    if scrape and settings.metrics_port is not None:
        from opentelemetry.exporter.prometheus import PrometheusMetricReader
        from prometheus_client import start_http_server

        readers.append(PrometheusMetricReader())
        # The service's private address only: Railway routes its public domain to PORT.
        start_http_server(settings.metrics_port, addr=settings.metrics_host)
    metrics.set_meter_provider(MeterProvider(metric_readers=readers, resource=resource))


def instrument_app(app: "FastAPI") -> None:
    """Trace and measure the api's requests (a span and `http.server.request.duration`
    per request, by route), when `configure` installed anything."""
    if not _configured:
        return
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(
        app,
        # The platform's health checks would be most of the traces.
        excluded_urls=_env("OTEL_PYTHON_FASTAPI_EXCLUDED_URLS") or "/health",
        # One span per request, not one per ASGI message as well.
        exclude_spans=["receive", "send"],
    )


def ids() -> tuple[str | None, str | None]:
    """The current trace and span ids, as hex (what log lines and error reports carry)."""
    span_context = trace.get_current_span().get_span_context()
    if not span_context.is_valid:
        return None, None
    return f"{span_context.trace_id:032x}", f"{span_context.span_id:016x}"


# --- Across the queue: the api's trace continues in the worker -------------------------


def trace_context() -> dict[str, str]:
    """The current trace as W3C `traceparent` (and `tracestate`); empty when not tracing."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


def job_received(function: str, carrier: Mapping[str, str] | None) -> None:
    """Called by the worker's job deserializer, in the task that is about to run the job."""
    _incoming_job.set((function, carrier or {}))


def job_started(ctx: dict[str, Any]) -> str:
    """arq's on_job_start: open the job's span (a child of the trace that enqueued it) and
    make it current, so arq's own lines about the job carry its ids too. Returns the
    job's function name."""
    function, carrier = _incoming_job.get() or ("job", {})
    _incoming_job.set(None)
    parent = propagate.extract(carrier) if carrier else otel_context.Context()
    span = tracer.start_span(
        function,
        context=parent,
        kind=SpanKind.CONSUMER,
        attributes={
            "messaging.system": "arq",
            "messaging.message.id": ctx["job_id"],
            "job.name": function,
            "job.try": ctx["job_try"],
        },
    )
    token = otel_context.attach(trace.set_span_in_context(span))
    ctx[_JOB] = (function, span, token, time.perf_counter())
    return function


def job_ended(ctx: dict[str, Any]) -> None:
    """arq's on_job_end (after it logged the outcome): close the span, record the job."""
    started = ctx.pop(_JOB, None)
    if started is None:
        return
    function, span, token, start = started
    outcome = ctx.pop(_OUTCOME, "cancelled")
    job_duration.record(time.perf_counter() - start, {"job.name": function, "job.outcome": outcome})
    span.set_attribute("job.outcome", outcome)
    span.end()
    otel_context.detach(token)


def observed_jobs(functions: list[Any]) -> list[Any]:
    """arq's functions or cron jobs, each telling `job_ended` how it ended."""
    return [dataclasses.replace(fn, coroutine=_observed(fn.coroutine)) for fn in functions]


def _observed(coroutine: Callable[..., Any]) -> Callable[..., Any]:
    from arq import Retry

    @functools.wraps(coroutine)
    async def run(ctx: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        span = trace.get_current_span()
        try:
            result = await coroutine(ctx, *args, **kwargs)
        except Retry:
            ctx[_OUTCOME] = "retry"
            raise
        except asyncio.CancelledError:
            ctx[_OUTCOME] = "cancelled"
            raise
        except Exception as exc:
            ctx[_OUTCOME] = "failed"
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            raise
        ctx[_OUTCOME] = "success"
        if isinstance(result, dict):
            set_summary(span, result, prefix="job.result")
        return result

    return run


def set_summary(span: trace.Span, summary: Mapping[str, Any], *, prefix: str) -> None:
    """A run's summary (numbers and strings) as the span's attributes."""
    for key, value in summary.items():
        if isinstance(value, bool | int | float | str):
            span.set_attribute(f"{prefix}.{key}", value)
        elif isinstance(value, list | tuple):
            span.set_attribute(f"{prefix}.{key}.count", len(value))


# --- The queue, measured from Redis --------------------------------------------------


def observe_queue(settings: Settings) -> None:
    """`queue.depth` and `queue.oldest_job_age`, read from Redis at each collection (in
    the metric reader's thread, so with a client of its own). The api reports them, as it
    is the process still up when every worker is down."""
    if not _configured:
        return
    import redis

    from . import queue  # imports this module: loaded here, once both are

    client = redis.Redis.from_url(
        settings.redis_url,
        socket_connect_timeout=settings.health_timeout_seconds,
        socket_timeout=settings.health_timeout_seconds,
    )
    state: dict[str, float] = {}

    def read() -> dict[str, float]:
        from opentelemetry.instrumentation.utils import suppress_instrumentation

        if "at" in state and time.monotonic() - state["at"] < 1:
            return state  # the two gauges, one read
        now_ms = time.time() * 1000
        with suppress_instrumentation():
            try:
                due, waiting = queue.backlog(client, settings.queue_name, now_ms)
            except redis.RedisError as exc:
                logger.warning("queue metrics: Redis did not answer: %s", exc)
                return {}
        state.clear()
        state.update(at=time.monotonic(), depth=due)
        state["age"] = (now_ms - min(waiting)) / 1000 if waiting else 0.0
        return state

    def depth(options: metrics.CallbackOptions) -> Iterator[metrics.Observation]:
        if "depth" in (values := read()):
            yield metrics.Observation(values["depth"], {"queue.name": settings.queue_name})

    def age(options: metrics.CallbackOptions) -> Iterator[metrics.Observation]:
        if "age" in (values := read()):
            yield metrics.Observation(values["age"], {"queue.name": settings.queue_name})

    meter.create_observable_gauge(
        "queue.depth",
        [depth],
        unit="{job}",
        description="Jobs due in the queue, waiting or running",
    )
    meter.create_observable_gauge(
        "queue.oldest_job_age",
        [age],
        unit="s",
        description="How long the oldest due job not yet started has waited",
    )


@contextmanager
def cron_run(name: str) -> Iterator[trace.Span]:
    """The cron run's own trace (its root span); exported before the process exits."""
    with tracer.start_as_current_span(name, kind=SpanKind.INTERNAL) as span:
        yield span


def shutdown() -> None:
    """Export what is buffered (the cron's process ends right after its run)."""
    provider = trace.get_tracer_provider()
    if hasattr(provider, "shutdown"):
        provider.shutdown()
    meter_provider = metrics.get_meter_provider()
    if hasattr(meter_provider, "shutdown"):
        meter_provider.shutdown()
