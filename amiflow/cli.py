"""The `amiflow` command line. Exit 0 done, 1 refused or invalid input, 2 usage error."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from amiflow.catalogue import CallSet, load_calls, load_schemes
from amiflow.settings import Settings, load_settings
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
dossier_app = typer.Typer(help="Les dossiers, sur la pile qui tourne (amiflow up).", no_args_is_help=True)
app.add_typer(calls_app, name="calls")
app.add_typer(schemes_app, name="schemes")
app.add_typer(dossier_app, name="dossier")
keys_app = typer.Typer(help="Les clés de chiffrement du dossier de données.", no_args_is_help=True)
codec_app = typer.Typer(help="Le serveur de décodage pour l’interface web de Temporal.", no_args_is_help=True)
audit_app = typer.Typer(help="Pour les auditeurs : vérifier le journal, l’exporter, le rejouer.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")
app.add_typer(keys_app, name="keys")
app.add_typer(codec_app, name="codec")

DataDirOpt = Annotated[
    Path | None,
    typer.Option("--data-dir", envvar="AMIFLOW_DATA_DIR",
                 help="Dossier de données de la pile (défaut .amiflow/)."),  # fmt: skip
]
AsOpt = Annotated[str, typer.Option("--as", help="Qui agit : ROLE:NOM, par exemple staff:amelie.")]
ReaderOpt = Annotated[str | None, typer.Option("--as", help="Qui lit : ROLE:NOM ; le contenu n’est montré qu’à qui "
                                                           "a le droit d’en connaître (sans --as : métadonnées).")]


@app.callback()
def _root(ctx: typer.Context, data_dir: DataDirOpt = None) -> None:
    """amiflow : le cycle de vie des dossiers des appels à manifestation d’intérêt (AMI)."""
    ctx.obj = load_settings(data_dir)

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
        "staff": list(call.staff),
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


# --- the running stack ---------------------------------------------------------------------


@app.command("up")
def up_command(
    ctx: typer.Context,
    workers: Annotated[int, typer.Option(help="Nombre de workers à lancer.", min=1, max=16)] = 1,
) -> None:
    """Démarre tout (Temporal, PostgreSQL, worker) dans le dossier de données ; Ctrl-C arrête tout."""
    from amiflow.logs import configure
    from amiflow.stack import up

    configure()
    raise typer.Exit(up(ctx.obj, workers=workers, echo=typer.echo))


@app.command("status")
def status_command(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Ce qui tourne dans le dossier de données : adresses et processus."""
    from amiflow.stack import status

    info = status(ctx.obj)
    if as_json:
        typer.echo(json.dumps(info, ensure_ascii=False, indent=2))
    elif not info["running"]:
        typer.echo(f"Rien ne tourne dans {info['data_dir']} (amiflow up pour démarrer).")
    else:
        typer.echo(f"Temporal      {info['temporal_address']}\nInterface web {info['ui_url']}\n"
                   f"PostgreSQL    {info['database_url']}\n"
                   f"Workers       {', '.join(map(str, info['worker_pids']))}")  # fmt: skip
    if not info["running"]:
        raise typer.Exit(1)


@dataclass
class Connected:
    """What a command talks to: Temporal, the journal, the keys and the vault of one stack."""

    settings: Settings
    client: Any
    engine: Any
    keys: Any
    vault: Any


def _connected(settings: Settings, work: Any, temporal: str = "required") -> Any:
    """Run `work(Connected)` against the stack of `settings`. `temporal`: "required", "optional" (the
    client is None if Temporal does not answer) or "none" — what only reads the journal runs years
    later, without Temporal."""
    import asyncio

    from amiflow.db import create_engine
    from amiflow.keys import DossierKeys, Keyring
    from amiflow.temporal import connect
    from amiflow.vault import Vault

    if not settings.database_url:
        raise DomainError(
            f"Aucune pile dans {settings.data_dir} : lancez `make run` (ou amiflow up), "
            "ou donnez AMIFLOW_TEMPORAL_ADDRESS et AMIFLOW_DATABASE_URL."
        )
    keyring = Keyring.open(settings.data_dir)

    async def run() -> Any:
        engine = create_engine(settings.database_url, pool_size=2)
        keys = DossierKeys(keyring, engine)
        try:
            client = None
            if temporal != "none":
                try:
                    client = await connect(settings.temporal_address, keys, settings.namespace)
                except RuntimeError as exc:
                    if temporal == "required":
                        raise DomainError(f"Temporal injoignable à {settings.temporal_address} ({exc}).") from None
            return await work(Connected(settings, client, engine, keys, Vault(settings.vault_dir, keys)))
        finally:
            await engine.dispose()

    return asyncio.run(run())


