"""What auditors run against the journal: verification of the chains, daily anchors, self-contained
bundles. The rules of the chains are in `amiflow/ledger.py` (standard library only, so that a bundle
verifies itself); this module reads and writes the database around them."""

from __future__ import annotations

import json
import shutil
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.exceptions import ApplicationError

from activities.contracts import AppendEvents
from activities.schema import anchors, dossiers, events, journal_head, reads
from amiflow import ledger
from amiflow.keys import DossierKeys
from amiflow.vault import Vault
from domain import Actor, decide, replay
from domain.calendar import PARIS, end_of_day
from domain.commands import DestroyContent
from domain.errors import DomainError, InvalidCommand
from domain.retention import retention_ends, shred_verdict
from domain.state import Status

EVENT_COLUMNS = [events.c.dossier_id, events.c.seq, events.c.type, events.c.actor, events.c.occurred_at,
                 events.c.key_id, events.c.sealed, events.c.payload, events.c.hash, events.c.gseq,
                 events.c.ghash]  # fmt: skip
READ_COLUMNS = [reads.c.dossier_id, reads.c.at, reads.c.actor, reads.c.what, reads.c.via, reads.c.granted,
                reads.c.reason, reads.c.hash, reads.c.gseq, reads.c.ghash]  # fmt: skip


async def verify_journal(engine: AsyncEngine, dossier_id: str | None = None,
                         external_anchors: list[dict[str, Any]] | None = None) -> list[ledger.Break]:  # fmt: skip
    """Every broken link of the journal — or of one dossier and the stretch of the global chain around
    it, up to the anchor after its last entry — checked also against the journal's head, the anchors
    in the database and, if given, those kept elsewhere. Read in one snapshot, so that entries written
    meanwhile are not taken for holes."""
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="REPEATABLE READ")
        await conn.begin()
        stored = [dict(r._mapping) for r in await conn.execute(select(anchors.c.day, anchors.c.gseq,
                                                                      anchors.c.ghash))]  # fmt: skip
        marks = [{**a, "day": str(a["day"])} for a in stored] + list(external_anchors or [])
        head = (await conn.execute(select(journal_head.c.gseq, journal_head.c.ghash))).one()
        if dossier_id is None:
            found = [dict(r._mapping) for r in await conn.execute(select(*EVENT_COLUMNS))]
            read_rows = [dict(r._mapping) for r in await conn.execute(select(*READ_COLUMNS))]
            listed = {r[0]: int(r[1]) for r in await conn.execute(select(dossiers.c.dossier_id, dossiers.c.version))}
            # The head is the last anchor of all: deleting the last entries leaves it pointing past them.
            marks.append({"day": "tête du journal", "gseq": int(head.gseq), "ghash": bytes(head.ghash)})
            return ledger.verify(found, read_rows, marks, listed)
        found = [dict(r._mapping) for r in await conn.execute(
            select(*EVENT_COLUMNS).where(events.c.dossier_id == dossier_id))]  # fmt: skip
        read_rows = [dict(r._mapping) for r in await conn.execute(
            select(*READ_COLUMNS).where(reads.c.dossier_id == dossier_id))]  # fmt: skip
        one = select(dossiers.c.dossier_id, dossiers.c.version).where(dossiers.c.dossier_id == dossier_id)
        listed = {r[0]: int(r[1]) for r in await conn.execute(one)}
        if not found and not listed:
            raise InvalidCommand(f"Dossier inconnu du journal « {dossier_id} ».")
        places = [int(r["gseq"]) for r in found + read_rows]
        low, high = (min(places) - 1, max(places)) if places else (0, 0)
        top = _stretch_end(marks, high, int(head.gseq))
        chain = await _stretch(conn, max(low, 1), top)
    return ledger.verify(found, read_rows, marks, listed, chain, whole=False, span=(max(low, 1), top))


