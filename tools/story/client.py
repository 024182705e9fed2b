"""HTTP as the story's users speak it: JSON, a bearer token, and a CSV upload."""

import json
from typing import Any

import httpx

from .processes import Stack


class Client:
    """A small JSON-over-HTTP client (httpx, as the project's own tests use), as one
    signed-in user."""

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
        files: dict[str, tuple[str, bytes, str]] | None = None,
    ) -> Any:
        headers = {"Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        url = f"http://127.0.0.1:{self.stack.port}{path}"
        try:
            response = httpx.request(
                method, url, json=json_body, files=files, headers=headers, timeout=30
            )
        except httpx.HTTPError as exc:
            raise self.stack.failure(f"{method} {path}: no answer ({exc})") from exc
        text = response.text
        if response.status_code != expect:
            raise self.stack.failure(
                f"{method} {path}: expected {expect}, got {response.status_code}: {text}"
            )
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
        """POST one file as multipart/form-data."""
        files = {field_name: (file_name, content, "text/csv")}
        return self.request("POST", path, expect, files=files)
