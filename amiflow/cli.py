"""The `amiflow` command line. Exit 0 done, 1 refused or invalid input, 2 usage error."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from amiflow.catalogue import CallSet, load_calls, load_schemes
from domain.calendar import PARIS
from domain.calls import Call, Phase
from domain.errors import CallDefinitionError, DomainError
from domain.schemes import Scheme

app = typer.Typer(
    help="amiflow : le cycle de vie des dossiers des appels à manifestation d’intérêt (AMI).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
calls_app = typer.Typer(help="Les appels (AMI) définis dans deploy/calls.", no_args_is_help=True)
schemes_app = typer.Typer(help="Le catalogue des dispositifs de financement.", no_args_is_help=True)
app.add_typer(calls_app, name="calls")
app.add_typer(schemes_app, name="schemes")

PathsArg = Annotated[
    list[Path] | None,
    typer.Argument(help="Fichiers ou dossiers d’appels (par défaut : deploy/calls).", show_default=False),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Sortie JSON (pour les scripts).")]


def paris(instant: datetime) -> str:
    """An instant in Paris time with its offset, to the minute: 2026-06-05T00:00+02:00."""
    return instant.astimezone(PARIS).isoformat(timespec="minutes")


def utc(instant: datetime) -> str:
    """An instant in UTC, to the minute: 2026-06-04T22:00Z."""
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ")


def _phase_json(phase: Phase) -> dict[str, Any]:
    return {
        "id": phase.id,
        "kind": phase.kind.value,
        "label": phase.label,
        "opens_at": paris(phase.opens_at),
        "opens_at_utc": utc(phase.opens_at),
        "opens_assumed": phase.opens_assumed is not None,
        "opens_assumption": phase.opens_assumed,
        "closes_at": paris(phase.closes_at),
        "closes_at_utc": utc(phase.closes_at),
        "closes_assumed": phase.closes_assumed is not None,
        "closes_assumption": phase.closes_assumed,
        "closes_source": phase.closes_source,
        "holder_types": [t.value for t in phase.holder_types],
        "review_mode": phase.review_mode.value,
    }


def _call_json(call: Call, file: str) -> dict[str, Any]:
    return {
        "id": call.id,
        "file": file,
        "title": call.title,
        "region": call.region,
        "owner": call.owner,
        "contact": call.contact,
        "phases": [_phase_json(p) for p in call.phases],
        "themes": [t.model_dump() for t in call.themes],
        "sections": [s.model_dump() for s in call.sections],
        "criteria": [c.model_dump() for c in call.criteria],
        "score_max": call.score_max,
        "reminder_days": list(call.reminder_days),
        "follow_up": {
            "charter": call.follow_up.charter,
            "report_period_months": call.follow_up.report_period_months,
            "duration_months": call.follow_up.duration_months,
            "assumed": call.follow_up.assumed is not None,
            "assumption": call.follow_up.assumed,
        },
        "confidentiality": call.confidentiality,
    }


def _refused_json(error: CallDefinitionError) -> dict[str, Any]:
    value = error.value if isinstance(error.value, str | int | float | bool | None) else repr(error.value)
    return {"file": error.source, "path": error.path, "value": value, "error": error.message}


def _load(paths: list[Path] | None) -> CallSet:
    missing = [p for p in paths or () if not p.exists()]
    if missing:
        raise DomainError("Introuvable : " + ", ".join(str(p) for p in missing))
    found = load_calls(paths or ())
    if not found.calls and not found.refused:
        raise DomainError("Aucun fichier d’appel (*.yaml) trouvé.")
    return found


@calls_app.command("validate")
def calls_validate(paths: PathsArg = None) -> None:
    """Valide les fichiers d’appels ; code de sortie 1 si l’un d’eux est refusé."""
    found = _load(paths)
    for call in found.calls:
        typer.echo(f"valide   {found.files[call.id]} ({call.id})")
    for error in found.refused:
        typer.echo(f"REFUSÉ   {error.message}", err=True)
    if found.refused:
        raise typer.Exit(1)


@calls_app.command("list")
def calls_list(paths: PathsArg = None, as_json: JsonOpt = False) -> None:
    """Liste les appels, leurs phases (heure de Paris et UTC) et les fichiers refusés."""
    found = _load(paths)
    if as_json:
        doc = {
            "calls": [_call_json(c, found.files[c.id]) for c in found.calls],
            "refused": [_refused_json(e) for e in found.refused],
        }
        typer.echo(json.dumps(doc, ensure_ascii=False, indent=2))
        return
    for call in found.calls:
        typer.echo(f"{call.id} — {call.region} — {call.owner}")
        typer.echo(f"  {call.title}")
        for phase in call.phases:
            typer.echo(f"  • {phase.label} [{phase.id}] — {phase.review_mode.label}")
            typer.echo(f"      ouverture : {paris(phase.opens_at)}  ({utc(phase.opens_at)})"
                       + ("  [date supposée]" if phase.opens_assumed else ""))  # fmt: skip
            typer.echo(f"      clôture   : {paris(phase.closes_at)}  ({utc(phase.closes_at)})"
                       + ("  [date supposée]" if phase.closes_assumed else ""))  # fmt: skip
            typer.echo("      porteurs  : " + ", ".join(t.label for t in phase.holder_types))
        if call.themes:
            typer.echo("  thèmes : " + " ; ".join(t.label for t in call.themes))
        typer.echo()
    if found.refused:
        typer.echo("Appels refusés (non chargés) :")
        for error in found.refused:
            typer.echo(f"  ✗ {error.message}")
    assumed = any(p.opens_assumed or p.closes_assumed for c in found.calls for p in c.phases)
    if assumed:
        typer.echo("[date supposée] : la source ne donne pas cette date ; le fichier dit pourquoi "
                   "elle a été retenue (amiflow calls list --json : *_assumption).")  # fmt: skip


def _scheme_json(scheme: Scheme) -> dict[str, Any]:
    return scheme.model_dump(mode="json")


@schemes_app.command("list")
def schemes_list(as_json: JsonOpt = False) -> None:
    """Liste les dispositifs de financement (deploy/schemes.yaml)."""
    schemes = load_schemes()
    if as_json:
        typer.echo(json.dumps({"schemes": [_scheme_json(s) for s in schemes]}, ensure_ascii=False,
                              indent=2))  # fmt: skip
        return
    for s in schemes:
        where = ", ".join(s.regions) if s.regions else "tout territoire"
        typer.echo(f"{s.id} — {s.name}")
        typer.echo(f"    {s.owner} ; enveloppe : {s.envelope} ; territoire : {where}")
        typer.echo("    besoins : " + ", ".join(n.label for n in s.needs)
                   + " ; porteurs : " + ", ".join(t.label for t in s.holder_types))  # fmt: skip


def main() -> None:
    """Entry point: a refusal prints its reason on stderr and exits 1, without a traceback.

    Usage errors are click's: message on stderr, exit 2.
    """
    try:
        app()
    except DomainError as exc:
        typer.echo(f"amiflow : {exc.message}", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