def _stretch_end(marks: list[dict[str, Any]], last_entry: int, otherwise: int) -> int:
    """Where the chain around a dossier ends: the first anchor at or after its last entry, so that the
    stretch reaches something kept elsewhere; `otherwise` when no anchor is that recent yet."""
    later = [int(a["gseq"]) for a in marks if int(a["gseq"]) >= last_entry]
    return min(later) if later else otherwise


async def _stretch(conn: Any, first: int, last: int) -> list[dict[str, Any]]:
    """(gseq, tag, hash, ghash) of every entry of the global chain from `first` to `last`, whoever it
    belongs to (the tag is a hash of the dossier id: nothing of another dossier is read)."""
    out: list[dict[str, Any]] = []
    for table in (events, reads):
        rows = await conn.execute(select(table.c.gseq, table.c.dossier_id, table.c.hash, table.c.ghash)
                                  .where(table.c.gseq >= first, table.c.gseq <= last))  # fmt: skip
        out += [{"gseq": int(r.gseq), "tag": ledger.tag(r.dossier_id).hex(), "hash": bytes(r.hash).hex(),
                 "ghash": bytes(r.ghash).hex()} for r in rows]  # fmt: skip
    return sorted(out, key=lambda r: r["gseq"])


async def anchor(engine: AsyncEngine, today: date) -> list[dict[str, Any]]:
    """Record the anchor of every finished day (Paris) not anchored yet — the global head at the end of
    that day — and return every anchor, oldest first, ready to be written to a file kept elsewhere."""
    async with engine.begin() as conn:
        done = {r[0] for r in await conn.execute(select(anchors.c.day))}
        first_entry = await conn.scalar(select(func.min(events.c.recorded_at)))
        if first_entry is not None:
            day = first_entry.astimezone(PARIS).date()
            while day < today:  # every finished day not anchored yet, whatever else the table holds
                if day not in done:
                    end = end_of_day(day)
                    head = None
                    for table, column in ((events, events.c.recorded_at), (reads, reads.c.recorded_at)):
                        row = (await conn.execute(select(table.c.gseq, table.c.ghash).where(column < end)
                                                  .order_by(table.c.gseq.desc()).limit(1))).first()  # fmt: skip
                        if row is not None and (head is None or row.gseq > head.gseq):
                            head = row
                    if head is not None:
                        await conn.execute(insert(anchors).values(day=day, gseq=head.gseq, ghash=head.ghash)
                                           .on_conflict_do_nothing())  # fmt: skip
                day += timedelta(days=1)
        rows = await conn.execute(select(anchors.c.day, anchors.c.gseq, anchors.c.ghash).order_by(anchors.c.day))
        return [{"day": str(r.day), "gseq": int(r.gseq), "ghash": bytes(r.ghash).hex()} for r in rows]


