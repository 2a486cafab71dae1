"""The journal store on PostgreSQL (SQLAlchemy Core, asyncpg): the only code of amiflow that runs SQL,
with the engine's creation and the migrations (Alembic, run from code)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, delete, func, or_, select, union_all, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from journal.chaining import check_places, event_rows, place, read_row
from journal.schema import (
    anchors,
    call_counts,
    dossier_keys,
    dossiers,
    events,
    invitations,
    journal_head,
    outbox,
    people,
    reads,
    tokens,
)
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
    parse_deadline_cursor,
)

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
journal_events = events  # the table, where `append`'s argument takes the name `events`
APP_ROLE = "amiflow_app"  # created by migration 0003: reads and appends the journal, never changes it

EVENT_COLUMNS = [events.c.dossier_id, events.c.seq, events.c.type, events.c.actor, events.c.occurred_at,
                 events.c.recorded_at, events.c.workflow_id, events.c.key_id, events.c.sealed, events.c.payload,
                 events.c.hash, events.c.gseq, events.c.ghash]
READ_COLUMNS = [reads.c.id, reads.c.dossier_id, reads.c.at, reads.c.actor, reads.c.what, reads.c.via,
                reads.c.granted, reads.c.reason, reads.c.recorded_at, reads.c.hash, reads.c.gseq,
                reads.c.ghash]
DOSSIER_COLUMNS = [dossiers.c.dossier_id, dossiers.c.call_id, dossiers.c.phase_id, dossiers.c.holder,
                   dossiers.c.status, dossiers.c.version, dossiers.c.next_deadline, dossiers.c.next_deadline_kind,
                   dossiers.c.submitted_at, dossiers.c.updated_at, dossiers.c.tab, dossiers.c.holder_type,
                   dossiers.c.territory_index, dossiers.c.reviewers]


def async_url(url: str) -> str:
    """A PostgreSQL URL for SQLAlchemy's asyncpg dialect (accepts plain postgresql:// URLs)."""
    for prefix in ("postgresql+asyncpg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix):]
    raise ValueError(f"URL PostgreSQL attendue, reçu : {url!r}")


def app_url(url: str) -> str:
    """The same database, as the application's role (the embedded server trusts local connections;
    in production give the role a password and put it in AMIFLOW_DATABASE_URL)."""
    from sqlalchemy.engine import make_url

    return make_url(url).set(username=APP_ROLE, password=None).render_as_string(hide_password=False)


def create_engine(url: str, pool_size: int = 10) -> AsyncEngine:
    """An async engine on asyncpg; connections are checked before use so a restarted server is
    reconnected to instead of failing the next transaction."""
    return create_async_engine(async_url(url), pool_size=pool_size, pool_pre_ping=True)


def is_database_error(exc: BaseException) -> bool:
    """Whether an exception comes from the database or its driver (unreachable server, refused query):
    what an entry point says in one sentence rather than with a traceback."""
    return type(exc).__module__.startswith(("sqlalchemy", "asyncpg"))


def migrate(url: str) -> None:
    """Bring the database to the latest migration. Blocking: call it outside an event loop (or in
    a thread), since Alembic's environment runs its own loop."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    command.upgrade(config, "head")


class PostgresStore:
    """`JournalStore` on PostgreSQL. Every method is one transaction on `engine`."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    @classmethod
    def from_url(cls, url: str, pool_size: int = 10) -> PostgresStore:
        """The store on the database at `url` (its own engine, closed by `dispose`)."""
        return cls(create_engine(url, pool_size=pool_size))

    async def dispose(self) -> None:
        """Close the engine's connections (at the end of a process or a test)."""
        await self.engine.dispose()

    # --- events and projections

    async def append(self, dossier_id: str, workflow_id: str, first_seq: int, events: Sequence[SealedEvent],
                     projection: Projection) -> int:
        """See `JournalStore.append`."""
        last_seq = first_seq + len(events) - 1
        t = journal_events
        async with self.engine.begin() as conn:
            # Serialise writers of one dossier (a retry can overlap a slow first attempt).
            await conn.execute(select(func.pg_advisory_xact_lock(func.hashtext(dossier_id))))
            stored = int(await conn.scalar(select(func.coalesce(func.max(t.c.seq), 0))
                                           .where(t.c.dossier_id == dossier_id)) or 0)
            kept: list[tuple[str, datetime]] = []
            if stored >= last_seq:
                kept = [(r.type, r.occurred_at) for r in await conn.execute(
                    select(t.c.type, t.c.occurred_at)
                    .where(t.c.dossier_id == dossier_id, t.c.seq >= first_seq, t.c.seq <= last_seq).order_by(t.c.seq)
                )]
            if not check_places(dossier_id, first_seq, events, stored, kept):
                return 0
            before = await conn.scalar(select(t.c.hash).where(t.c.dossier_id == dossier_id, t.c.seq == stored))
            rows = event_rows(dossier_id, workflow_id, first_seq, events,
                              bytes(before) if before is not None else None)
            placed = await self._chain(conn, dossier_id, [r["hash"] for r in rows])
            for row, (gseq, ghash) in zip(rows, placed, strict=True):
                row |= {"gseq": gseq, "ghash": ghash}
            await conn.execute(t.insert(), rows)
            await self._project(conn, dossier_id, projection)
        return len(rows)

    @staticmethod
    async def _chain(conn: AsyncConnection, dossier_id: str, hashes: list[bytes]) -> list[tuple[int, bytes]]:
        """Place entries at the end of the global chain, in this transaction. The head row is locked
        until commit, so the chain has one order."""
        head = (await conn.execute(select(journal_head.c.gseq, journal_head.c.ghash)
                                   .where(journal_head.c.id == 1).with_for_update())).one()
        placed = place((int(head.gseq), bytes(head.ghash)), dossier_id, hashes)
        gseq, ghash = placed[-1]
        await conn.execute(update(journal_head).where(journal_head.c.id == 1).values(gseq=gseq, ghash=ghash))
        return placed

    @staticmethod
    async def _project(conn: AsyncConnection, dossier_id: str, p: Projection) -> None:
        previous = await conn.scalar(
            select(dossiers.c.status).where(dossiers.c.dossier_id == dossier_id).with_for_update()
        )
        values = {
            "call_id": p.call_id, "phase_id": p.phase_id, "holder": p.holder, "status": p.status,
            "version": p.version, "next_deadline": p.next_deadline, "next_deadline_kind": p.next_deadline_kind,
            "submitted_at": p.submitted_at, "updated_at": datetime.now(UTC), "tab": p.tab,
            "holder_type": p.holder_type, "territory_index": p.territory_index, "reviewers": list(p.reviewers),
        }
        upsert = insert(dossiers).values(dossier_id=dossier_id, **values)
        await conn.execute(upsert.on_conflict_do_update(index_elements=["dossier_id"], set_=values))
        if previous == p.status:
            return
        if previous is not None:
            await conn.execute(
                update(call_counts)
                .where(call_counts.c.call_id == p.call_id, call_counts.c.status == previous)
                .values(count=call_counts.c.count - 1)
            )
        bump = insert(call_counts).values(call_id=p.call_id, status=p.status, count=1)
        await conn.execute(
            bump.on_conflict_do_update(index_elements=["call_id", "status"], set_={"count": call_counts.c.count + 1})
        )

    async def events(self, dossier_id: str) -> list[StoredEvent]:
        """See `JournalStore.events`."""
        async with self.engine.connect() as conn:
            rows = await conn.execute(select(*EVENT_COLUMNS).where(events.c.dossier_id == dossier_id)
                                      .order_by(events.c.seq))
            return [_event(r) for r in rows]

    async def dossier(self, dossier_id: str) -> DossierRow | None:
        """See `JournalStore.dossier`."""
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(*DOSSIER_COLUMNS).where(dossiers.c.dossier_id == dossier_id))).first()
        return _dossier(row) if row is not None else None

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
        d = dossiers.c
        query = select(*DOSSIER_COLUMNS)
        equal = {d.call_id: call_id, d.status: status, d.phase_id: phase_id, d.holder: holder, d.tab: tab,
                 d.holder_type: holder_type, d.territory_index: territory_index}
        query = query.where(*(column == value for column, value in equal.items() if value is not None))
        if due_before is not None:
            query = query.where(d.next_deadline < due_before)
        if due_from is not None:
            query = query.where(d.next_deadline >= due_from)
        if call_ids is not None:
            query = query.where(d.call_id.in_(list(call_ids)))
        if reviewer is not None:
            query = query.where(d.reviewers.contains([reviewer]))
        if order == "deadline":
            query = query.order_by(d.next_deadline.asc().nulls_last(), d.dossier_id)
            if after is not None:
                at, ident = parse_deadline_cursor(after)
                query = query.where(
                    and_(d.next_deadline.is_(None), d.dossier_id > ident) if at is None else
                    or_(d.next_deadline > at, and_(d.next_deadline == at, d.dossier_id > ident),
                        d.next_deadline.is_(None))
                )
        else:
            query = query.order_by(d.dossier_id)
            if after is not None:
                query = query.where(d.dossier_id > after)
        if limit is not None:
            query = query.limit(limit)
        async with self.engine.connect() as conn:
            return [_dossier(r) for r in await conn.execute(query)]

    async def tab_counts(self, call_ids: Sequence[str] | None, holder: str | None = None,
                         reviewer: str | None = None) -> dict[str, dict[str, int]]:
        """See `JournalStore.tab_counts`."""
        d = dossiers.c
        query = select(d.call_id, d.tab, func.count()).where(d.tab.is_not(None)).group_by(d.call_id, d.tab)
        if call_ids is not None:
            query = query.where(d.call_id.in_(list(call_ids)))
        if holder is not None:
            query = query.where(d.holder == holder)
        if reviewer is not None:
            query = query.where(d.reviewers.contains([reviewer]))
        counts: dict[str, dict[str, int]] = {}
        async with self.engine.connect() as conn:
            for call, tab, count in await conn.execute(query):
                counts.setdefault(call, {})[tab] = int(count)
        return counts

    async def open_dossiers(self, call_id: str, phase_id: str, final_statuses: Sequence[str]) -> list[str]:
        """See `JournalStore.open_dossiers`."""
        async with self.engine.connect() as conn:
            result = await conn.execute(
                select(dossiers.c.dossier_id)
                .where(dossiers.c.call_id == call_id, dossiers.c.phase_id == phase_id,
                       dossiers.c.status.not_in(list(final_statuses)))
                .order_by(dossiers.c.dossier_id)
            )
            return [row[0] for row in result]

    async def call_counts(self, call_id: str) -> dict[str, int]:
        """See `JournalStore.call_counts` (statuses no dossier stands in are left out)."""
        async with self.engine.connect() as conn:
            rows = await conn.execute(select(call_counts.c.status, call_counts.c.count)
                                      .where(call_counts.c.call_id == call_id, call_counts.c.count > 0))
            return {status: int(count) for status, count in rows}

    # --- the read log

    async def record_read(self, entry: ReadEntry) -> None:
        """See `JournalStore.record_read`."""
        row = read_row(entry)
        async with self.engine.begin() as conn:
            [(gseq, ghash)] = await self._chain(conn, entry.dossier_id, [row["hash"]])
            await conn.execute(reads.insert().values(**row, gseq=gseq, ghash=ghash))

    async def reads(self, dossier_id: str) -> list[StoredRead]:
        """See `JournalStore.reads`."""
        async with self.engine.connect() as conn:
            rows = await conn.execute(select(*READ_COLUMNS).where(reads.c.dossier_id == dossier_id)
                                      .order_by(reads.c.gseq))
            return [_read(r) for r in rows]

    # --- the ledger

    async def ledger(self, dossier_id: str | None = None) -> LedgerSnapshot:
        """See `JournalStore.ledger`: one REPEATABLE READ transaction, so that entries written meanwhile
        are not taken for holes."""
        async with self.engine.connect() as conn:
            await conn.execution_options(isolation_level="REPEATABLE READ")
            async with conn.begin():
                found_q = select(*EVENT_COLUMNS).order_by(events.c.dossier_id, events.c.seq)
                reads_q = select(*READ_COLUMNS).order_by(reads.c.gseq)
                listed_q = select(dossiers.c.dossier_id, dossiers.c.version)
                if dossier_id is not None:
                    found_q = found_q.where(events.c.dossier_id == dossier_id)
                    reads_q = reads_q.where(reads.c.dossier_id == dossier_id)
                    listed_q = listed_q.where(dossiers.c.dossier_id == dossier_id)
                head = (await conn.execute(select(journal_head.c.gseq, journal_head.c.ghash)
                                           .where(journal_head.c.id == 1))).one()
                return LedgerSnapshot(
                    events=[_event(r) for r in await conn.execute(found_q)],
                    reads=[_read(r) for r in await conn.execute(reads_q)],
                    versions={r[0]: int(r[1]) for r in await conn.execute(listed_q)},
                    head=(int(head.gseq), bytes(head.ghash)),
                    anchors=_anchors(await conn.execute(_ANCHORS)),
                )

    async def chain(self, first_gseq: int, last_gseq: int) -> list[ChainLink]:
        """See `JournalStore.chain`."""
        parts = [select(t.c.gseq, t.c.dossier_id, t.c.hash, t.c.ghash)
                 .where(t.c.gseq >= first_gseq, t.c.gseq <= last_gseq) for t in (events, reads)]
        both = union_all(*parts).subquery()
        async with self.engine.connect() as conn:
            rows = await conn.execute(select(both).order_by(both.c.gseq))
            return [ChainLink(gseq=int(r.gseq), dossier_id=r.dossier_id, hash=bytes(r.hash), ghash=bytes(r.ghash))
                    for r in rows]

    async def anchors(self) -> list[Anchor]:
        """See `JournalStore.anchors`."""
        async with self.engine.connect() as conn:
            return _anchors(await conn.execute(_ANCHORS))

    async def first_recorded_at(self) -> datetime | None:
        """See `JournalStore.first_recorded_at` (events and reads alike are entries)."""
        both = union_all(select(func.min(events.c.recorded_at).label("at")),
                         select(func.min(reads.c.recorded_at).label("at"))).subquery()
        async with self.engine.connect() as conn:
            first: datetime | None = await conn.scalar(select(func.min(both.c.at)))
            return first

    async def head_before(self, instant: datetime) -> tuple[int, bytes] | None:
        """See `JournalStore.head_before`."""
        head: tuple[int, bytes] | None = None
        async with self.engine.connect() as conn:
            for table in (events, reads):
                row = (await conn.execute(select(table.c.gseq, table.c.ghash).where(table.c.recorded_at < instant)
                                          .order_by(table.c.gseq.desc()).limit(1))).first()
                if row is not None and (head is None or row.gseq > head[0]):
                    head = (int(row.gseq), bytes(row.ghash))
        return head

    async def add_anchor(self, anchor: Anchor) -> None:
        """See `JournalStore.add_anchor`."""
        async with self.engine.begin() as conn:
            await conn.execute(insert(anchors).values(day=anchor.day, gseq=anchor.gseq, ghash=anchor.ghash)
                               .on_conflict_do_nothing(index_elements=["day"]))

    # --- dossiers' data keys

    async def add_key(self, dossier_id: str, key_id: str, wrapped: bytes) -> None:
        """See `JournalStore.add_key`."""
        async with self.engine.begin() as conn:
            await conn.execute(insert(dossier_keys).values(dossier_id=dossier_id, key_id=key_id, wrapped=wrapped)
                               .on_conflict_do_nothing())

    async def key(self, dossier_id: str, key_id: str) -> WrappedKey | None:
        """See `JournalStore.key`."""
        async with self.engine.connect() as conn:
            row = (await conn.execute(
                select(dossier_keys.c.wrapped, dossier_keys.c.destroyed_at)
                .where(dossier_keys.c.dossier_id == dossier_id, dossier_keys.c.key_id == key_id)
            )).first()
        if row is None:
            return None
        return WrappedKey(dossier_id=dossier_id, key_id=key_id, wrapped=bytes(row.wrapped),
                          destroyed_at=row.destroyed_at)

    async def keys_destroyed_at(self, dossier_id: str) -> datetime | None:
        """See `JournalStore.keys_destroyed_at`."""
        async with self.engine.connect() as conn:
            when: datetime | None = await conn.scalar(select(func.max(dossier_keys.c.destroyed_at))
                                                      .where(dossier_keys.c.dossier_id == dossier_id))
        return when

    async def destroy_keys(self, dossier_id: str) -> int:
        """See `JournalStore.destroy_keys`."""
        async with self.engine.begin() as conn:
            result = await conn.execute(
                update(dossier_keys)
                .where(dossier_keys.c.dossier_id == dossier_id, dossier_keys.c.destroyed_at.is_(None))
                .values(wrapped=b"", destroyed_at=func.now())
            )
        return int(result.rowcount or 0)

    # --- the outbox

    async def deliver_once(self, entry: OutboxEntry, deliver: Callable[[], Awaitable[str]]) -> bool:
        """See `JournalStore.deliver_once`: the row is locked while delivering, so a concurrent attempt
        waits and then finds it delivered; if `deliver` raises, nothing is kept."""
        async with self.engine.begin() as conn:
            await _put(conn, entry)
            done = await conn.scalar(select(outbox.c.delivered_at).where(outbox.c.key == entry.key).with_for_update())
            if done is not None:
                return False
            channel = await deliver()
            await conn.execute(update(outbox).where(outbox.c.key == entry.key)
                               .values(delivered_at=datetime.now(UTC), channel=channel, failed_at=None,
                                       attempts=None, failure=None))
        return True

    async def fail_once(self, entry: OutboxEntry, attempts: int, failure: str) -> bool:
        """See `JournalStore.fail_once`."""
        async with self.engine.begin() as conn:
            await _put(conn, entry)
            result = await conn.execute(
                update(outbox).where(outbox.c.key == entry.key, outbox.c.delivered_at.is_(None))
                .values(failed_at=datetime.now(UTC), attempts=attempts, failure=failure)
            )
        return bool(result.rowcount)

    async def failed_notices(self) -> list[FailedNotice]:
        """See `JournalStore.failed_notices`."""
        query = (select(outbox.c.key, outbox.c.dossier_id, outbox.c.kind, outbox.c.recipient, outbox.c.due,
                        outbox.c.created_at, outbox.c.failed_at, outbox.c.attempts, outbox.c.failure)
                 .where(outbox.c.failed_at.is_not(None), outbox.c.delivered_at.is_(None))
                 .order_by(outbox.c.failed_at, outbox.c.key))
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [FailedNotice(key=r.key, dossier_id=r.dossier_id, kind=r.kind, recipient=r.recipient, due=r.due,
                             created_at=r.created_at, failed_at=r.failed_at, attempts=int(r.attempts or 0),
                             failure=r.failure or "") for r in rows]


    # --- the directory of people

    async def put_person(self, person: PersonRow) -> None:
        """See `JournalStore.put_person`."""
        values = {"email": person.email, "grants": [{"role": r, "call_id": c} for r, c in person.grants],
                  "issuer": person.issuer, "subject": person.subject, "siret": person.siret,
                  "updated_at": func.now()}
        try:
            async with self.engine.begin() as conn:
                await conn.execute(insert(people).values(name=person.name, **values)
                                   .on_conflict_do_update(index_elements=["name"], set_=values))
        except IntegrityError as exc:
            what = "cette identité OpenID" if "people_identity" in str(exc.orig) else f"l’adresse {person.email}"
            raise PersonConflict(f"{what} est déjà celle d’une autre personne de l’annuaire") from None

    async def person(self, name: str) -> PersonRow | None:
        """See `JournalStore.person`."""
        return await self._one_person(people.c.name == name)

    async def person_by_identity(self, issuer: str, subject: str) -> PersonRow | None:
        """See `JournalStore.person_by_identity`."""
        return await self._one_person((people.c.issuer == issuer) & (people.c.subject == subject))

    async def person_by_email(self, email: str) -> PersonRow | None:
        """See `JournalStore.person_by_email`."""
        return await self._one_person(people.c.email == email)

    async def _one_person(self, where: Any) -> PersonRow | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(*PERSON_COLUMNS).where(where))).first()
        return _person(row) if row is not None else None

    async def people(self) -> list[PersonRow]:
        """See `JournalStore.people`."""
        async with self.engine.connect() as conn:
            return [_person(r) for r in await conn.execute(select(*PERSON_COLUMNS).order_by(people.c.name))]

    async def remove_person(self, name: str) -> bool:
        """See `JournalStore.remove_person` (tokens and invitations go by the foreign keys' cascade)."""
        async with self.engine.begin() as conn:
            result = await conn.execute(delete(people).where(people.c.name == name))
        return bool(result.rowcount)

    # --- personal access tokens

    async def add_token(self, token: TokenRow) -> None:
        """See `JournalStore.add_token`."""
        try:
            async with self.engine.begin() as conn:
                await conn.execute(tokens.insert().values(
                    id=token.id, name=token.name, role=token.role, digest=token.digest, created_at=token.created_at,
                    expires_at=token.expires_at, revoked_at=token.revoked_at, label=token.label))
        except IntegrityError:
            raise StoreError(f"jeton {token.id} refusé : personne inconnue « {token.name} » ou jeton déjà "
                             "enregistré") from None

    async def token_by_digest(self, digest: str) -> TokenRow | None:
        """See `JournalStore.token_by_digest`."""
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(*TOKEN_COLUMNS).where(tokens.c.digest == digest))).first()
        return TokenRow(**row._mapping) if row is not None else None

    async def tokens(self, name: str | None = None) -> list[TokenRow]:
        """See `JournalStore.tokens`."""
        query = select(*TOKEN_COLUMNS).order_by(tokens.c.created_at, tokens.c.id)
        if name is not None:
            query = query.where(tokens.c.name == name)
        async with self.engine.connect() as conn:
            return [TokenRow(**r._mapping) for r in await conn.execute(query)]

    async def revoke_token(self, token_id: str, at: datetime) -> bool:
        """See `JournalStore.revoke_token`."""
        async with self.engine.begin() as conn:
            result = await conn.execute(update(tokens).where(tokens.c.id == token_id, tokens.c.revoked_at.is_(None))
                                        .values(revoked_at=at))
        return bool(result.rowcount)

    # --- invitations

    async def add_invitation(self, invitation: InvitationRow) -> None:
        """See `JournalStore.add_invitation`."""
        try:
            async with self.engine.begin() as conn:
                await conn.execute(invitations.insert().values(
                    id=invitation.id, name=invitation.name, digest=invitation.digest,
                    created_at=invitation.created_at, expires_at=invitation.expires_at, used_at=invitation.used_at))
        except IntegrityError:
            raise StoreError(f"invitation {invitation.id} refusée : personne inconnue « {invitation.name} » ou "
                             "invitation déjà enregistrée") from None

    async def use_invitation(self, digest: str, now: datetime) -> InvitationRow | None:
        """See `JournalStore.use_invitation`: one UPDATE … RETURNING, so two concurrent uses cannot
        both succeed."""
        async with self.engine.begin() as conn:
            row = (await conn.execute(
                update(invitations)
                .where(invitations.c.digest == digest, invitations.c.used_at.is_(None), invitations.c.expires_at > now)
                .values(used_at=now).returning(*INVITATION_COLUMNS)
            )).first()
        return InvitationRow(**row._mapping) if row is not None else None


