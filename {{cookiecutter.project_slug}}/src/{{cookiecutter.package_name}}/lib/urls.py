"""Links the api hands out, such as `status_url`: relative paths, never absolute URLs.

An absolute URL would be built from the request's Host header and scheme, which behind a
TLS-terminating proxy say `http://` (and which a client may forge); a path works from
wherever the client called.
"""

from typing import Any

from starlette.requests import Request


def relative_url(request: Request, name: str, **path_params: Any) -> str:
    """The path of the route called `name` (under the app's root path, if mounted)."""
    path = request.app.url_path_for(name, **path_params)
    return str(request.scope.get("root_path", "")) + str(path)
