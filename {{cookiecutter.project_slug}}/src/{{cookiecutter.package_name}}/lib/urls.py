"""Links the api hands out, such as `status_url`: relative paths, never absolute URLs.

An absolute URL would be built from the request's Host header and scheme, which behind a
TLS-terminating proxy say `http://` (and which a client may forge); a path works from
wherever the client called.
"""

from typing import Any

from pydantic import BaseModel, Field
from starlette.requests import Request


class Accepted(BaseModel):
    """What every 202 answers: the work was handed to the worker, follow it here."""

    status_url: str = Field(description="Where to follow the work: a path on this api")


def relative_url(request: Request, name: str, **path_params: Any) -> str:
    """The path of the route called `name` (under the app's root path, if mounted)."""
    path = request.app.url_path_for(name, **path_params)
    return str(request.scope.get("root_path", "")) + str(path)
