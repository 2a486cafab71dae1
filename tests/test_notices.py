"""Notices read for what they say: every kind of notice, in French, naming its dossier, giving its
instant in Paris time with the offset of that instant (a winter and a summer run, both derived from the
clock), and never carrying what the holder wrote. Then the same notices as they travel: by SMTP to a
real local server, and the call's announcements dropped by its workflow.

The kinds are enumerated from domain/notices.py itself (the events `notices_for` matches, the
functions that make notices), so that a new kind without a test here fails."""

from __future__ import annotations

import ast
import asyncio
import hashlib
import inspect
import json
import re
import typing
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest

import domain.notices as notices_module
from activities.contracts import SendNotices
from activities.notifications import NotificationActivities
from amiflow.catalogue import load_dossier, load_schemes
from domain import SYSTEM, Actor, DossierState, Event, deadlines, decide, replay
from domain.commands import (
    Acknowledge,
    AssignReviewers,
    Close,
    Command,
    DeclareComplete,
    DeclareInterests,
    EscalateComplement,
    EscalateReview,
    ExpireDraft,
    ExtendDeadline,
    FlagLateReport,
    Orient,
    ProvideComplement,
    RecordFollowUp,
    RequestComplement,
    StartDraft,
    Submit,
    SubmitReview,
    TakeDecision,
)
from domain.deadlines import report_due
from domain.notices import STAFF_DESK, Notice, announcement, call_moments, linked, notices_for, reminder_notice
from domain.state import DeadlineKind, DossierContent, FollowUpKind
from journal.keys import DossierKeys, Keyring
from journal.postgres import PostgresStore, app_url, create_engine
from tests import dates
from tests.conftest import Stack
from tests.test_cli_stack import Run, cli, pmcb_file  # noqa: F401 (fixtures)
from tests.test_deadline_timers import eventually, ff_to
from tests.test_resilience import free_port

EXAMPLE = Path(__file__).resolve().parent.parent / "deploy" / "examples" / "hdf-pmcb-reemploi.yaml"
HOLDER, STAFF = Actor.parse("holder:acme"), Actor.parse("staff:amelie")
RITA, REMI = Actor.parse("reviewer:rita"), Actor.parse("reviewer:remi")
COMMITTEE = Actor.parse("committee:cora")
MARK = "SECRETPORTEUR"  # in every text the holder writes

# Words or signs that only a French text would carry (as in test_decider_transitions), and English
# words a notice left untranslated would carry.
FRENCH = re.compile(r"[àâçéèêëîïôûùœ’«»]|\b(le|la|les|un|une|des|du|de|en|au|est|vous|votre|dossier)\b", re.IGNORECASE)
ENGLISH = re.compile(r"\b(the|your|has been|deadline|submitted|review|decision|reminder|closed)\b", re.IGNORECASE)
SEASONS = {"hiver": (dates.WINTER, "+01:00"), "été": (dates.SUMMER, "+02:00")}
SITE = "https://amiflow.region.example"  # AMIFLOW_PUBLIC_URL: where the notices' links lead


@dataclass(frozen=True)
class Told:
    """A notice, the event or deadline that made it, and the instant it must show."""

    notice: Notice
    source: str  # the event type, "reminder" or "announcement"
    instant: datetime


def secret_content() -> DossierContent:
    """The PMCB example with the marker in every free text of the holder."""
    content = load_dossier(EXAMPLE).content
    need = content.financing_need
    assert need is not None
    return content.model_copy(update={
        "holder_name": f"Consortium {MARK}", "territory": f"Artois {MARK}", "partners": (f"Partenaire {MARK}",),
        "sections": {k: f"{v} {MARK}" for k, v in content.sections.items()},
        "financing_need": need.model_copy(update={"description": f"Besoin {MARK}"}),
    })


