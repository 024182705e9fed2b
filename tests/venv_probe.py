"""Run by a rendered project's own Python: do the modules and objects commands name exist?

    .venv/bin/python -I venv_probe.py KIND=TARGET...

KIND is `module` (importable), `object` (`pkg.mod:attr` or `pkg.mod.attr` imports),
`factory` (the same, and callable) or `main` (runnable as `python -m`: a module with an
`if __name__ == "__main__":` guard, or a package with `__main__`). Prints one line per
target that fails and exits 1 if any did. Standard library only.
"""

import importlib
import importlib.util
import re
import sys
from pathlib import Path
from typing import Any

MAIN_GUARD = re.compile(r"""^if __name__ == ["']__main__["']:""", re.MULTILINE)


def find_object(target: str) -> Any:
    module, _, attribute = target.rpartition(":") if ":" in target else target.rpartition(".")
    found: Any = importlib.import_module(module)
    for name in attribute.split("."):
        found = getattr(found, name)
    return found


def check(kind: str, target: str) -> str | None:
    if kind == "module":
        importlib.import_module(target)
    elif kind == "object":
        find_object(target)
    elif kind == "factory":
        if not callable(find_object(target)):
            return "not callable"
    elif kind == "main":
        spec = importlib.util.find_spec(target)
        if spec is None:
            return "no such module"
        if spec.submodule_search_locations is not None:
            return None if importlib.util.find_spec(f"{target}.__main__") else "no __main__"
        source = Path(spec.origin).read_text() if spec.origin else ""
        if not MAIN_GUARD.search(source):
            return 'no `if __name__ == "__main__":` guard'
    else:
        return f"unknown kind {kind}"
    return None


def main(probes: list[str]) -> int:
    failed = 0
    for probe in probes:
        kind, _, target = probe.partition("=")
        try:
            problem = check(kind, target)
        except Exception as exc:
            problem = f"{type(exc).__name__}: {exc}"
        if problem:
            print(f"{probe}: {problem}")
            failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
