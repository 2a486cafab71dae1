"""How the command line shows what the use cases return: text for people (Paris time, French) and
JSON for scripts. Nothing is decided here: every view arrives decided."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from amiflow.catalogue import CallSet
from amiflow.services.views import (
    CallView,
    CommandSpec,
    DossierPage,
    DossierView,
    HistoryView,
    TimelineEntry,
    TimelineView,
)
from domain.calendar import PARIS
from domain.calls import Call, Phase
from domain.deadlines import Deadline
from domain.errors import CallDefinitionError
from domain.schemes import Scheme
from domain.state import DeadlineKind

Echo = Callable[[str], Any]



def paris(instant: datetime) -> str:
    """An instant in Paris time with its offset, to the minute: 2026-06-05T00:00+02:00."""
    return instant.astimezone(PARIS).isoformat(timespec="minutes")


def utc(instant: datetime) -> str:
    """An instant in UTC, to the minute: 2026-06-04T22:00Z."""
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ")


def dump(doc: Any) -> str:
    """JSON for scripts: UTF-8 as is, indented."""
    return json.dumps(doc, ensure_ascii=False, indent=2)


def _at(instant: datetime | None) -> str | None:
    return paris(instant) if instant else None


# --- calls and schemes ---------------------------------------------------------------------


def phase_json(phase: Phase) -> dict[str, Any]:
    return {
        "id": phase.id, "kind": phase.kind.value, "label": phase.label,
        "opens_at": paris(phase.opens_at), "opens_at_utc": utc(phase.opens_at),
        "opens_assumed": phase.opens_assumed is not None, "opens_assumption": phase.opens_assumed,
        "closes_at": paris(phase.closes_at), "closes_at_utc": utc(phase.closes_at),
        "closes_assumed": phase.closes_assumed is not None, "closes_assumption": phase.closes_assumed,
        "closes_source": phase.closes_source, "holder_types": [t.value for t in phase.holder_types],
        "review_mode": phase.review_mode.value,
    }


def call_json(call: Call, file: str) -> dict[str, Any]:
    return {
        "id": call.id, "file": file, "title": call.title, "region": call.region, "owner": call.owner,
        "contact": call.contact, "phases": [phase_json(p) for p in call.phases],
        "themes": [t.model_dump() for t in call.themes], "sections": [s.model_dump() for s in call.sections],
        "criteria": [c.model_dump() for c in call.criteria], "score_max": call.score_max,
        "reminder_days": list(call.reminder_days),
        "follow_up": {"charter": call.follow_up.charter, "report_period_months": call.follow_up.report_period_months,
                      "duration_months": call.follow_up.duration_months,
                      "assumed": call.follow_up.assumed is not None, "assumption": call.follow_up.assumed},
        "confidentiality": call.confidentiality, "staff": list(call.staff),
    }


def refused_json(error: CallDefinitionError) -> dict[str, Any]:
    value = error.value if isinstance(error.value, str | int | float | bool | None) else repr(error.value)
    return {"file": error.source, "path": error.path, "value": value, "error": error.message}


def calls(found: CallSet, echo: Echo, as_json: bool) -> None:
    if as_json:
        echo(dump({"calls": [call_json(c, found.files[c.id]) for c in found.calls],
                   "refused": [refused_json(e) for e in found.refused]}))
        return
    for call in found.calls:
        echo(f"{call.id} — {call.region} — {call.owner}\n  {call.title}")
        for phase in call.phases:
            echo(f"  • {phase.label} [{phase.id}] — {phase.review_mode.label}")
            echo(f"      ouverture : {paris(phase.opens_at)}  ({utc(phase.opens_at)})"
                 + ("  [date supposée]" if phase.opens_assumed else ""))
            echo(f"      clôture   : {paris(phase.closes_at)}  ({utc(phase.closes_at)})"
                 + ("  [date supposée]" if phase.closes_assumed else ""))
            echo("      porteurs  : " + ", ".join(t.label for t in phase.holder_types))
        if call.themes:
            echo("  thèmes : " + " ; ".join(t.label for t in call.themes))
        echo("")
    if found.refused:
        echo("Appels refusés (non chargés) :")
        for error in found.refused:
            echo(f"  ✗ {error.message}")
    if any(p.opens_assumed or p.closes_assumed for c in found.calls for p in c.phases):
        echo("[date supposée] : la source ne donne pas cette date ; le fichier dit pourquoi "
             "elle a été retenue (amiflow calls list --json : *_assumption).")


def call_views(found: list[CallView], echo: Echo, as_json: bool) -> None:
    """The calls as the API serves them (through `--api`)."""
    if as_json:
        echo(dump({"calls": [c.model_dump(mode="json") for c in found]}))
        return
    for call in found:
        echo(f"{call.id}\n  {call.title}")
        for phase in call.phases:
            echo(f"  • {phase.label} [{phase.id}]")
            echo(f"      ouverture : {paris(phase.opens_at)}  ({utc(phase.opens_at)})")
            echo(f"      clôture   : {paris(phase.closes_at)}  ({utc(phase.closes_at)})")
        echo("")


def schemes(found: tuple[Scheme, ...], echo: Echo, as_json: bool) -> None:
    if as_json:
        echo(dump({"schemes": [s.model_dump(mode="json") for s in found]}))
        return
    for s in found:
        where = ", ".join(s.regions) if s.regions else "tout territoire"
        echo(f"{s.id} — {s.name}\n    {s.owner} ; enveloppe : {s.envelope} ; territoire : {where}")
        echo("    besoins : " + ", ".join(n.label for n in s.needs)
             + " ; porteurs : " + ", ".join(t.label for t in s.holder_types))


# --- dossiers ------------------------------------------------------------------------------


def deadline_json(d: Deadline) -> dict[str, Any]:
    return {"kind": d.kind.value, "subject": d.subject.value, "at": paris(d.at), "at_utc": utc(d.at),
            "due": paris(d.due), "days_before": d.days_before, "period": d.period, "overdue": d.overdue}


def deadline_text(d: Deadline) -> str:
    """`rappel J-30 : rapport de suivi attendu (période 2)`, in French."""
    what = d.subject.label
    if d.period:
        what += f" (période {d.period})"
    if d.kind is DeadlineKind.REMINDER:
        what = f"rappel J-{d.days_before} : {what} le {paris(d.due)}"
    return what + (" (échue)" if d.overdue else "")


def dossier(view: DossierView, echo: Echo, as_json: bool) -> None:
    state = view.state
    if as_json:
        echo(dump({
            "dossier_id": view.dossier_id, "call_id": view.call_id, "phase_id": view.phase_id,
            "holder": view.holder, "status": view.status.value, "status_label": view.status.label,
            "version": view.version, "submitted_at": _at(view.submitted_at),
            "phase_closes_at": _at(view.phase_closes_at), "deadlines": [deadline_json(d) for d in view.deadlines],
            "deadlines_hidden": view.deadlines_hidden, "content_granted": view.content_granted,
            "reason": view.reason, "as_of": _at(view.as_of), "state": state.model_dump(mode="json", exclude={"call"}),
        }))
        return
    echo(f"{view.dossier_id} — {view.status.label} (version {view.version})"
         + (f" — état au {paris(view.as_of)}, rejoué depuis le journal" if view.as_of else ""))
    if view.call_title:
        echo(f"  appel   : {view.call_title}")
    if view.phase_closes_at:
        echo(f"  phase   : {view.phase_id} — clôture {paris(view.phase_closes_at)}")
    echo(f"  porteur : {view.holder}" + (f" ({state.content.holder_name})" if state.content and view.content_granted
                                        else ""))
    if view.submitted_at:
        echo(f"  déposé  : {paris(view.submitted_at)}")
    for d in view.deadlines:
        echo(f"  attend  : {paris(d.at)}  {deadline_text(d)}")
    if view.deadlines_hidden:
        echo(f"  … et {view.deadlines_hidden} échéance(s) plus lointaine(s) : --all pour toutes.")
    if not view.content_granted:
        echo(f"  contenu : non communiqué ({view.reason})")
        return
    if state.content:
        for section, text in state.content.sections.items():
            echo(f"  [{section}] {text}")
    for ref in state.documents:
        echo(f"  document : {ref.id}  {ref.name}  {ref.size} o  sha256 {ref.sha256[:16]}…")


def _timeline_text(entries: list[TimelineEntry], echo: Echo) -> None:
    for x in entries:
        if x.kind == "event":
            echo(f"{x.seq:>4}  {paris(x.at)}  {x.actor:<24} {x.type}")
        else:
            echo(f"   ·  {paris(x.at)}  {x.actor:<24} lecture {x.what} ({x.via}) "
                 f"{'accordée' if x.granted else 'REFUSÉE'} — {x.reason}")


def history(view: HistoryView, echo: Echo, as_json: bool) -> None:
    if as_json:
        echo(dump({"dossier_id": view.dossier_id, "content_granted": view.content_granted,
                   "events": [{"seq": e.seq, "type": e.type, "actor": e.actor, "at": paris(e.at), "at_utc": utc(e.at),
                               **({"event": e.body} if e.body is not None else {})} for e in view.events],
                   "reads": [{"at": paris(r.at), "at_utc": utc(r.at), "actor": r.actor, "what": r.what, "via": r.via,
                              "granted": r.granted, "reason": r.reason} for r in view.reads]}))
        return
    entries = [TimelineEntry(kind="event", at=e.at, actor=e.actor, seq=e.seq, type=e.type) for e in view.events]
    entries += [TimelineEntry(kind="read", **r.model_dump()) for r in view.reads]
    _timeline_text(sorted(entries, key=lambda x: x.at), echo)


def timeline(view: TimelineView, echo: Echo, as_json: bool) -> None:
    if as_json:
        out = []
        for x in view.entries:
            common = {"kind": x.kind, "at": paris(x.at), "at_utc": utc(x.at), "actor": x.actor}
            extra = {"seq": x.seq, "type": x.type} if x.kind == "event" else {
                "what": x.what, "via": x.via, "granted": x.granted, "reason": x.reason}
            out.append(common | extra)
        echo(dump({"dossier_id": view.dossier_id, "entries": out}))
        return
    _timeline_text(view.entries, echo)


def dossiers(page: DossierPage, echo: Echo, as_json: bool) -> None:
    if as_json:
        rows = [{**{k: (paris(v) if isinstance(v, datetime) else v) for k, v in i.model_dump().items()},
                 "status": i.status.value, "status_label": i.status.label} for i in page.items]
        echo(dump({"dossiers": rows, "next": page.next}))
        return
    for i in page.items:
        nxt = f"{paris(i.next_deadline)} {i.next_deadline_kind}" if i.next_deadline else "—"
        echo(f"{i.dossier_id:<48} {i.status.label:<28} {i.phase_id:<16} {nxt}")
    if not page.items:
        echo("Aucun dossier.")
    if page.next:
        echo(f"… suite : --after {page.next}")



def json_line(doc: Any) -> str:
    """One JSON line (anchors, as kept elsewhere)."""
    return json.dumps(doc) + "\n"


def command_specs(specs: list[CommandSpec], echo: Echo, for_person: bool) -> None:
    """The commands a person may give (or every command), with their options."""
    echo("Commandes possibles maintenant pour cette personne :" if for_person else
         "Commandes (avec --as ROLE:NOM et l’identifiant du dossier, seulement celles possibles maintenant) :")
    if not specs:
        echo("  aucune dans l’état actuel du dossier.")
    for spec in specs:
        echo(f"  {spec.name} — {spec.label}")
        for o in spec.options:
            option = f"--{o.name} {o.kind.upper()}"
            echo(f"      {option:<26} {o.help}{'' if o.required else ' (facultatif)'}")
