"""Real receivers for what the processes send out: OTLP/HTTP and a Sentry DSN.

Each is a plain HTTP server on 127.0.0.1 in a thread of the test, decoding the payloads
the SDKs really send (OTLP protobuf, Sentry envelopes), so nothing of the SDKs is mocked.
"""

import gzip
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self, TypeVar

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

T = TypeVar("T")


@dataclass(frozen=True)
class Span:
    service: str
    name: str
    kind: int
    trace_id: str
    span_id: str
    parent_id: str
    attributes: dict[str, Any]


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind else None


class _Server(ThreadingHTTPServer):
    daemon_threads = True


@dataclass
class Receiver:
    """An HTTP server keeping every request body it is sent, by path."""

    bodies: list[tuple[str, bytes]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: _Server | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> Self:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                with receiver.lock:
                    receiver.bodies.append((self.path, body))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = _Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.shutdown()
        self.server.server_close()

    def received(self, path_suffix: str) -> list[bytes]:
        with self.lock:
            return [body for path, body in self.bodies if path.endswith(path_suffix)]


class OtlpReceiver(Receiver):
    """OTLP over HTTP: `/v1/traces` and `/v1/metrics`, protobuf."""

    def spans(self) -> list[Span]:
        spans = []
        for body in self.received("/v1/traces"):
            request = ExportTraceServiceRequest.FromString(body)
            for resource_spans in request.resource_spans:
                resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
                for scope_spans in resource_spans.scope_spans:
                    for span in scope_spans.spans:
                        spans.append(
                            Span(
                                service=resource["service.name"],
                                name=span.name,
                                kind=span.kind,
                                trace_id=span.trace_id.hex(),
                                span_id=span.span_id.hex(),
                                parent_id=span.parent_span_id.hex(),
                                attributes={a.key: _value(a.value) for a in span.attributes},
                            )
                        )
        return spans

    def metric_names(self) -> dict[str, set[str]]:
        """Each service's metric names received so far."""
        names: dict[str, set[str]] = {}
        for body in self.received("/v1/metrics"):
            request = ExportMetricsServiceRequest.FromString(body)
            for resource_metrics in request.resource_metrics:
                resource = {a.key: _value(a.value) for a in resource_metrics.resource.attributes}
                service = names.setdefault(resource["service.name"], set())
                for scope_metrics in resource_metrics.scope_metrics:
                    service.update(metric.name for metric in scope_metrics.metrics)
        return names


class SentryReceiver(Receiver):
    """A Sentry DSN's envelope endpoint (`/api/<project>/envelope/`)."""

    def dsn(self) -> str:
        return self.url.replace("http://", "http://public@") + "/1"

    def events(self) -> list[dict[str, Any]]:
        events = []
        for body in self.received("/envelope/"):
            for headers, payload in parse_envelope(body):
                if headers.get("type") == "event":
                    events.append(json.loads(payload))
        return events

    def raw(self) -> bytes:
        return b"\n".join(self.received("/envelope/"))


def parse_envelope(body: bytes) -> list[tuple[dict[str, Any], bytes]]:
    """The items of a Sentry envelope: a header line, then each item's header and payload."""
    _, _, rest = body.partition(b"\n")
    items = []
    while rest.strip():
        line, _, rest = rest.partition(b"\n")
        headers = json.loads(line)
        if "length" in headers:
            payload, rest = rest[: headers["length"]], rest[headers["length"] :]
            rest = rest.removeprefix(b"\n")
        else:
            payload, _, rest = rest.partition(b"\n")
        items.append((headers, payload))
    return items


def wait_for(check: Callable[[], T | None], what: str, timeout: float = 20) -> T:
    """Poll `check` until it returns something truthy, or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        if result := check():
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def by_trace(spans: list[Span]) -> Iterator[list[Span]]:
    traces: dict[str, list[Span]] = {}
    for span in spans:
        traces.setdefault(span.trace_id, []).append(span)
    yield from traces.values()
