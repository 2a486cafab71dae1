"""What auditors run against the journal: verification of the chains, daily anchors, self-contained
bundles. The rules of the chains are in `journal/ledger.py` (standard library only, so that a bundle
verifies itself); this module reads and writes the journal's store around them."""

from __future__ import annotations

import json
import shutil
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from amiflow.services.errors import NotFound
from amiflow.vault import Vault
from domain import Actor, decide, replay
from domain.calendar import PARIS, end_of_day
from domain.commands import DestroyContent
from domain.errors import DomainError, InvalidCommand
from domain.retention import retention_ends, shred_verdict
from domain.state import Status
from domain.tabs import list_metadata
from journal import ledger
from journal.keys import DossierKeys, blind_index
from journal.sealing import append_events
from journal.store import Anchor, JournalStore, Projection, StoreError


async def verify_journal(store: JournalStore, dossier_id: str | None = None,
                         external_anchors: list[dict[str, Any]] | None = None) -> list[ledger.Break]:
    """Every broken link of the journal — or of one dossier and the stretch of the global chain around
    it, up to the anchor after its last entry — checked also against the journal's head, the anchors
    in the database and, if given, those kept elsewhere. Read in one snapshot, so that entries written
    meanwhile are not taken for holes."""
    snapshot = await store.ledger(dossier_id)
    marks = [{"day": str(a.day), "gseq": a.gseq, "ghash": a.ghash} for a in snapshot.anchors]
    marks += list(external_anchors or [])
    found = [vars(e) for e in snapshot.events]
    read_rows = [vars(r) for r in snapshot.reads]
    listed = snapshot.versions
    head_gseq, head_hash = snapshot.head
    if dossier_id is None:
        # The head is the last anchor of all: deleting the last entries leaves it pointing past them.
        marks.append({"day": "tête du journal", "gseq": head_gseq, "ghash": head_hash})
        return ledger.verify(found, read_rows, marks, listed)
    if not found and not listed:
        raise NotFound(f"Dossier inconnu du journal « {dossier_id} ».")
    places = [int(r["gseq"]) for r in found + read_rows]
    low, high = (min(places) - 1, max(places)) if places else (0, 0)
    # The stretch is at or below the snapshot's head: entries there were all committed when it was taken.
    top = _stretch_end(marks, high, head_gseq)
    chain = await _stretch(store, max(low, 1), top)
    return ledger.verify(found, read_rows, marks, listed, chain, whole=False, span=(max(low, 1), top))


def _stretch_end(marks: list[dict[str, Any]], last_entry: int, otherwise: int) -> int:
    """Where the chain around a dossier ends: the first anchor at or after its last entry, so that the
    stretch reaches something kept elsewhere; `otherwise` when no anchor is that recent yet."""
    later = [int(a["gseq"]) for a in marks if int(a["gseq"]) >= last_entry]
    return min(later) if later else otherwise


async def _stretch(store: JournalStore, first: int, last: int) -> list[dict[str, Any]]:
    """(gseq, tag, hash, ghash) of every entry of the global chain from `first` to `last`, whoever it
    belongs to (the tag is a hash of the dossier id: nothing of another dossier is read)."""
    return [{"gseq": c.gseq, "tag": ledger.tag(c.dossier_id).hex(), "hash": c.hash.hex(), "ghash": c.ghash.hex()}
            for c in await store.chain(first, last)]


async def anchor(store: JournalStore, today: date) -> list[dict[str, Any]]:
    """Record the anchor of every finished day (Paris) not anchored yet — the global head at the end of
    that day — and return every anchor, oldest first, ready to be written to a file kept elsewhere."""
    done = {a.day for a in await store.anchors()}
    first_entry = await store.first_recorded_at()
    if first_entry is not None:
        day = first_entry.astimezone(PARIS).date()
        while day < today:  # every finished day not anchored yet, whatever else the table holds
            if day not in done:
                end = end_of_day(day)
                head = await store.head_before(end)
                if head is not None:
                    await store.add_anchor(Anchor(day=day, gseq=head[0], ghash=head[1]))
            day += timedelta(days=1)
    return [{"day": str(a.day), "gseq": a.gseq, "ghash": a.ghash.hex()} for a in await store.anchors()]


