"""Whole lifecycles on the real dev server and PostgreSQL, through the CLI's code path."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import text

from amiflow.catalogue import CALLS_DIR, load_call
from amiflow.dossiers import build_command, history, send, start_calls, submit
from domain import Actor
from domain.dossier import Status
from tests.conftest import Stack

EXAMPLES = Path(__file__).resolve().parent.parent / "deploy" / "examples"
HOLDER = Actor.parse("holder:acme")
STAFF = Actor.parse("staff:amelie")
RITA = Actor.parse("reviewer:rita")
COMMITTEE = Actor.parse("committee:cora")


async def test_pmcb_full_lifecycle(stack: Stack) -> None:
    call = load_call(CALLS_DIR / "hdf-pmcb-reemploi.yaml")
    with stack.env.with_time_skipping_disabled():
        await start_calls(stack.client, stack.task_queue, [call])
        result = await submit(stack.client, stack.task_queue, EXAMPLES / "hdf-pmcb-reemploi.yaml", HOLDER,
                              datetime.now(UTC))  # fmt: skip
    ident = result.dossier_id
    assert result.status is Status.SUBMITTED
    due = (datetime.now(UTC) + timedelta(days=40)).date().isoformat()
    steps = [
        (STAFF, "acknowledge", {}),
        (STAFF, "declare-complete", {}),
        (STAFF, "assign-reviewers", {"reviewers": "rita", "due": due}),
        (RITA, "declare-interests", {"conflict": "false"}),
        (RITA, "submit-review", {"scores": "solutions=4,court_terme=3,impact_socio_economique=5",
                                 "opinion": "Consortium solide."}),
        (COMMITTEE, "decide", {"retained": "true", "reasons": "Projet structurant."}),
        (STAFF, "orient", {}),
        (STAFF, "record-filing", {"scheme-id": "fratri", "outcome": "filed"}),
        (STAFF, "record-follow-up", {"kind": "charter_signed"}),
    ]  # fmt: skip
    for actor, name, options in steps:
        await send(stack.client, ident, build_command(name, options), actor)
    journal = await history(stack.engine, ident)
    assert [e.type for e in journal][-3:] == ["oriented", "filing_recorded", "follow_up_recorded"]
    async with stack.engine.connect() as conn:
        seqs = [r[0] for r in await conn.execute(text("select seq from events order by seq"))]
        status = (await conn.execute(text("select status from dossiers"))).scalar()
    assert seqs == list(range(1, len(journal) + 1))
    assert status == "follow_up"
