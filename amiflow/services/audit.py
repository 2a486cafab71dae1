"""Use cases of auditors: verify the chains, anchor them, export a dossier's bundle, cross-check
Temporal's history with the journal, replay a call under changed rules, and the end of retention.

Export, cross-check and what-if read a dossier's content (or hand it out): they need the auditor role
(`domain.access.may_audit`) and each writes a read entry, granted or refused."""

from __future__ import annotations

import contextlib
from datetime import date, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from amiflow import audit as ledger_io
from amiflow import dossiers as gateway
from amiflow.bootstrap import Runtime
from amiflow.catalogue import load_call
from amiflow.crosscheck import CrossCheck
from amiflow.crosscheck import crosscheck as replay_and_compare
from amiflow.logs import logger
from amiflow.services import dossiers as dossier_service
from amiflow.services.errors import NotFound, ReadRefused
from amiflow.services.principal import Principal
from amiflow.services.views import DossierPage
from domain.access import AuditOperation, may_audit
from domain.calendar import PARIS
from domain.errors import InvalidCommand
from domain.whatif import WhatIf
from domain.whatif import whatif as replay_under
from journal import ledger
from journal.keys import KeyDestroyed
from journal.store import ReadEntry


class VerifyReport(BaseModel):
    """What a verification found: `ok` when every link holds."""

    ok: bool
    checked: str
    breaks: list[dict[str, Any]]


class WhatIfReport(BaseModel):
    """Which dossiers of a call would have had another outcome under changed rules."""

    call: str
    rules: str
    dossiers: int
    differing: list[WhatIf]
    content_destroyed: list[str]


def _report(breaks: list[Any], checked: str) -> VerifyReport:
    from dataclasses import asdict

    return VerifyReport(ok=not breaks, checked=checked, breaks=[asdict(b) for b in breaks])


async def verify(rt: Runtime, dossier_id: str | None = None, anchors_file: Path | None = None,
                 who: Principal | None = None) -> VerifyReport:
    """Recompute the chains of the journal (or of one dossier) against its head and its anchors; for a
    person who signed in (`who`; not the operator on the server), auditors only."""
    if who is not None and not (decision := may_audit(who.actor, AuditOperation.VERIFY)).granted:
        raise ReadRefused(f"Refusé (audit verify) : {decision.reason}.")
    external = read_anchors(anchors_file) if anchors_file else None
    breaks = await ledger_io.verify_journal(rt.store, dossier_id, external)
    return _report(breaks, f"dossier {dossier_id}" if dossier_id else "tout le journal")


def verify_bundle(bundle: Path, anchors_file: Path | None = None) -> VerifyReport:
    """Verify an exported bundle, without any database."""
    if not (bundle / "events.jsonl").exists():
        raise InvalidCommand(f"{bundle} n’est pas un bundle amiflow (events.jsonl manquant).")
    external = read_anchors(anchors_file) if anchors_file else []
    try:
        breaks = ledger.verify_bundle(bundle, external)
        events = len(ledger.read_bundle(bundle)["events"])
    except (ValueError, KeyError, TypeError) as exc:  # a line that is not what export writes
        raise InvalidCommand(f"{bundle} : bundle illisible ({type(exc).__name__} : {exc}).") from None
    return _report(breaks, f"bundle {bundle}, {events} événement(s)")


def read_anchors(path: Path) -> list[dict[str, Any]]:
    """Anchors kept elsewhere (JSON lines, as `audit anchor --out` writes them)."""
    if not path.is_file():
        raise NotFound(f"Fichier d’ancres introuvable : {path}.")
    try:
        return ledger_io.read_anchors(path)
    except ValueError as exc:
        raise InvalidCommand(f"{path} : ancres illisibles ({exc}).") from None


async def anchor(rt: Runtime, today: date) -> list[dict[str, Any]]:
    """Anchor every finished day (Paris) not anchored yet; every anchor, oldest first."""
    return await ledger_io.anchor(rt.store, today)


def write_anchors(out: Path, marks: list[dict[str, Any]]) -> None:
    """Write anchors to a file kept elsewhere; its folder is created if needed."""
    import json

    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("".join(json.dumps(a) + "\n" for a in marks), encoding="utf-8")
    except OSError as exc:
        raise InvalidCommand(f"Impossible d’écrire {out} : {exc.strerror or exc}.") from None


async def _require_auditor(rt: Runtime, who: Principal, dossier_id: str, what: AuditOperation,
                           now: datetime) -> None:
    decision = may_audit(who.actor, what)
    await rt.store.record_read(ReadEntry(dossier_id=dossier_id, at=now, actor=str(who.actor), what=what.value,
                                         via=who.provenance, granted=decision.granted, reason=decision.reason))
    logger(dossier_id=dossier_id, actor=str(who.actor)).info("read", what=what.value, via=who.provenance,
                                                             granted=decision.granted)
    if not decision.granted:
        raise ReadRefused(f"Refusé ({what} de {dossier_id}) : {decision.reason}.")


