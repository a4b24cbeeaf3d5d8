"""Structured logs (structlog) for both processes; secrets never reach them."""

from __future__ import annotations

import logging
import re
import sys

import structlog

from app.access_log import configure_access_log
from app.config import Settings


def configure_logging(settings: Settings) -> None:
    """stdlib logging routed through structlog: key=value for people, JSON with LOG_JSON."""
    # Plain tracebacks in both formats: the default (rich) one prints every frame's locals,
    # which hold request headers (bearer tokens) and settings, and takes seconds per error.
    final: list[structlog.types.Processor] = (
        # format_exc_info turns exc_info into a plain "exception" string; without it the
        # JSON renderer would print the traceback object's repr.
        [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]
        if settings.log_json
        else [
            structlog.dev.ConsoleRenderer(
                colors=False, exception_formatter=structlog.dev.plain_traceback
            )
        ]
    )
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        # `logger.info(..., extra={...})` fields become key=value (JSON keys).
        structlog.stdlib.ExtraAdder(),
        _drop_color_message,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *final],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level)
    # uvicorn's loggers go through the same handler (one format, JSON with LOG_JSON).
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    # The access log is the app's own (app.access_log: cheap, tokens redacted, under any
    # server); uvicorn's would be a second, costlier line per request.
    uvicorn_access = logging.getLogger("uvicorn.access")
    uvicorn_access.handlers.clear()
    uvicorn_access.propagate = False
    # httpx logs full URLs at INFO; the access log would repeat token query strings.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # alembic (read for /readyz) announces each of its plugins at INFO.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    logging.getLogger("uvicorn.access").addFilter(_RedactTokens())
    configure_access_log(settings.log_json, settings.log_level)


def _drop_color_message(
    logger: object, method: str, event: structlog.types.EventDict
) -> structlog.types.EventDict:
    """uvicorn passes an ANSI-coloured copy of some messages as `extra`; not for logs."""
    event.pop("color_message", None)
    return event


class _RedactTokens(logging.Filter):
    """Email-link tokens grant actions: keep them out of access logs."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(_redact(a) if isinstance(a, str) else a for a in record.args)
        return True


_TOKEN_IN_QUERY = re.compile(r"(token=)[^&\s]+")


def _redact(value: str) -> str:
    return _TOKEN_IN_QUERY.sub(r"\1[redacted]", value)
