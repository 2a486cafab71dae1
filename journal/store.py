"""The journal store: the one port through which amiflow reads and writes its PostgreSQL journal —
events, reads, the chain head and anchors, the projections, the dossiers' wrapped keys and the outbox.

Two implementations pass the same contract suite (`tests/test_store_contract.py`): `journal.postgres`
(the real one) and `journal.memory` (for fast service-layer tests). The store keeps bytes: sealing
and opening are the caller's (`journal.keys`), so the store never holds a key in clear.
"""

from __future__ import annotations

from base64 import urlsafe_b64decode, urlsafe_b64encode
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Protocol


class StoreError(Exception):
    """A write the journal refuses; `code` is stable for callers to branch on."""

    code = "store"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class JournalConflict(StoreError):
    """Other events already stand at the places a batch was to take."""

    code = "JournalConflict"


class JournalGap(StoreError):
    """A batch would leave a hole or a duplicate in a dossier's numbering."""

    code = "JournalGap"


@dataclass(frozen=True)
class SealedEvent:
    """An event ready to be journaled: its clear columns and its sealed body."""

    seq: int
    type: str
    actor: str
    occurred_at: datetime
    key_id: str
    sealed: bytes


@dataclass(frozen=True)
class StoredEvent:
    """An event row as stored (`payload` is clear JSON only for rows older than encryption)."""

    dossier_id: str
    seq: int
    type: str
    actor: str
    occurred_at: datetime
    recorded_at: datetime
    workflow_id: str
    key_id: str | None
    sealed: bytes | None
    payload: dict[str, Any] | None
    hash: bytes
    gseq: int
    ghash: bytes


@dataclass(frozen=True)
class Projection:
    """What the dossier list shows of a dossier after a batch: ids, status, deadlines; no content."""

    call_id: str
    phase_id: str
    holder: str
    status: str
    version: int
    next_deadline: datetime | None = None
    next_deadline_kind: str | None = None
    submitted_at: datetime | None = None
    tab: str | None = None  # domain.tabs.Tab's slug; None for a draft
    holder_type: str | None = None  # from the content, kept clear for the list's filters
    territory_index: str | None = None
    reviewers: tuple[str, ...] = ()  # assigned, not recused


@dataclass(frozen=True)
class DossierRow:
    """One row of the dossier list."""

    dossier_id: str
    call_id: str
    phase_id: str
    holder: str
    status: str
    version: int
    next_deadline: datetime | None
    next_deadline_kind: str | None
    submitted_at: datetime | None
    updated_at: datetime
    tab: str | None = None  # None too for rows projected before migration 0006
    holder_type: str | None = None
    territory_index: str | None = None
    reviewers: tuple[str, ...] = ()


class InvalidCursor(StoreError):
    """An `after` that no page of the deadline order gave."""

    code = "invalid_cursor"


ORDERS = ("id", "deadline")
_NO_DEADLINE = "-"


def deadline_cursor(row: DossierRow) -> str:
    """The opaque `after` that continues the deadline order after `row` (its deadline and its id)."""
    at = row.next_deadline.astimezone(UTC).isoformat() if row.next_deadline is not None else _NO_DEADLINE
    return urlsafe_b64encode(f"{at}|{row.dossier_id}".encode()).decode().rstrip("=")


def parse_deadline_cursor(text: str) -> tuple[datetime | None, str]:
    """The (deadline, id) a `deadline_cursor` encodes.

    Raises:
        InvalidCursor: not one.
    """
    try:
        at, _, ident = urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode().partition("|")
        deadline = None if at == _NO_DEADLINE else datetime.fromisoformat(at)
    except (ValueError, UnicodeDecodeError):
        raise InvalidCursor("curseur de page inconnu : reprenez la liste au début") from None
    if not ident or (deadline is not None and deadline.tzinfo is None):
        raise InvalidCursor("curseur de page inconnu : reprenez la liste au début")
    return deadline, ident


def deadline_key(row: DossierRow) -> tuple[bool, datetime, str]:
    """The deadline order's sort key: earliest deadline first, dossiers without one last, then id."""
    return (row.next_deadline is None, row.next_deadline or datetime.min.replace(tzinfo=UTC), row.dossier_id)


@dataclass(frozen=True)
class ReadEntry:
    """One entry of the read log: who read (or was refused) what of a dossier, when, and why."""

    dossier_id: str
    at: datetime
    actor: str
    what: str
    via: str
    granted: bool
    reason: str


@dataclass(frozen=True)
class StoredRead:
    """A read-log row as stored, with its place in the global chain."""

    id: int
    dossier_id: str
    at: datetime
    actor: str
    what: str
    via: str
    granted: bool
    reason: str
    recorded_at: datetime
    hash: bytes
    gseq: int
    ghash: bytes


