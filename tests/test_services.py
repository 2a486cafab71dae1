"""The service layer on the in-memory store (which passes the store's contract suite): what each reader
gets back, what is refused, and what the read log says — in seconds, without Temporal or PostgreSQL.

Dossiers are journaled as the worker journals them: the decider's events, sealed with the dossier's
key, appended with their projection. Reads then go through the use cases the CLI and the API call."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from amiflow.bootstrap import Runtime, memory_runtime
from amiflow.services import NotFound, Principal, ReadRefused, commands
from amiflow.services import audit as audit_service
from amiflow.services import dossiers as dossier_service
from amiflow.settings import Settings
from domain import Actor, DossierState, Role, decide, replay
from domain.commands import (
    Acknowledge,
    AssignReviewers,
    AttachDocument,
    Command,
    DeclareComplete,
    DeclareInterests,
    StartDraft,
    Submit,
    SubmitReview,
)
from domain.errors import InvalidCommand
from domain.events import Event
from journal.keys import Keyring
from journal.sealing import append_events
from journal.store import Projection
from tests.test_decider_transitions import CONTENT, DOCUMENT, PMCB, PMCB_EXAMPLE, REVIEW_DUE, SCORES, T0

CALL = PMCB.model_copy(update={"staff": ("amelie",), "committee": ("cora",)})
HOLDER = Principal(Actor(role=Role.HOLDER, name="acme"))
OTHER_HOLDER = Principal(Actor(role=Role.HOLDER, name="autre"))
STAFF = Principal(Actor(role=Role.STAFF, name="amelie"))
OTHER_STAFF = Principal(Actor(role=Role.STAFF, name="bruno"))
REVIEWER = Principal(Actor(role=Role.REVIEWER, name="rita"))
UNASSIGNED = Principal(Actor(role=Role.REVIEWER, name="victor"))
COMMITTEE = Principal(Actor(role=Role.COMMITTEE, name="cora"))
OTHER_COMMITTEE = Principal(Actor(role=Role.COMMITTEE, name="zoe"))
AUDITOR = Principal(Actor(role=Role.AUDITOR, name="odile"))
NOW = T0 + timedelta(days=5)


@dataclass
class Journaled:
    """A dossier journaled in the runtime's store."""

    id: str
    state: DossierState


async def journal(rt: Runtime, steps: list[tuple[Command, Principal]], reference: str) -> Journaled:
    """Decide each command at its instant and append the events as the journal activity does."""
    state, events = DossierState(), list[Event]()
    for i, (given, who) in enumerate(steps):
        command = given.model_copy(update={"reference": reference}) if isinstance(given, StartDraft) else given
        new = decide(state, command, who.actor, T0 + timedelta(hours=i))
        state, events = replay(new, state), events + new
    assert state.call is not None
    projection = Projection(call_id=state.call.id, phase_id=state.phase_id, holder=state.holder,
                            status=state.status.value, version=state.version, submitted_at=state.submitted_at)
    await append_events(rt.store, rt.keys, state.id, state.id, 1, events, projection)
    return Journaled(state.id, state)


SUBMITTED: list[tuple[Command, Principal]] = [
    (StartDraft(call=CALL, phase_id="unique", reference=PMCB_EXAMPLE.reference, content=CONTENT), HOLDER),
    (AttachDocument(document=DOCUMENT), HOLDER),
    (Submit(), HOLDER),
]
REVIEWED: list[tuple[Command, Principal]] = [
    *SUBMITTED,
    (Acknowledge(), STAFF),
    (DeclareComplete(), STAFF),
    (AssignReviewers(reviewers=("rita",), due=REVIEW_DUE), STAFF),
    (DeclareInterests(conflict=False, statement="Aucun lien"), REVIEWER),
    (SubmitReview(scores=SCORES, opinion="Consortium solide"), REVIEWER),
]


@pytest.fixture
def rt(tmp_path: Path) -> Iterator[Runtime]:
    settings = Settings(data_dir=tmp_path / "data")
    yield memory_runtime(settings, Keyring.open(settings.data_dir, create=True))


async def reads(rt: Runtime, dossier_id: str) -> list[tuple[str, str, bool]]:
    return [(r.actor, r.what, r.granted) for r in await rt.store.reads(dossier_id)]


async def test_no_identity_sees_metadata_only_logs_nothing_and_no_reviewer_name(rt: Runtime) -> None:
    d = await journal(rt, REVIEWED, "ref-anonyme")
    view = await dossier_service.show(rt, None, d.id, NOW)
    assert not view.content_granted and view.state.content is None and view.state.reviews == ()
    history = await dossier_service.history(rt, None, d.id, NOW)
    assert "reviewer:rita" not in {e.actor for e in history.events}
    assert "reviewer:—" in {e.actor for e in history.events} and history.reads == []
    assert await reads(rt, d.id) == []


async def test_the_holder_reads_the_content_not_the_reviews_and_the_read_is_logged(rt: Runtime) -> None:
    d = await journal(rt, REVIEWED, "ref-porteur")
    view = await dossier_service.show(rt, HOLDER, d.id, NOW)
    assert view.content_granted and view.state.content == CONTENT and view.state.reviews == ()
    history = await dossier_service.history(rt, HOLDER, d.id, NOW, bodies=True)
    assert "reviewer:rita" not in {e.actor for e in history.events}
    assert all(e.body is None for e in history.events if e.type == "review_submitted")
    assert await reads(rt, d.id) == [("holder:acme", "content", True), ("holder:acme", "content", True)]


