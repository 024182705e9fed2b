"""The cron process: `python -m {{ cookiecutter.package_name }}.scripts.run_weekly_reset`.

Runs the weekly reset once and exits. Exit 0 with a one-line JSON summary on stdout
(also when another run holds the lock: that run does the work); exit 1 with a one-line
reason on stderr when the reset could not run, so the scheduler shows a failed run.
"""

import asyncio
import json
import sys

from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from ..features.wallets.service import (
    ResetAlreadyRunningError,
    ResetSummary,
    reset_weekly_balances,
)
from ..lib.config import Settings, get_settings
from ..lib.database import create_session_factory, engine_scope
from ..lib.logs import configure_logging


async def run(settings: Settings) -> ResetSummary:
    async with engine_scope(settings) as engine, create_session_factory(engine)() as session:
        return await reset_weekly_balances(session)


def _reason(exc: BaseException) -> str:
    cause = getattr(exc, "orig", None) or exc
    first_line = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
    return f"{type(cause).__name__}: {first_line}"


def main() -> int:
    try:
        settings = get_settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, error['loc']))}: {error['msg']}" for error in exc.errors()
        )
        print(f"weekly reset failed: bad configuration: {problems}", file=sys.stderr)
        return 2
    configure_logging(settings)
    try:
        summary = asyncio.run(run(settings))
    except ResetAlreadyRunningError:
        print(json.dumps({"status": "skipped", "reason": "another weekly reset is running"}))
        return 0
    except (SQLAlchemyError, OSError) as exc:
        print(f"weekly reset failed: {_reason(exc)}", file=sys.stderr)
        return 1
    print(json.dumps({"status": "ok", **summary.as_dict()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
