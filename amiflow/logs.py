"""Logging: structlog, key-value in development, JSON in production; ids, never content."""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

# Fields that may carry what a holder wrote: dropped from every log line, whoever passes them.
CONTENT_FIELDS = frozenset(
    {"content", "sections", "body", "summary", "opinion", "reasons", "note", "pieces", "statement",
     "payload", "events", "command", "holder_name", "partners", "financing_need", "description",
     "territory", "name", "filename", "document", "data", "text"}
)  # fmt: skip


def drop_content(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: removes content fields so that logs carry ids, statuses and actors."""
    for name in CONTENT_FIELDS.intersection(event_dict):
        event_dict[name] = "[retiré]"
    return event_dict


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
        logger_factory=structlog.PrintLoggerFactory(_Stderr()),
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