def shown_instant(event: Event, before: DossierState, after: DossierState) -> datetime:
    """The instant the notice of `event` must show: the due date it sets or moves, the deadline it
    reports as missed, or the instant it happened."""
    due = getattr(event, "due", None) or getattr(event, "until", None)
    if due is not None:
        return typing.cast(datetime, due)
    missed = {"complement_overdue": before.complement_due, "review_overdue": before.review_due,
              "draft_expired": before.phase_closes_at}.get(event.type)
    return missed or event.at


class Life:
    """A dossier driven through the real decider, with every notice its events and reminders make."""

    def __init__(self, start: datetime) -> None:
        self.call = dates.shifted_call("hdf-pmcb-reemploi", datetime.now(UTC))
        self.state = DossierState()
        self.at = start
        self.told: list[Told] = []
        self.sources: set[type] = set()  # the event classes that produced a notice

    def act(self, command: Command, actor: Actor, at: datetime | None = None) -> None:
        self.at = at or self.at + timedelta(hours=1)
        for event in decide(self.state, command, actor, self.at):
            before, self.state = self.state, replay([event], self.state)
            made = notices_for(self.state, event)
            if made:
                self.sources.add(type(event))
            instant = shown_instant(event, before, self.state)
            self.told += [Told(n, event.type, instant) for n in made]
        assert self.state.call is not None
        for d in deadlines(self.state, self.state.call, self.at):
            if d.kind is DeadlineKind.REMINDER and d.key not in {t.notice.key for t in self.told}:
                self.told.append(Told(reminder_notice(self.state, d), "reminder", d.due))

    def draft(self) -> None:
        self.act(StartDraft(call=self.call, phase_id="unique", reference="NOTICES 1", content=secret_content()),
                 HOLDER, self.at)


def whole_life(start: datetime, month: int) -> tuple[list[Told], set[type], DossierState]:
    """Two dossiers from `start` (in `month`): one goes from submission to closing past every escalation,
    the other expires as a draft; and the call's announcements."""
    life = Life(start)
    life.draft()
    life.act(Submit(), HOLDER)
    life.act(Acknowledge(), STAFF)
    life.act(RequestComplement(pieces="Kbis de moins de trois mois", due=dates.due(start, 20).at), STAFF)
    life.act(ExtendDeadline(deadline=DeadlineKind.COMPLEMENT_DUE, until=dates.due(start, 25).at), STAFF)
    life.act(EscalateComplement(), SYSTEM, dates.due(start, 25).at)
    life.act(ProvideComplement(note=f"Kbis joint {MARK}"), HOLDER)
    life.act(DeclareComplete(), STAFF)
    life.act(AssignReviewers(reviewers=("rita", "remi"), due=dates.due(start, 40).at), STAFF)
    life.act(ExtendDeadline(deadline=DeadlineKind.REVIEW_DUE, until=dates.due(start, 45).at), STAFF)
    life.act(EscalateReview(), SYSTEM, dates.due(start, 45).at)
    for reviewer in (RITA, REMI):
        life.act(DeclareInterests(conflict=False, statement=f"Aucun lien {MARK}"), reviewer)
    scores = {c.id: 4 for c in life.call.criteria}
    life.act(SubmitReview(scores=scores, opinion=f"Avis {MARK}"), RITA)
    life.act(TakeDecision(retained=True, reasons="Projet structurant pour le territoire"), COMMITTEE)
    life.act(Orient(catalogue=load_schemes()), STAFF)
    life.act(RecordFollowUp(kind=FollowUpKind.CHARTER_SIGNED), STAFF)
    assert life.state.follow_up_started_at is not None
    life.act(FlagLateReport(period=1), SYSTEM, report_due(life.call, life.state.follow_up_started_at, 1))
    life.act(Close(reason="Suivi achevé"), STAFF)

    draft = Life(start)
    draft.draft()
    closing = dates.next_in_month(draft.call.phases[0].closes_at, month)  # the closing, moved into the season
    draft.act(ExtendDeadline(deadline=DeadlineKind.PHASE_CLOSING, until=closing), STAFF)
    draft.act(ExpireDraft(), SYSTEM, closing)
    moments = [Told(announcement(life.call, m), "announcement", m.at) for m in call_moments(life.call)]
    return life.told + draft.told + moments, life.sources | draft.sources, life.state


