"""The generated project's story, told over HTTP to its real, separate processes.

Shared by the end-to-end test (tests/test_end_to_end.py) and the demo (tools/demo.py).
Given a rendered project installed with `uv sync --frozen`, a Postgres database and a
Redis URL:

- `Stack` runs the project the way its README's "Run locally" section does, with the
  programs of the project's own virtualenv (what `uv run` executes): `alembic upgrade
  head`, then the api (`uvicorn <pkg>.app:create_app --factory`) and the worker
  (`arq <pkg>.worker.WorkerSettings`) as separate OS processes, the api on a free port,
  both under a queue name of their own. It waits for `/health/ready` and for the
  worker's health-check key with deadlines, and stops both with SIGTERM (and a
  deadline) when it is left, also after a failure. Tokens come from the project's
  `dev-token` command, which the api accepts through a local JWKS file.
- `tell` drives the story as clients would, over HTTP: the first admin signs in with
  `dev-token` (which creates the company, as the README says), adds colleagues, imports
  more from a CSV through the worker, sets the weekly allowance; colleagues send
  compliments (some refused); the cron command runs the weekly reset as its own
  process, twice; then every user's balances and ledger are compared, over HTTP and in
  the database, with `Expected`.
- `Expected` applies the domain rules (the shared domain notes and the project README)
  to the story's steps on its own: nothing it predicts is read back from the project.

Any failure raises `StoryError` with the processes' captured output.

The parts: `common` (the narrator, `StoryError`), `services` (Postgres and Redis),
`processes` (`Stack`), `client` (HTTP), `rules` (`Expected`) and `scenario` (`tell`).
"""

from .common import Say, StoryError, quiet
from .processes import Stack, Stopped
from .scenario import Outcome, tell
from .services import POSTGRES_ADMIN_URL, fresh_database, service_problems

__all__ = [
    "POSTGRES_ADMIN_URL",
    "Outcome",
    "Say",
    "Stack",
    "Stopped",
    "StoryError",
    "fresh_database",
    "quiet",
    "service_problems",
    "tell",
]
