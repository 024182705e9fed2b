"""Streaming multipart/form-data: the parts of a request as they arrive, never buffered.

Starlette's `request.form()` spools a whole file to disk before the endpoint runs and
has no size limit for files; this reads `request.stream()` through python-multipart's
push parser and yields events as soon as their bytes are in, so the caller can store a
file chunk by chunk and stop at a size limit. `receive_upload` is the loop an upload
route runs: one file into a sink of the route's, the other fields as short values.
"""

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

from python_multipart import MultipartParser
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import parse_options_header
from starlette.requests import Request

from .errors import AppError
from .text import has_control_characters


class MultipartError(AppError):
    code = "invalid_multipart"


@dataclass
class PartStart:
    name: str
    filename: str | None
    content_type: str | None


@dataclass
class PartData:
    data: bytes


@dataclass
class PartEnd:
    pass


Event = PartStart | PartData | PartEnd


@dataclass
class _State:
    events: list[Event] = field(default_factory=list)
    header_field: bytearray = field(default_factory=bytearray)
    header_value: bytearray = field(default_factory=bytearray)
    headers: dict[str, str] = field(default_factory=dict)


def _part_start(headers: dict[str, str]) -> PartStart:
    _, params = parse_options_header(headers.get("content-disposition", ""))
    name = params.get(b"name", b"").decode("utf-8", "replace")
    raw_filename = params.get(b"filename")
    filename = None if raw_filename is None else raw_filename.decode("utf-8", "replace")
    # A NUL cannot even be stored in Postgres text; no control character belongs in a name.
    if filename is not None and has_control_characters(filename):
        raise MultipartError("the file name contains control characters", code="invalid_file_name")
    return PartStart(name=name, filename=filename, content_type=headers.get("content-type"))


async def multipart_events(request: Request) -> AsyncIterator[Event]:
    """PartStart, PartData..., PartEnd for each part of a multipart/form-data body."""
    kind, params = parse_options_header(request.headers.get("content-type", ""))
    boundary = params.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise MultipartError("send the file as multipart/form-data", code="not_multipart")
    state = _State()

    def on_header_field(data: bytes, start: int, end: int) -> None:
        state.header_field += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        state.header_value += data[start:end]

    def on_header_end() -> None:
        state.headers[state.header_field.decode("latin-1").lower()] = state.header_value.decode(
            "latin-1"
        )
        state.header_field.clear()
        state.header_value.clear()

    def on_headers_finished() -> None:
        state.events.append(_part_start(state.headers))
        state.headers = {}

    def on_part_data(data: bytes, start: int, end: int) -> None:
        state.events.append(PartData(bytes(data[start:end])))

    def on_part_end() -> None:
        state.events.append(PartEnd())

    parser = MultipartParser(
        boundary,
        {
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
            "on_part_data": on_part_data,
            "on_part_end": on_part_end,
        },
    )
    try:
        async for chunk in request.stream():
            parser.write(chunk)
            events, state.events = state.events, []
            for event in events:
                yield event
        parser.finalize()
    except FormParserError as exc:
        raise MultipartError(f"malformed multipart body: {exc}") from None
    for event in state.events:
        yield event


class FileSink(Protocol):
    """Where an upload's file goes, chunk by chunk (it may refuse one: too large)."""

    def write(self, data: bytes) -> None: ...

    def close(self) -> None: ...


SinkT = TypeVar("SinkT", bound=FileSink)


@dataclass
class Upload(Generic[SinkT]):
    file: SinkT
    # The other fields' values, each cut at `value_bytes` (they are flags, not content).
    fields: dict[str, str]


async def receive_upload(
    request: Request,
    open_file: Callable[[str, str | None], SinkT],
    *,
    file_field: str = "file",
    value_bytes: int = 100,
) -> Upload[SinkT]:
    """Stream a multipart body: the file in `file_field` into `open_file(file name,
    content type)`'s sink as it arrives. One file, and it must be there (400 otherwise).
    The sink is closed if anything fails; once returned, closing it is the caller's."""
    sink: SinkT | None = None
    in_file = False
    name = ""
    value = bytearray()
    fields: dict[str, str] = {}
    try:
        async for event in multipart_events(request):
            if isinstance(event, PartStart):
                name = event.name
                in_file = name == file_field and event.filename is not None
                if in_file:
                    if sink is not None:
                        raise AppError("send one file per upload", code="too_many_files")
                    assert event.filename is not None
                    sink = open_file(event.filename, event.content_type)
                value.clear()
            elif isinstance(event, PartData):
                if in_file and sink is not None:
                    sink.write(event.data)
                elif len(value) < value_bytes:
                    value += event.data[: value_bytes - len(value)]
            elif isinstance(event, PartEnd) and not in_file:
                fields[name] = value.decode("latin-1")
        if sink is None:
            raise AppError(
                f"no file: send it in the multipart field '{file_field}'", code="file_missing"
            )
    except BaseException:
        if sink is not None:
            sink.close()
        raise
    return Upload(file=sink, fields=fields)
