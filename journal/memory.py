"""The journal store in memory: the same contract as `journal.postgres` (same checks, same hashes and
chain, same errors, same idempotency), for fast tests of what is built on the store. Nothing survives
the process."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING

from journal.chaining import check_places, event_rows, place, read_row
from journal.ledger import GENESIS
from journal.store import (
    ORDERS,
    Anchor,
    ChainLink,
    DossierRow,
    FailedNotice,
    InvitationRow,
    JournalStore,
    LedgerSnapshot,
    OutboxEntry,
    PersonConflict,
    PersonRow,
    Projection,
    ReadEntry,
    SealedEvent,
    StoredEvent,
    StoredRead,
    StoreError,
    TokenRow,
    WrappedKey,
    deadline_key,
    parse_deadline_cursor,
)


@dataclass
class _Sent:
    entry: OutboxEntry
    delivered_at: datetime | None = None
    channel: str | None = None
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    failed_at: datetime | None = None
    attempts: int = 0
    failure: str = ""


def _key(cursor: tuple[datetime | None, str]) -> tuple[bool, datetime, str]:
    """A deadline cursor as a `deadline_key`."""
    at, ident = cursor
    return (at is None, at.astimezone(UTC) if at is not None else datetime.min.replace(tzinfo=UTC), ident)


def _utc(value: datetime | None) -> datetime | None:
    """Instants as PostgreSQL gives them back: in UTC."""
    return value.astimezone(UTC) if value is not None else None


class MemoryStore:
    """`JournalStore` in memory. One asyncio.Lock makes each method one transaction; an outbox entry
    has a lock of its own, held while delivering, so a slow delivery does not stop the journal."""

    def __init__(self) -> None:
        self._lock = asyncio.Lock()
        self._events: dict[str, list[StoredEvent]] = defaultdict(list)
        self._reads: list[StoredRead] = []
        self._chain: list[tuple[ChainLink, datetime]] = []  # index = gseq - 1; with its recorded_at
        self._head: tuple[int, bytes] = (0, GENESIS)
        self._dossiers: dict[str, DossierRow] = {}
        self._counts: dict[tuple[str, str], int] = defaultdict(int)
        self._anchors: dict[date, Anchor] = {}
        self._keys: dict[tuple[str, str], WrappedKey] = {}
        self._outbox: dict[str, _Sent] = {}
        self._sending: dict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._people: dict[str, PersonRow] = {}
        self._tokens: dict[str, TokenRow] = {}
        self._invitations: dict[str, InvitationRow] = {}

    # --- events and projections

    async def append(self, dossier_id: str, workflow_id: str, first_seq: int, events: Sequence[SealedEvent],
                     projection: Projection) -> int:
        """See `JournalStore.append`."""
        events = [replace(e, occurred_at=e.occurred_at.astimezone(UTC)) for e in events]
        last_seq = first_seq + len(events) - 1
        async with self._lock:
            stored_events = self._events[dossier_id]
            stored = stored_events[-1].seq if stored_events else 0
            kept = [(e.type, e.occurred_at) for e in stored_events if first_seq <= e.seq <= last_seq] \
                if stored >= last_seq else []
            if not check_places(dossier_id, first_seq, events, stored, kept):
                return 0
            rows = event_rows(dossier_id, workflow_id, first_seq, events,
                              stored_events[-1].hash if stored_events else None)
            placed = place(self._head, dossier_id, [r["hash"] for r in rows])
            now = datetime.now(UTC)
            for row, (gseq, ghash) in zip(rows, placed, strict=True):
                stored_events.append(StoredEvent(**row, recorded_at=now, payload=None, gseq=gseq, ghash=ghash))
                self._chain.append((ChainLink(gseq=gseq, dossier_id=dossier_id, hash=row["hash"], ghash=ghash), now))
            self._head = placed[-1]
            self._project(dossier_id, projection, now)
        return len(rows)

    def _project(self, dossier_id: str, p: Projection, now: datetime) -> None:
        previous = self._dossiers.get(dossier_id)
        self._dossiers[dossier_id] = DossierRow(
            dossier_id=dossier_id, call_id=p.call_id, phase_id=p.phase_id, holder=p.holder, status=p.status,
            version=p.version, next_deadline=_utc(p.next_deadline), next_deadline_kind=p.next_deadline_kind,
            submitted_at=_utc(p.submitted_at), updated_at=now, tab=p.tab, holder_type=p.holder_type,
            territory_index=p.territory_index, reviewers=tuple(p.reviewers),
        )
        if previous is not None and previous.status == p.status:
            return
        if previous is not None and (p.call_id, previous.status) in self._counts:
            self._counts[(p.call_id, previous.status)] -= 1
        self._counts[(p.call_id, p.status)] += 1

    async def events(self, dossier_id: str) -> list[StoredEvent]:
        """See `JournalStore.events`."""
        async with self._lock:
            return list(self._events.get(dossier_id, []))

    async def dossier(self, dossier_id: str) -> DossierRow | None:
        """See `JournalStore.dossier`."""
        async with self._lock:
            return self._dossiers.get(dossier_id)

    async def dossiers(self, *, call_id: str | None = None, status: str | None = None, phase_id: str | None = None,
                       due_before: datetime | None = None, after: str | None = None,
                       limit: int | None = None, holder: str | None = None,
                       call_ids: Sequence[str] | None = None, tab: str | None = None,
                       holder_type: str | None = None, territory_index: str | None = None,
                       reviewer: str | None = None, due_from: datetime | None = None,
                       order: str = "id") -> list[DossierRow]:
        """See `JournalStore.dossiers`."""
        if order not in ORDERS:
            raise StoreError(f"ordre inconnu « {order} »")
        by_deadline = order == "deadline"
        cursor = parse_deadline_cursor(after) if by_deadline and after is not None else None
        async with self._lock:
            rows = sorted(self._dossiers.values(), key=deadline_key if by_deadline else lambda r: r.dossier_id)
        found = [
            r for r in rows
            if (call_id is None or r.call_id == call_id) and (status is None or r.status == status)
            and (phase_id is None or r.phase_id == phase_id)
            and (due_before is None or (r.next_deadline is not None and r.next_deadline < due_before))
            and (due_from is None or (r.next_deadline is not None and r.next_deadline >= due_from))
            and (holder is None or r.holder == holder) and (call_ids is None or r.call_id in call_ids)
            and (tab is None or r.tab == tab) and (holder_type is None or r.holder_type == holder_type)
            and (territory_index is None or r.territory_index == territory_index)
            and (reviewer is None or reviewer in r.reviewers)
            and (after is None or (deadline_key(r) > _key(cursor) if cursor is not None else r.dossier_id > after))
        ]
        return found[:limit] if limit is not None else found

    async def open_dossiers(self, call_id: str, phase_id: str, final_statuses: Sequence[str]) -> list[str]:
        """See `JournalStore.open_dossiers`."""
        final = set(final_statuses)
        return [r.dossier_id for r in await self.dossiers(call_id=call_id, phase_id=phase_id) if r.status not in final]

    async def tab_counts(self, call_ids: Sequence[str] | None, holder: str | None = None,
                         reviewer: str | None = None) -> dict[str, dict[str, int]]:
        """See `JournalStore.tab_counts`."""
        async with self._lock:
            rows = list(self._dossiers.values())
        counts: dict[str, dict[str, int]] = {}
        for r in rows:
            if r.tab is None or (call_ids is not None and r.call_id not in call_ids) \
                    or (holder is not None and r.holder != holder) \
                    or (reviewer is not None and reviewer not in r.reviewers):
                continue
            per_call = counts.setdefault(r.call_id, {})
            per_call[r.tab] = per_call.get(r.tab, 0) + 1
        return counts

    async def call_counts(self, call_id: str) -> dict[str, int]:
        """See `JournalStore.call_counts` (statuses no dossier stands in are left out)."""
        async with self._lock:
            return {status: n for (call, status), n in self._counts.items() if call == call_id and n > 0}

    # --- the read log

    async def record_read(self, entry: ReadEntry) -> None:
        """See `JournalStore.record_read`."""
        entry = replace(entry, at=entry.at.astimezone(UTC))
        row = read_row(entry)
        async with self._lock:
            [(gseq, ghash)] = place(self._head, entry.dossier_id, [row["hash"]])
            now = datetime.now(UTC)
            self._reads.append(StoredRead(id=len(self._reads) + 1, **row, recorded_at=now, gseq=gseq, ghash=ghash))
            self._chain.append((ChainLink(gseq=gseq, dossier_id=entry.dossier_id, hash=row["hash"], ghash=ghash), now))
            self._head = (gseq, ghash)

    async def reads(self, dossier_id: str) -> list[StoredRead]:
        """See `JournalStore.reads`."""
        async with self._lock:
            return [r for r in self._reads if r.dossier_id == dossier_id]

    # --- the ledger

    async def ledger(self, dossier_id: str | None = None) -> LedgerSnapshot:
        """See `JournalStore.ledger`."""
        async with self._lock:
            if dossier_id is None:
                found = [e for d in sorted(self._events) for e in self._events[d]]
                read_rows = list(self._reads)
                listed = {d: r.version for d, r in self._dossiers.items()}
            else:
                found = list(self._events.get(dossier_id, []))
                read_rows = [r for r in self._reads if r.dossier_id == dossier_id]
                row = self._dossiers.get(dossier_id)
                listed = {dossier_id: row.version} if row is not None else {}
            return LedgerSnapshot(events=found, reads=read_rows, versions=listed, head=self._head,
                                  anchors=[self._anchors[d] for d in sorted(self._anchors)])

    async def chain(self, first_gseq: int, last_gseq: int) -> list[ChainLink]:
        """See `JournalStore.chain`."""
        async with self._lock:
            return [link for link, _ in self._chain[max(first_gseq, 1) - 1:max(last_gseq, 0)]]

    async def anchors(self) -> list[Anchor]:
        """See `JournalStore.anchors`."""
        async with self._lock:
            return [self._anchors[d] for d in sorted(self._anchors)]

    async def first_recorded_at(self) -> datetime | None:
        """See `JournalStore.first_recorded_at`."""
        async with self._lock:
            return min((at for _, at in self._chain), default=None)

    async def head_before(self, instant: datetime) -> tuple[int, bytes] | None:
        """See `JournalStore.head_before`."""
        async with self._lock:
            before = [link for link, at in self._chain if at < instant]
        return (before[-1].gseq, before[-1].ghash) if before else None

    async def add_anchor(self, anchor: Anchor) -> None:
        """See `JournalStore.add_anchor`."""
        async with self._lock:
            self._anchors.setdefault(anchor.day, anchor)

    # --- dossiers' data keys

    async def add_key(self, dossier_id: str, key_id: str, wrapped: bytes) -> None:
        """See `JournalStore.add_key`."""
        async with self._lock:
            self._keys.setdefault((dossier_id, key_id), WrappedKey(dossier_id, key_id, wrapped, None))

    async def key(self, dossier_id: str, key_id: str) -> WrappedKey | None:
        """See `JournalStore.key`."""
        async with self._lock:
            return self._keys.get((dossier_id, key_id))

    async def keys_destroyed_at(self, dossier_id: str) -> datetime | None:
        """See `JournalStore.keys_destroyed_at`."""
        async with self._lock:
            return max((k.destroyed_at for (d, _), k in self._keys.items() if d == dossier_id and k.destroyed_at),
                       default=None)

    async def destroy_keys(self, dossier_id: str) -> int:
        """See `JournalStore.destroy_keys`."""
        now = datetime.now(UTC)
        async with self._lock:
            live = [k for (d, _), k in self._keys.items() if d == dossier_id and k.destroyed_at is None]
            for k in live:
                self._keys[(dossier_id, k.key_id)] = replace(k, wrapped=b"", destroyed_at=now)
        return len(live)

    # --- the outbox

    async def deliver_once(self, entry: OutboxEntry, deliver: Callable[[], Awaitable[str]]) -> bool:
        """See `JournalStore.deliver_once`: if `deliver` raises, nothing is kept (as a rolled-back
        transaction)."""
        async with self._sending[entry.key]:
            async with self._lock:
                sent = self._outbox.get(entry.key)
            if sent is not None and sent.delivered_at is not None:
                return False
            channel = await deliver()
            async with self._lock:
                kept = self._outbox.get(entry.key)
                self._outbox[entry.key] = _Sent(kept.entry if kept else replace(entry, due=_utc(entry.due)),
                                                datetime.now(UTC), channel,
                                                kept.created_at if kept else datetime.now(UTC))
        return True

    async def fail_once(self, entry: OutboxEntry, attempts: int, failure: str) -> bool:
        """See `JournalStore.fail_once`."""
        async with self._lock:
            sent = self._outbox.setdefault(entry.key, _Sent(replace(entry, due=_utc(entry.due))))
            if sent.delivered_at is not None:
                return False
            sent.failed_at, sent.attempts, sent.failure = datetime.now(UTC), attempts, failure
        return True

    async def failed_notices(self) -> list[FailedNotice]:
        """See `JournalStore.failed_notices`."""
        async with self._lock:
            dead = [(s.failed_at, s) for s in self._outbox.values()
                    if s.failed_at is not None and s.delivered_at is None]
        return [FailedNotice(key=s.entry.key, dossier_id=s.entry.dossier_id, kind=s.entry.kind,
                             recipient=s.entry.recipient, due=s.entry.due, created_at=s.created_at,
                             failed_at=at, attempts=s.attempts, failure=s.failure)
                for at, s in sorted(dead, key=lambda pair: (pair[0], pair[1].entry.key))]
    # --- the directory of people

    async def put_person(self, person: PersonRow) -> None:
        """See `JournalStore.put_person`."""
        async with self._lock:
            for other in self._people.values():
                if other.name == person.name:
                    continue
                if person.email is not None and other.email == person.email:
                    raise PersonConflict(f"l’adresse {person.email} est déjà celle de « {other.name} »")
                if person.issuer is not None and person.subject is not None \
                        and (other.issuer, other.subject) == (person.issuer, person.subject):
                    raise PersonConflict(f"cette identité OpenID est déjà celle de « {other.name} »")
            self._people[person.name] = person

    async def person(self, name: str) -> PersonRow | None:
        """See `JournalStore.person`."""
        async with self._lock:
            return self._people.get(name)

    async def person_by_identity(self, issuer: str, subject: str) -> PersonRow | None:
        """See `JournalStore.person_by_identity`."""
        async with self._lock:
            return next((p for p in self._people.values() if (p.issuer, p.subject) == (issuer, subject)), None)

    async def person_by_email(self, email: str) -> PersonRow | None:
        """See `JournalStore.person_by_email`."""
        async with self._lock:
            return next((p for p in self._people.values() if p.email == email), None)

    async def people(self) -> list[PersonRow]:
        """See `JournalStore.people`."""
        async with self._lock:
            return [self._people[n] for n in sorted(self._people)]

    async def remove_person(self, name: str) -> bool:
        """See `JournalStore.remove_person`."""
        async with self._lock:
            if self._people.pop(name, None) is None:
                return False
            for table in (self._tokens, self._invitations):
                for key in [k for k, v in table.items() if v.name == name]:
                    del table[key]
            return True

    # --- personal access tokens

    async def add_token(self, token: TokenRow) -> None:
        """See `JournalStore.add_token`."""
        async with self._lock:
            self._known(token.name)
            if token.id in self._tokens or any(t.digest == token.digest for t in self._tokens.values()):
                raise StoreError(f"jeton {token.id} déjà enregistré")
            self._tokens[token.id] = replace(token, created_at=token.created_at.astimezone(UTC),
                                             expires_at=token.expires_at.astimezone(UTC))

    def _known(self, name: str) -> None:
        if name not in self._people:
            raise StoreError(f"« {name} » n’est pas dans l’annuaire")

    async def token_by_digest(self, digest: str) -> TokenRow | None:
        """See `JournalStore.token_by_digest`."""
        async with self._lock:
            return next((t for t in self._tokens.values() if t.digest == digest), None)

    async def tokens(self, name: str | None = None) -> list[TokenRow]:
        """See `JournalStore.tokens`."""
        async with self._lock:
            found = [t for t in self._tokens.values() if name is None or t.name == name]
        return sorted(found, key=lambda t: (t.created_at, t.id))

    async def revoke_token(self, token_id: str, at: datetime) -> bool:
        """See `JournalStore.revoke_token`."""
        async with self._lock:
            token = self._tokens.get(token_id)
            if token is None or token.revoked_at is not None:
                return False
            self._tokens[token_id] = replace(token, revoked_at=at.astimezone(UTC))
            return True

    # --- invitations

    async def add_invitation(self, invitation: InvitationRow) -> None:
        """See `JournalStore.add_invitation`."""
        async with self._lock:
            self._known(invitation.name)
            if invitation.id in self._invitations \
                    or any(i.digest == invitation.digest for i in self._invitations.values()):
                raise StoreError(f"invitation {invitation.id} déjà enregistrée")
            self._invitations[invitation.id] = replace(invitation, created_at=invitation.created_at.astimezone(UTC),
                                                       expires_at=invitation.expires_at.astimezone(UTC))

    async def use_invitation(self, digest: str, now: datetime) -> InvitationRow | None:
        """See `JournalStore.use_invitation`."""
        async with self._lock:
            found = next((i for i in self._invitations.values() if i.digest == digest), None)
            if found is None or found.used_at is not None or found.expires_at <= now:
                return None
            used = self._invitations[found.id] = replace(found, used_at=now.astimezone(UTC))
            return used


if TYPE_CHECKING:  # mypy checks that the class keeps to the port
    _conforms: JournalStore = MemoryStore()
