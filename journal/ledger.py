"""The ledger: how the journal's entries are chained, and how to verify them. Standard library only,
so that this very file, copied into an exported bundle, verifies it on any machine with Python 3.11
and no database (`python verify.py BUNDLE`).

Every stored entry — an event of a dossier, or an entry of the read log — has:
- `hash`: for an event, SHA-256 of the previous event's `hash` in the same dossier (32 zero bytes for
  the first) followed by the event's canonical bytes; for a read, SHA-256 of 32 zero bytes and the
  read's canonical bytes;
- `gseq`, `ghash`: its place in one global chain over all entries, `ghash = SHA-256(previous ghash +
  tag + hash)` where `tag = SHA-256(dossier id)`, so that removing a whole dossier, or the last
  entries, is detected too, and a bundle of one dossier knows which links of the chain are its own.
Canonical bytes are computed over what is stored — the ciphertext of an event, never its clear text —
so destroying a dossier's key at the end of its retention leaves the chain verifiable.

Anyone able to write the database can recompute the chains after tampering; the daily anchors (the
global head at the end of each day), exported to a file kept elsewhere, are what detects that.
"""

from __future__ import annotations

import base64
import hashlib
import json
import sys
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC
from pathlib import Path
from typing import Any

GENESIS = bytes(32)


def event_entry(row: Mapping[str, Any]) -> bytes:
    """The canonical bytes of a stored event: its clear columns and its sealed bytes (base64)."""
    return _canonical(["event", row["dossier_id"], int(row["seq"]), row["type"], row["actor"],
                       instant_text(row["occurred_at"]), row.get("key_id"), b64_text(row.get("sealed")),
                       json_text(row.get("payload"))])


def read_entry(row: Mapping[str, Any]) -> bytes:
    """The canonical bytes of an entry of the read log."""
    return _canonical(["read", row["dossier_id"], instant_text(row["at"]), row["actor"], row["what"], row["via"],
                       bool(row["granted"]), row["reason"]])


def link(previous: bytes, entry: bytes) -> bytes:
    """One link of a chain: SHA-256 of the previous hash and the entry's bytes."""
    return hashlib.sha256(previous + entry).digest()


def tag(dossier_id: str) -> bytes:
    """What the global chain binds of the dossier an entry belongs to (its id, hashed)."""
    return hashlib.sha256(dossier_id.encode()).digest()


def global_link(previous: bytes, dossier_id: str | bytes, entry_hash: bytes) -> bytes:
    """One link of the global chain: the previous `ghash`, the entry's dossier tag, its `hash`."""
    marker = tag(dossier_id) if isinstance(dossier_id, str) else dossier_id
    return link(previous, marker + entry_hash)


@dataclass(frozen=True)
class Break:
    """A broken link: where (dossier, seq, global position), what kind, and a sentence for a person."""

    kind: str  # changed, deleted, inserted, reordered, truncated, missing_dossier, anchor
    dossier_id: str | None
    seq: int | None
    gseq: int | None
    detail: str


