"""The api as a real uvicorn process, and raw HTTP over sockets.

For what only a server shows: how many bytes of a body it reads, how much memory that
costs it, what it does with a client that sends (or reads) slowly. An in-process client
hands the app a whole body at once, so it cannot show any of these.
"""

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from .conftest import PROJECT_ROOT

UVICORN = str(Path(sys.executable).with_name("uvicorn"))


@dataclass(frozen=True)
class ApiProcess:
    proc: "subprocess.Popen[bytes]"
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def connect(
        self,
        *,
        timeout: float = 30,
        send_buffer: int | None = None,
        receive_buffer: int | None = None,
    ) -> socket.socket:
        sock = socket.socket()
        # Set before connecting, when TCP still negotiates its window from them.
        if send_buffer is not None:
            # A small send buffer: bytes the client got rid of are close to bytes read.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, send_buffer)
        if receive_buffer is not None:
            # A small window: the server's writes to a client not reading soon wait.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        sock.settimeout(timeout)
        sock.connect(("127.0.0.1", self.port))
        return sock

    def memory_kib(self, field: str = "VmHWM") -> int:
        """The process's peak (VmHWM) or current (VmRSS) resident memory, in KiB."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
        raise AssertionError(f"no {field} in /proc/{self.proc.pid}/status")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def running_api(env: dict[str, str], log: Path, **settings: str) -> Iterator[ApiProcess]:
    """`uvicorn <pkg>.app:create_app --factory` with `env` plus `settings`, once /health
    answers; stopped (and killed if it must be) on the way out."""
    port = free_port()
    args = [
        UVICORN,
        "{{ cookiecutter.package_name }}.app:create_app",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-access-log",
    ]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            args, env={**env, **settings}, cwd=PROJECT_ROOT, stdout=out, stderr=subprocess.STDOUT
        )
    api = ApiProcess(proc, port, log)
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"the api exited early:\n{log.read_text()}")
            try:
                if httpx.get(f"{api.url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"the api did not answer within 30 s:\n{log.read_text()}")
            time.sleep(0.05)
        yield api
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass(frozen=True)
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def request_head(method: str, path: str, headers: dict[str, str]) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def read_response(sock: socket.socket) -> RawResponse:
    """One response with a Content-Length body (what the api's JSON answers have)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError(f"connection closed before a response: {data!r}")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return RawResponse(int(status_line.split()[1]), headers, body[:length])