async def _audited(rt: Runtime, who: Principal, dossier_id: str, what: AuditOperation, now: datetime) -> None:
    """Auditors only, whatever the dossier: whoever is not one is refused in the same words whether it
    exists or not (the attempt is logged on a dossier that exists); an auditor is told an unknown one."""
    exists = bool(await rt.store.events(dossier_id))
    decision = may_audit(who.actor, what)
    if not decision.granted and not exists:
        raise ReadRefused(f"Refusé ({what} de {dossier_id}) : {decision.reason}.")
    if not exists:
        raise NotFound(f"Dossier inconnu du journal « {dossier_id} ».")
    await _require_auditor(rt, who, dossier_id, what, now)


async def export(rt: Runtime, who: Principal, dossier_id: str, out: Path, now: datetime, today: date) -> dict[str, Any]:
    """Write a self-contained bundle of the dossier into `out` (a new folder)."""
    if out.exists():
        raise InvalidCommand(f"{out} existe déjà : choisissez un autre dossier de sortie.")
    await _audited(rt, who, dossier_id, AuditOperation.EXPORT, now)
    history = None
    if rt.client is not None:
        with contextlib.suppress(Exception):  # the workflow's history is gone once Temporal's retention has passed
            history = (await rt.client.get_workflow_handle(dossier_id).fetch_history()).to_json()
    return await ledger_io.export(rt.store, dossier_id, out, today, history)


async def auditor_listing(rt: Runtime, who: Principal, now: datetime, after: str | None = None,
                          limit: int = 50) -> DossierPage:
    """The dossiers an auditor opens, a page at a time; the auditors' pages are theirs alone."""
    if not (decision := may_audit(who.actor, AuditOperation.VERIFY)).granted:
        raise ReadRefused(f"Refusé (pages d’audit) : {decision.reason}.")
    return await dossier_service.listing(rt, now, after=after, limit=limit, who=who)


async def export_archive(rt: Runtime, who: Principal, dossier_id: str, now: datetime) -> tuple[str, bytes]:
    """The dossier's bundle packed as a tar.gz: its file name and its bytes (what a download answers)."""
    import io
    import tarfile
    import tempfile

    with tempfile.TemporaryDirectory(prefix="export-") as folder:
        out = Path(folder) / f"bundle-{dossier_id}"
        await export(rt, who, dossier_id, out, now, now.astimezone(PARIS).date())
        packed = io.BytesIO()
        with tarfile.open(fileobj=packed, mode="w:gz") as tar:
            tar.add(out, arcname=out.name)
    return f"{out.name}.tar.gz", packed.getvalue()


async def crosscheck(rt: Runtime, who: Principal, dossier_id: str, now: datetime) -> CrossCheck:
    """Replay the dossier's retained Temporal histories with today's code and compare with the journal."""
    await _audited(rt, who, dossier_id, AuditOperation.CROSSCHECK, now)
    return await replay_and_compare(rt.temporal(), rt.store, rt.keys, dossier_id)


async def whatif(rt: Runtime, who: Principal, call_id: str, rules: Path, now: datetime) -> WhatIfReport:
    """Replay every dossier of the call under a changed definition; nothing is written but the reads."""
    changed = load_call(rules)
    if changed.id != call_id:
        raise InvalidCommand(f"{rules} définit l’appel « {changed.id} », pas « {call_id} ».")
    rows = await rt.store.dossiers(call_id=call_id)
    if not may_audit(who.actor, AuditOperation.WHATIF).granted:
        for row in rows:  # a refused attempt at every dossier of the call is in their read logs
            with contextlib.suppress(ReadRefused):
                await _require_auditor(rt, who, row.dossier_id, AuditOperation.WHATIF, now)
        raise ReadRefused(f"Refusé (rejeu de l’appel {call_id}) : "
                          f"{may_audit(who.actor, AuditOperation.WHATIF).reason}.")
    results, destroyed = [], []
    for row in rows:
        try:
            events = await gateway.history(rt.store, rt.keys, row.dossier_id)
        except KeyDestroyed:  # past its retention: nothing left to replay
            destroyed.append(row.dossier_id)
            continue
        # It opens the content, and quotes it in refusals: a read of each dossier.
        await _require_auditor(rt, who, row.dossier_id, AuditOperation.WHATIF, now)
        results.append(replay_under(events, changed, now).model_copy(update={"dossier_id": row.dossier_id}))
    return WhatIfReport(call=call_id, rules=str(rules), dossiers=len(results),
                        differing=[r for r in results if r.differs], content_destroyed=destroyed)


async def shred(rt: Runtime, who: Principal, now: datetime, dry_run: bool,
                dossier_id: str | None = None) -> list[dict[str, Any]]:
    """End of retention: destroy the keys (so the content, everywhere) of ended dossiers whose retention
    is over and that are under no legal hold; the rules decide each, and say why."""
    if dossier_id is not None and await rt.store.dossier(dossier_id) is None:
        raise NotFound(f"Dossier inconnu « {dossier_id} ».")
    return await ledger_io.shred(rt.client, rt.store, rt.keys, rt.vault, who.actor, now, dry_run, dossier_id)
