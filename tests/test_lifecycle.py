"""Whole lifecycles of each shipped call on the real dev server and PostgreSQL, through the CLI's
code path (amiflow.dossiers). A workflow's clock only moves forward from the real now, and the shipped
calls' dates are past or will be: each lifecycle runs on a copy of its call file with the same
structure and the dates moved around today (tests/dates.py): PMCB open, ressourceries phase 2 open and
CREC's session open, both reviewed after their closing."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import text

from amiflow.catalogue import load_call
from amiflow.dossiers import build_command, history, send, start_calls, submit
from domain import Actor, Call
from domain.state import Status
from tests import dates
from tests.conftest import Stack
from tests.test_notices import dropped

EXAMPLES = Path(__file__).resolve().parent.parent / "deploy" / "examples"
HOLDER = Actor.parse("holder:acme")
STAFF = Actor.parse("staff:amelie")
RITA = Actor.parse("reviewer:rita")
COMMITTEE = Actor.parse("committee:cora")


async def drive(stack: Stack, call: Call, example: Path, criteria: str, *, after_closing: bool) -> str:
    """Submit the example, then take it to the end of its follow-up; returns the dossier id."""
    with stack.env.with_time_skipping_disabled():
        await start_calls(stack.client, stack.task_queue, [call])
        result = await submit(stack.client, stack.task_queue, example, HOLDER, datetime.now(UTC))
    ident = result.dossier_id
    assert result.status is Status.SUBMITTED
    handle = stack.client.get_workflow_handle(ident)

    async def do(actor: Actor, name: str, **options: str) -> Status:
        return (await send(stack.client, ident, build_command(name, options), actor)).status

    assert await do(STAFF, "acknowledge") is Status.ACKNOWLEDGED
    due = dates.due(datetime.now(UTC), 30).arg
    assert await do(STAFF, "request-complement", pieces="Budget détaillé", due=due) is Status.COMPLEMENT_REQUESTED
    assert await do(HOLDER, "provide-complement", note="Budget joint") is Status.ACKNOWLEDGED
    assert await do(STAFF, "declare-complete") is Status.COMPLETE
    if after_closing:  # reviewed once the phase or session has closed
        closes = call.phases[-1].closes_at if len(call.phases) > 1 else call.phases[0].closes_at
        await stack.env.fast_forward(handle, closes - await stack.env.get_current_time(handle) + timedelta(hours=1))
    now = await stack.env.get_current_time(handle)
    review_due = dates.due(now, 20).arg
    assert await do(STAFF, "assign-reviewers", reviewers="rita", due=review_due) is Status.UNDER_REVIEW
    await do(RITA, "declare-interests", conflict="false")
    await do(RITA, "submit-review", scores=criteria, opinion="Projet solide et utile au territoire.")
    assert await do(COMMITTEE, "decide", retained="true", reasons="Retenu à l’unanimité.") is Status.RETAINED
    assert await do(STAFF, "orient") is Status.ORIENTED
    state = await handle.query("current")
    scheme = state["filings"][0]["scheme_id"]
    await do(STAFF, "record-filing", **{"scheme-id": scheme, "outcome": "filed"})
    await do(STAFF, "record-filing", **{"scheme-id": scheme, "outcome": "granted", "amount-eur": "150000"})
    assert await do(STAFF, "record-follow-up", kind="charter_signed") is Status.FOLLOW_UP
    await do(HOLDER, "file-report", period="1", summary="Premier trimestre conforme.")
    await do(STAFF, "record-follow-up", kind="meeting_attended")
    assert await do(STAFF, "close", reason="Suivi achevé.") is Status.CLOSED
    assert await handle.result() is not None  # a closed dossier's workflow ends
    return ident


async def check_journal(stack: Stack, ident: str) -> list[str]:
    journal = await history(stack.store, stack.keys, ident)
    async with stack.engine.connect() as conn:
        seqs = [r[0] for r in await conn.execute(
            text("select seq from events where dossier_id = :d order by seq"), {"d": ident})]
        status = (await conn.execute(text("select status from dossiers where dossier_id = :d"),
                                     {"d": ident})).scalar()
        counts = dict((await conn.execute(text("select status, count from call_counts"))).all())
    assert seqs == list(range(1, len(journal) + 1))
    assert status == "closed"
    assert counts.get("closed") == 1 and sum(counts.values()) == 1
    return [e.type for e in journal]


EXPECTED = [
    "draft_started", "submitted", "acknowledged", "complement_requested", "complement_provided",
    "declared_complete", "reviewers_assigned", "interests_declared", "review_submitted",
    "decision_taken", "oriented", "filing_recorded", "filing_recorded", "follow_up_recorded",
    "report_filed", "follow_up_recorded", "closed",
]


# Who is told what along that lifecycle: (recipient, kind, subject after the dossier's id). No reminder:
# every answer comes before its deadline's reminders, and no timer runs while the dossier waits on staff.
TOLD = Counter({
    ("holder:acme", "submitted", "Accusé de dépôt"): 1,
    ("holder:acme", "acknowledged", "Dossier en instruction"): 1,
    ("holder:acme", "complement_requested", "Complément demandé"): 1,
    ("reviewer:rita", "review_assigned", "Dossier à expertiser"): 1,
    ("holder:acme", "decision", "Décision du comité : dossier retenu"): 1,
    ("holder:acme", "oriented", "Orientation vers des dispositifs"): 1,
    ("holder:acme", "closed", "Dossier clos"): 1,
})


def told(stack: Stack, ident: str) -> Counter[tuple[str, str, str]]:
    """The mails dropped for the dossier, as (recipient, kind, subject less its `[id] ` prefix)."""
    found: Counter[tuple[str, str, str]] = Counter()
    for mail in dropped(stack.mail_dir):
        dossier, kind, recipient, _ = str(mail["X-Amiflow-Key"]).split("|", 3)
        assert dossier == ident and mail["X-Amiflow-Recipient"] == recipient, mail["X-Amiflow-Key"]
        prefix = f"[{ident}] "
        assert mail["Subject"].startswith(prefix), mail["Subject"]
        found[(recipient, kind, mail["Subject"].removeprefix(prefix))] += 1
    return found


async def test_pmcb_full_lifecycle(stack: Stack, tmp_path: Path) -> None:
    call = load_call(dates.write_shifted_call(tmp_path, "hdf-pmcb-reemploi", datetime.now(UTC)))
    ident = await drive(stack, call, EXAMPLES / "hdf-pmcb-reemploi.yaml",
                        "solutions=4,court_terme=3,impact_socio_economique=5", after_closing=False)
    assert await check_journal(stack, ident) == EXPECTED
    assert told(stack, ident) == TOLD


async def test_ressourceries_phase_2_full_lifecycle(stack: Stack, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    call = load_call(dates.write_shifted_call(tmp_path, "hdf-ressourceries", now))
    closes = dates.shifted_dates("hdf-ressourceries", now)[("phase-2", dates.CLOSES)]
    assert call.phases[1].closes_at == dates.paris_midnight(closes)  # reviewed after that closing
    ident = await drive(stack, call, EXAMPLES / "hdf-ressourceries.yaml",
                        "solutions=5,court_terme=4,impact_socio_economique=4", after_closing=True)
    types = await check_journal(stack, ident)
    assert types == EXPECTED
    assert told(stack, ident) == TOLD


async def test_crec_session_full_lifecycle(stack: Stack, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    call = load_call(dates.write_shifted_call(tmp_path, "normandie-crec-2018", now))
    closes = dates.shifted_dates("normandie-crec-2018", now)[("session-2018-09", dates.CLOSES)]
    assert call.phases[0].closes_at == dates.paris_midnight(closes)  # reviewed after that closing
    ident = await drive(stack, call, EXAMPLES / "normandie-crec-2018.yaml",
                        "strategie=4,emergence=4,mise_en_oeuvre=3", after_closing=True)
    assert await check_journal(stack, ident) == EXPECTED
    assert told(stack, ident) == TOLD