def _actor(text: str) -> Any:
    from domain.access import Actor

    return Actor.parse(text)


@dossier_app.command("submit")
def dossier_submit(
    ctx: typer.Context,
    call: Annotated[str, typer.Option("--call", help="Identifiant de l’appel.")],
    file: Annotated[Path, typer.Option("--file", help="Le dossier (YAML, voir deploy/examples/).")],
    actor: AsOpt,
) -> None:
    """Crée et dépose un dossier ; un second dépôt de la même référence retrouve le même dossier.

    La dernière ligne affichée est l’identifiant du dossier.
    """
    from amiflow import dossiers
    from amiflow.catalogue import load_dossier

    who = _actor(actor)
    prepared = load_dossier(file)
    if prepared.call != call:
        raise DomainError(f"{file} est un dossier pour l’appel « {prepared.call} », pas « {call} ».")
    settings: Settings = ctx.obj
    result = _connected(settings, lambda c: dossiers.submit(
        c.client, settings.task_queue, file, who, datetime.now(UTC)))  # fmt: skip
    typer.echo(f"Dossier {result.status.label} ({result.status.value}), version {result.version}.")
    typer.echo(result.dossier_id)


@dossier_app.command(
    "do", context_settings={"allow_extra_args": True, "ignore_unknown_options": True}
)
def dossier_do(
    ctx: typer.Context,
    dossier_id: Annotated[str, typer.Argument(help="Identifiant du dossier.")],
    command: Annotated[str, typer.Argument(help="La commande, par exemple acknowledge, withdraw, "
                                                "request-complement.")],  # fmt: skip
    actor: AsOpt,
    as_json: JsonOpt = False,
) -> None:
    """Donne une commande au dossier : `amiflow dossier do ID request-complement --pieces "Kbis"
    --due 2026-07-01 --as staff:amelie`. Une date seule vaut 00:00 (heure de Paris) ce jour-là."""
    from amiflow import dossiers

    options = _options(ctx.args)
    order = dossiers.build_command(command, options)
    who = _actor(actor)
    result = _connected(ctx.obj, lambda c: dossiers.send(c.client, dossier_id, order, who, c.engine, c.keys,
                                                         c.settings.task_queue))
    if as_json:
        typer.echo(result.model_dump_json(indent=2))
        return
    typer.echo(f"{result.dossier_id} : {result.status.label} ({result.status.value}), "
               f"version {result.version} — {', '.join(result.events)}")  # fmt: skip


def _options(args: list[str]) -> dict[str, str]:
    options: dict[str, str] = {}
    rest = list(args)
    while rest:
        key = rest.pop(0)
        if not key.startswith("--") or len(key) < 3:
            raise DomainError(f"Argument inattendu « {key} » : écrivez --option valeur.")
        name, eq, value = key[2:].partition("=")
        if not eq:
            if not rest or rest[0].startswith("--"):
                raise DomainError(f"--{name} attend une valeur.")
            value = rest.pop(0)
        options[name] = value
    return options


def _deadline_json(d: Any) -> dict[str, Any]:
    return {"kind": d.kind.value, "subject": d.subject.value, "at": paris(d.at), "at_utc": utc(d.at),
            "due": paris(d.due), "days_before": d.days_before, "period": d.period,
            "overdue": d.overdue}  # fmt: skip


