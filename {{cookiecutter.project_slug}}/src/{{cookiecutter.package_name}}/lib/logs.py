"""Logging for the three processes: JSON lines in production, readable text elsewhere.

Every record carries the request id (api) or job id (worker) of the work that wrote it,
and the trace and span ids when tracing is on (lib/telemetry.py).
"""

import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import context, telemetry
from .config import Settings, get_settings

_make_record = logging.getLogRecordFactory()
IDS = ("request_id", "job_id", "trace_id", "span_id")


def record_with_ids(*args: Any, **kwargs: Any) -> logging.LogRecord:
    """Stamp each record, when it is made, with the ids of the work that made it."""
    record = _make_record(*args, **kwargs)
    record.request_id = context.request_id.get()
    record.job_id = context.job_id.get()
    record.trace_id, record.span_id = telemetry.ids()
    return record


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in IDS:
            if value := getattr(record, key, None):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        ids = [f"{key}={value}" for key in IDS if (value := getattr(record, key, None))]
        return f"{line} [{' '.join(ids)}]" if ids else line


def formatter_for(settings: Settings) -> logging.Formatter:
    if settings.environment == "production":
        return JsonFormatter()
    return TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s")


def configured_formatter() -> logging.Formatter:
    """The formatter of the configured environment, for LOG_CONFIG (`"()"`)."""
    return formatter_for(get_settings())


# The same format for what uvicorn's reloader and arq log before the app or the worker
# configures logging: `uvicorn --log-config src/.../lib/log_config.json`,
# `arq --custom-log-dict <package>.lib.logs.LOG_CONFIG` (Procfile.dev).
LOG_CONFIG: dict[str, Any] = json.loads(Path(__file__).with_name("log_config.json").read_text())


def configure_logging(settings: Settings) -> None:
    logging.setLogRecordFactory(record_with_ids)
    handler = logging.StreamHandler()
    handler.setFormatter(formatter_for(settings))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level.upper())
    # uvicorn and arq log through the root handler, so their lines carry the ids too.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "arq"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
