"""HTTP as the story's users speak it: JSON, a bearer token, and a CSV upload."""

import http.client
import json
import uuid
from typing import Any

from .processes import Stack


class Client:
    """A small JSON-over-HTTP client (the standard library's), as one signed-in user."""

    def __init__(self, stack: Stack, token: str | None = None) -> None:
        self.stack = stack
        self.token = token

    def request(
        self,
        method: str,
        path: str,
        expect: int,
        *,
        json_body: Any = None,
        data: bytes | None = None,
        content_type: str | None = None,
    ) -> Any:
        headers = {"Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if json_body is not None:
            data, content_type = json.dumps(json_body).encode(), "application/json"
        if content_type:
            headers["Content-Type"] = content_type
        connection = http.client.HTTPConnection("127.0.0.1", self.stack.port, timeout=30)
        try:
            connection.request(method, path, body=data, headers=headers)
            response = connection.getresponse()
            status, raw = response.status, response.read()
        except (OSError, http.client.HTTPException) as exc:
            raise self.stack.failure(f"{method} {path}: no answer ({exc})") from exc
        finally:
            connection.close()
        text = raw.decode(errors="replace")
        if status != expect:
            raise self.stack.failure(f"{method} {path}: expected {expect}, got {status}: {text}")
        try:
            return json.loads(text) if text else None
        except json.JSONDecodeError:
            return text

    def get(self, path: str, expect: int = 200) -> Any:
        return self.request("GET", path, expect)

    def post(self, path: str, body: Any, expect: int) -> Any:
        return self.request("POST", path, expect, json_body=body)

    def put(self, path: str, body: Any, expect: int = 200) -> Any:
        return self.request("PUT", path, expect, json_body=body)

    def upload(
        self, path: str, field_name: str, file_name: str, content: bytes, expect: int
    ) -> Any:
        boundary = f"story-{uuid.uuid4().hex}"
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{field_name}"; '
            f'filename="{file_name}"\r\nContent-Type: text/csv\r\n\r\n'
        ).encode()
        body = head + content + f"\r\n--{boundary}--\r\n".encode()
        return self.request(
            "POST",
            path,
            expect,
            data=body,
            content_type=f"multipart/form-data; boundary={boundary}",
        )