# --- what domain/notices.py can say ----------------------------------------------------------------


def matched_events() -> set[str]:
    """The event classes `notices_for` has a case for, read from its source."""
    tree = ast.parse(inspect.getsource(notices_for))
    return {c.pattern.cls.id for c in ast.walk(tree) if isinstance(c, ast.match_case)
            and isinstance(c.pattern, ast.MatchClass) and isinstance(c.pattern.cls, ast.Name)}


def notice_makers() -> set[str]:
    """The public functions of domain/notices.py that return notices."""
    found = set()
    for name, fn in inspect.getmembers(notices_module, inspect.isfunction):
        if fn.__module__ == notices_module.__name__ and not name.startswith("_"):
            returned = typing.get_type_hints(fn).get("return")
            if returned is Notice or returned == list[Notice]:
                found.add(name)
    return found


# Every kind (a family ends with `_`), with who is told.
KINDS = {
    "submitted": "holder", "acknowledged": "holder", "complement_requested": "holder",
    "complement_overdue": "staff", "review_assigned": "reviewer", "review_overdue": "staff",
    "decision": "holder", "oriented": "holder", "extended_phase_closing": "holder",
    "extended_complement_due": "holder", "extended_review_due": "holder", "expired": "holder",
    "report_late_": "holder staff", "closed": "holder", "reminder_phase_closing_": "holder",
    "reminder_complement_due_": "holder", "reminder_report_due_": "holder",  # reviewers get none (deadlines.py)
    "phase_opened": "staff", "phase_closed": "staff",
}


def family(kind: str) -> str:
    matches = [k for k in KINDS if kind == k or (k.endswith("_") and kind.startswith(k))]
    assert len(matches) == 1, f"kind {kind!r} belongs to {matches or 'no family'}: add it to KINDS with a check"
    return matches[0]


@pytest.fixture(scope="module", params=SEASONS, ids=SEASONS)
def season(request: pytest.FixtureRequest) -> Iterator[tuple[str, list[Told], set[type], DossierState]]:
    month, offset = SEASONS[request.param]
    start = dates.next_in_month(datetime.now(UTC), month)
    yield (offset, *whole_life(start, month))


def test_every_kind_of_notice_is_made_and_checked(season: tuple[str, list[Told], set[type], DossierState]) -> None:
    _, told, sources, _ = season
    assert notice_makers() == {"notices_for", "reminder_notice", "announcement", "linked"}, \
        "a new maker of notices: test it"
    assert {c.__name__ for c in sources} == matched_events(), "an event that notifies is not driven here"
    seen = {family(t.notice.kind) for t in told}
    assert seen == set(KINDS), f"never made: {set(KINDS) - seen}"
    for t in told:
        role = t.notice.recipient.partition(":")[0]
        assert role in KINDS[family(t.notice.kind)].split(), (t.notice.kind, t.notice.recipient)
    assert {t.notice.recipient for t in told if t.notice.kind == "review_assigned"} == {"reviewer:rita",
                                                                                          "reviewer:remi"}
    assert {t.notice.recipient for t in told if t.notice.kind.startswith("report_late_")} == {"holder:acme",
                                                                                              STAFF_DESK}