def read_anchors(path: Path) -> list[dict[str, Any]]:
    """Anchors from a JSON-lines file (as `amiflow audit anchor --out` writes them)."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _event_json(row: dict[str, Any]) -> dict[str, Any]:
    """A stored event as a bundle keeps it: the very values the hashes were computed over."""
    return {"dossier_id": row["dossier_id"], "seq": row["seq"], "type": row["type"], "actor": row["actor"],
            "occurred_at": ledger.instant_text(row["occurred_at"]), "key_id": row["key_id"],
            "sealed": ledger.b64_text(row["sealed"]), "payload": ledger.json_text(row["payload"]),
            "hash": bytes(row["hash"]).hex(), "gseq": row["gseq"], "ghash": bytes(row["ghash"]).hex()}


def _read_json(row: dict[str, Any]) -> dict[str, Any]:
    return {"dossier_id": row["dossier_id"], "at": ledger.instant_text(row["at"]), "actor": row["actor"],
            "what": row["what"], "via": row["via"], "granted": row["granted"], "reason": row["reason"],
            "hash": bytes(row["hash"]).hex(), "gseq": row["gseq"], "ghash": bytes(row["ghash"]).hex()}


async def export(store: JournalStore, dossier_id: str, out: Path, today: date,
                 temporal_history: str | None = None) -> dict[str, Any]:
    """Write a self-contained bundle of one dossier into the folder `out`: its events and reads as
    stored, the global chain from its first entry to the latest anchor after its last, the anchors,
    the Temporal history while retained, a verifier and a README. Returns a summary."""
    marks = await anchor(store, today)
    found = [vars(e) for e in await store.events(dossier_id)]
    read_rows = [vars(r) for r in await store.reads(dossier_id)]
    if not found:
        raise NotFound(f"Dossier inconnu du journal « {dossier_id} ».")
    places = [int(r["gseq"]) for r in found + read_rows]
    low, high = min(places) - 1, max(places)
    chain = await _stretch(store, max(low, 1), _stretch_end(marks, high, high))
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
                                                        today=today.isoformat()), encoding="utf-8")
    return {"dossier_id": dossier_id, "out": str(out), "events": len(found), "reads": len(read_rows),
            "chain": len(chain), "anchors": len(marks), "temporal_history": temporal_history is not None}


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
- `verify.py` — le vérificateur (bibliothèque standard seulement ; c’est le module `journal/ledger.py`).

Règle des empreintes : `hash = SHA-256(hash précédent du dossier ‖ octets canoniques de l’événement)`,
`ghash = SHA-256(ghash précédent ‖ hash)`. Les octets canoniques sont calculés sur ce qui est stocké (le
chiffré), si bien que la destruction de la clé d’un dossier en fin de conservation laisse la chaîne
vérifiable.

The same in English: run `python verify.py .`; exit 0 means every link holds, 1 names the first broken one.
"""


async def shred(client: Any, store: JournalStore, keys: DossierKeys, vault: Vault, actor: Actor, now: datetime,
                dry_run: bool, only: str | None = None) -> list[dict[str, Any]]:
    """Destroy the content of every ended dossier whose retention has run out (or of `only`): the rules
    decide (final status, no legal hold, retention over); the destruction is journaled, then the
    dossier's keys and documents are destroyed. Its metadata and chains stay, and still verify. A run
    interrupted after journaling the destruction, or after destroying the keys, is finished by the next.
    `now` is an argument: the rules, not the clock, say when a retention ends."""
    from amiflow.dossiers import history

    if only is not None:
        one = await store.dossier(only)
        rows = [(one.dossier_id, one.status)] if one is not None else []
    else:
        rows = [(r.dossier_id, r.status) for r in await store.dossiers()]
    if only is not None and not rows:
        raise InvalidCommand(f"Dossier inconnu « {only} ».")
    report = []
    for ident, status in rows:
        if only is None and not Status(status).is_final:
            continue
        entry: dict[str, Any] = {"dossier_id": ident, "status": status}
        destroyed = await keys.destroyed(ident)
        if destroyed is not None:
            report.append({**entry, **_leftovers(vault, ident, destroyed, dry_run)})
            continue
        state = replay(await history(store, keys, ident))
        if state.content_destroyed_at is not None:  # journaled, then interrupted: finish the destruction
            if not dry_run:
                report.append({**entry, "outcome": "destroyed", "keys": await keys.destroy(ident),
                               "documents": vault.destroy(ident), "retention_ends": retention_ends(state),
                               "reason": "destruction achevée"})
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
            listed = list_metadata(after)  # the list keeps its metadata: the dossier stays in its tab
            written = await append_events(store, keys, ident, ident, state.version + 1, events, Projection(
                call_id=call.id, phase_id=state.phase_id, holder=state.holder, status=after.status.value,
                version=after.version, submitted_at=after.submitted_at, tab=listed.tab,
                holder_type=listed.holder_type, reviewers=listed.reviewers,
                territory_index=blind_index(keys.keyring, "territory", listed.territory) if listed.territory else None))
        except StoreError:
            written = 0
        if written != len(events):  # another event took that place first (a legal hold…): decide again later
            report.append({**entry, "outcome": "kept", "reason": "le dossier a changé pendant la destruction : "
                           "relancez audit shred", "retention_ends": retention_ends(state)})
            continue
        count = await keys.destroy(ident)
        files = vault.destroy(ident)
        report.append({**entry, "outcome": "destroyed", "keys": count, "documents": files,
                       "retention_ends": retention_ends(state), "reason": ""})
    return report


def _leftovers(vault: Vault, ident: str, destroyed: datetime, dry_run: bool) -> dict[str, Any]:
    """A dossier whose keys are destroyed: a run interrupted before the vault was emptied is finished."""
    said = f"contenu détruit le {destroyed:%Y-%m-%d}"
    files = 0 if dry_run else vault.destroy(ident)
    if files:
        return {"outcome": "destroyed", "keys": 0, "documents": files, "reason": f"destruction achevée ({said})"}
    return {"outcome": "already_destroyed", "reason": said}
