"""The cron process: deactivates the users who never signed in.

Run as `python -m {{ cookiecutter.package_name }}.scripts.deactivate_dormant_users`. It
deactivates the users without an identity provider subject (never signed in) added more
than DORMANT_USER_DAYS days ago (90 by default): an account nobody took up should not
stay a way into the company. Runs once and exits:

- 0, with a one-line JSON summary on stdout (`deactivated`, per company in
  `companies`). Running it again deactivates nobody new: it is idempotent;
- 1 when the database could not be reached or refused the update (one line on stderr);
  the scheduler runs it again at the next slot;
- 2 for bad configuration.
"""

import asyncio
import json
import sys
from collections import Counter
from typing import Any

from pydantic import ValidationError
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from ..lib import error_reports, telemetry
from ..lib.config import Settings, get_settings
from ..lib.database import engine_scope
from ..lib.logs import configure_logging

# One statement: the rows it changes are locked and changed at once, so two runs at
# the same time deactivate each user once, and a user who signs in meanwhile (and so
# gets a subject) is not deactivated.
DEACTIVATE = text("""
    UPDATE users SET is_active = false
    WHERE is_active AND auth_sub IS NULL
      AND created_at < now() - make_interval(days => :days)
    RETURNING company_id
""")


async def deactivate_dormant_users(settings: Settings) -> dict[str, Any]:
    """Deactivate the dormant users; the summary says how many, per company."""
    with telemetry.cron_run("deactivate_dormant_users") as span:
        async with engine_scope(settings) as engine, engine.begin() as conn:
            rows = (await conn.execute(DEACTIVATE, {"days": settings.dormant_user_days})).all()
        per_company = Counter(str(row.company_id) for row in rows)
        summary: dict[str, Any] = {
            "status": "ok",
            "dormant_user_days": settings.dormant_user_days,
            "deactivated": len(rows),
            "companies": dict(sorted(per_company.items())),
        }
        telemetry.set_summary(span, summary, prefix="dormant_users")
        return summary


def describe_error(exc: BaseException) -> str:
    """A one-line reason: the database's own error when there is one."""
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
        print(f"dormant users failed: bad configuration: {problems}", file=sys.stderr)
        return 2
    configure_logging(settings)
    telemetry.configure(settings, "cron")
    error_reports.configure(settings, "cron")
    try:
        summary = asyncio.run(deactivate_dormant_users(settings))
    except (SQLAlchemyError, OSError) as exc:
        error_reports.capture(exc)
        print(f"dormant users failed: {describe_error(exc)}", file=sys.stderr)
        return 1
    finally:
        telemetry.shutdown()
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