def read_anchors(path: Path) -> list[dict[str, Any]]:
    """Anchors from a JSON-lines file (as `amiflow audit anchor --out` writes them)."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _event_json(row: dict[str, Any]) -> dict[str, Any]:
    """A stored event as a bundle keeps it: the very values the hashes were computed over."""
    return {"dossier_id": row["dossier_id"], "seq": row["seq"], "type": row["type"], "actor": row["actor"],
            "occurred_at": ledger.instant_text(row["occurred_at"]), "key_id": row["key_id"],
            "sealed": ledger.b64_text(row["sealed"]), "payload": ledger.json_text(row["payload"]),
            "hash": bytes(row["hash"]).hex(), "gseq": row["gseq"], "ghash": bytes(row["ghash"]).hex()}  # fmt: skip


def _read_json(row: dict[str, Any]) -> dict[str, Any]:
    return {"dossier_id": row["dossier_id"], "at": ledger.instant_text(row["at"]), "actor": row["actor"],
            "what": row["what"], "via": row["via"], "granted": row["granted"], "reason": row["reason"],
            "hash": bytes(row["hash"]).hex(), "gseq": row["gseq"], "ghash": bytes(row["ghash"]).hex()}  # fmt: skip


async def export(engine: AsyncEngine, dossier_id: str, out: Path, today: date,
                 temporal_history: str | None = None) -> dict[str, Any]:  # fmt: skip
    """Write a self-contained bundle of one dossier into the folder `out`: its events and reads as
    stored, the global chain from its first entry to the latest anchor after its last, the anchors,
    the Temporal history while retained, a verifier and a README. Returns a summary."""
    marks = await anchor(engine, today)
    async with engine.connect() as conn:
        found = [dict(r._mapping) for r in await conn.execute(
            select(*EVENT_COLUMNS).where(events.c.dossier_id == dossier_id).order_by(events.c.seq))]  # fmt: skip
        read_rows = [dict(r._mapping) for r in await conn.execute(
            select(*READ_COLUMNS).where(reads.c.dossier_id == dossier_id).order_by(reads.c.gseq))]  # fmt: skip
        if not found:
            raise InvalidCommand(f"Dossier inconnu du journal « {dossier_id} ».")
        places = [int(r["gseq"]) for r in found + read_rows]
        low, high = min(places) - 1, max(places)
        chain = await _stretch(conn, max(low, 1), _stretch_end(marks, high, high))
    if out.exists():
        raise InvalidCommand(f"{out} existe déjà : choisissez un autre dossier de sortie.")
    out.mkdir(parents=True)
    _lines(out / "events.jsonl", [_event_json(r) for r in found])
    _lines(out / "reads.jsonl", [_read_json(r) for r in read_rows])
    _lines(out / "chain.jsonl", sorted(chain, key=lambda r: r["gseq"]))
    _lines(out / "anchors.jsonl", marks)
    if temporal_history is not None:
        (out / "temporal-history.json").write_text(temporal_history, encoding="utf-8")
    shutil.copyfile(Path(ledger.__file__), out / "verify.py")
    (out / "README.md").write_text(BUNDLE_README.format(dossier=dossier_id, events=len(found), reads=len(read_rows),
                                                        today=today.isoformat()), encoding="utf-8")  # fmt: skip
    return {"dossier_id": dossier_id, "out": str(out), "events": len(found), "reads": len(read_rows),
            "chain": len(chain), "anchors": len(marks), "temporal_history": temporal_history is not None}  # fmt: skip


def _lines(path: Path, rows: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


BUNDLE_README = """# Dossier {dossier} — bundle d’audit amiflow (exporté le {today})

Ce dossier se vérifie seul, sans base de données ni amiflow : Python 3.11 suffit.

    python verify.py .

Code de sortie 0 : chaque maillon tient. 1 : la première rupture est nommée (dossier, numéro d’événement,
position dans la chaîne globale, nature : modifié, supprimé, inséré, déplacé).

Contenu :
- `events.jsonl` — les {events} événements du dossier tels qu’ils sont stockés : colonnes en clair (type,
  acteur, instant UTC), contenu chiffré (`sealed`, base64, clé `key_id`), empreinte `hash` chaînée à
  l’événement précédent, position `gseq` et empreinte `ghash` dans la chaîne globale ;
- `reads.jsonl` — les {reads} lectures du contenu (accordées ou refusées) : qui, quoi, quand, pourquoi ;
- `chain.jsonl` — les empreintes de la chaîne globale depuis le premier événement du dossier jusqu’à
  l’ancre suivant le dernier (empreintes seules : rien du contenu des autres dossiers) ;
- `anchors.jsonl` — les ancres quotidiennes (tête de la chaîne globale en fin de journée) ; comparez-les
  à la copie conservée ailleurs : une ancre différente signifie un journal réécrit ;
- `temporal-history.json` — l’historique Temporal du workflow s’il était encore conservé (charges chiffrées) ;
- `verify.py` — le vérificateur (bibliothèque standard seulement ; c’est le module `amiflow/ledger.py`).

