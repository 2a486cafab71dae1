"""Logging: the configuration and the content filter live in `journal.logs` (activities and the store
log too, and may not import amiflow); this module keeps the names the entry points use."""

from __future__ import annotations

from journal.logs import CONTENT_FIELDS, configure, drop_content, logger

__all__ = ["CONTENT_FIELDS", "configure", "drop_content", "logger"]