def test_each_notice_reads_in_french_with_its_dossier_and_its_paris_instant(
    season: tuple[str, list[Told], set[type], DossierState],
) -> None:
    offset, told, _, state = season
    offsets = []
    for t in told:
        n = linked(t.notice, SITE)  # as it is sent
        where = f"{n.kind}: {n.subject!r} / {n.body!r}"
        for text in (n.subject, n.body):
            assert FRENCH.search(text) and not ENGLISH.search(text), where
        if t.source == "announcement":
            call_id = n.dossier_id.removeprefix("call:")
            assert f"[{call_id}]" in n.subject and call_id in n.body, where
            assert n.body.endswith(f"\n\nVoir l’appel : {SITE}/appels/{call_id}"), where
        else:
            assert n.subject.startswith(f"[{n.dossier_id}] ") and f"Dossier {n.dossier_id} " in n.body, where
            assert n.body.endswith(f"\n\nVoir le dossier : {SITE}/dossiers/{n.dossier_id}"), where
        shown = dates.paris_iso(t.instant)  # tests/dates.py's own rendering: minutes and that day's offset
        assert shown in n.body, where
        assert re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d[+-]\d\d:\d\d", n.body), where
        offsets.append(shown[-6:])
    # The instants the dossier's own steps set are in the season; the rest (the call's dates, a
    # report due months later) fall where they fall, each shown with its own offset.
    assert offsets.count(offset) > len(offsets) / 2, offsets
    assert state.id.startswith("hdf-pmcb-reemploi.")


def test_a_notice_links_to_its_page_only_when_the_site_is_known(
    season: tuple[str, list[Told], set[type], DossierState],
) -> None:
    _, told, _, state = season
    made = first(told, "submitted")
    assert made.dossier_id == state.id and "http" not in made.body  # as the workflow makes it: no address there
    assert linked(made, "") == made  # a worker without AMIFLOW_PUBLIC_URL has nothing to link to
    sent = linked(made, f"{SITE}/")
    assert sent.body == f"{made.body}\n\nVoir le dossier : {SITE}/dossiers/{state.id}"
    assert (sent.key, sent.subject, sent.recipient, sent.due) == (made.key, made.subject, made.recipient, made.due)


def test_no_notice_carries_what_the_holder_wrote(season: tuple[str, list[Told], set[type], DossierState]) -> None:
    _, told, _, state = season
    content = state.content
    assert content is not None and MARK in content.holder_name
    written = [content.holder_name, content.territory, *content.partners, *content.sections.values(), MARK]
    assert content.financing_need is not None
    written.append(content.financing_need.description)
    for t in told:
        for text in written:
            assert text not in t.notice.subject and text not in t.notice.body, (t.notice.kind, text)


# --- a real SMTP server ------------------------------------------------------------------------------


@dataclass
class Received:
    envelope_from: str
    envelope_to: list[str]
    raw: bytes
    message: EmailMessage


class Inbox:
    """aiosmtpd's handler: keeps each message as received."""

    def __init__(self) -> None:
        self.messages: list[Received] = []

    async def handle_DATA(self, server: object, session: object, envelope: typing.Any) -> str:  # noqa: N802
        raw = bytes(envelope.original_content or envelope.content)
        message = message_from_bytes(raw, policy=policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos), raw, message))
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_server() -> Iterator[tuple[str, Inbox]]:
    """A real SMTP server (aiosmtpd) on 127.0.0.1, on a port the system chose."""
    from aiosmtpd.controller import Controller

    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield f"127.0.0.1:{controller.port}", inbox
    finally:
        controller.stop()


def first(told: list[Told], kind: str) -> Notice:
    return next(t.notice for t in told if t.notice.kind == kind)


