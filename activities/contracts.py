"""The inputs of the activities: what workflows send to side effects. Pure models (no database
import), so that workflow code can build them inside the sandbox."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

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


class OpenDossiers(BaseModel):
    """Which open dossiers of a call's phase to look up."""

    call_id: str
    phase_id: str


class SendNotices(BaseModel):
    """Notices to put in the outbox and deliver."""

    notices: list[Notice]


APPEND = "journal.append"
OPEN_DOSSIERS = "journal.open_dossiers"
SEND = "notifications.send"
