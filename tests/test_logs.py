"""Logs carry ids, statuses and actors, never content: `amiflow.logs` drops every content field,
in the JSON and console formats, and when nobody configured structlog before the first line."""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from amiflow.logs import CONTENT_FIELDS, configure, drop_content, logger

MARKER = "SECRET-7f3a9c"  # what a holder wrote; must reach no log line
DOSSIER = "hdf-pmcb-reemploi.ref-acme-2026"
WORKFLOW = f"dossier:{DOSSIER}"
ACTOR = "staff:amelie"
DROPPED = "[retiré]"


@pytest.fixture(autouse=True)
def fresh_structlog() -> Iterator[None]:
    """Each test starts and ends with structlog unconfigured, so that no other test sees its
    configuration (nor a bound logger cached under it: `configure` caches on first use)."""
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()
    yield
    structlog.contextvars.clear_contextvars()
    structlog.reset_defaults()


def content_fields() -> dict[str, Any]:
    """Every content field, each carrying the marker (nested in some, as real values would be)."""
    values: dict[str, Any] = {name: f"{MARKER}-{name}" for name in CONTENT_FIELDS}
    values["sections"] = {"presentation": f"{MARKER}-sections"}
    values["partners"] = (f"{MARKER}-partners",)
    return values


def log_one_line(**bound: Any) -> None:
    logger(dossier_id=DOSSIER, actor=ACTOR, **bound).info(
        "dossier_updated", status="submitted", workflow_id=WORKFLOW, **content_fields()
    )


def test_content_fields_are_those_a_holder_writes() -> None:
    assert {"content", "sections", "partners", "holder_name", "opinion", "reasons", "statement",
            "pieces", "note", "summary", "financing_need", "territory", "name"} <= CONTENT_FIELDS
    assert not {"status", "dossier_id", "workflow_id", "actor", "event", "level"} & CONTENT_FIELDS


def test_processor_replaces_content_and_keeps_the_rest() -> None:
    event = {"event": "x", "status": "draft", "dossier_id": DOSSIER, **content_fields()}
    out = drop_content(None, "info", dict(event))
    assert out == {"event": "x", "status": "draft", "dossier_id": DOSSIER} | dict.fromkeys(CONTENT_FIELDS, DROPPED)


def test_json_lines_drop_content(capsys: pytest.CaptureFixture[str]) -> None:
    configure("json")
    log_one_line()
    captured = capsys.readouterr()
    assert captured.out == ""  # lines go to stderr: a command's --json output stays clean
    assert MARKER not in captured.err
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1
    line = json.loads(lines[0])
    assert {name: line[name] for name in CONTENT_FIELDS} == dict.fromkeys(CONTENT_FIELDS, DROPPED)
    assert line["dossier_id"] == DOSSIER
    assert line["workflow_id"] == WORKFLOW
    assert line["actor"] == ACTOR
    assert line["status"] == "submitted"
    assert line["event"] == "dossier_updated"
    assert line["level"] == "info"


def test_console_lines_drop_content(capsys: pytest.CaptureFixture[str]) -> None:
    configure("console")
    log_one_line()
    captured = capsys.readouterr()
    assert captured.out == ""
    assert MARKER not in captured.err
    assert captured.err.count("\n") == 1
    for name in CONTENT_FIELDS:
        assert f" {name}={DROPPED}" in captured.err, name
    for shown in (f"dossier_id={DOSSIER}", f"workflow_id={WORKFLOW}", f"actor={ACTOR}", "status=submitted"):
        assert shown in captured.err
    assert "dossier_updated" in captured.err
    with pytest.raises(json.JSONDecodeError):
        json.loads(captured.err)


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_content_bound_to_the_logger_or_the_context_is_dropped(fmt: str, capsys: pytest.CaptureFixture[str]) -> None:
    configure(fmt)
    structlog.contextvars.bind_contextvars(opinion=f"{MARKER}-context")
    logger(dossier_id=DOSSIER, actor=ACTOR, holder_name=f"{MARKER}-bound").info("review_read", status="under_review")
    err = capsys.readouterr().err
    assert MARKER not in err
    assert DOSSIER in err and ACTOR in err and "under_review" in err
    if fmt == "json":
        line = json.loads(err)
        assert (line["holder_name"], line["opinion"]) == (DROPPED, DROPPED)
    else:
        assert f"holder_name={DROPPED}" in err and f"opinion={DROPPED}" in err


def test_logger_configures_structlog_when_nobody_did(capsys: pytest.CaptureFixture[str]) -> None:
    structlog.reset_defaults()
    assert structlog.is_configured() is False
    log_one_line()
    assert structlog.is_configured() is True
    processors = structlog.get_config()["processors"]
    assert drop_content in processors
    assert processors.index(drop_content) == len(processors) - 2  # just before the renderer
    captured = capsys.readouterr()
    assert captured.out == ""
    assert MARKER not in captured.err
    assert captured.err.count(DROPPED) == len(CONTENT_FIELDS)
    assert f"dossier_id={DOSSIER}" in captured.err and "status=submitted" in captured.err  # console format


def test_configuring_again_switches_the_format(capsys: pytest.CaptureFixture[str]) -> None:
    # configure caches each bound logger on first use; a logger asked for after reconfiguring
    # must follow the new configuration, still without content.
    configure("console")
    log_one_line()
    configure("json")
    log_one_line()
    first, second = capsys.readouterr().err.strip().splitlines()
    assert MARKER not in first and MARKER not in second
    assert first.startswith("20") and f"dossier_id={DOSSIER}" in first
    assert json.loads(second)["dossier_id"] == DOSSIER


def test_lines_follow_the_current_stderr(monkeypatch: pytest.MonkeyPatch) -> None:
    # Configured once, while another stream was stderr; a daemon or a harness may replace it since.
    configure("json")
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    log_one_line()
    written = stream.getvalue()
    assert MARKER not in written
    assert json.loads(written)["dossier_id"] == DOSSIER


def test_content_nested_under_another_key_is_dropped(capsys: pytest.CaptureFixture[str]) -> None:
    configure("json")
    logger(dossier_id="X").info("nested", snapshot={"status": "draft", "content": {"sections": "SECRETNESTED"}},
                                batch=[{"opinion": "SECRETNESTED"}])
    line = capsys.readouterr().err
    assert "SECRETNESTED" not in line and '"status": "draft"' in line
