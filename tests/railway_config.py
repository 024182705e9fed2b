"""Evaluate a `.railway/railway.py` the way the Railway CLI does, with railway-sdk.

The CLI imports the file, takes `main` (or `Railway`, or `default`), calls it with no
arguments, and serialises the returned project's `.to_graph()` to JSON.
"""

import importlib.util
import json
import uuid
from pathlib import Path
from typing import Any

Resource = dict[str, Any]


def evaluate(path: Path) -> dict[str, Any]:
    """The project graph of a railway.py file, as the plain JSON data the CLI reads."""
    spec = importlib.util.spec_from_file_location(f"railway_config_{uuid.uuid4().hex}", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    entry = next(
        (getattr(module, name) for name in ("main", "Railway", "default") if hasattr(module, name)),
        None,
    )
    assert entry is not None, f"{path} defines no main(), Railway or default"
    result = entry() if callable(entry) else entry
    if hasattr(result, "to_graph"):
        result = result.to_graph()
    graph: dict[str, Any] = json.loads(json.dumps(result))
    return graph


def resources(graph: dict[str, Any]) -> dict[str, Resource]:
    """Every resource by its address, e.g. "database.Postgres" or "service.api"."""
    return {resource["address"]: resource for resource in graph["resources"]}


def services(graph: dict[str, Any]) -> dict[str, Resource]:
    """The app services by name."""
    return {r["name"]: r for r in graph["resources"] if r["type"] == "service"}


def reference(resource: str, output: str) -> dict[str, str]:
    """A variable that Railway fills in from another resource's output."""
    return {"type": "reference", "resource": resource, "output": output}
