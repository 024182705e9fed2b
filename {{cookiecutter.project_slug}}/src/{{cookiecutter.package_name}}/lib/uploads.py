"""Streaming multipart/form-data: the parts of a request as they arrive, never buffered.

Starlette's `request.form()` spools a whole file to disk before the endpoint runs and
has no size limit for files; this reads `request.stream()` through python-multipart's
push parser and yields events as soon as their bytes are in, so the caller can store a
file chunk by chunk and stop at a size limit.
"""

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

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