@dataclass(frozen=True)
class Anchor:
    """The global chain's head at the end of a day (Paris)."""

    day: date
    gseq: int
    ghash: bytes


@dataclass(frozen=True)
class ChainLink:
    """One entry of the global chain, event or read."""

    gseq: int
    dossier_id: str
    hash: bytes
    ghash: bytes


@dataclass(frozen=True)
class LedgerSnapshot:
    """Everything an audit of the chains reads, taken in one consistent snapshot."""

    events: list[StoredEvent]
    reads: list[StoredRead]
    versions: dict[str, int]  # the dossier list's version of each dossier
    head: tuple[int, bytes]  # (gseq, ghash) of the journal's head row
    anchors: list[Anchor]


@dataclass(frozen=True)
class WrappedKey:
    """A dossier's data key, wrapped by master key `key_id`; empty once destroyed."""

    dossier_id: str
    key_id: str
    wrapped: bytes
    destroyed_at: datetime | None


@dataclass(frozen=True)
class OutboxEntry:
    """A notice put in the outbox: its ids in clear, its subject and body sealed."""

    key: str
    dossier_id: str
    kind: str
    recipient: str
    key_id: str
    sealed: bytes
    due: datetime | None


@dataclass(frozen=True)
class FailedNotice:
    """A dead letter: a notice every delivery attempt failed for, not delivered since. Clear columns
    only (its subject and body stay sealed in the outbox)."""

    key: str
    dossier_id: str
    kind: str
    recipient: str
    due: datetime | None
    created_at: datetime
    failed_at: datetime
    attempts: int
    failure: str


@dataclass(frozen=True)
class PersonRow:
    """A person of the directory: `grants` are (role, call id or None) pairs."""

    name: str
    email: str | None
    grants: tuple[tuple[str, str | None], ...]
    issuer: str | None = None
    subject: str | None = None
    siret: str | None = None


@dataclass(frozen=True)
class TokenRow:
    """A personal access token: only the SHA-256 of the secret (`digest`, hex) is kept."""

    id: str
    name: str
    role: str
    digest: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None = None
    label: str | None = None


@dataclass(frozen=True)
class InvitationRow:
    """A single-use invitation link bound to a person: only the SHA-256 of its secret is kept."""

    id: str
    name: str
    digest: str
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None = None


class PersonConflict(StoreError):
    """Another person already has this e-mail or this OpenID identity."""

    code = "person_conflict"