@dossier_app.command("show")
def dossier_show(
    ctx: typer.Context,
    dossier_id: Annotated[str, typer.Argument(help="Identifiant du dossier.")],
    actor: ReaderOpt = None,
    as_json: JsonOpt = False,
    as_of: Annotated[str | None, typer.Option("--as-of", help="L’état à cet instant (AAAA-MM-JJTHH:MM, heure "
                                                               "de Paris), rejoué depuis le journal.")] = None,
) -> None:
    """L’état du dossier et les échéances qu’il attend, tel que la personne peut le lire.

    Le contenu n’est montré qu’à qui a le droit d’en connaître ; chaque lecture, accordée ou refusée,
    est inscrite au journal des lectures (amiflow dossier history).
    """
    from amiflow import dossiers
    from amiflow.reads import authorise
    from domain.access import SYSTEM
    from domain.deadlines import deadlines
    from domain.reading import ReadDecision, Reading, may_read, visible

    who = _actor(actor) if actor else None

    instant = dossiers.parse_instant(as_of) if as_of else None

    async def read(c: Connected) -> Any:
        state = await dossiers.state(c.client, c.engine, c.keys, dossier_id)
        past = await dossiers.state_as_of(c.engine, c.keys, dossier_id, instant) if instant else state
        if who is None:  # nobody named: the metadata `dossier list` shows anyway, nothing to log
            return past, state, ReadDecision(granted=False, reason="sans --as ROLE:NOM, métadonnées seulement")
        what = f"content@{utc(instant)}" if instant else None
        # Today's rules decide, for the past as for now: who may read the dossier reads its history.
        decision = await authorise(c.engine, state, who, Reading.CONTENT, "cli", datetime.now(UTC), what)
        return past, state, decision

    state, rights, decision = _connected(ctx.obj, read)
    if who is not None and not decision.granted and not may_read(rights, who, Reading.HISTORY).granted:
        raise DomainError(f"Lecture refusée ({dossier_id}) : {decision.reason}.")
    seen = visible(state, who or SYSTEM, rights)
    waiting = deadlines(state, state.call, instant or datetime.now(UTC)) if state.call else []
    if as_json:
        doc = {
            "dossier_id": state.id, "call_id": state.call.id if state.call else None,
            "phase_id": state.phase_id, "holder": state.holder, "status": state.status.value,
            "status_label": state.status.label, "version": state.version,
            "submitted_at": paris(state.submitted_at) if state.submitted_at else None,
            "phase_closes_at": paris(state.phase_closes_at) if state.phase_closes_at else None,
            "deadlines": [_deadline_json(d) for d in waiting],
            "content_granted": decision.granted, "reason": decision.reason,
            "as_of": paris(instant) if instant else None,
            "state": seen.model_dump(mode="json", exclude={"call"}),
        }  # fmt: skip
        typer.echo(json.dumps(doc, ensure_ascii=False, indent=2))
        return
    typer.echo(f"{state.id} — {state.status.label} (version {state.version})"
               + (f" — état au {paris(instant)}, rejoué depuis le journal" if instant else ""))
    if state.call:
        typer.echo(f"  appel   : {state.call.title}")
        if state.phase_closes_at:
            typer.echo(f"  phase   : {state.phase_id} — clôture {paris(state.phase_closes_at)}")
    typer.echo(f"  porteur : {state.holder}" + (f" ({seen.content.holder_name})" if seen.content else ""))
    if state.submitted_at:
        typer.echo(f"  déposé  : {paris(state.submitted_at)}")
    for d in waiting:
        what = f"rappel J-{d.days_before} de {d.subject.value}" if d.days_before else d.kind.value
        late = " (échue)" if d.overdue else ""
        typer.echo(f"  attend  : {paris(d.at)}  {what}{late}")
    if not decision.granted:
        typer.echo(f"  contenu : non communiqué ({decision.reason})")
        return
    if seen.content:
        for section, text in seen.content.sections.items():
            typer.echo(f"  [{section}] {text}")
    for doc_ref in seen.documents:
        typer.echo(f"  document: {doc_ref.id}  {doc_ref.name}  {doc_ref.size} o  sha256 {doc_ref.sha256[:16]}…")


