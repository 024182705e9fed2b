"""The cron process: `python -m {{ cookiecutter.package_name }}.scripts.run_weekly_reset`.

Runs the weekly reset once and exits:

- 0, with a one-line JSON summary on stdout, when every company due this period is
  reset (by this run or an earlier one);
- 1 when a company was left unreset: the summary (`"status": "incomplete"`, with
  `companies_failed`) on stdout and a one-line reason naming them on stderr; or when the
  reset could not run at all (the reason on stderr). The scheduler restarts it on
  failure, and the run continues where the failed one stopped;
- 2 for bad configuration.
"""

import asyncio
import json
import sys

from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from ..features.wallets.service import (
    ResetIncompleteError,
    ResetSummary,
    describe_error,
    reset_weekly_balances,
)
from ..lib import error_reports, telemetry
from ..lib.config import Settings, get_settings
from ..lib.database import create_session_factory, engine_scope
from ..lib.logs import configure_logging


async def run(settings: Settings) -> ResetSummary:
    # The run is a trace of its own, its summary the root span's attributes.
    with telemetry.cron_run("weekly_reset") as span:
        async with engine_scope(settings) as engine, create_session_factory(engine)() as session:
            summary = await reset_weekly_balances(
                session, batch_size=settings.weekly_reset_batch_size
            )
        telemetry.set_summary(span, summary.as_dict(), prefix="weekly_reset")
        return summary


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
    telemetry.configure(settings, "cron")
    error_reports.configure(settings, "cron")
    try:
        return report(asyncio.run(run(settings)))
    except (SQLAlchemyError, OSError) as exc:
        error_reports.capture(exc)
        print(f"weekly reset failed: {describe_error(exc)}", file=sys.stderr)
        return 1
    finally:
        telemetry.shutdown()


def report(summary: ResetSummary) -> int:
    if summary.companies_failed:
        print(json.dumps({"status": "incomplete", **summary.as_dict()}))
        error = ResetIncompleteError(summary)
        error_reports.capture(error)
        print(f"weekly reset failed: {error}", file=sys.stderr)
        return 1
    print(json.dumps({"status": "ok", **summary.as_dict()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