Règle des empreintes : `hash = SHA-256(hash précédent du dossier ‖ octets canoniques de l’événement)`,
`ghash = SHA-256(ghash précédent ‖ hash)`. Les octets canoniques sont calculés sur ce qui est stocké (le
chiffré), si bien que la destruction de la clé d’un dossier en fin de conservation laisse la chaîne
vérifiable.

The same in English: run `python verify.py .`; exit 0 means every link holds, 1 names the first broken one.
"""


async def shred(client: Any, engine: AsyncEngine, keys: DossierKeys, vault: Vault, actor: Actor, now: datetime,
                dry_run: bool, only: str | None = None) -> list[dict[str, Any]]:  # fmt: skip
    """Destroy the content of every ended dossier whose retention has run out (or of `only`): the rules
    decide (final status, no legal hold, retention over); the destruction is journaled, then the
    dossier's keys and documents are destroyed. Its metadata and chains stay, and still verify.
    `now` is an argument: the rules, not the clock, say when a retention ends."""
    from activities.journal import JournalActivities
    from amiflow.dossiers import history

    async with engine.connect() as conn:
        query = select(dossiers.c.dossier_id, dossiers.c.status).order_by(dossiers.c.dossier_id)
        if only is not None:
            query = query.where(dossiers.c.dossier_id == only)
        rows = (await conn.execute(query)).all()
    if only is not None and not rows:
        raise InvalidCommand(f"Dossier inconnu « {only} ».")
    report = []
    for ident, status in rows:
        if only is None and not Status(status).is_final:
            continue
        entry: dict[str, Any] = {"dossier_id": ident, "status": status}
        destroyed = await keys.destroyed(ident)
        if destroyed is not None:
            said = f"contenu détruit le {destroyed:%Y-%m-%d}"
            report.append({**entry, "outcome": "already_destroyed", "reason": said})
            continue
        state = replay(await history(engine, keys, ident))
        if state.content_destroyed_at is not None:  # journaled, then interrupted: finish the destruction
            if not dry_run:
                report.append({**entry, "outcome": "destroyed", "keys": await keys.destroy(ident),
                               "documents": vault.destroy(ident), "retention_ends": retention_ends(state),
                               "reason": "destruction achevée"})  # fmt: skip
            continue
        outcome, reason = shred_verdict(state, now)  # the rules: ended, no legal hold, retention over
        events = []
        if outcome == "would_destroy":
            try:
                events = decide(state, DestroyContent(), actor, now)  # who may destroy: the decider's
            except DomainError as exc:
                outcome, reason = "kept", exc.message
        if outcome != "would_destroy":
            report.append({**entry, "outcome": "kept", "reason": reason, "retention_ends": retention_ends(state)})
            continue
        if dry_run:
            report.append({**entry, "outcome": "would_destroy", "retention_ends": retention_ends(state), "reason": ""})
            continue
        call = state.call
        assert call is not None
        after = replay(events, state)
        try:
            written = await JournalActivities(engine, keys).append(AppendEvents(
                dossier_id=ident, workflow_id=ident, first_seq=state.version + 1, events=events, call_id=call.id,
                phase_id=state.phase_id, holder=state.holder, status=after.status, version=after.version,
                submitted_at=after.submitted_at))  # fmt: skip
        except ApplicationError:
            written = 0
        if written != len(events):  # another event took that place first (a legal hold…): decide again later
            report.append({**entry, "outcome": "kept", "reason": "le dossier a changé pendant la destruction : "
                           "relancez audit shred", "retention_ends": retention_ends(state)})  # fmt: skip
            continue
        count = await keys.destroy(ident)
        files = vault.destroy(ident)
        report.append({**entry, "outcome": "destroyed", "keys": count, "documents": files,
                       "retention_ends": retention_ends(state), "reason": ""})  # fmt: skip
    return report