def verify(events: Iterable[Mapping[str, Any]], reads: Iterable[Mapping[str, Any]] = (),
           anchors: Iterable[Mapping[str, Any]] = (), listed: Mapping[str, int] | None = None,
           chain: Iterable[Mapping[str, Any]] = (), whole: bool = True,
           span: tuple[int, int] | None = None) -> list[Break]:
    """Every broken link, first ones first.

    `events` and `reads` are stored rows (hashes as hex, sealed bytes as base64 or bytes); `anchors`
    (`gseq`, `ghash`) the daily heads; `listed` the dossiers the projections know, with the number of
    events they counted (so a deleted last event is named); `chain` extra
    (`gseq`, `tag`, `hash`, `ghash`) rows of the global chain around the dossier, for one dossier or a
    bundle. With `whole`, the entries are the whole journal, so a gap in the global chain is a
    deletion; otherwise `span` (first, last) is the stretch of the chain that must be there whole.
    """
    breaks: list[Break] = []
    by_dossier: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    chain = list(chain)
    entries: dict[int, tuple[bytes, bytes, bytes, str | None, int | None]] = {}  # gseq → tag, hash, ghash, id, seq
    for row in events:
        by_dossier[row["dossier_id"]].append(row)
    for dossier, rows in sorted(by_dossier.items()):
        rows.sort(key=lambda r: int(r["seq"]))
        previous = GENESIS
        expected_seq = 1
        for row in rows:
            seq = int(row["seq"])
            stored = _bytes(row["hash"])
            if seq > expected_seq:
                breaks.append(Break("deleted", dossier, expected_seq, _gseq(row),
                                    f"{dossier} : événement(s) {expected_seq}–{seq - 1} absent(s) du journal "
                                    f"(supprimés)"))
            elif seq < expected_seq:
                breaks.append(Break("inserted", dossier, seq, _gseq(row), f"{dossier} : événement {seq} en double"))
            if link(previous, event_entry(row)) != stored:
                kind = _guess(rows, row)
                breaks.append(Break(kind, dossier, seq, _gseq(row), _say(kind, dossier, seq)))
            previous, expected_seq = stored, max(expected_seq, seq + 1)
            if row.get("gseq") is not None:
                entries[int(row["gseq"])] = (tag(dossier), stored, _bytes(row["ghash"]), dossier, seq)
    reads_seen = list(reads)
    for row in reads_seen:
        stored = _bytes(row["hash"])
        if link(GENESIS, read_entry(row)) != stored:
            breaks.append(Break("changed", row["dossier_id"], None, _gseq(row),
                                f"{row['dossier_id']} : une lecture du journal des lectures a été modifiée "
                                f"(position {_gseq(row)})"))
        if row.get("gseq") is not None:
            entries[int(row["gseq"])] = (tag(row["dossier_id"]), stored, _bytes(row["ghash"]), row["dossier_id"], None)
    own = {tag(d) for d in by_dossier} | {tag(r["dossier_id"]) for r in reads_seen}
    for row in chain:
        g = int(row["gseq"])
        if g not in entries and _bytes(row["tag"]) in own:
            breaks.append(Break("deleted", None, None, g, f"la chaîne globale porte à la position {g} une entrée de "
                                "ce dossier absente des événements et des lectures : supprimée"))
        entries.setdefault(g, (_bytes(row["tag"]), _bytes(row["hash"]), _bytes(row["ghash"]), None, None))
    breaks += _global(entries, whole, span)
    for dossier, version in sorted((listed or {}).items()):
        kept = by_dossier.get(dossier, [])
        if not kept:
            breaks.append(Break("missing_dossier", dossier, 1, None,
                                f"{dossier} : connu des listes ({version} événement(s)) mais plus aucun "
                                f"événement au journal : supprimé"))
        elif int(kept[-1]["seq"]) < version:
            last = int(kept[-1]["seq"])
            breaks.append(Break("deleted", dossier, last + 1, None,
                                f"{dossier} : le journal s’arrête à l’événement {last}, les listes en comptent "
                                f"{version} : derniers événements supprimés"))
    top = max(entries, default=0)
    for anchor in anchors:
        g, head = int(anchor["gseq"]), _bytes(anchor["ghash"])
        if g > top and whole:
            breaks.append(Break("truncated", None, None, g, f"le journal s’arrête à la position {top}, mais "
                                f"l’ancre du {anchor.get('day', '?')} en atteste {g} : fin du journal supprimée"))
        elif g in entries and entries[g][2] != head:
            breaks.append(Break("anchor", entries[g][3], entries[g][4], g, f"la chaîne à la position {g} ne "
                                f"correspond plus à l’ancre du {anchor.get('day', '?')} : le journal a été "
                                f"réécrit avant cette date"))
    return sorted(breaks, key=lambda b: (b.gseq if b.gseq is not None else 1 << 62, b.seq or 0))


