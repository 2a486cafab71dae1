"""The journal's activities: thin adapters over the store. Appending seals the batch and writes it
with the projections in one transaction; idempotent, so a retry after a crash never writes an event
twice nor leaves a gap."""

from __future__ import annotations

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.contracts import APPEND, LOAD, OPEN_DOSSIERS, AppendEvents, LoadDossier, OpenDossiers
from domain.decider import replay
from domain.state import DossierState, Status
from journal.keys import DossierKeys, KeyDestroyed, Keyring, Tampered, blind_index
from journal.logs import logger
from journal.sealing import append_events, open_event
from journal.store import JournalStore, Projection, StoreError


def projection(batch: AppendEvents, keyring: Keyring) -> Projection:
    """What the dossier list shows of the dossier after the batch (the territory as its blind index)."""
    return Projection(call_id=batch.call_id, phase_id=batch.phase_id, holder=batch.holder, status=batch.status.value,
                      version=batch.version, next_deadline=batch.next_deadline,
                      next_deadline_kind=batch.next_deadline_kind, submitted_at=batch.submitted_at,
                      tab=batch.tab, holder_type=batch.holder_type,
                      territory_index=blind_index(keyring, "territory", batch.territory) if batch.territory else None,
                      reviewers=tuple(batch.reviewers))


def _own_dossier(dossier_id: str, what: str) -> None:
    """Refuse a dossier other than the one the calling workflow is: a workflow (whoever started it)
    reads and writes its own journal only."""
    caller = activity.info().workflow_id
    if caller != dossier_id:
        raise ApplicationError(f"le workflow {caller} ne peut pas {what} le journal du dossier {dossier_id}",
                               type="ForeignDossier", non_retryable=True)


class JournalActivities:
    """Side effects on the journal. Built once per worker with its store and keys."""

    def __init__(self, store: JournalStore, keys: DossierKeys) -> None:
        self.store = store
        self.keys = keys

    @activity.defn(name=APPEND)
    async def append(self, batch: AppendEvents) -> int:
        """Append the batch and update the projections; returns how many events were written
        (0 when a previous attempt already committed them)."""
        _own_dossier(batch.dossier_id, "écrire dans")
        try:
            written = await append_events(self.store, self.keys, batch.dossier_id, batch.workflow_id,
                                          batch.first_seq, batch.events, projection(batch, self.keys.keyring))
        except StoreError as exc:  # retrying cannot fix another batch at those places, nor a hole
            raise ApplicationError(exc.message, type=exc.code, non_retryable=True) from None
        if written:
            logger(dossier_id=batch.dossier_id, workflow_id=batch.workflow_id).info(
                "journal.appended", first_seq=batch.first_seq, count=written, status=batch.status.value
            )
        return written

    @activity.defn(name=LOAD)
    async def load(self, request: LoadDossier) -> DossierState:
        """The dossier's state, replayed from its journaled events opened with its keys: what a
        reopened dossier's workflow starts from (never a state a client sends)."""
        _own_dossier(request.dossier_id, "lire")
        rows = await self.store.events(request.dossier_id)
        if not rows:
            raise ApplicationError(f"Dossier inconnu « {request.dossier_id} ».", type="UnknownDossier",
                                   non_retryable=True)
        try:
            return replay([await open_event(self.keys, row) for row in rows])
        except (KeyDestroyed, Tampered) as exc:  # no retry will open it (a missing key may come back: retried)
            raise ApplicationError(exc.message, type=exc.code, non_retryable=True) from None

    @activity.defn(name=OPEN_DOSSIERS)
    async def open_dossiers(self, query: OpenDossiers) -> list[str]:
        """Ids of the dossiers of that phase that are still open."""
        closed = [s.value for s in Status if s.is_final]
        return await self.store.open_dossiers(query.call_id, query.phase_id, closed)
