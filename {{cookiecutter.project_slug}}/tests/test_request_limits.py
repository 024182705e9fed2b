"""Requests are bounded before they cost anything: body size (413), pace (408), paging{% if cookiecutter.examples == "kudos" %},{% else %}.{% endif %}
{% if cookiecutter.examples == "kudos" %}file names. {% endif %}The size and pace tests run a real uvicorn and send raw bytes over a socket."""

import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from uuid import UUID

import httpx
import pytest

from {{ cookiecutter.package_name }}.lib.config import Settings
from {{ cookiecutter.package_name }}.lib.pagination import MAX_OFFSET

from . import factories as f
from .api_process import read_response, request_head, running_api
{%- if cookiecutter.examples == "kudos" %}
from .csv_helpers import IMPORTS, counts, upload
{%- endif %}
from .factories import Db, admin
from .tokens import Bearer

MB = 1024 * 1024


@pytest.fixture
def acme(db: Db) -> UUID:
    return f.company(db, "Acme"{% if cookiecutter.examples == "kudos" %}, allowance=80{% else %}{% endif %})


@pytest.fixture
def headers(db: Db, acme: UUID, bearer: Bearer) -> dict[str, str]:
    return bearer(admin(db, acme, "boss@acme.example"))


def assert_envelope(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    assert response.json()["error"]["request_id"] == response.headers["x-request-id"]


# --- size ------------------------------------------------------------------------------


async def test_a_json_body_over_the_limit_is_a_413_before_authentication(
    api: httpx.AsyncClient, settings: Settings, headers: dict[str, str]
) -> None:
    limit = settings.request_max_body_bytes
    body = b'{"message": "' + b"x" * limit + b'"}'
    # No token: refused for its size, not for the token (nothing was parsed).
    refused = await api.post("{% if cookiecutter.examples == "kudos" %}/compliments{% else %}/admin/users{% endif %}", content=body)
    assert_envelope(refused, 413, "request_too_large")
    assert refused.headers["connection"] == "close"

    # Streamed without a Content-Length: counted as it arrives.
    async def pieces() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 4096):
            yield body[start : start + 4096]

    streamed = await api.post("{% if cookiecutter.examples == "kudos" %}/compliments{% else %}/admin/users{% endif %}", content=pieces(), headers=headers)
    assert_envelope(streamed, 413, "request_too_large")
    # At the limit: read and judged as usual (a 422 for the made-up body).
    exact = b'{"m": "' + b"x" * (limit - 10) + b'"}'
    assert len(exact) == limit - 1
    judged = await api.post(
        "{% if cookiecutter.examples == "kudos" %}/compliments{% else %}/admin/users{% endif %}", content=exact, headers={**headers, "Content-Type": "application/json"}
    )
    assert_envelope(judged, 422, "validation_error")
{%- if cookiecutter.examples == "kudos" %}


async def test_the_upload_route_has_the_imports_own_limit(
    api: httpx.AsyncClient, headers: dict[str, str], settings: Settings, db: Db
) -> None:
    rows = b"".join(b"Person %d,person%d@acme.example\n" % (i, i) for i in range(40_000))
    content = b"name,email\n" + rows
    assert settings.request_max_body_bytes < len(content) < settings.csv_import_max_bytes
    accepted = await upload(api, headers, content)
    assert accepted.status_code == 202, accepted.text
    assert counts(db)["csv_imports"] == 1
{%- endif %}


def test_a_100_mb_body_without_a_token_is_refused_after_about_the_limit(
    process_env: dict[str, str], settings: Settings, tmp_path: Path
) -> None:
    total = 100 * MB
    piece = b"x" * (64 * 1024)
    with running_api(process_env, tmp_path / "api.log") as api:
        # Warm up (imports, first request), so the peak memory measured is the body's.
        with api.connect() as sock:
            sock.sendall(request_head("GET", "/me", {}))
            assert read_response(sock).status == 401
        peak_before = api.memory_kib("VmHWM")

        # Declared too large: refused before the client sends a byte of it.
        with api.connect(timeout=10) as sock:
            sock.sendall(
                request_head(
                    "POST",
                    "{% if cookiecutter.examples == "kudos" %}/compliments{% else %}/admin/users{% endif %}",
                    {"Content-Type": "application/json", "Content-Length": str(total)},
                )
            )
            declared = read_response(sock)
        assert declared.status == 413, declared.body
        assert declared.json()["error"]["code"] == "request_too_large"

        # Streamed (chunked, no length): refused once the limit is passed.
        sent = 0
        done = threading.Event()
        with api.connect(timeout=30, send_buffer=64 * 1024) as sock:
            sock.sendall(
                request_head(
                    "POST",
                    "{% if cookiecutter.examples == "kudos" %}/compliments{% else %}/admin/users{% endif %}",
                    {"Content-Type": "application/json", "Transfer-Encoding": "chunked"},
                )
            )

            def send_body() -> None:
                nonlocal sent
                frame = b"%x\r\n" % len(piece) + piece + b"\r\n"
                try:
                    while sent < total and not done.is_set():
                        sock.sendall(frame)
                        sent += len(piece)
                    sock.sendall(b"0\r\n\r\n")
                except OSError:
                    pass  # the server closed the connection: what it should do

            sender = threading.Thread(target=send_body, daemon=True)
            sender.start()
            streamed = read_response(sock)
            done.set()
            sender.join(timeout=30)
        peak_after = api.memory_kib("VmHWM")

    assert streamed.status == 413, streamed.body
    assert streamed.json()["error"]["code"] == "request_too_large"
    assert streamed.headers["connection"] == "close"
    # What the client got rid of bounds what the server read: the limit plus the sockets'
    # buffers, not the 100 MB.
    assert sent < 8 * MB, f"{sent / MB:.1f} MB sent before the refusal"
    assert peak_after - peak_before < 16 * 1024, (
        f"peak RSS grew from {peak_before} to {peak_after} KiB"
    )