def _global(entries: dict[int, tuple[bytes, bytes, bytes, str | None, int | None]], whole: bool,
            span: tuple[int, int] | None = None) -> list[Break]:
    breaks: list[Break] = []
    if span is not None:
        missing = sorted(set(range(span[0], span[1] + 1)) - set(entries))
        if missing:
            breaks.append(Break("deleted", None, None, missing[0], f"positions {missing[0]}–{missing[-1]} absentes "
                                f"de la chaîne globale autour du dossier : entrées supprimées"))
    previous: bytes | None = GENESIS if whole else None
    last = 0
    for g in sorted(entries):
        marker, stored, ghash, dossier, seq = entries[g]
        if g != last + 1:
            if whole:
                after = f" (après {entries[last][3]} n° {entries[last][4]})" if last in entries else ""
                breaks.append(Break("deleted", None, None, last + 1,
                                    f"positions {last + 1}–{g - 1} absentes de la chaîne globale{after} : "
                                    f"entrées supprimées"))
            previous = None
        if previous is not None and global_link(previous, marker, stored) != ghash:
            breaks.append(Break("changed", dossier, seq, g, f"chaîne globale rompue à la position {g}"
                                + (f" ({dossier} n° {seq})" if dossier else "")))
        previous, last = ghash, g
    return breaks


def _guess(rows: list[Mapping[str, Any]], row: Mapping[str, Any]) -> str:
    """Changed bytes, or an intact event moved to another place: its hash still links from some other
    event's hash when given another `seq`."""
    stored = _bytes(row["hash"])
    if sum(_bytes(r["hash"]) == stored for r in rows) > 1:
        return "inserted"  # a copy of another event of the dossier
    starts = [GENESIS] + [_bytes(r["hash"]) for r in rows]
    seqs = {int(r["seq"]) for r in rows} | {len(rows) + 1}
    for s in seqs - {int(row["seq"])}:
        moved = event_entry({**row, "seq": s})
        if any(link(p, moved) == stored for p in starts):
            return "reordered"
    return "changed"


def _say(kind: str, dossier: str, seq: int) -> str:
    what = {"changed": "modifié (contenu, acteur, date ou type)", "reordered": "déplacé (ordre changé)",
            "inserted": "inséré"}.get(kind, kind)
    return f"{dossier} : l’événement {seq} a été {what} — son empreinte ne suit plus la précédente"


def _gseq(row: Mapping[str, Any]) -> int | None:
    return int(row["gseq"]) if row.get("gseq") is not None else None


def _canonical(values: list[Any]) -> bytes:
    return json.dumps(values, ensure_ascii=False, separators=(",", ":")).encode()


def instant_text(value: Any) -> str:
    """An instant as the chain hashes it: ISO 8601 in UTC to the microsecond."""
    if isinstance(value, str):
        return value
    return str(value.astimezone(UTC).isoformat(timespec="microseconds"))


def b64_text(value: Any) -> str | None:
    """Stored bytes as the chain hashes them: base64."""
    if value is None or isinstance(value, str):
        return value
    return base64.b64encode(bytes(value)).decode()


def json_text(value: Any) -> str | None:
    """A clear JSON payload (rows from before encryption) as the chain hashes it: sorted, compact."""
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def _bytes(value: Any) -> bytes:
    return bytes.fromhex(value) if isinstance(value, str) else bytes(value)


def read_bundle(folder: Path) -> dict[str, list[dict[str, Any]]]:
    """The JSON-lines files of an exported bundle."""
    out: dict[str, list[dict[str, Any]]] = {}
    for name in ("events", "reads", "chain", "anchors"):
        path = folder / f"{name}.jsonl"
        out[name] = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()] \
            if path.exists() else []
    return out


def verify_bundle(folder: Path, extra_anchors: Iterable[Mapping[str, Any]] = ()) -> list[Break]:
    """Verify an exported bundle: the dossier's chain, the stretch of the global chain around it
    (whole, with its own links all present), the anchors it reaches."""
    parts = read_bundle(folder)
    places = [int(r["gseq"]) for r in parts["chain"]]
    span = (min(places), max(places)) if places else None
    return verify(parts["events"], parts["reads"], [*parts["anchors"], *extra_anchors], chain=parts["chain"],
                  whole=False, span=span)


def main(argv: list[str]) -> int:
    """`python verify.py [BUNDLE]`: exit 0 when every link holds, 1 with the broken ones."""
    folder = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parent
    breaks = verify_bundle(folder)
    for b in breaks:
        print(json.dumps(asdict(b), ensure_ascii=False))
    events = len(read_bundle(folder)["events"])
    print(f"{'RUPTURE' if breaks else 'intègre'} : {events} événement(s) vérifié(s), {len(breaks)} rupture(s).")
    return 1 if breaks else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
