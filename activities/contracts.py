"""The inputs of the activities: what workflows send to side effects. Pure models (no database
import), so that workflow code can build them inside the sandbox."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from domain.access import Actor
from domain.calls import Call
from domain.events import Event
from domain.notices import Notice
from domain.state import Status


class AppendEvents(BaseModel):
    """New events of one dossier, numbered from `first_seq`, and the projection after them."""

    dossier_id: str
    workflow_id: str
    first_seq: int
    events: list[Event]
    call_id: str
    phase_id: str
    holder: str
    status: Status
    version: int
    next_deadline: datetime | None = None
    next_deadline_kind: str | None = None
    submitted_at: datetime | None = None
    # The back office's list metadata (issue 12); defaults for batches recorded before them.
    tab: str | None = None
    holder_type: str | None = None
    territory: str | None = None
    reviewers: list[str] = []


class OpenDossiers(BaseModel):
    """Which open dossiers of a call's phase to look up."""

    call_id: str
    phase_id: str


class SendNotices(BaseModel):
    """Notices to put in the outbox and deliver."""

    notices: list[Notice]


class GiveUpNotices(BaseModel):
    """Notices whose delivery failed `attempts` times, the last with `failure`: dead letters for staff."""

    notices: list[Notice]
    attempts: int
    failure: str


class LoadDossier(BaseModel):
    """Which dossier to read back from the journal (its state, replayed from its opened events)."""

    dossier_id: str


class PhaseExtension(BaseModel):
    """A phase's closing as the call's workflow moved it, and the staff member who moved it."""

    until: datetime
    actor: Actor


class ReadCall(BaseModel):
    """Which call's workflow to ask for the call as it stands; `claim`: an extension of `phase_id`
    that a signal announced, which an answer the call's workflow gave before may confirm."""

    call_id: str
    phase_id: str = ""
    claim: PhaseExtension | None = None


class CallStanding(BaseModel):
    """The call as its workflow holds it: definition with extensions, and who made each."""

    call: Call
    extensions: dict[str, PhaseExtension] = {}


APPEND = "journal.append"
LOAD = "journal.load"
READ_CALL = "calls.read"
OPEN_DOSSIERS = "journal.open_dossiers"
SEND = "notifications.send"
GIVE_UP = "notifications.give_up"
NOTIFICATION_FAILED = "NotificationFailed"  # the failure type of a send whose channel refused a notice