# --- pace --------------------------------------------------------------------------------


def test_a_stalled_or_trickling_body_is_cut_off_with_a_408(
    process_env: dict[str, str], tmp_path: Path, db: Db, acme: UUID, bearer: Bearer
) -> None:
    token = bearer(admin(db, acme, "boss@acme.example"))
    timeout = 2.0
{%- if cookiecutter.examples == "kudos" %}
    boundary = "b0undary"
{%- endif %}
{%- if cookiecutter.examples == "kudos" %}
    part = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
        'filename="users.csv"\r\nContent-Type: text/csv\r\n\r\nname,email\n'
    ).encode()
    upload_head = request_head(
        "POST",
        IMPORTS,
        {
            **token,
            "Content-Type": f"multipart/form-data; boundary={boundary}",
            "Content-Length": "100000",
        },
    )
{%- else %}
    part = b'{"name": "'
    upload_head = request_head(
        "POST",
        "/admin/users",
        # Under REQUEST_MAX_BODY_BYTES, so only its pace can refuse it.
        {**token, "Content-Type": "application/json", "Content-Length": "60000"},
    )
{%- endif %}
    with running_api(
        process_env, tmp_path / "api.log", REQUEST_READ_TIMEOUT_SECONDS=str(timeout)
    ) as api:
        # A JSON body that stops half-way.
        with api.connect() as sock:
            started = time.monotonic()
            sock.sendall(
                request_head(
                    "POST",
                    "{% if cookiecutter.examples == "kudos" %}/compliments{% else %}/admin/users{% endif %}",
                    {"Content-Type": "application/json", "Content-Length": "100"},
                )
{%- if cookiecutter.examples == "kudos" %}
                + b'{"coins":'
{%- else %}
                + b'{"name":'
{%- endif %}
            )
            stalled = read_response(sock)
            stalled_after = time.monotonic() - started
{%- if cookiecutter.examples == "kudos" %}
        # An upload sending a byte every half second after its first line.
{%- else %}
        # A body sending a byte every half second after its first piece.
{%- endif %}
        with api.connect() as sock:
            sock.sendall(upload_head + part)
            started = time.monotonic()
            trickled = None
            sock.settimeout(0.5)
            while time.monotonic() - started < 30:
                try:
                    trickled = read_response(sock)
                    break
                except TimeoutError:
                    sock.sendall(b"a")
            trickled_after = time.monotonic() - started

    for response, after in ((stalled, stalled_after), (trickled, trickled_after)):
        assert response is not None, "no answer within 30 s"
        assert response.status == 408, response.body
        assert response.json()["error"]["code"] == "request_timeout"
        assert response.headers["connection"] == "close"
        # Not before the deadline, and soon after it.
{%- if cookiecutter.examples == "kudos" %}
        assert timeout - 0.2 < after < timeout + 5, after
    assert counts(db)["csv_imports"] == 0
{%- else %}
        assert timeout - 0.2 < after < timeout + 5, after
    assert db.execute("SELECT count(*) FROM users").fetchone() == (1,)
{%- endif %}


# --- paging and file names ---------------------------------------------------------------


async def test_offset_is_bounded(api: httpx.AsyncClient, headers: dict[str, str]) -> None:
    at_limit = await api.get("/admin/users", params={"offset": MAX_OFFSET}, headers=headers)
    assert at_limit.status_code == 200, at_limit.text
    for offset in (MAX_OFFSET + 1, 2**63, 10**30):
        past = await api.get("/admin/users", params={"offset": offset}, headers=headers)
        assert_envelope(past, 422, "validation_error")
        assert past.json()["error"]["details"][0]["location"] == ["query", "offset"]
{%- if cookiecutter.examples == "kudos" %}


@pytest.mark.parametrize(
    "name", [b"a\x00b.csv", b"users\x1b[31m.csv", b"tab\there.csv", b"\x7f.csv", b"\xc2\x85.csv"]
)
async def test_control_characters_in_a_file_name_are_a_400(
    api: httpx.AsyncClient, headers: dict[str, str], db: Db, name: bytes
) -> None:
    # Written by hand: httpx would percent-encode the control characters itself.
    body = (
        b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="'
        + name
        + b'"\r\nContent-Type: text/csv\r\n\r\nname,email\nAna,ana@acme.example\n\r\n--xyz--\r\n'
    )
    response = await api.post(
        IMPORTS,
        content=body,
        headers={**headers, "Content-Type": "multipart/form-data; boundary=xyz"},
    )
    assert_envelope(response, 400, "invalid_file_name")
    assert counts(db)["csv_imports"] == 0
{%- endif %}
