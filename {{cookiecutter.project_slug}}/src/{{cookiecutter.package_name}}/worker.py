"""The worker process: `arq {{ cookiecutter.package_name }}.worker.WorkerSettings`."""

from typing import Any, ClassVar

from arq import cron, func
from arq.cron import CronJob
from arq.worker import Function
{%- if cookiecutter.examples == "kudos" %}

from .features.compliments import jobs as compliment_jobs
from .features.mail import jobs as mail_jobs
from .features.mail.delivery import Drainer, MailConfig
from .features.user_import import jobs as import_jobs
from .features.wallets import jobs as wallet_jobs
{%- else %}

from .features.user_export import jobs as export_jobs
{%- endif %}
from .lib import context, error_reports, telemetry
from .lib.config import get_settings
from .lib.database import create_engine, create_session_factory
from .lib.logs import configure_logging
from .lib.queue import deserialize_job, health_check_key, redis_settings, serialize_job

settings = get_settings()
# Before arq builds its worker from these settings (Sentry wraps the jobs as it does).
telemetry.configure(settings, "worker")
error_reports.configure(settings, "worker")


async def startup(ctx: dict[str, Any]) -> None:
    configure_logging(settings)
    engine = create_engine(settings, min_pool_size=WorkerSettings.max_jobs)
    ctx["engine"] = engine
    ctx["session_factory"] = create_session_factory(engine)
    ctx["settings"] = settings
{%- if cookiecutter.examples == "kudos" %}
    ctx["mail_drainer"] = Drainer(ctx["session_factory"], MailConfig.of(settings))
{%- endif %}


async def job_start(ctx: dict[str, Any]) -> None:
    # Each job runs in its own task: every line it logs carries its id.
    context.job_id.set(ctx["job_id"])
    error_reports.job_started(ctx, telemetry.job_started(ctx))


async def job_end(ctx: dict[str, Any]) -> None:
    telemetry.job_ended(ctx)


async def shutdown(ctx: dict[str, Any]) -> None:
    await ctx["engine"].dispose()


class WorkerSettings:
    functions: ClassVar[list[Function]] = [
{%- if cookiecutter.examples == "kudos" %}
        func(wallet_jobs.weekly_reset, name="weekly_reset", max_tries=3),
        # Retries are decided by the job (transient errors only); arq's own count is a
        # backstop above it, for a job cut short by a dead worker.
        func(
            import_jobs.import_users_csv,
            name="import_users_csv",
            max_tries=import_jobs.MAX_TRIES + 2,
            timeout=import_jobs.TIMEOUT_SECONDS,
        ),
        # A wake-up per cause (mail-drain:<cause>), forgotten once run so the next one
        # can be queued; a drain lasts as long as there is mail due.
        func(
            mail_jobs.drain_mail_outbox,
            name="drain_mail_outbox",
            max_tries=1,
            keep_result=0,
            timeout=mail_jobs.DRAIN_TIMEOUT_SECONDS,
        ),
    ]
    # At start-up and every minute: re-enqueue imports Redis lost or a dead worker left.
    cron_jobs: ClassVar[list[CronJob]] = [
        cron(
            import_jobs.reconcile_csv_imports,
            name="reconcile_csv_imports",
            second=0,
            run_at_startup=True,
            unique=True,
        ),
        # Every 10 minutes: finish a weekly reset that a failed run left incomplete, so
        # tenants get their allowance the same day (docs/cron.md, "When a run fails").
        cron(
            wallet_jobs.weekly_reset_catch_up,
            name="weekly_reset_catch_up",
            minute=set(range(5, 60, 10)),
            run_at_startup=True,
            unique=True,
        ),
        # Hourly (and at start-up), so a key lives its retention plus at most an hour:
        # the weekly reset is too rare, and deleting on the compliment path would slow it.
        cron(
            compliment_jobs.purge_idempotency_keys,
            name="purge_idempotency_keys",
            minute=17,
            second=0,
            run_at_startup=True,
            unique=True,
        ),
        # Hourly: an uploaded file (personal data) outlives its import by no more than
        # CSV_IMPORT_FILE_RETENTION_HOURS, even when the import never ran.
        cron(
            import_jobs.purge_csv_import_files,
            name="purge_csv_import_files",
            minute=47,
            second=0,
            run_at_startup=True,
            unique=True,
        ),
        # Every minute (and at start-up): mail no wake-up reached, retries falling due and
        # batches a dead worker left (features/mail/delivery.py).
        cron(
            mail_jobs.drain_mail_outbox_periodically,
            name="drain_mail_outbox_periodically",
            second=30,
            run_at_startup=True,
            unique=True,
            timeout=mail_jobs.DRAIN_TIMEOUT_SECONDS,
        ),
    ]
{%- else %}
        # The export is idempotent (a finished one is left as it is): a retry after a
        # dead worker writes the same file.
        func(export_jobs.export_users, name="export_users", max_tries=3),
    ]
    # Hourly (and at start-up): an export (personal data) outlives its retention by no
    # more than an hour, and one whose job Redis lost is queued again.
    cron_jobs: ClassVar[list[CronJob]] = [
        cron(
            export_jobs.tidy_user_exports,
            name="tidy_user_exports",
            minute=23,
            second=0,
            run_at_startup=True,
            unique=True,
        ),
    ]
{%- endif %}
    # Each job then tells its span and `job.duration` how it ended (lib/telemetry.py).
    functions = telemetry.observed_jobs(functions)
    cron_jobs = telemetry.observed_jobs(cron_jobs)
    on_startup = startup
    on_job_start = job_start
    on_job_end = job_end
    # The payload carries the enqueuer's trace context (lib/queue.py).
    job_serializer = serialize_job
    job_deserializer = deserialize_job
    on_shutdown = shutdown
    redis_settings = redis_settings(settings)
    queue_name = settings.queue_name
    # `arq --check {{ cookiecutter.package_name }}.worker.WorkerSettings` reads this key.
    health_check_key = health_check_key(settings)
    health_check_interval = 30
    # Jobs wait on Postgres, not the CPU: ten share the event loop, and the engine's
    # pool keeps at least that many connections (lib/database.py `pool_size`).
    max_jobs = 10
    # WORKER_POLL_DELAY_SECONDS (0.02 s): a job starts within about 20 ms of being
    # enqueued, for about 50 Redis commands/s per idle worker; arq's 0.5 s default made
    # every job wait 250 ms on average and capped a worker near 200 jobs/s {% if cookiecutter.examples == "kudos" %}(bench/jobs.py){% else %}(the template's bench){% endif %}.
    poll_delay = settings.worker_poll_delay_seconds
    # On SIGTERM (every Railway deploy) let running jobs finish for up to
    # WORKER_SHUTDOWN_WAIT_SECONDS (20 s), inside the service's 30 s drainingSeconds,
    # before they are cancelled and retried.
    job_completion_wait = settings.worker_shutdown_wait_seconds
    job_timeout = 600
    keep_result = 3600
