"""The direction of use between packages, read from the imports: one store owns all SQL, activities are
adapters over it, and nothing of the journal leans on the layers above it."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def imports(package: str) -> dict[str, set[str]]:
    """Every module a package's files import (top-level, inside functions and under TYPE_CHECKING alike)."""
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module)
        found[str(path.relative_to(ROOT))] = names
    return found


def top(name: str) -> str:
    return name.split(".", maxsplit=1)[0]


def test_only_the_store_runs_sql() -> None:
    for package in ("amiflow", "activities", "workflows", "domain"):
        for path, names in imports(package).items():
            assert not {top(n) for n in names} & {"sqlalchemy", "asyncpg", "alembic"}, (path, names)


def test_activities_are_adapters_over_the_journal() -> None:
    allowed = {"domain", "journal", "activities", "temporalio", "pydantic", "structlog"}
    for path, names in imports("activities").items():
        ours = {n for n in names if top(n) not in sys.stdlib_module_names}
        assert {top(n) for n in ours} <= allowed, (path, ours)
        assert {n for n in ours if top(n) == "activities"} <= {"activities.contracts"}, (path, ours)


def test_the_journal_leans_on_nothing_above_it() -> None:
    for path, names in imports("journal").items():
        assert not {top(n) for n in names} & {"amiflow", "activities", "workflows"}, (path, names)
    ledger = imports("journal")["journal/ledger.py"]
    # Copied into every exported bundle as verify.py: the standard library only.
    assert {top(n) for n in ledger} <= set(sys.stdlib_module_names) | {"__future__"}, ledger