@dossier_app.command("history")
def dossier_history(
    ctx: typer.Context,
    dossier_id: Annotated[str, typer.Argument(help="Identifiant du dossier.")],
    actor: ReaderOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """L’historique du dossier : qui a fait quoi et quand (heure de Paris), lectures comprises.

    Les métadonnées (statuts, instants, acteurs) sont lisibles par qui peut lire l’historique ; le
    contenu des événements (--json) seulement par qui peut lire le contenu.
    """
    from amiflow import dossiers
    from amiflow.reads import authorise, read_log
    from domain import replay
    from domain.reading import Reading, event_visible, may_read

    who = _actor(actor) if actor else None

    async def read(c: Connected) -> Any:
        events = await dossiers.history(c.engine, c.keys, dossier_id)
        state = replay(events)
        if who is None:  # nobody named: who did what and when, as `dossier list` shows metadata; no reads
            return events, state, None, []
        if not may_read(state, who, Reading.HISTORY).granted:
            await authorise(c.engine, state, who, Reading.HISTORY, "cli", datetime.now(UTC))
            return events, state, None, []
        decision = None
        if as_json:  # event bodies are content
            decision = await authorise(c.engine, state, who, Reading.CONTENT, "cli", datetime.now(UTC))
        return events, state, decision, await read_log(c.engine, dossier_id)

    events, state, decision, log = _connected(ctx.obj, read, temporal="none")
    allowed = may_read(state, who, Reading.HISTORY) if who is not None else None
    if allowed is not None and not allowed.granted:
        raise DomainError(f"Lecture refusée (historique de {dossier_id}) : {allowed.reason}.")
    if as_json:
        bodies = decision is not None and decision.granted and who is not None
        doc = {"dossier_id": dossier_id, "content_granted": bodies, "events": [
            {"seq": i, "type": e.type, "actor": _seen_actor(state, who, str(e.actor)), "at": paris(e.at),
             "at_utc": utc(e.at),
             **({"event": e.model_dump(mode="json", exclude={"call"})}
                if bodies and who is not None and event_visible(state, who, e.type) else {})}
            for i, e in enumerate(events, start=1)],
            "reads": [{**_read_json(r), "actor": _seen_actor(state, who, r["actor"])} for r in log]}  # fmt: skip
        typer.echo(json.dumps(doc, ensure_ascii=False, indent=2))
        return
    _echo_timeline(_timeline(events, log, state, who))


def _read_json(r: dict[str, Any]) -> dict[str, Any]:
    return {"at": paris(r["at"]), "at_utc": utc(r["at"]), "actor": r["actor"], "what": r["what"], "via": r["via"],
            "granted": r["granted"], "reason": r["reason"]}  # fmt: skip


def _seen_actor(state: Any, reader: Any, actor: str) -> str:
    from domain.reading import shown_actor

    return shown_actor(state, reader, actor) if reader is not None else actor


def _timeline(events: list[Any], log: list[dict[str, Any]], state: Any, reader: Any) -> list[dict[str, Any]]:
    """Events (decided, or clear journal rows) and reads, in the order they happened, actors as the
    reader may see them."""
    entries = []
    for i, e in enumerate(events, start=1):
        if isinstance(e, dict):
            entries.append({"kind": "event", "seq": e["seq"], "type": e["type"], "actor": e["actor"],
                            "instant": e["occurred_at"]})  # fmt: skip
        else:
            entries.append({"kind": "event", "seq": i, "type": e.type, "actor": str(e.actor), "instant": e.at})
    entries += [{"kind": "read", **r, "instant": r["at"]} for r in log]
    for entry in entries:
        entry["actor"] = _seen_actor(state, reader, entry["actor"])
    return sorted(entries, key=lambda x: x["instant"])


def _echo_timeline(entries: list[dict[str, Any]]) -> None:
    for x in entries:
        if x["kind"] == "event":
            typer.echo(f"{x['seq']:>4}  {paris(x['instant'])}  {x['actor']:<24} {x['type']}")
        else:
            typer.echo(f"   ·  {paris(x['instant'])}  {x['actor']:<24} lecture {x['what']} ({x['via']}) "
                       f"{'accordée' if x['granted'] else 'REFUSÉE'} — {x['reason']}")  # fmt: skip


@dossier_app.command("timeline")
def dossier_timeline(
    ctx: typer.Context,
    dossier_id: Annotated[str, typer.Argument(help="Identifiant du dossier.")],
    actor: AsOpt,
    as_json: JsonOpt = False,
) -> None:
    """Qui a fait quoi et quand, lectures comprises, dans l’ordre (heure de Paris) : métadonnées
    seulement, lisibles par qui peut lire l’historique (un auditeur, sans habilitation) — même après la
    destruction du contenu en fin de conservation."""
    from amiflow import dossiers
    from amiflow.keys import KeyDestroyed
    from amiflow.reads import authorise, read_log
    from domain import DossierState, Role, replay
    from domain.reading import Reading, may_read

    who = _actor(actor)

    async def read(c: Connected) -> Any:
        rows = await dossiers.metadata(c.engine, dossier_id)
        try:
            state = replay(await dossiers.history(c.engine, c.keys, dossier_id))
        except KeyDestroyed:  # content destroyed at the end of retention: metadata for auditors only
            state = DossierState(id=dossier_id)
            if who.role is not Role.AUDITOR:
                raise
        if not may_read(state, who, Reading.HISTORY).granted:
            await authorise(c.engine, state, who, Reading.HISTORY, "cli", datetime.now(UTC))
            return rows, state, []
        return rows, state, await read_log(c.engine, dossier_id)

    rows, state, log = _connected(ctx.obj, read, temporal="none")
    allowed = may_read(state, who, Reading.HISTORY)
    if not allowed.granted:
        raise DomainError(f"Lecture refusée (historique de {dossier_id}) : {allowed.reason}.")
    events = rows
    if as_json:
        entries = []
        for x in _timeline(events, log, state, who):
            common = {"kind": x["kind"], "at": paris(x["instant"]), "at_utc": utc(x["instant"]), "actor": x["actor"]}
            if x["kind"] == "event":
                entries.append({**common, "seq": x["seq"], "type": x["type"]})
            else:
                entries.append({**common, "what": x["what"], "via": x["via"], "granted": x["granted"],
                                "reason": x["reason"]})  # fmt: skip
        typer.echo(json.dumps({"dossier_id": dossier_id, "entries": entries}, ensure_ascii=False, indent=2))
        return
    _echo_timeline(_timeline(events, log, state, who))


@dossier_app.command("attach")
def dossier_attach(
    ctx: typer.Context,
    dossier_id: Annotated[str, typer.Argument(help="Identifiant du dossier.")],
    file: Annotated[Path, typer.Argument(help="Le fichier à joindre.", exists=True, dir_okay=False)],
    actor: AsOpt,
    as_json: JsonOpt = False,
) -> None:
    """Joint un fichier au dossier : il est chiffré dans le coffre ; le journal garde son empreinte.

    La dernière ligne affichée est l’identifiant du document.
    """
    from amiflow import dossiers

    who = _actor(actor)
    ref, result = _connected(ctx.obj, lambda c: dossiers.attach(c.client, c.engine, c.vault, dossier_id, file, who))
    if as_json:
        typer.echo(json.dumps({"dossier_id": result.dossier_id, "version": result.version,
                               "document": ref.model_dump(mode="json")}, ensure_ascii=False, indent=2))  # fmt: skip
        return
    typer.echo(f"{ref.name} joint à {result.dossier_id} : {ref.size} octets, {ref.media_type}, sha256 {ref.sha256}")
    typer.echo(ref.id)


@dossier_app.command("document")
def dossier_document(
    ctx: typer.Context,
    dossier_id: Annotated[str, typer.Argument(help="Identifiant du dossier.")],
    document_id: Annotated[str, typer.Argument(help="Identifiant du document (doc-…).")],
    out: Annotated[Path, typer.Option("--out", help="Où écrire le fichier.")],
    actor: AsOpt,
) -> None:
    """Extrait un document du coffre, après vérification du droit d’en connaître et de son empreinte."""
    from amiflow import dossiers

    who = _actor(actor)
    ref, data = _connected(ctx.obj, lambda c: dossiers.document(c.client, c.engine, c.vault, dossier_id,
                                                               document_id, who, datetime.now(UTC)))
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # a confidential piece: its reader's only
    with os.fdopen(fd, "wb") as written:
        written.write(data)
    typer.echo(f"{ref.name} → {out} ({ref.size} octets, sha256 vérifié)")


@dossier_app.command("list")
def dossier_list(
    ctx: typer.Context,
    call: Annotated[str | None, typer.Option("--call", help="Seulement cet appel.")] = None,
    status: Annotated[str | None, typer.Option("--status", help="Seulement ce statut (submitted…).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """La liste des dossiers : statut, phase, prochaine échéance."""
    from amiflow import dossiers
    from domain.dossier import Status

    if status is not None and status not in {s.value for s in Status}:
        raise DomainError(f"Statut inconnu « {status} » ({', '.join(s.value for s in Status)}).")
    rows = _connected(ctx.obj, lambda c: dossiers.listing(c.engine, call, status), temporal="none")
    if as_json:
        out = [{**{k: (paris(v) if isinstance(v, datetime) else v) for k, v in r.items()},
                "status_label": Status(r["status"]).label} for r in rows]  # fmt: skip
        typer.echo(json.dumps({"dossiers": out}, ensure_ascii=False, indent=2))
        return
    for r in rows:
        nxt = f"{paris(r['next_deadline'])} {r['next_deadline_kind']}" if r["next_deadline"] else "—"
        typer.echo(f"{r['dossier_id']:<48} {Status(r['status']).label:<28} {r['phase_id']:<16} {nxt}")
    if not rows:
        typer.echo("Aucun dossier.")


@calls_app.command("extend")
def calls_extend(
    ctx: typer.Context,
    call: Annotated[str, typer.Argument(help="Identifiant de l’appel.")],
    phase: Annotated[str, typer.Argument(help="Identifiant de la phase.")],
    until: Annotated[str, typer.Option("--until", help="Nouvelle clôture : 00:00 (Paris) ce jour-là.")],
    actor: AsOpt,
) -> None:
    """Prolonge une phase ; chaque dossier ouvert de la phase suit la nouvelle date (porteur prévenu)."""
    from amiflow import dossiers

    when = dossiers.parse_instant(until)
    who = _actor(actor)
    result = _connected(ctx.obj, lambda c: dossiers.extend(c.client, call, phase, when, who))
    typer.echo(f"{call} / {phase} : clôture au {paris(result.closes_at)} ; "
               f"{len(result.dossiers)} dossier(s) ouvert(s) prévenu(s).")  # fmt: skip


@keys_app.command("list")
def keys_list(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Les identifiants des clés maîtresses et la clé active (jamais les clés elles-mêmes)."""
    from amiflow.keys import Keyring

    keyring = Keyring.open(ctx.obj.data_dir)
    if as_json:
        typer.echo(json.dumps({"keyring": str(keyring.path), "active": keyring.active,
                               "keys": sorted(keyring.keys)}, indent=2))  # fmt: skip
        return
    for key_id in sorted(keyring.keys):
        typer.echo(f"{key_id}{'  (active)' if key_id == keyring.active else ''}")


@keys_app.command("rotate")
def keys_rotate(ctx: typer.Context) -> None:
    """Crée une nouvelle clé maîtresse et l’active : les nouvelles données l’utilisent, les
    anciennes restent lisibles. Les workers la prennent d’eux-mêmes. Sauvegardez le trousseau."""
    from amiflow.keys import Keyring

    keyring = Keyring.open(ctx.obj.data_dir)
    new = keyring.rotate()
    typer.echo(f"Clé active : {new} (clés : {', '.join(sorted(keyring.keys))}) — trousseau {keyring.path}")


@keys_app.command("init")
def keys_init(ctx: typer.Context) -> None:
    """Crée le premier trousseau d’un dossier de données créé avant le chiffrement. Refusé s’il en
    existe déjà un. À ne jamais utiliser pour remplacer un trousseau perdu : restaurez-le."""
    from amiflow.keys import KEYRING, KeyProblem, Keyring

    if (ctx.obj.data_dir / KEYRING).exists():
        raise KeyProblem(f"Un trousseau existe déjà : {ctx.obj.data_dir / KEYRING}.")
    keyring = Keyring.open(ctx.obj.data_dir, create=True, in_use=True)
    typer.echo(f"Trousseau créé : {keyring.path} (clé {keyring.active}). Sauvegardez-le hors de la machine.")


@codec_app.command("token")
def codec_token(
    ctx: typer.Context,
    actor: AsOpt,
    days: Annotated[int, typer.Option("--days", min=1, max=365, help="Durée de validité.")] = 1,
) -> None:
    """Un jeton pour le serveur de décodage : il ne décode que ce que cette personne peut lire, et
    chaque décodage est inscrit au journal des lectures. La dernière ligne est le jeton."""
    from amiflow.codec_server import TOKENS, Tokens
    from amiflow.stack import read_stack

    who = _actor(actor)
    token = Tokens(ctx.obj.data_dir / TOKENS).issue(who, days, datetime.now(UTC))
    info = read_stack(ctx.obj) or {}
    endpoint = info.get("codec_url", "http://127.0.0.1:8234")
    typer.echo(f"Jeton de {who} valable {days} jour(s).")
    typer.echo(f"  interface web : Codec Server → {endpoint}/t/{token}")
    typer.echo(f"  temporal CLI  : --codec-endpoint {endpoint} --codec-auth 'Bearer {token}'")
    typer.echo(token)


def _breaks_out(breaks: list[Any], checked: str, as_json: bool) -> None:
    from dataclasses import asdict

    if as_json:
        typer.echo(json.dumps({"ok": not breaks, "checked": checked, "breaks": [asdict(b) for b in breaks]},
                              ensure_ascii=False, indent=2))  # fmt: skip
    else:
        for b in breaks:
            where = f"{b.dossier_id or '—'} n° {b.seq if b.seq is not None else '—'} (position {b.gseq or '—'})"
            typer.echo(f"RUPTURE  {b.kind:<15} {where} : {b.detail}")
        typer.echo(f"{'Intègre' if not breaks else 'Journal altéré'} : {checked}.")
    if breaks:
        raise typer.Exit(1)


@audit_app.command("verify")
def audit_verify(
    ctx: typer.Context,
    dossier: Annotated[str | None, typer.Option("--dossier", help="Seulement ce dossier.")] = None,
    bundle: Annotated[Path | None, typer.Option("--bundle", help="Vérifier un bundle exporté, sans base.")] = None,
    anchors_file: Annotated[Path | None, typer.Option("--anchors", help="Ancres conservées ailleurs (JSONL).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Recalcule les chaînes d’empreintes et nomme la première rupture (dossier, n° d’événement) ;
    code de sortie 1 si quelque chose a été modifié, supprimé, inséré ou déplacé."""
    from amiflow import audit, ledger

    external = audit.read_anchors(anchors_file) if anchors_file else None
    if bundle is not None:
        if not (bundle / "events.jsonl").exists():
            raise DomainError(f"{bundle} n’est pas un bundle amiflow (events.jsonl manquant).")
        try:
            breaks = ledger.verify_bundle(bundle, external or [])
        except (ValueError, KeyError, TypeError) as exc:  # a line that is not what export writes
            raise DomainError(f"{bundle} : bundle illisible ({type(exc).__name__} : {exc}).") from None
        events = len(ledger.read_bundle(bundle)["events"])
        _breaks_out(breaks, f"bundle {bundle}, {events} événement(s)", as_json)
        return
    breaks = _connected(ctx.obj, lambda c: audit.verify_journal(c.engine, dossier, external), temporal="none")
    _breaks_out(breaks, f"dossier {dossier}" if dossier else "tout le journal", as_json)


@audit_app.command("anchor")
def audit_anchor(
    ctx: typer.Context,
    out: Annotated[Path | None, typer.Option("--out", help="Écrire les ancres dans ce fichier (JSONL).")] = None,
) -> None:
    """Ancre chaque journée achevée (tête de la chaîne globale, heure de Paris) et écrit les ancres :
    à conserver hors de la machine (une fois par jour, par exemple par cron)."""
    from amiflow import audit

    today = datetime.now(PARIS).date()
    marks = _connected(ctx.obj, lambda c: audit.anchor(c.engine, today), temporal="none")
    lines = "".join(json.dumps(a) + "\n" for a in marks)
    if out is not None:
        out.write_text(lines, encoding="utf-8")
        typer.echo(f"{len(marks)} ancre(s) écrite(s) dans {out}.")
    else:
        typer.echo(lines, nl=False)


@audit_app.command("export")
def audit_export(
    ctx: typer.Context,
    dossier_id: Annotated[str, typer.Argument(help="Identifiant du dossier.")],
    out: Annotated[Path, typer.Option("--out", help="Dossier à créer pour le bundle.")],
    as_json: JsonOpt = False,
) -> None:
    """Exporte un bundle autonome du dossier (événements tels que stockés, lectures, chaîne, ancres,
    historique Temporal s’il est conservé, vérificateur, README) ; il se vérifie sans base :
    `python OUT/verify.py OUT`."""
    from amiflow import audit

    async def run(c: Connected) -> Any:
        history = None
        if c.client is not None:
            try:
                history = (await c.client.get_workflow_handle(dossier_id).fetch_history()).to_json()
            except Exception:  # the workflow's history is gone once Temporal's retention has passed
                history = None
        return await audit.export(c.engine, dossier_id, out, datetime.now(PARIS).date(), history)

    summary = _connected(ctx.obj, run, temporal="optional")
    if as_json:
        typer.echo(json.dumps(summary, ensure_ascii=False, indent=2))
        return
    typer.echo(f"Bundle de {dossier_id} : {summary['events']} événement(s), {summary['reads']} lecture(s), "
               f"{summary['anchors']} ancre(s){', historique Temporal' if summary['temporal_history'] else ''} "
               f"→ {out}\nVérifier : python {out}/verify.py {out}")  # fmt: skip


@audit_app.command("crosscheck")
def audit_crosscheck(
    ctx: typer.Context,
    dossier_id: Annotated[str, typer.Argument(help="Identifiant du dossier.")],
    as_json: JsonOpt = False,
) -> None:
    """Rejoue l’historique Temporal du dossier (tant qu’il est conservé) avec le code d’aujourd’hui et
    compare, numéro par numéro, les événements qu’il a journalisés avec le journal ; exit 1 sur écart."""
    from amiflow.crosscheck import crosscheck

    report = _connected(ctx.obj, lambda c: crosscheck(c.client, c.engine, c.keys, dossier_id))
    if as_json:
        typer.echo(report.model_dump_json(indent=2))
    else:
        for d in report.differences:
            typer.echo(f"ÉCART  n° {d.seq} {d.kind} : {d.detail}")
        typer.echo(report.message)
    if not report.ok:
        raise typer.Exit(1)


@audit_app.command("whatif")
def audit_whatif(
    ctx: typer.Context,
    call: Annotated[str, typer.Option("--call", help="Identifiant de l’appel.")],
    rules: Annotated[Path, typer.Option("--rules", help="La définition modifiée de l’appel (YAML).", exists=True)],
    as_json: JsonOpt = False,
) -> None:
    """Rejoue les dossiers d’un appel sous une définition modifiée (autre clôture, autres porteurs…)
    et dit lesquels auraient connu une autre issue, où et pourquoi. Rien n’est écrit."""
    from amiflow import dossiers
    from amiflow.catalogue import load_call
    from amiflow.keys import KeyDestroyed
    from domain.whatif import whatif

    changed = load_call(rules)
    if changed.id != call:
        raise DomainError(f"{rules} définit l’appel « {changed.id} », pas « {call} ».")

    async def run(c: Connected) -> Any:
        now = datetime.now(UTC)
        results, destroyed = [], []
        for r in await dossiers.listing(c.engine, call):
            try:
                events = await dossiers.history(c.engine, c.keys, r["dossier_id"])
            except KeyDestroyed:  # past its retention: nothing left to replay
                destroyed.append(r["dossier_id"])
                continue
            results.append(whatif(events, changed, now).model_copy(update={"dossier_id": r["dossier_id"]}))
        return results, destroyed

    results, destroyed = _connected(ctx.obj, run, temporal="none")
    differing = [r for r in results if r.differs]
    if as_json:
        typer.echo(json.dumps({"call": call, "rules": str(rules), "dossiers": len(results),
                               "differing": [r.model_dump(mode="json") for r in differing],
                               "content_destroyed": destroyed}, ensure_ascii=False, indent=2))  # fmt: skip
        return
    for r in differing:
        when = f" le {paris(r.at)}" if r.at else ""
        typer.echo(f"{r.dossier_id} : {r.actual.label} → {r.would_be.label}{when} — {r.reason}")
    typer.echo(f"{len(differing)} dossier(s) sur {len(results)} auraient une autre issue sous {rules}."
               + (f" {len(destroyed)} dossier(s) au contenu détruit, non rejoué(s)." if destroyed else ""))


@audit_app.command("shred")
def audit_shred(
    ctx: typer.Context,
    actor: AsOpt,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Dire ce qui serait détruit, sans rien détruire.")] = False,
    dossier: Annotated[str | None, typer.Option("--dossier", help="Seulement ce dossier.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Fin de conservation : détruit les clés (donc le contenu, partout) des dossiers terminés dont la
    durée de conservation est écoulée et qui ne sont pas sous conservation légale. Métadonnées et
    chaînes d’empreintes restent, et se vérifient toujours."""
    from amiflow import audit

    who = _actor(actor)
    report = _connected(ctx.obj, lambda c: audit.shred(c.client, c.engine, c.keys, c.vault, who, datetime.now(UTC),
                                                       dry_run, dossier))  # fmt: skip
    if as_json:
        out = [{**r, "retention_ends": paris(r["retention_ends"]) if r.get("retention_ends") else None} for r in report]
        typer.echo(json.dumps({"dry_run": dry_run, "dossiers": out}, ensure_ascii=False, indent=2))
    else:
        labels = {"destroyed": "DÉTRUIT", "would_destroy": "à détruire", "kept": "conservé",
                  "already_destroyed": "déjà détruit"}  # fmt: skip
        for r in report:
            typer.echo(f"{labels[r['outcome']]:<13} {r['dossier_id']}  {r['reason']}")
        if not report:
            typer.echo("Aucun dossier terminé.")
    if dossier is not None and report and report[0]["outcome"] == "kept":
        raise typer.Exit(1)


def main() -> None:
    """Entry point: a refusal prints its reason on stderr and exits 1, without a traceback.

    Usage errors are click's: message on stderr, exit 2. The process ends with `os._exit` once
    output is flushed: the Temporal client's runtime can abort during interpreter finalisation
    ("Fatal Python error: PyGILState_Release", exit 134, seen on the development machines), which
    must not turn a done command into a crash.
    """
    import logging

    from amiflow.logs import configure

    configure(os.environ.get("AMIFLOW_LOG_FORMAT", "console"), logging.WARNING)  # a command's output is its own
    code: int | str | None = 0
    try:
        app()
    except SystemExit as exc:
        code = exc.code
    except DomainError as exc:
        typer.echo(f"amiflow : {exc.message}", err=True)
        code = 1
    except OSError as exc:  # a file or a server out of reach: said, not a traceback
        if getattr(exc, "filename", None):
            typer.echo(f"amiflow : {exc.strerror or exc} ({exc.filename}).", err=True)
        else:
            typer.echo(f"amiflow : serveur injoignable (PostgreSQL ou Temporal ; la pile tourne-t-elle ? "
                       f"amiflow status) : {exc.strerror or exc}.", err=True)  # fmt: skip
        code = 1
    except Exception as exc:
        if not type(exc).__module__.startswith(("sqlalchemy", "asyncpg")):
            raise
        typer.echo(f"amiflow : base de données injoignable ou en erreur : {str(exc).splitlines()[0]}", err=True)
        code = 1

    except KeyboardInterrupt:
        typer.echo("Interrompu.", err=True)
        code = 1
    if isinstance(code, str):
        typer.echo(code, err=True)
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code or 0)


if __name__ == "__main__":
    main()