class JournalStore(Protocol):
    """The journal's port. Every method is one transaction."""

    # --- events and projections
    async def append(self, dossier_id: str, workflow_id: str, first_seq: int, events: Sequence[SealedEvent],
                     projection: Projection) -> int:
        """Chain the events (per dossier and globally), store them and update the projections.

        Idempotent: returns 0 when the same events (type and instant) already stand at those places.

        Raises:
            JournalConflict: different events stand there.
            JournalGap: `first_seq` is not the dossier's next number.
        """
        ...

    async def events(self, dossier_id: str) -> list[StoredEvent]:
        """The dossier's events in order (empty if unknown)."""
        ...

    async def dossier(self, dossier_id: str) -> DossierRow | None:
        """The dossier's row in the list."""
        ...

    async def dossiers(self, *, call_id: str | None = None, status: str | None = None, phase_id: str | None = None,
                       due_before: datetime | None = None, after: str | None = None,
                       limit: int | None = None, holder: str | None = None,
                       call_ids: Sequence[str] | None = None, tab: str | None = None,
                       holder_type: str | None = None, territory_index: str | None = None,
                       reviewer: str | None = None, due_from: datetime | None = None,
                       order: str = "id") -> list[DossierRow]:
        """The dossier list, filtered, ordered by dossier id (`order="id"`: `after` is the last id of
        the previous page) or by next deadline (`order="deadline"`: earliest first, dossiers without
        one last, then id; `after` is the opaque `deadline_cursor` of the previous page's last row).
        `due_before`: next deadline before that instant (overdue); `due_from`: not before that
        instant; `holder`: that holder's dossiers only; `call_ids`: the dossiers of those calls only
        (none when empty); `reviewer`: those assigned to that reviewer (not recused); `tab`,
        `holder_type`: equal to that; `territory_index`: the territory's blind index
        (`journal.keys.blind_index`) equal to that.

        Raises:
            InvalidCursor: `after` is not a deadline cursor (deadline order).
        """
        ...

    async def tab_counts(self, call_ids: Sequence[str] | None, holder: str | None = None,
                         reviewer: str | None = None) -> dict[str, dict[str, int]]:
        """How many dossiers stand in each tab, by call (call id → tab slug → count; tabs and calls
        with none left out), for the calls `call_ids` (every call when None) and, when set, of that
        holder or assigned to that reviewer only. Dossiers in no tab (drafts) are not counted."""
        ...

    async def open_dossiers(self, call_id: str, phase_id: str, final_statuses: Sequence[str]) -> list[str]:
        """Ids of the dossiers of that phase whose status is not final, in order."""
        ...

    async def call_counts(self, call_id: str) -> dict[str, int]:
        """How many dossiers of the call stand in each status."""
        ...

    # --- the read log
    async def record_read(self, entry: ReadEntry) -> None:
        """Chain and store one read-log entry."""
        ...

    async def reads(self, dossier_id: str) -> list[StoredRead]:
        """The dossier's read log, oldest first."""
        ...

    # --- the ledger
    async def ledger(self, dossier_id: str | None = None) -> LedgerSnapshot:
        """The rows an audit verifies, one dossier's or the whole journal's, in one snapshot."""
        ...

    async def chain(self, first_gseq: int, last_gseq: int) -> list[ChainLink]:
        """The global chain from `first_gseq` to `last_gseq` included, events and reads, in order."""
        ...

    async def anchors(self) -> list[Anchor]:
        """The anchors recorded so far, by day."""
        ...

    async def first_recorded_at(self) -> datetime | None:
        """When the journal's first entry was recorded."""
        ...

    async def head_before(self, instant: datetime) -> tuple[int, bytes] | None:
        """The global chain's last entry recorded before `instant`: (gseq, ghash)."""
        ...

    async def add_anchor(self, anchor: Anchor) -> None:
        """Record an anchor; a day already anchored keeps its first anchor."""
        ...

    # --- dossiers' data keys
    async def add_key(self, dossier_id: str, key_id: str, wrapped: bytes) -> None:
        """Store a wrapped key unless one is already there (another process won the race)."""
        ...

    async def key(self, dossier_id: str, key_id: str) -> WrappedKey | None:
        """A dossier's wrapped key under master key `key_id`."""
        ...

    async def keys_destroyed_at(self, dossier_id: str) -> datetime | None:
        """When the dossier's keys were destroyed, if they were."""
        ...

    async def destroy_keys(self, dossier_id: str) -> int:
        """Wipe every live key of the dossier; returns how many."""
        ...

    # --- the outbox
    async def deliver_once(self, entry: OutboxEntry, deliver: Callable[[], Awaitable[str]]) -> bool:
        """Put the notice in the outbox and, unless it was delivered already, run `deliver` (which
        returns the channel) while holding the entry, then mark it delivered. Returns whether
        `deliver` ran. A delivery clears the entry's failure, if it had been given up on before."""
        ...

    async def fail_once(self, entry: OutboxEntry, attempts: int, failure: str) -> bool:
        """Put the notice in the outbox and, unless it was delivered meanwhile, record it as given up
        on after `attempts` attempts, the last failing with `failure` (a dead letter; a second call
        updates it). Returns whether it was recorded."""
        ...

    async def failed_notices(self) -> list[FailedNotice]:
        """The dead letters, oldest failure first."""
        ...

    # --- the directory of people
    async def put_person(self, person: PersonRow) -> None:
        """Add the person, or replace the one of that name.

        Raises:
            PersonConflict: another person has the same e-mail, or the same issuer and subject.
        """
        ...

    async def person(self, name: str) -> PersonRow | None:
        """The person of that name."""
        ...

    async def person_by_identity(self, issuer: str, subject: str) -> PersonRow | None:
        """The person bound to that OpenID identity."""
        ...

    async def person_by_email(self, email: str) -> PersonRow | None:
        """The person of that e-mail (compared as stored: callers give it in lower case)."""
        ...

    async def people(self) -> list[PersonRow]:
        """Every person, by name."""
        ...

    async def remove_person(self, name: str) -> bool:
        """Remove the person, their tokens and invitations; whether there was one."""
        ...

    # --- personal access tokens
    async def add_token(self, token: TokenRow) -> None:
        """Store a token (its person must exist)."""
        ...

    async def token_by_digest(self, digest: str) -> TokenRow | None:
        """The token whose secret has that SHA-256, revoked or expired ones included."""
        ...

    async def tokens(self, name: str | None = None) -> list[TokenRow]:
        """Every token (or one person's), by creation."""
        ...

    async def revoke_token(self, token_id: str, at: datetime) -> bool:
        """Revoke a token; False when unknown or already revoked (the first revocation stands)."""
        ...

    # --- invitations
    async def add_invitation(self, invitation: InvitationRow) -> None:
        """Store an invitation (its person must exist)."""
        ...

    async def use_invitation(self, digest: str, now: datetime) -> InvitationRow | None:
        """Mark the invitation used, atomically, and return it; None when unknown, expired or already
        used (two concurrent uses: one wins)."""
        ...