@pytest.mark.parametrize("month", [dates.WINTER, dates.SUMMER], ids=["hiver", "été"])
async def test_notices_delivered_by_smtp_read_back_whole(
    month: int, smtp_server: tuple[str, Inbox], database: str, tmp_path: Path,
) -> None:
    host, inbox = smtp_server
    told = whole_life(dates.next_in_month(datetime.now(UTC), month), month)[0]
    picked = [first(told, "complement_requested"), first(told, "decision"), first(told, "review_assigned"),
              first(told, "phase_closed")]
    store = PostgresStore(create_engine(app_url(database)))
    keys = DossierKeys(Keyring.open(tmp_path / "data", create=True), store)
    activities = NotificationActivities(store, keys, tmp_path / "maildrop", smtp_host=host, public_url=SITE)
    before = datetime.now(UTC).replace(microsecond=0)
    try:
        assert await activities.send(SendNotices(notices=picked)) == len(picked)
        assert await activities.send(SendNotices(notices=picked)) == 0  # the outbox delivers once
    finally:
        await store.dispose()
    after = datetime.now(UTC)
    assert not (tmp_path / "maildrop").exists()  # SMTP replaces the mail drop
    assert len(inbox.messages) == len(picked)
    for n, got in zip(picked, inbox.messages, strict=True):
        mail, local = got.message, n.recipient.replace(":", ".")
        assert got.envelope_from == "amiflow@localhost"
        assert got.envelope_to == [f"{local}@destinataires.invalid"]
        assert mail["From"] == "amiflow <amiflow@localhost>"
        assert mail["To"].addresses[0].addr_spec == f"{local}@destinataires.invalid"
        assert mail["X-Amiflow-Recipient"] == n.recipient and mail["X-Amiflow-Key"] == n.key
        raw_subject = re.search(rb"^Subject: (.*)$", got.raw, re.MULTILINE)
        assert raw_subject and raw_subject.group(1).startswith(b"=?utf-8?")  # RFC 2047 words on the wire
        assert mail["Subject"] == n.subject  # and decoded whole, spaces and accents included
        assert mail["Message-ID"] == f"<{hashlib.sha256(n.key.encode()).hexdigest()[:32]}@amiflow.localhost>"
        sent = mail["Date"].datetime
        assert before <= sent <= after
        assert sent.utcoffset() == sent.astimezone(dates.PARIS).utcoffset()  # written in Paris time
        assert mail.get_content_type() == "text/plain" and mail.get_content_charset() == "utf-8"
        body = mail.get_content().replace("\r\n", "\n").rstrip("\n")  # lines end in CRLF on the wire
        assert body == linked(n, SITE).body and body.startswith(n.body) and f"{SITE}/" in body


# --- the call's announcements, dropped by its workflow ----------------------------------------------


def dropped(mail_dir: Path) -> list[EmailMessage]:
    """Every mail of the mail drop, read as a mail reader reads it (headers and body decoded)."""
    mails = []
    for path in sorted(mail_dir.glob("*.eml")):
        mail = message_from_bytes(path.read_bytes(), policy=policy.default)
        assert isinstance(mail, EmailMessage)
        mails.append(mail)
    return mails


async def test_the_call_workflow_announces_an_opening_and_a_closing_in_paris_time(stack: Stack) -> None:
    from amiflow.dossiers import start_calls
    from workflows.call import call_workflow_id

    now = datetime.now(UTC)
    shifted = dates.shifted_call("hdf-pmcb-reemploi", now)
    opens = dates.next_in_month(now, dates.WINTER)  # a phase still to open, in winter; closing in summer
    phase = shifted.phases[0].model_copy(update={"opens_at": opens,
                                                 "closes_at": dates.next_in_month(opens, dates.SUMMER)})
    call = shifted.model_copy(update={"phases": (phase,)})
    with stack.env.with_time_skipping_disabled():
        await start_calls(stack.client, stack.task_queue, [call])
    handle = stack.client.get_workflow_handle(call_workflow_id(call.id))

    async def told(count: int) -> list[EmailMessage]:
        mails = dropped(stack.mail_dir) if stack.mail_dir.exists() else []
        assert len(mails) == count, [m["Subject"] for m in mails]
        return mails

    await ff_to(stack.env, handle, phase.opens_at + timedelta(minutes=1))
    [opened] = await eventually(told, 1)
    await ff_to(stack.env, handle, phase.closes_at + timedelta(minutes=1))
    mails = await eventually(told, 2)
    closed = next(m for m in mails if m["Message-ID"] != opened["Message-ID"])
    for mail, word, at, offset in ((opened, "Ouverture", phase.opens_at, "+01:00"),
                                   (closed, "Clôture", phase.closes_at, "+02:00")):
        shown = dates.paris_iso(at)
        assert shown.endswith(offset)
        assert mail["X-Amiflow-Recipient"] == STAFF_DESK
        assert mail["Subject"] == f"[{call.id}] {word} de « {phase.label} » ({shown})"
        body = mail.get_content()
        assert body.startswith(f"{word} de « {phase.label} » ({shown}).") and f"({call.id})" in body
        assert FRENCH.search(body) and not ENGLISH.search(body)


