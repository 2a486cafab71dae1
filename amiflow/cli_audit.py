"""`amiflow audit …`: the auditors' commands. Parses, calls the audit use cases, renders."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from amiflow import render
from amiflow.bootstrap import NeedTemporal
from amiflow.clikit import Acting, Actor, Ident, Json, claim, command_class, group, now, remote, serve, usage, use, who
from amiflow.services import audit as audit_service
from amiflow.services.audit import VerifyReport
from domain.calendar import PARIS

audit_app = group("Pour les auditeurs : vérifier le journal, l’exporter, le rejouer.")
command = command_class()


def _verified(report: VerifyReport, as_json: bool) -> None:
    if as_json:
        typer.echo(render.dump(report.model_dump()))
    else:
        for b in report.breaks:
            seq = b["seq"] if b["seq"] is not None else "—"
            where = f"{b['dossier_id'] or '—'} n° {seq} (position {b['gseq'] or '—'})"
            typer.echo(f"RUPTURE  {b['kind']:<15} {where} : {b['detail']}")
        typer.echo(f"{'Intègre' if report.ok else 'Journal altéré'} : {report.checked}.")
    if not report.ok:
        raise typer.Exit(1)


@audit_app.command("verify", cls=command)
def audit_verify(ctx: typer.Context,
                 dossier: Annotated[str | None, typer.Option("--dossier", metavar="ID", help="Seulement ce dossier.")]
                 = None,
                 bundle: Annotated[Path | None, typer.Option("--bundle", metavar="DOSSIER",
                                                             help="Vérifier un bundle exporté, sans base.")] = None,
                 anchors: Annotated[Path | None, typer.Option("--anchors", metavar="FICHIER",
                                                              help="Ancres conservées ailleurs (JSONL).")] = None,
                 as_json: Json = False) -> None:
    """Recalcule les chaînes d’empreintes et nomme la première rupture (dossier, n° d’événement) ;
    code de sortie 1 si quelque chose a été modifié, supprimé, inséré ou déplacé."""
    if bundle is not None:
        _verified(audit_service.verify_bundle(bundle, anchors), as_json)
        return
    if anchors is not None and remote() is not None:
        raise usage("--anchors ne passe pas par l’API : comparez les ancres sur le serveur, ou celles d’un bundle "
                    "exporté (--bundle).")
    _verified(serve(ctx, lambda s: s.verify(dossier, anchors), NeedTemporal.NONE), as_json)


@audit_app.command("anchor", cls=command)
def audit_anchor(ctx: typer.Context,
                 out: Annotated[Path | None, typer.Option("--out", metavar="FICHIER", help="Écrire les ancres dans ce "
                                                          "fichier (JSONL ; son dossier est créé au besoin).")]
                 = None) -> None:
    """Ancre chaque journée achevée (tête de la chaîne globale, heure de Paris) et écrit les ancres,
    à conserver hors de la machine (une fois par jour, par exemple par cron)."""
    today = now().astimezone(PARIS).date()
    marks = use(ctx, lambda rt: audit_service.anchor(rt, today), NeedTemporal.NONE)
    if out is not None:
        audit_service.write_anchors(out, marks)
        typer.echo(f"{len(marks)} ancre(s) écrite(s) dans {out}.")
    else:
        typer.echo("".join(render.json_line(a) for a in marks), nl=False)


@audit_app.command("export", cls=command)
def audit_export(ctx: typer.Context, dossier_id: Ident,
                 out: Annotated[Path, typer.Option("--out", metavar="DOSSIER", help="Dossier à créer pour le bundle.")],
                 actor: Acting = None, as_json: Json = False) -> None:
    """Exporte un bundle autonome du dossier (événements tels que stockés, lectures, chaîne, ancres,
    historique Temporal s’il est conservé, vérificateur, README) ; il se vérifie sans base :
    python OUT/verify.py OUT. Réservé aux auditeurs ; l’export est inscrit au journal des lectures.
    Avec --api, le bundle est téléchargé et décompressé dans OUT."""
    person, instant = who(actor), now()
    today = instant.astimezone(PARIS).date()
    summary = serve(ctx, lambda s: s.export(person, dossier_id, out, instant, today), NeedTemporal.OPTIONAL)
    if as_json:
        typer.echo(render.dump(summary))
        return
    typer.echo(f"Bundle de {dossier_id} : {summary['events']} événement(s), {summary['reads']} lecture(s), "
               f"{summary['anchors']} ancre(s){', historique Temporal' if summary['temporal_history'] else ''} "
               f"→ {out}\nVérifier : python {out}/verify.py {out}")


@audit_app.command("crosscheck", cls=command)
def audit_crosscheck(ctx: typer.Context, dossier_id: Ident, actor: Actor, as_json: Json = False) -> None:
    """Rejoue l’historique Temporal du dossier (tant qu’il est conservé) avec le code d’aujourd’hui et
    compare, numéro par numéro, ce qu’il a journalisé avec le journal ; code 1 sur écart. Réservé aux auditeurs."""
    person = claim(actor)
    report = use(ctx, lambda rt: audit_service.crosscheck(rt, person, dossier_id, now()))
    if as_json:
        typer.echo(report.model_dump_json(indent=2))
    else:
        for d in report.differences:
            typer.echo(f"ÉCART  n° {d.seq} {d.kind} : {d.detail}")
        typer.echo(report.message)
    if not report.ok:
        raise typer.Exit(1)


@audit_app.command("whatif", cls=command)
def audit_whatif(ctx: typer.Context, call: Annotated[str, typer.Option("--call", metavar="APPEL",
                                                                       help="Identifiant de l’appel.")],
                 rules: Annotated[Path, typer.Option("--rules", metavar="FICHIER", exists=True, dir_okay=False,
                                                     help="La définition modifiée de l’appel (YAML).")],
                 actor: Actor, as_json: Json = False) -> None:
    """Rejoue les dossiers d’un appel sous une définition modifiée (autre clôture, autres porteurs…) et
    dit lesquels auraient connu une autre issue, où et pourquoi. Rien n’est écrit, sauf les lectures.
    Réservé aux auditeurs."""
    person = claim(actor)
    report = use(ctx, lambda rt: audit_service.whatif(rt, person, call, rules, now()), NeedTemporal.NONE)
    if as_json:
        typer.echo(render.dump(report.model_dump(mode="json")))
        return
    for r in report.differing:
        when = f" le {render.paris(r.at)}" if r.at else ""
        typer.echo(f"{r.dossier_id} : {r.actual.label} → {r.would_be.label}{when} — {r.reason}")
    typer.echo(f"{len(report.differing)} dossier(s) sur {report.dossiers} auraient une autre issue sous {rules}."
               + (f" {len(report.content_destroyed)} dossier(s) au contenu détruit, non rejoué(s)."
                  if report.content_destroyed else ""))


@audit_app.command("shred", cls=command)
def audit_shred(ctx: typer.Context, actor: Actor,
                dry_run: Annotated[bool, typer.Option("--dry-run", help="Dire ce qui serait détruit, sans rien "
                                                      "détruire.")] = False,
                dossier: Annotated[str | None, typer.Option("--dossier", metavar="ID", help="Seulement ce dossier.")]
                = None,
                as_json: Json = False) -> None:
    """Fin de conservation : détruit les clés (donc le contenu, partout) des dossiers terminés dont la
    durée de conservation est écoulée et qui ne sont pas sous conservation légale. Métadonnées et
    chaînes d’empreintes restent, et se vérifient toujours."""
    person = claim(actor)
    report = use(ctx, lambda rt: audit_service.shred(rt, person, now(), dry_run, dossier), NeedTemporal.OPTIONAL)
    if as_json:
        out = [{**r, "retention_ends": render.paris(r["retention_ends"]) if r.get("retention_ends") else None}
               for r in report]
        typer.echo(render.dump({"dry_run": dry_run, "dossiers": out}))
    else:
        labels = {"destroyed": "DÉTRUIT", "would_destroy": "à détruire", "kept": "conservé",
                  "already_destroyed": "déjà détruit"}
        for r in report:
            typer.echo(f"{labels[r['outcome']]:<13} {r['dossier_id']}  {r['reason']}")
        if not report:
            typer.echo("Aucun dossier terminé.")
    if dossier is not None and report and report[0]["outcome"] == "kept":
        raise typer.Exit(1)
