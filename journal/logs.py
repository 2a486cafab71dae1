"""Logging: structlog, key-value in development, JSON in production; ids, never content."""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO, cast

import structlog

# Fields that may carry what a holder wrote: dropped from every log line, whoever passes them.
CONTENT_FIELDS = frozenset(
    {"content", "sections", "body", "summary", "opinion", "reasons", "note", "pieces", "statement",
     "payload", "events", "command", "holder_name", "partners", "financing_need", "description",
     "territory", "name", "filename", "document", "documents", "data", "text", "reason", "scores",
     "reference", "state"}
)


def drop_content(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: removes content fields, at any depth, so that logs carry ids, statuses
    and actors."""
    for key, value in event_dict.items():
        event_dict[key] = "[retiré]" if key in CONTENT_FIELDS else _scrub(value)
    return event_dict


def _scrub(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: "[retiré]" if k in CONTENT_FIELDS else _scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(v) for v in value]
    return value


def configure(fmt: str = "console", level: int = logging.INFO) -> None:
    """Configure structlog for the process; `fmt` is "json" or "console". Lines go to stderr, so
    that a command's output (`--json`) stays clean."""
    renderer: Any = (
        structlog.processors.JSONRenderer() if fmt == "json" else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            drop_content,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(cast(TextIO, _Stderr())),
        cache_logger_on_first_use=True,
    )


class _Stderr:
    """Whatever `sys.stderr` is when a line is written (a test harness or a daemon may replace it)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def logger(**bound: Any) -> Any:
    """A logger bound to ids (dossier_id, workflow_id, actor…); configures the defaults first if the
    process has not, so that no line ever leaves without the content filter."""
    if not structlog.is_configured():
        configure()
    return structlog.get_logger("amiflow").bind(**bound)
