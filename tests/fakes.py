"""In-memory activities registered under the real activities' names: a worker built with them runs
the real workflows without PostgreSQL, so that timers and continue-as-new can be tested on the dev
server alone. They keep the real activities' contracts that the workflows rely on: a batch lands at
the end of its dossier's journal or not at all, a workflow touches its own dossier only, a call's
read answers what the call's workflow would hold."""

from __future__ import annotations

from dataclasses import dataclass, field

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.contracts import (
    APPEND,
    LOAD,
    OPEN_DOSSIERS,
    READ_CALL,
    SEND,
    AppendEvents,
    CallStanding,
    LoadDossier,
    OpenDossiers,
    ReadCall,
    SendNotices,
)
from domain import DossierState, Event, replay
from domain.notices import Notice


def _own(dossier_id: str) -> None:
    if activity.info().workflow_id != dossier_id:
        raise ApplicationError(f"{activity.info().workflow_id} ≠ {dossier_id}", type="ForeignDossier",
                               non_retryable=True)


@dataclass
class FakeActivities:
    """The journal, the outbox and the calls' workflows, in memory."""

    calls: dict[str, CallStanding] = field(default_factory=dict)
    journal: dict[str, list[Event]] = field(default_factory=dict)
    batches: dict[str, list[AppendEvents]] = field(default_factory=dict)
    notices: dict[str, Notice] = field(default_factory=dict)

    @activity.defn(name=APPEND)
    async def append(self, batch: AppendEvents) -> int:
        """As journal.append: idempotent, no gap, no other dossier."""
        _own(batch.dossier_id)
        stored = self.journal.setdefault(batch.dossier_id, [])
        if len(stored) >= batch.first_seq + len(batch.events) - 1:
            return 0
        if len(stored) != batch.first_seq - 1:
            raise ApplicationError("trou ou doublon", type="JournalGap", non_retryable=True)
        stored.extend(batch.events)
        self.batches.setdefault(batch.dossier_id, []).append(batch)
        return len(batch.events)

    @activity.defn(name=LOAD)
    async def load(self, request: LoadDossier) -> DossierState:
        """As journal.load: the state replayed from the journal."""
        _own(request.dossier_id)
        if not self.journal.get(request.dossier_id):
            raise ApplicationError("dossier inconnu", type="UnknownDossier", non_retryable=True)
        return replay(self.journal[request.dossier_id])

    @activity.defn(name=OPEN_DOSSIERS)
    async def open_dossiers(self, query: OpenDossiers) -> list[str]:
        """As journal.open_dossiers, from the last batch of each dossier."""
        return sorted(d for d, b in self.batches.items()
                      if b[-1].call_id == query.call_id and b[-1].phase_id == query.phase_id
                      and b[-1].status.is_open)

    @activity.defn(name=SEND)
    async def send(self, request: SendNotices) -> None:
        """As notifications.send: once per key."""
        for notice in request.notices:
            self.notices.setdefault(notice.key, notice)

    @activity.defn(name=READ_CALL)
    async def read_call(self, request: ReadCall) -> CallStanding:
        """As calls.read: what the call's workflow holds."""
        if request.call_id not in self.calls:
            raise ApplicationError("appel inconnu", type="UnknownCall", non_retryable=True)
        return self.calls[request.call_id]

    def all(self) -> list[object]:
        """Every fake, to register on a worker."""
        return [self.append, self.load, self.open_dossiers, self.send, self.read_call]
