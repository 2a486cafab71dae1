"""`amiflow notices …`: what became of the notifications. Parses, calls the use case, renders."""

from __future__ import annotations

import typer

from amiflow import render
from amiflow.bootstrap import NeedTemporal
from amiflow.clikit import Actor, Json, claim, command_class, group, refusal, use
from amiflow.services import ReadRefused
from amiflow.services import notices as notice_service

notices_app = group("Les notifications (courriels) : celles qui n’ont pas pu être délivrées.")
command = command_class()


@notices_app.command("failed", cls=command)
def notices_failed(ctx: typer.Context, actor: Actor, as_json: Json = False) -> None:
    """Les notifications abandonnées après plusieurs tentatives de remise (serveur de courriel injoignable,
    message refusé) : dossier, sorte, destinataire, quand (heure de Paris) et la dernière erreur, jamais
    le texte. Réservé aux chargés de mission et aux auditeurs."""
    try:
        rows = use(ctx, lambda rt: notice_service.failed(rt, claim(actor)), NeedTemporal.NONE)
    except ReadRefused as exc:
        refusal(exc, as_json)
        raise
    if as_json:
        typer.echo(render.dump([{**row.model_dump(mode="json"), "failed_at": render.paris(row.failed_at),
                                 "created_at": render.paris(row.created_at),
                                 "due": render.paris(row.due) if row.due else None} for row in rows]))
        return
    if not rows:
        typer.echo("Aucune notification en échec.")
        return
    for row in rows:
        typer.echo(f"{render.paris(row.failed_at)}  {row.dossier_id}  {row.kind} → {row.recipient}  "
                   f"({row.attempts} tentatives) : {row.failure}")
    typer.echo(f"{len(rows)} notification(s) en échec : prévenez les destinataires par un autre moyen.")