async def _put(conn: AsyncConnection, entry: OutboxEntry) -> None:
    """Put a notice in the outbox unless it is there already."""
    await conn.execute(
        insert(outbox)
        .values(key=entry.key, dossier_id=entry.dossier_id, kind=entry.kind, recipient=entry.recipient,
                key_id=entry.key_id, sealed=entry.sealed, due=entry.due)
        .on_conflict_do_nothing(index_elements=["key"])
    )


PERSON_COLUMNS = [people.c.name, people.c.email, people.c.grants, people.c.issuer, people.c.subject, people.c.siret]
TOKEN_COLUMNS = [tokens.c.id, tokens.c.name, tokens.c.role, tokens.c.digest, tokens.c.created_at, tokens.c.expires_at,
                 tokens.c.revoked_at, tokens.c.label]
INVITATION_COLUMNS = [invitations.c.id, invitations.c.name, invitations.c.digest, invitations.c.created_at,
                      invitations.c.expires_at, invitations.c.used_at]


def _dossier(r: Row[Any]) -> DossierRow:
    values = dict(r._mapping)
    return DossierRow(**values | {"reviewers": tuple(values["reviewers"] or ())})


def _person(r: Row[Any]) -> PersonRow:
    return PersonRow(name=r.name, email=r.email, grants=tuple((g["role"], g.get("call_id")) for g in r.grants),
                     issuer=r.issuer, subject=r.subject, siret=r.siret)


