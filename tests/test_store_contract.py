"""The journal store's contract: one suite, run on every implementation (`store` fixture: PostgreSQL as
the application's role, and memory), as `eventsourcing` tests its recorders. What one store does, the
other does: same checks, same errors, same bytes in the chains."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from domain.calendar import PARIS
from journal import ledger
from journal.keys import DossierKeys, KeyDestroyed, Keyring
from journal.memory import MemoryStore
from journal.postgres import PostgresStore, app_url, create_engine
from journal.store import (
    Anchor,
    InvalidCursor,
    InvitationRow,
    JournalConflict,
    JournalGap,
    JournalStore,
    OutboxEntry,
    PersonConflict,
    PersonRow,
    Projection,
    ReadEntry,
    SealedEvent,
    StoreError,
    TokenRow,
    deadline_cursor,
)

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=PARIS)  # Paris time on the way in: UTC on the way out
A, B, C = "hdf-pmcb-reemploi.a", "hdf-pmcb-reemploi.b", "normandie-crec-2018.c"
CALL, OTHER = "hdf-pmcb-reemploi", "normandie-crec-2018"


def ev(seq: int, type_: str = "submitted", minutes: int | None = None, actor: str = "holder:acme") -> SealedEvent:
    """A sealed event as a caller would hand it (the bytes stand for a ciphertext)."""
    at = T0 + timedelta(minutes=seq if minutes is None else minutes)
    return SealedEvent(seq=seq, type=type_, actor=actor, occurred_at=at, key_id="k1",
                       sealed=f"sealed:{type_}:{seq}".encode() * 3)


def proj(status: str = "submitted", version: int = 1, call: str = CALL, phase: str = "unique",
         **more: Any) -> Projection:
    return Projection(call_id=call, phase_id=phase, holder="acme", status=status, version=version, **more)


async def put(store: JournalStore, dossier: str, first: int, events: list[SealedEvent], status: str = "submitted",
              **more: Any) -> int:
    return await store.append(dossier, dossier, first, events, proj(status, first + len(events) - 1, **more))


def read(dossier: str, minutes: int, granted: bool = True, actor: str = "staff:amelie") -> ReadEntry:
    return ReadEntry(dossier_id=dossier, at=T0 + timedelta(minutes=minutes), actor=actor, what="content", via="cli",
                     granted=granted, reason="équipe de l’appel" if granted else "autre appel")


def row(e: SealedEvent, dossier: str) -> dict[str, Any]:
    """The columns the chain hashes, from what was handed in (not from what was stored)."""
    return {"dossier_id": dossier, "seq": e.seq, "type": e.type, "actor": e.actor, "occurred_at": e.occurred_at,
            "key_id": e.key_id, "sealed": e.sealed, "payload": None}


async def script(store: JournalStore) -> dict[str, Any]:
    """A small journal: two dossiers, a read between events. Returns what was handed in."""
    a12, b1, a3 = [ev(1, "draft_started"), ev(2)], [ev(1, "draft_started", actor="holder:bio")], [ev(3, "acknowledged")]
    r = read(A, 10)
    assert await put(store, A, 1, a12) == 2
    assert await put(store, B, 1, b1, status="draft") == 1
    await store.record_read(r)
    assert await put(store, A, 3, a3, status="acknowledged") == 1
    return {"order": [(A, a12[0]), (A, a12[1]), (B, b1[0]), (A, r), (A, a3[0])]}


# --- appending and reading back


async def test_append_and_read_back(store: JournalStore) -> None:
    assert await store.events(A) == [] and await store.dossier(A) is None
    handed = [ev(1, "draft_started"), ev(2)]
    assert await put(store, A, 1, handed, next_deadline=T0 + timedelta(days=3), next_deadline_kind="phase_closes",
                     submitted_at=T0) == 2
    found = await store.events(A)
    assert [(e.seq, e.type, e.actor, e.key_id, e.sealed, e.payload, e.workflow_id) for e in found] == \
        [(h.seq, h.type, h.actor, "k1", h.sealed, None, A) for h in handed]
    assert [e.occurred_at for e in found] == [h.occurred_at for h in handed]
    assert all(e.occurred_at.utcoffset() == timedelta(0) for e in found)  # instants come back in UTC
    assert [e.gseq for e in found] == [1, 2] and all(e.recorded_at.tzinfo is not None for e in found)
    listed = await store.dossier(A)
    assert listed is not None
    assert (listed.call_id, listed.phase_id, listed.holder, listed.status, listed.version) == \
        (CALL, "unique", "acme", "submitted", 2)
    assert listed.next_deadline == T0 + timedelta(days=3) and listed.next_deadline_kind == "phase_closes"
    assert listed.submitted_at == T0 and listed.updated_at.tzinfo is not None
    assert await store.events(B) == []


async def test_a_retry_of_the_same_batch_writes_nothing(store: JournalStore) -> None:
    batch = [ev(1, "draft_started"), ev(2)]
    assert await put(store, A, 1, batch) == 2
    before = await store.ledger()
    # Same types and instants at the same places (the sealed bytes differ: a fresh nonce on each attempt).
    again = [replace(e, sealed=b"other nonce") for e in batch]
    assert await put(store, A, 1, again) == 0
    assert await put(store, A, 2, again[1:]) == 0  # a retry of a later, shorter batch too
    after = await store.ledger()
    assert after.events == before.events and after.head == before.head
    assert await store.call_counts(CALL) == {"submitted": 1}


async def test_another_batch_at_the_same_places_is_a_conflict(store: JournalStore) -> None:
    await put(store, A, 1, [ev(1, "draft_started"), ev(2)])
    head = (await store.ledger()).head
    others = [[ev(1, "draft_started"), ev(2, "withdrawn")],  # another type at 2
              [ev(1, "draft_started"), ev(2, minutes=99)],  # another instant at 2
              [ev(2, "withdrawn")], [ev(1)]]
    for other in others:
        with pytest.raises(JournalConflict) as caught:
            await put(store, A, other[0].seq, other)
        assert caught.value.code == "JournalConflict" and A in caught.value.message
    assert (await store.ledger()).head == head and len(await store.events(A)) == 2


async def test_a_hole_or_a_duplicate_is_a_gap(store: JournalStore) -> None:
    with pytest.raises(JournalGap):
        await put(store, A, 2, [ev(2)])  # nothing before it
    await put(store, A, 1, [ev(1, "draft_started")])
    head = (await store.ledger()).head
    with pytest.raises(JournalGap) as caught:
        await put(store, A, 3, [ev(3)])  # a hole at 2
    assert caught.value.code == "JournalGap" and isinstance(caught.value, StoreError)
    await put(store, A, 2, [ev(2)])
    with pytest.raises(JournalGap):
        await put(store, A, 2, [ev(2), ev(3)])  # 2 twice
    assert (await store.ledger()).head == (head[0] + 1, (await store.events(A))[-1].ghash)
    assert [e.seq for e in await store.events(A)] == [1, 2]
    assert await store.dossier(A) is not None and (await store.dossier(A)).version == 2  # type: ignore[union-attr]


async def test_concurrent_attempts_of_one_batch_write_it_once(store: JournalStore) -> None:
    batch = [ev(1, "draft_started"), ev(2), ev(3, "acknowledged")]
    written = await asyncio.gather(*[put(store, A, 1, batch) for _ in range(3)])
    assert sorted(written) == [0, 0, 3]
    assert [e.seq for e in await store.events(A)] == [1, 2, 3]


# --- the chains


async def test_hashes_chain_per_dossier_and_globally(store: JournalStore) -> None:
    order = (await script(store))["order"]
    snapshot = await store.ledger()
    stored = {(e.dossier_id, e.seq): e for e in snapshot.events}
    [stored_read] = snapshot.reads
    previous: dict[str, bytes] = {}
    ghash, expected = ledger.GENESIS, []
    for dossier, entry in order:
        if isinstance(entry, SealedEvent):
            h = ledger.link(previous.get(dossier, ledger.GENESIS), ledger.event_entry(row(entry, dossier)))
            previous[dossier] = h
            assert stored[(dossier, entry.seq)].hash == h
        else:
            h = ledger.link(ledger.GENESIS, ledger.read_entry(vars(entry)))
            assert stored_read.hash == h
        ghash = ledger.global_link(ghash, dossier, h)
        expected.append((dossier, h, ghash))
    links = await store.chain(1, len(order))
    assert [(c.dossier_id, c.hash, c.ghash) for c in links] == expected
    assert [c.gseq for c in links] == [1, 2, 3, 4, 5] and stored_read.gseq == 4
    assert snapshot.head == (5, ghash)
    rows = [vars(e) for e in snapshot.events]
    assert ledger.verify(rows, [vars(r) for r in snapshot.reads], listed=snapshot.versions) == []


async def test_both_stores_chain_to_the_same_bytes(database: str) -> None:
    postgres = PostgresStore(create_engine(app_url(database), pool_size=2))
    memory = MemoryStore()
    try:
        for s in (postgres, memory):
            await script(s)
        got = [([(c.gseq, c.dossier_id, c.hash, c.ghash) for c in await s.chain(1, 99)], (await s.ledger()).head,
                [(e.hash, e.gseq, e.ghash) for e in await s.events(A)]) for s in (postgres, memory)]
        assert got[0] == got[1] and len(got[0][0]) == 5
    finally:
        await postgres.dispose()


# --- projections


async def test_projections_and_counts_follow_status_changes(store: JournalStore) -> None:
    await put(store, A, 1, [ev(1, "draft_started")], status="draft")
    await put(store, B, 1, [ev(1, "draft_started")], status="draft")
    await put(store, C, 1, [ev(1, "draft_started")], status="draft", call=OTHER)
    assert await store.call_counts(CALL) == {"draft": 2} and await store.call_counts(OTHER) == {"draft": 1}
    await put(store, A, 2, [ev(2)])
    assert await store.call_counts(CALL) == {"draft": 1, "submitted": 1}
    await put(store, A, 3, [ev(3, "reminder_sent")])  # same status, new version: counts unchanged
    assert await store.call_counts(CALL) == {"draft": 1, "submitted": 1}
    assert (await store.dossier(A)).version == 3  # type: ignore[union-attr]
    await put(store, B, 2, [ev(2)])
    await put(store, A, 4, [ev(4, "acknowledged")], status="acknowledged")
    assert await store.call_counts(CALL) == {"submitted": 1, "acknowledged": 1}
    assert await store.call_counts(OTHER) == {"draft": 1} and await store.call_counts("nowhere") == {}


async def test_the_dossier_list_pages_by_id_and_filters(store: JournalStore) -> None:
    soon, later = T0 + timedelta(days=1), T0 + timedelta(days=30)
    ids = [f"{CALL}.d{i}" for i in range(7)]
    for i, ident in enumerate(reversed(ids)):  # written out of order: the list is by id anyway
        await store.append(ident, ident, 1, [ev(1)], proj(
            "draft" if i % 2 else "submitted", 1, phase="p2" if i < 3 else "p1",
            next_deadline=(soon if i % 3 == 0 else later) if i != 4 else None))
    await put(store, C, 1, [ev(1)], call=OTHER, next_deadline=soon)
    everything = await store.dossiers()
    assert [r.dossier_id for r in everything] == sorted([*ids, C])
    pages, after = [], None
    while page := await store.dossiers(call_id=CALL, after=after, limit=3):
        pages.append([r.dossier_id for r in page])
        after = page[-1].dossier_id
    assert pages == [ids[0:3], ids[3:6], ids[6:7]]
    assert await store.dossiers(call_id=CALL, after=ids[-1]) == []
    assert [r.dossier_id for r in await store.dossiers(call_id=CALL, status="draft")] == \
        [ident for i, ident in enumerate(reversed(ids)) if i % 2][::-1]
    assert {r.dossier_id for r in await store.dossiers(phase_id="p2")} == set(ids[4:])
    due = await store.dossiers(due_before=soon + timedelta(hours=1))
    assert {r.dossier_id for r in due} == {ids[6], ids[3], ids[0], C}  # i = 0, 3, 6 (soon); none without deadline
    assert [r.dossier_id for r in await store.dossiers(call_id=CALL, status="submitted", after=ids[2], limit=1)] == \
        [ids[4]]
    assert {r.dossier_id for r in await store.dossiers(call_ids=[OTHER])} == {C}
    assert await store.dossiers(call_ids=[]) == []
    assert len(await store.dossiers(holder="acme", call_ids=[CALL, OTHER])) == len(ids) + 1
    assert await store.dossiers(holder="autre") == []


async def test_the_dossier_list_by_deadline_pages_with_a_cursor(store: JournalStore) -> None:
    """Earliest deadline first, none last, ties by id; `after` is the opaque cursor of the last row."""
    day = timedelta(days=1)
    deadlines = {"d0": T0 + 3 * day, "d1": None, "d2": T0 + day, "d3": T0 + 3 * day, "d4": None, "d5": T0 + 2 * day,
                 "d6": T0 + day}
    for name, at in deadlines.items():
        ident = f"{CALL}.{name}"
        await store.append(ident, ident, 1, [ev(1)], proj(next_deadline=at))
    expected = [f"{CALL}.{n}" for n in ("d2", "d6", "d5", "d0", "d3", "d1", "d4")]
    assert [r.dossier_id for r in await store.dossiers(order="deadline")] == expected
    for size in (1, 2, 3, 7):
        pages, after = [], None
        while page := await store.dossiers(call_id=CALL, order="deadline", after=after, limit=size):
            pages.append([r.dossier_id for r in page])
            after = deadline_cursor(page[-1])
        assert [i for p in pages for i in p] == expected and all(len(p) <= size for p in pages), size
    assert [r.dossier_id for r in await store.dossiers(order="deadline", due_from=T0 + 2 * day,
                                                       due_before=T0 + 3 * day + timedelta(seconds=1))] == \
        expected[2:5]
    with pytest.raises(InvalidCursor):
        await store.dossiers(order="deadline", after="pas-un-curseur")
    with pytest.raises(StoreError):
        await store.dossiers(order="hasard")
    # the id order and its `after` (the last id) are unchanged
    assert [r.dossier_id for r in await store.dossiers(after=f"{CALL}.d4")] == [f"{CALL}.d5", f"{CALL}.d6"]


async def test_tabs_metadata_filters_and_counts(store: JournalStore) -> None:
    # the territory is kept as its blind index only (journal.keys.blind_index): opaque to the store
    rows = [(A, "a-traiter", "entreprise", "i-pdc", ()), (B, "en-revue", "collectivite", "i-nord", ("rita",)),
            (f"{CALL}.c", "en-revue", "entreprise", None, ("rita", "victor")),
            (f"{CALL}.d", None, "entreprise", "i-nord", ()), (C, "clos", "entreprise", "i-nord", ("victor",))]
    for ident, tab, kind, territory, reviewers in rows:
        await store.append(ident, ident, 1, [ev(1)], proj(call=OTHER if ident == C else CALL, tab=tab,
                                                          holder_type=kind, territory_index=territory,
                                                          reviewers=reviewers))
    back = await store.dossier(f"{CALL}.c")
    assert back is not None and (back.tab, back.holder_type, back.territory_index, back.reviewers) == \
        ("en-revue", "entreprise", None, ("rita", "victor"))

    async def ids(**filters: Any) -> list[str]:
        return [r.dossier_id for r in await store.dossiers(**filters)]

    assert await ids(tab="en-revue") == [B, f"{CALL}.c"]
    assert await ids(holder_type="entreprise", territory_index="i-nord") == [f"{CALL}.d", C]
    assert await ids(reviewer="rita") == [B, f"{CALL}.c"] and await ids(reviewer="victor") == [f"{CALL}.c", C]
    assert await ids(reviewer="rita", tab="a-traiter") == [] and await ids(reviewer="personne") == []
    assert await store.tab_counts(None) == {CALL: {"a-traiter": 1, "en-revue": 2}, OTHER: {"clos": 1}}
    assert await store.tab_counts([OTHER]) == {OTHER: {"clos": 1}} and await store.tab_counts([]) == {}
    assert await store.tab_counts(None, reviewer="victor") == {CALL: {"en-revue": 1}, OTHER: {"clos": 1}}
    assert await store.tab_counts([CALL], holder="autre") == {}
    # a later batch moves the dossier to another tab and changes its reviewers
    await store.append(B, B, 2, [ev(2, "decision_taken")], proj(version=2, tab="decides", reviewers=()))
    assert await store.tab_counts([CALL]) == {CALL: {"a-traiter": 1, "en-revue": 1, "decides": 1}}
    assert await ids(reviewer="rita") == [f"{CALL}.c"]


async def test_open_dossiers_leaves_final_statuses_out(store: JournalStore) -> None:
    for ident, status, phase in ((A, "draft", "unique"), (B, "expired", "unique"), (f"{CALL}.c", "submitted", "unique"),
                                 (f"{CALL}.d", "withdrawn", "unique"), (f"{CALL}.e", "draft", "other")):
        await store.append(ident, ident, 1, [ev(1)], proj(status, 1, phase=phase))
    assert await store.open_dossiers(CALL, "unique", ["expired", "withdrawn", "closed"]) == [A, f"{CALL}.c"]
    assert await store.open_dossiers(CALL, "unique", []) == [A, B, f"{CALL}.c", f"{CALL}.d"]
    assert await store.open_dossiers(OTHER, "unique", ["expired"]) == []


# --- the read log and the ledger


async def test_the_read_log_is_chained(store: JournalStore) -> None:
    await put(store, A, 1, [ev(1)])
    entries = [read(A, 5), read(B, 6, granted=False, actor="reviewer:remi"), read(A, 7, granted=False)]
    for entry in entries:
        await store.record_read(entry)
    found = await store.reads(A)
    assert [(r.actor, r.granted, r.reason, r.what, r.via, r.at) for r in found] == \
        [(e.actor, e.granted, e.reason, e.what, e.via, e.at) for e in (entries[0], entries[2])]
    assert [r.gseq for r in found] == [2, 4] and found[0].id < found[1].id
    assert all(r.hash == ledger.link(ledger.GENESIS, ledger.read_entry(vars(e)))
               for r, e in zip(found, (entries[0], entries[2]), strict=True))
    assert [r.dossier_id for r in await store.reads(B)] == [B] and await store.reads(C) == []
    assert (await store.ledger()).head[0] == 4


async def test_the_ledger_snapshot_of_the_journal_or_of_one_dossier(store: JournalStore) -> None:
    await script(store)
    await store.add_anchor(Anchor(day=date(2026, 3, 1), gseq=2, ghash=b"\x01" * 32))
    whole = await store.ledger()
    assert {(e.dossier_id, e.seq) for e in whole.events} == {(A, 1), (A, 2), (A, 3), (B, 1)}
    assert [r.dossier_id for r in whole.reads] == [A] and whole.versions == {A: 3, B: 1}
    assert whole.head[0] == 5 and [a.gseq for a in whole.anchors] == [2]
    one = await store.ledger(B)
    assert [(e.dossier_id, e.seq) for e in one.events] == [(B, 1)] and one.reads == []
    assert one.versions == {B: 1} and one.head == whole.head and one.anchors == whole.anchors
    unknown = await store.ledger("nowhere.x")
    assert unknown.events == [] and unknown.reads == [] and unknown.versions == {}


async def test_a_stretch_of_the_chain(store: JournalStore) -> None:
    await script(store)
    assert [(c.gseq, c.dossier_id) for c in await store.chain(2, 4)] == [(2, A), (3, B), (4, A)]
    assert [c.gseq for c in await store.chain(4, 4)] == [4]
    assert await store.chain(6, 10) == [] and await store.chain(3, 2) == []


async def test_anchors_and_the_head_at_an_instant(store: JournalStore) -> None:
    assert await store.first_recorded_at() is None and await store.anchors() == []
    assert await store.head_before(datetime.now(UTC) + timedelta(days=1)) is None
    await script(store)
    first = await store.first_recorded_at()
    assert first is not None and first <= datetime.now(UTC) + timedelta(seconds=5)
    head = (await store.ledger()).head
    assert await store.head_before(datetime.now(UTC) + timedelta(days=1)) == head
    assert await store.head_before(first) is None  # strictly before the first entry: nothing
    day = date(2026, 3, 2)
    await store.add_anchor(Anchor(day=day, gseq=head[0], ghash=head[1]))
    await store.add_anchor(Anchor(day=day, gseq=1, ghash=b"\x02" * 32))  # a day already anchored keeps its first
    await store.add_anchor(Anchor(day=date(2026, 3, 1), gseq=1, ghash=b"\x03" * 32))
    assert await store.anchors() == [Anchor(day=date(2026, 3, 1), gseq=1, ghash=b"\x03" * 32),
                                     Anchor(day=day, gseq=head[0], ghash=head[1])]


# --- dossiers' keys


async def test_wrapped_keys_are_added_once_and_destroyed(store: JournalStore) -> None:
    assert await store.key(A, "k1") is None and await store.keys_destroyed_at(A) is None
    await asyncio.gather(store.add_key(A, "k1", b"first"), store.add_key(A, "k1", b"second"))  # a race: one wins
    won = await store.key(A, "k1")
    assert won is not None and won.wrapped in (b"first", b"second") and won.destroyed_at is None
    await store.add_key(A, "k1", b"third")
    assert await store.key(A, "k1") == won
    await store.add_key(A, "k2", b"rotated")
    await store.add_key(B, "k1", b"other dossier")
    assert await store.destroy_keys(A) == 2
    gone = await store.key(A, "k2")
    assert gone is not None and gone.wrapped == b"" and gone.destroyed_at is not None
    assert await store.keys_destroyed_at(A) == gone.destroyed_at
    assert await store.destroy_keys(A) == 0 and await store.keys_destroyed_at(A) == gone.destroyed_at
    assert (await store.key(B, "k1")).wrapped == b"other dossier"  # type: ignore[union-attr]
    assert await store.keys_destroyed_at(B) is None


class Unreachable:
    """A store whose key lookups fail, as a database out of reach does."""

    def __init__(self, inner: JournalStore) -> None:
        self.inner, self.down = inner, False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def key(self, dossier_id: str, key_id: str) -> Any:
        if self.down:
            raise ConnectionRefusedError("database down")
        return await self.inner.key(dossier_id, key_id)


async def test_dossier_keys_over_the_store(store: JournalStore, tmp_path: Any) -> None:
    keyring = Keyring.open(tmp_path, create=True)
    flaky = Unreachable(store)
    keys = DossierKeys(keyring, flaky)  # type: ignore[arg-type]
    keys.FRESH_FOR = 0.0  # every use re-reads the row
    key_id, key = await keys.current(A)
    other = DossierKeys(keyring, store)
    assert await other.current(A) == (key_id, key) and await other.get(A, key_id) == key  # one key per dossier
    flaky.down = True
    assert await keys.get(A, key_id) == key  # a key already known keeps working while the database is away
    with pytest.raises(ConnectionRefusedError):
        await keys.get(B, key_id)  # an unknown one does not
    flaky.down = False
    assert await other.destroy(A) == 1 and await keys.destroyed(A) is not None
    with pytest.raises(KeyDestroyed):
        await keys.get(A, key_id)


# --- the outbox


def notice(key: str = "n-1") -> OutboxEntry:
    return OutboxEntry(key=key, dossier_id=A, kind="acknowledged", recipient="holder:acme", key_id="k1",
                       sealed=b"sealed notice", due=T0)


async def test_the_outbox_delivers_once(store: JournalStore) -> None:
    runs: list[str] = []

    async def deliver() -> str:
        runs.append("ran")
        await asyncio.sleep(0.05)  # long enough for the other attempt to arrive meanwhile
        return "maildrop"

    assert await asyncio.gather(store.deliver_once(notice(), deliver), store.deliver_once(notice(), deliver)) in \
        ([True, False], [False, True])
    assert await store.deliver_once(notice(), deliver) is False
    assert runs == ["ran"]
    assert await store.deliver_once(notice("n-2"), deliver) is True and len(runs) == 2


async def test_a_failed_delivery_is_not_marked_delivered(store: JournalStore) -> None:
    async def broken() -> str:
        raise OSError("SMTP injoignable")

    with pytest.raises(OSError, match="SMTP"):
        await store.deliver_once(notice(), broken)
    runs: list[str] = []

    async def deliver() -> str:
        runs.append("ran")
        return "smtp"

    assert await store.deliver_once(notice(), deliver) is True and runs == ["ran"]
    assert await store.deliver_once(notice(), deliver) is False and runs == ["ran"]


async def test_a_notice_given_up_on_is_a_dead_letter_until_delivered(store: JournalStore) -> None:
    assert await store.failed_notices() == []
    assert await store.fail_once(notice(), 5, "ConnectionRefusedError: [Errno 111] Connection refused") is True
    assert await store.fail_once(notice("n-2"), 5, "SMTPRecipientsRefused") is True
    assert await store.fail_once(notice(), 5, "ConnectionRefusedError: again") is True  # given up on again
    dead = await store.failed_notices()
    assert [(d.key, d.dossier_id, d.kind, d.recipient, d.due, d.attempts) for d in dead] == [
        ("n-2", A, "acknowledged", "holder:acme", T0, 5), ("n-1", A, "acknowledged", "holder:acme", T0, 5)]
    assert dead[1].failure == "ConnectionRefusedError: again" and dead[1].failed_at >= dead[0].failed_at

    async def deliver() -> str:
        return "smtp"

    assert await store.deliver_once(notice(), deliver) is True  # delivered after all: no longer dead
    assert [d.key for d in await store.failed_notices()] == ["n-2"]
    assert await store.fail_once(notice(), 5, "late failure") is False  # a delivered notice is never dead
    assert await store.deliver_once(notice("n-3"), deliver) is True
    assert await store.fail_once(notice("n-3"), 5, "late failure") is False
    assert [d.key for d in await store.failed_notices()] == ["n-2"]
# --- the directory of people, tokens and invitations


def person(name: str, email: str | None = None, grants: tuple[tuple[str, str | None], ...] = (("holder", None),),
           **more: Any) -> PersonRow:
    return PersonRow(name=name, email=email, grants=grants, **more)


def token(ident: str, name: str, digest: str, days: int = 1) -> TokenRow:
    return TokenRow(id=ident, name=name, role="staff", digest=digest, created_at=T0,
                    expires_at=T0 + timedelta(days=days), label="script")


async def test_people_are_put_found_listed_and_removed(store: JournalStore) -> None:
    amelie = person("amelie", "amelie@region.fr", (("staff", CALL), ("staff", OTHER)))
    await store.put_person(amelie)
    await store.put_person(person("acme", "contact@acme.fr", siret="90000000000017"))
    assert await store.person("amelie") == amelie
    assert await store.person("nobody") is None
    assert [p.name for p in await store.people()] == ["acme", "amelie"]
    assert await store.person_by_email("amelie@region.fr") == amelie
    assert await store.person_by_email("autre@region.fr") is None
    bound = replace(amelie, issuer="https://idp.example", subject="sub-1", grants=(("committee", CALL),))
    await store.put_person(bound)  # the same name: replaced
    assert await store.person("amelie") == bound
    assert await store.person_by_identity("https://idp.example", "sub-1") == bound
    assert await store.person_by_identity("https://idp.example", "sub-2") is None
    with pytest.raises(PersonConflict):  # another's e-mail
        await store.put_person(person("intrus", "amelie@region.fr"))
    with pytest.raises(PersonConflict):  # another's identity
        await store.put_person(person("intrus", issuer="https://idp.example", subject="sub-1"))
    assert await store.person("intrus") is None
    await store.put_person(person("cora"))  # several people without e-mail or identity
    await store.put_person(person("rita"))
    assert await store.remove_person("amelie") is True
    assert await store.remove_person("amelie") is False
    assert [p.name for p in await store.people()] == ["acme", "cora", "rita"]


async def test_tokens_are_kept_by_digest_revoked_once_and_go_with_their_person(store: JournalStore) -> None:
    await store.put_person(person("amelie", grants=(("staff", CALL),)))
    await store.put_person(person("odile", grants=(("auditor", None),)))
    with pytest.raises(StoreError):  # nobody of that name
        await store.add_token(token("tok-0", "inconnu", "d0"))
    await store.add_token(token("tok-1", "amelie", "d1"))
    await store.add_token(token("tok-2", "odile", "d2"))
    with pytest.raises(StoreError):  # the same digest twice
        await store.add_token(token("tok-3", "amelie", "d1"))
    found = await store.token_by_digest("d1")
    assert found is not None and found.id == "tok-1" and found.name == "amelie" and found.revoked_at is None
    assert found.expires_at == T0 + timedelta(days=1) and found.label == "script"
    assert await store.token_by_digest("d9") is None
    assert [t.id for t in await store.tokens()] == ["tok-1", "tok-2"]
    assert [t.id for t in await store.tokens("odile")] == ["tok-2"]
    assert await store.revoke_token("tok-1", T0 + timedelta(hours=1)) is True
    assert await store.revoke_token("tok-1", T0 + timedelta(hours=2)) is False  # the first revocation stands
    assert await store.revoke_token("tok-9", T0) is False
    assert (await store.token_by_digest("d1")).revoked_at == T0 + timedelta(hours=1)  # type: ignore[union-attr]
    await store.remove_person("odile")
    assert await store.token_by_digest("d2") is None and [t.id for t in await store.tokens()] == ["tok-1"]


async def test_an_invitation_is_used_once_before_it_expires(store: JournalStore) -> None:
    await store.put_person(person("rita", grants=(("reviewer", None),)))
    with pytest.raises(StoreError):
        await store.add_invitation(InvitationRow("inv-0", "inconnu", "i0", T0, T0 + timedelta(days=7)))
    await store.add_invitation(InvitationRow("inv-1", "rita", "i1", T0, T0 + timedelta(days=7)))
    await store.add_invitation(InvitationRow("inv-2", "rita", "i2", T0, T0 + timedelta(days=7)))
    assert await store.use_invitation("i1", T0 + timedelta(days=7)) is None  # expired at that instant
    both = await asyncio.gather(*(store.use_invitation("i2", T0 + timedelta(days=1)) for _ in range(2)))
    used = [u for u in both if u is not None]
    assert len(used) == 1 and used[0].name == "rita" and used[0].used_at == T0 + timedelta(days=1)
    assert await store.use_invitation("i2", T0 + timedelta(days=2)) is None  # used already
    assert await store.use_invitation("i9", T0) is None
    await store.remove_person("rita")
    await store.put_person(person("rita"))
    await store.add_invitation(InvitationRow("inv-1", "rita", "i1", T0, T0 + timedelta(days=7)))  # gone with rita
