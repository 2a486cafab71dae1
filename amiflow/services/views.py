"""What the use cases return: view models, in UTC; entry points render them (Paris time for people)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from domain.deadlines import Deadline
from domain.state import DocumentRef, DossierState, Status
from domain.tabs import Tab


class DossierView(BaseModel):
    """A dossier as one reader may see it, with what it waits for."""

    dossier_id: str
    call_id: str | None
    call_title: str | None
    phase_id: str
    holder: str
    status: Status
    version: int
    submitted_at: datetime | None
    phase_closes_at: datetime | None
    deadlines: list[Deadline]
    deadlines_hidden: int = 0  # later deadlines of a kind already shown (all of them with --all)
    content_granted: bool
    reason: str
    as_of: datetime | None = None
    state: DossierState  # as the reader may see it


class EventView(BaseModel):
    """One journaled event: clear metadata, and its body when the reader may read it."""

    seq: int
    type: str
    actor: str
    at: datetime
    body: dict[str, object] | None = None


class ReadView(BaseModel):
    """One entry of the read log."""

    at: datetime
    actor: str
    what: str
    via: str
    granted: bool
    reason: str


class HistoryView(BaseModel):
    """Who did what and when, and who read what."""

    dossier_id: str
    content_granted: bool
    events: list[EventView]
    reads: list[ReadView]


class TimelineEntry(BaseModel):
    """An event or a read, in the order they happened."""

    kind: str  # "event" | "read"
    at: datetime
    actor: str
    seq: int | None = None
    type: str | None = None
    what: str | None = None
    via: str | None = None
    granted: bool | None = None
    reason: str | None = None


class TimelineView(BaseModel):
    """A dossier's timeline: metadata only, readable even after its content was destroyed."""

    dossier_id: str
    entries: list[TimelineEntry]


class DossierItem(BaseModel):
    """One line of the dossier list: ids, status and deadlines, no content."""

    dossier_id: str
    call_id: str
    phase_id: str
    holder: str
    status: Status
    version: int
    next_deadline: datetime | None
    next_deadline_kind: str | None
    submitted_at: datetime | None
    updated_at: datetime
    tab: Tab | None = None  # None for a draft (and for a dossier not written since migration 0006)
    holder_type: str | None = None  # the territory is content: never in the list (filtered on, not shown)


class DossierPage(BaseModel):
    """A page of the dossier list; `next` continues it (keyset pagination): the last id in the id
    order, an opaque cursor in the deadline order."""

    items: list[DossierItem]
    next: str | None = None


class CommandOption(BaseModel):
    """One field of a command, as a person gives it."""

    name: str  # --due
    kind: str  # date, text, list, scores…
    required: bool
    help: str


class ClearanceView(BaseModel):
    """An auditor let read the dossier's content: by whom, why, when."""

    auditor: str
    reason: str
    by: str
    at: datetime


class CommandSpec(BaseModel):
    """A command this person may give the dossier now."""

    name: str
    label: str
    options: list[CommandOption]


class AttachView(BaseModel):
    """A document attached to a dossier."""

    dossier_id: str
    version: int
    document: DocumentRef


class PhaseView(BaseModel):
    """One phase of a call: when it opens and closes."""

    id: str
    kind: str
    label: str
    opens_at: datetime
    closes_at: datetime
    opens_assumed: str | None = None  # why that date was assumed (the call's text leaves it unsaid)
    closes_assumed: str | None = None
    open: bool | None = None  # open at the instant the view was made (`domain.calls.Phase.is_open`), if given


class CallView(BaseModel):
    """A call and its phases (public texts)."""

    id: str
    title: str
    phases: list[PhaseView]


class CallSummary(BaseModel):
    """A call on a person's home page: how many of the dossiers they may list stand in each tab."""

    call_id: str
    title: str
    counts: dict[str, int]  # tab slug → count, in the order of `domain.tabs.TABS`
    total: int
    statuses: dict[str, int] = {}  # status → count, the call's whole (empty for holders and reviewers)


class PhaseClosing(BaseModel):
    """A phase of a call that closes soon."""

    call_id: str
    call_title: str
    phase_id: str
    label: str
    closes_at: datetime


class Overview(BaseModel):
    """A person's home page: their calls and counts, and what falls due in the next days."""

    calls: list[CallSummary]
    upcoming: list[DossierItem]  # next deadline within the window, soonest first
    closings: list[PhaseClosing]  # phases of those calls closing within the window, soonest first
    window_ends: datetime


class ExtensionPreview(BaseModel):
    """What extending a phase's closing to `until` would touch: its open dossiers."""

    call_id: str
    phase_id: str
    closes_at: datetime
    until: datetime
    dossiers: int


class CallDesk(BaseModel):
    """A call on its staff pages: the call as it runs (extensions included), and how many of its
    dossiers stand in each tab."""

    call: CallView
    counts: dict[str, int]  # tab slug → count, in the order of `domain.tabs.TABS`
    total: int
    statuses: dict[str, int] = {}  # status → count, the call's whole (empty for holders and reviewers)


class RefusedCallFile(BaseModel):
    """A call file the catalogue refused, with its error in French."""

    file: str
    call_id: str = ""  # the call the file would define (its name without .yaml): its page shows the refusal
    path: str  # the field at fault
    value: str | None  # its value (None: absent)
    error: str  # the whole message, file and field included
    problem: str = ""  # what is wrong with the field
    advice: str = ""  # what to write instead