_ANCHORS = select(anchors.c.day, anchors.c.gseq, anchors.c.ghash).order_by(anchors.c.day)


def _event(r: Row[Any]) -> StoredEvent:
    return StoredEvent(
        dossier_id=r.dossier_id, seq=int(r.seq), type=r.type, actor=r.actor, occurred_at=r.occurred_at,
        recorded_at=r.recorded_at, workflow_id=r.workflow_id, key_id=r.key_id,
        sealed=bytes(r.sealed) if r.sealed is not None else None, payload=r.payload, hash=bytes(r.hash),
        gseq=int(r.gseq), ghash=bytes(r.ghash),
    )


def _read(r: Row[Any]) -> StoredRead:
    return StoredRead(
        id=int(r.id), dossier_id=r.dossier_id, at=r.at, actor=r.actor, what=r.what, via=r.via,
        granted=bool(r.granted), reason=r.reason, recorded_at=r.recorded_at, hash=bytes(r.hash),
        gseq=int(r.gseq), ghash=bytes(r.ghash),
    )


def _anchors(rows: Any) -> list[Anchor]:
    return [Anchor(day=r.day, gseq=int(r.gseq), ghash=bytes(r.ghash)) for r in rows]


if TYPE_CHECKING:  # mypy checks that the class keeps to the port
    _conforms: JournalStore = PostgresStore(create_engine("postgresql://"))