# --- a notice that cannot go never holds its dossier -------------------------------------------------


async def test_a_notice_that_always_fails_holds_nothing_and_ends_a_dead_letter(
    stack: Stack, cli: Run, tmp_path: Path,  # noqa: F811
) -> None:
    """The dossier's worker sends mail to a port where nothing listens: every notice fails. Commands are
    answered all the same (they used to wait, under the dossier's lock, for a delivery that never came);
    each notice is tried 5 times, then listed for staff among the failed ones."""
    from amiflow.bootstrap import Runtime
    from amiflow.dossiers import build_command, send, submit
    from amiflow.services import ReadRefused, notices
    from amiflow.services.principal import Principal
    from amiflow.settings import Settings
    from amiflow.temporal import build_worker, journal_activities
    from workflows.common import NOTICE_RETRY

    closed = f"127.0.0.1:{free_port()}"  # bound then released: connections are refused
    queue = f"tq-refused-{uuid.uuid4().hex[:8]}"
    worker = build_worker(stack.client, queue,
                          journal_activities(stack.store, stack.keys, tmp_path / "no-drop", smtp_host=closed))
    rt = Runtime(Settings(data_dir=stack.data_dir), stack.store, stack.keys, stack.vault)
    staff = Principal.operator("staff:amelie")
    async with worker:
        submitted = await asyncio.wait_for(submit(stack.client, queue, EXAMPLE, HOLDER, datetime.now(UTC)), 60)
        ident = submitted.dossier_id
        acknowledged = await asyncio.wait_for(send(stack.client, ident, build_command("acknowledge", {}), STAFF), 60)
        assert acknowledged.status.value == "acknowledged" and acknowledged.events == ["acknowledged"]

        async def given_up() -> notices.FailedNoticeView:
            rows = [r for r in await notices.failed(rt, staff) if r.dossier_id == ident and r.kind == "submitted"]
            assert rows
            return rows[0]

        dead = await eventually(given_up, timeout=90)
        # The dossier still takes its commands (their notices are tried, and fail, in turn) while staff
        # and auditors read the failed ones from the command line.
        due = dates.due(datetime.now(UTC), 20).arg
        command = build_command("request-complement", {"pieces": "Kbis", "due": due})
        result, (code, out, err), (text_code, text, text_err) = await asyncio.gather(
            asyncio.wait_for(send(stack.client, ident, command, STAFF), 60),
            cli("notices", "failed", "--as", "staff:amelie", "--json"),
            cli("notices", "failed", "--as", "auditor:odile"),
        )
        assert result.status.value == "complement_requested"
        assert code == 0 and text_code == 0, err + text_err
        shown = next(r for r in json.loads(out) if r["key"] == dead.key)
    assert dead.recipient == "holder:acme" and dead.attempts == NOTICE_RETRY.maximum_attempts == 5
    assert dead.failure.startswith("1 notification(s) non délivrée(s) : ConnectionRefusedError"), dead
    assert not (tmp_path / "no-drop").exists()  # SMTP was the channel, never the mail drop
    assert shown["dossier_id"] == ident and shown["kind"] == "submitted" and shown["failure"] == dead.failure
    assert shown["failed_at"] == dates.paris_iso(dead.failed_at)  # Paris time, with its offset
    assert f"{ident}  submitted → holder:acme  (5 tentatives) : 1 notification(s)" in text
    assert "prévenez les destinataires" in text
    with pytest.raises(ReadRefused, match="réservées aux chargés de mission"):
        await notices.failed(rt, Principal.operator("holder:acme"))
