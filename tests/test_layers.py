"""The layers hold: what each folder may import, checked on the source (function-level imports too).

domain/ is pure; workflows/ see only domain/, the activity contracts and each other; activities/ are
adapters over the journal store; the command line runs no SQL; and no two folders import each other
in a circle."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROJECT = ("domain", "workflows", "activities", "amiflow", "journal")
CLI = ("amiflow/cli.py", "amiflow/cli_audit.py", "amiflow/clikit.py", "amiflow/render.py")


def imports(path: Path) -> set[str]:
    """Every module a file imports, at any depth of its code."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
    return found


def folder_imports(folder: str) -> dict[str, set[str]]:
    return {str(p.relative_to(ROOT)): imports(p) for p in sorted((ROOT / folder).rglob("*.py"))}


def project(modules: set[str]) -> set[str]:
    return {m for m in modules if m.split(".")[0] in PROJECT}


def test_domain_imports_nothing_of_the_project() -> None:
    for file, found in folder_imports("domain").items():
        assert all(m.startswith("domain") for m in project(found)), (file, project(found) - {"domain"})
        assert not {m.split(".")[0] for m in found} & {"temporalio", "sqlalchemy", "asyncpg", "structlog"}, file


def test_workflows_import_domain_the_contracts_and_workflows_only() -> None:
    for file, found in folder_imports("workflows").items():
        bad = {m for m in project(found) if not m.startswith(("domain", "workflows", "activities.contracts"))}
        assert not bad, (file, bad)


def test_activities_import_domain_the_contracts_the_store_and_logging_only() -> None:
    for file, found in folder_imports("activities").items():
        bad = {m for m in project(found) if not m.startswith(("domain", "activities", "journal"))}
        assert not bad, (file, bad)
        assert not {m.split(".")[0] for m in found} & {"sqlalchemy", "asyncpg"}, file


@pytest.mark.parametrize("file", CLI)
def test_the_command_line_runs_no_sql(file: str) -> None:
    found = imports(ROOT / file)
    assert not {m.split(".")[0] for m in found} & {"sqlalchemy", "asyncpg"}, file
    assert not {m for m in found if m.startswith(("journal.postgres", "journal.schema"))}, file


def test_no_sql_outside_the_journal_store() -> None:
    for folder in ("amiflow", "activities", "workflows", "domain"):
        for file, found in folder_imports(folder).items():
            assert not {m.split(".")[0] for m in found} & {"sqlalchemy", "asyncpg"}, file


def test_no_two_folders_import_each_other_in_a_circle() -> None:
    edges: dict[str, set[str]] = {f: set() for f in PROJECT}
    for folder in PROJECT:
        for found in folder_imports(folder).values():
            edges[folder] |= {m.split(".")[0] for m in project(found)} - {folder}
    seen: list[str] = []

    def visit(node: str, path: tuple[str, ...]) -> None:
        for nxt in edges[node]:
            assert nxt not in path, f"cycle: {' → '.join((*path, nxt))}"
            if nxt not in seen:
                visit(nxt, (*path, nxt))
        seen.append(node)

    for folder in PROJECT:
        visit(folder, (folder,))


def test_the_journal_leans_on_nothing_above_it() -> None:
    for file, found in folder_imports("journal").items():
        assert not {m.split(".")[0] for m in found} & {"amiflow", "activities", "workflows"}, (file, found)
    # The ledger is copied into every exported bundle as verify.py: the standard library only.
    ledger = imports(ROOT / "journal" / "ledger.py")
    assert {m.split(".")[0] for m in ledger} <= set(sys.stdlib_module_names) | {"__future__"}, ledger


def test_the_api_goes_through_the_service_layer() -> None:
    """The HTTP API parses and renders: it reaches the journal, Temporal and the gateway only through
    the service layer."""
    for file, found in folder_imports("amiflow/api").items():
        bad = {m for m in project(found) if m.startswith(("journal", "activities", "amiflow.dossiers",
                                                          "amiflow.audit", "amiflow.vault", "amiflow.temporal"))}
        assert not bad, (file, bad)
        assert not {m.split(".")[0] for m in found} & {"sqlalchemy", "asyncpg", "temporalio"}, file