async def test_the_committee_reads_the_reviews_of_its_calls_only_logged_as_granted(rt: Runtime) -> None:
    d = await journal(rt, REVIEWED, "ref-comite")
    view = await dossier_service.show(rt, COMMITTEE, d.id, NOW)
    assert not view.content_granted and [r.reviewer for r in view.state.reviews] == ["rita"]
    assert view.state.content is not None and view.state.content.sections == {}  # the summary, not the sections
    with pytest.raises(ReadRefused):
        await dossier_service.show(rt, OTHER_COMMITTEE, d.id, NOW)
    assert await reads(rt, d.id) == [("committee:cora", "reviews", True), ("committee:cora", "summary", True),
                                     ("committee:zoe", "content", False)]


async def test_staff_of_another_call_and_a_stranger_are_refused_and_logged(rt: Runtime) -> None:
    d = await journal(rt, SUBMITTED, "ref-refus")
    for who in (OTHER_STAFF, OTHER_HOLDER):
        with pytest.raises(ReadRefused) as refused:
            await dossier_service.show(rt, who, d.id, NOW)
        assert refused.value.view["content_granted"] is False
    with pytest.raises(ReadRefused):
        await dossier_service.document(rt, UNASSIGNED, d.id, DOCUMENT.id, NOW)
    logged = await reads(rt, d.id)
    assert [(a, g) for a, _, g in logged] == [("staff:bruno", False), ("holder:autre", False),
                                              ("reviewer:victor", False)]
    assert logged[-1][1] == f"document:{DOCUMENT.id}"


async def test_a_shredded_dossier_keeps_its_timeline_and_shows_no_content(rt: Runtime) -> None:
    d = await journal(rt, SUBMITTED, "ref-detruit")
    assert await rt.keys.destroy(d.id) == 1
    view = await dossier_service.show(rt, STAFF, d.id, NOW)
    assert not view.content_granted and "détruit" in view.reason and view.state.content is None
    timeline = await dossier_service.timeline(rt, AUDITOR, d.id, NOW)
    assert [e.type for e in timeline.entries if e.kind == "event"] == ["draft_started", "document_attached",
                                                                       "submitted"]


async def test_as_of_replays_the_past_and_refuses_the_future(rt: Runtime) -> None:
    d = await journal(rt, REVIEWED, "ref-passe")
    past = await dossier_service.show(rt, STAFF, d.id, NOW, as_of=T0 + timedelta(hours=2, minutes=30))
    assert past.status.value == "submitted" and past.version == 3
    with pytest.raises(InvalidCommand, match="futur"):
        await dossier_service.show(rt, STAFF, d.id, NOW, as_of=NOW + timedelta(hours=1))
    with pytest.raises(InvalidCommand, match="hors de la plage admise"):
        commands.parse_instant("9999-12-31T23:00-14:00")


async def test_the_list_pages_by_keyset_and_refuses_an_unknown_status(rt: Runtime) -> None:
    ids = sorted([(await journal(rt, SUBMITTED, f"ref-liste-{i}")).id for i in range(3)])
    first = await dossier_service.listing(rt, NOW, call_id=CALL.id, limit=2)
    assert [i.dossier_id for i in first.items] == ids[:2] and first.next == ids[1]
    rest = await dossier_service.listing(rt, NOW, call_id=CALL.id, after=first.next, limit=2)
    assert [i.dossier_id for i in rest.items] == ids[2:] and rest.next is None
    with pytest.raises(InvalidCommand, match="Statut inconnu"):
        await dossier_service.listing(rt, NOW, status="perdu")


async def test_audit_operations_need_an_auditor_and_are_logged(rt: Runtime, tmp_path: Path) -> None:
    d = await journal(rt, SUBMITTED, "ref-audit")
    with pytest.raises(ReadRefused, match="réservé aux auditeurs"):
        await audit_service.export(rt, STAFF, d.id, tmp_path / "bundle", NOW, NOW.date())
    assert not (tmp_path / "bundle").exists()
    summary = await audit_service.export(rt, AUDITOR, d.id, tmp_path / "bundle", NOW, NOW.date())
    assert summary["events"] == 3 and audit_service.verify_bundle(tmp_path / "bundle").ok
    assert await reads(rt, d.id) == [("staff:amelie", "export", False), ("auditor:odile", "export", True)]
    with pytest.raises(NotFound):
        await audit_service.export(rt, AUDITOR, "hdf-pmcb-reemploi.inconnu", tmp_path / "autre", NOW, NOW.date())


async def test_the_journal_verifies_after_the_reads(rt: Runtime) -> None:
    d = await journal(rt, REVIEWED, "ref-chaine")
    await dossier_service.show(rt, STAFF, d.id, NOW)
    await dossier_service.show(rt, HOLDER, d.id, NOW)
    report = await audit_service.verify(rt)
    assert report.ok and report.breaks == []


def test_the_commands_a_person_types_have_french_labels_and_known_options() -> None:
    for name in commands.typed_commands():
        spec = commands.spec(name)
        assert spec.label != name, name
        assert all(o.help != o.name for o in spec.options), (name, [o.name for o in spec.options])
    with pytest.raises(InvalidCommand, match="Option inconnue --foo"):
        commands.build("acknowledge", {"foo": "1"})
    order = commands.build("request-complement", {"pieces": "Kbis", "due": "2021-01-15"})
    assert order.model_dump()["due"] == datetime(2021, 1, 14, 23, 0, tzinfo=UTC)
