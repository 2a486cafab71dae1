"""`amiflow people …` and `amiflow tokens …`: the operator's commands for the directory of people and
their personal access tokens. Parses, calls the people use cases, renders."""

from __future__ import annotations

from typing import Annotated

import typer

from amiflow import render
from amiflow.bootstrap import NeedTemporal, Runtime
from amiflow.clikit import Json, command_class, console, group, now, remote, serve, usage, use
from amiflow.services import people as people_service
from domain.access import Role
from domain.people import Person, expiry

people_app = group("L’annuaire des personnes et de leurs rôles (opérateurs, sur le serveur).")
tokens_app = group("Les jetons d’accès personnels (scripts, serveur de décodage).")
command = command_class()

Name = Annotated[str, typer.Argument(metavar="NOM", help="Nom de la personne (a-z, 0-9, . _ -).")]
ROLES = ", ".join(r.value for r in Role if r is not Role.SYSTEM)


def _person_json(person: Person) -> dict[str, object]:
    return {"name": person.name, "email": person.email, "roles": sorted(r.value for r in person.roles()),
            "grants": [{"role": g.role.value, "call_id": g.call_id} for g in person.grants],
            "siret": person.siret, "issuer": person.issuer, "subject": person.subject}


@people_app.command("add", cls=command)
def people_add(ctx: typer.Context, name: Name,
               role: Annotated[str, typer.Option("--role", metavar="ROLE", help=f"Le rôle ({ROLES}).")],
               email: Annotated[str | None, typer.Option("--email", metavar="ADRESSE", help="Son adresse "
                                                         "électronique (rapprochée à la connexion OpenID).")] = None,
               calls: Annotated[list[str] | None, typer.Option("--call", metavar="APPEL", help="L’appel de ce rôle "
                                                               "(obligatoire pour staff et committee ; répétable).")]
               = None,
               siret: Annotated[str | None, typer.Option("--siret", metavar="SIRET", help="SIRET (porteur).")] = None,
               as_json: Json = False) -> None:
    """Ajoute une personne à l’annuaire, ou lui donne un rôle de plus (et une adresse, si donnée)."""
    grants = people_service.role_grants(role, calls or [])
    person = use(ctx, lambda rt: people_service.add(rt, name, grants, email, siret=siret), NeedTemporal.NONE)
    if as_json:
        typer.echo(render.dump(_person_json(person)))
        return
    typer.echo(f"{person.name} : {', '.join(str(g) for g in person.grants)}")


@people_app.command("list", cls=command)
def people_list(ctx: typer.Context, as_json: Json = False) -> None:
    """Les personnes de l’annuaire, leurs rôles (et appels), leur adresse."""
    found = use(ctx, people_service.listing, NeedTemporal.NONE)
    if as_json:
        typer.echo(render.dump([_person_json(p) for p in found]))
        return
    for person in found:
        bound = "  [OpenID lié]" if person.subject else ""
        typer.echo(f"{person.name:<24} {', '.join(str(g) for g in person.grants):<50} {person.email or '—'}{bound}")
    if not found:
        typer.echo("Annuaire vide (amiflow people add NOM --role ROLE).")


@people_app.command("remove", cls=command)
def people_remove(ctx: typer.Context, name: Name) -> None:
    """Retire une personne de l’annuaire, avec ses jetons et invitations."""
    use(ctx, lambda rt: people_service.remove(rt, name), NeedTemporal.NONE)
    typer.echo(f"{name} retiré(e) de l’annuaire ; ses jetons ne s’ouvrent plus.")


@people_app.command("invite", cls=command)
def people_invite(ctx: typer.Context, name: Name,
                  days: Annotated[int, typer.Option("--days", metavar="N", help="Durée de validité du lien, en jours "
                                                    "(1 à 30).")] = 7,
                  as_json: Json = False) -> None:
    """Envoie à la personne (à son adresse de l’annuaire) un lien d’invitation à usage unique pour se
    connecter sans compte OpenID. Avec --json, le lien lui-même."""
    from amiflow.services.invitations import send_invitation

    at = now()
    site = ctx.obj.public_url or _api_url(ctx)

    async def send(rt: Runtime) -> tuple[str, Person | None]:
        link = await send_invitation(rt, name, days, at, site)
        return link, await people_service.person(rt, name)

    link, found = use(ctx, send, NeedTemporal.NONE)
    email = found.email if found is not None else None
    channel = f"SMTP {ctx.obj.smtp_host}" if ctx.obj.smtp_host else f"dépôt {ctx.obj.mail_dir}"
    until = render.paris(expiry(at, days))
    if as_json:
        typer.echo(render.dump({"name": name, "email": email, "sent_by": channel, "link": link, "expires_at": until}))
        return
    typer.echo(f"Invitation envoyée à {name} <{email}> ({channel}) : lien à usage unique, valable jusqu’au {until}.")


def _api_url(ctx: typer.Context) -> str:
    """Where people reach this stack's API, when AMIFLOW_PUBLIC_URL does not say it."""
    from amiflow.stack import read_stack

    return str((read_stack(ctx.obj) or {}).get("api_url") or "http://127.0.0.1:8235")


@tokens_app.command("issue", cls=command)
def tokens_issue(ctx: typer.Context, name: Annotated[str | None, typer.Argument(
                     metavar="NOM", help="Nom de la personne (a-z, 0-9, . _ -) ; avec --api, omis : "
                                         "le jeton est pour soi.")] = None,
                 days: Annotated[int, typer.Option("--days", metavar="N", help="Durée de validité, en jours "
                                                   "(1 à 365).")] = 30,
                 role: Annotated[str | None, typer.Option("--role", metavar="ROLE", help="Le rôle que porte le jeton "
                                                          "(obligatoire si la personne en a plusieurs).")] = None,
                 label: Annotated[str | None, typer.Option("--label", metavar="TEXTE", help="À quoi il sert.")]
                 = None) -> None:
    """Émet un jeton personnel pour cette personne (avec --api : pour soi, au rôle du jeton qui le
    demande) ; seule son empreinte est gardée. La dernière ligne est le jeton : il ne sera plus jamais affiché."""
    if remote() is not None and (name or role):
        raise usage("avec --api, le jeton est pour vous-même, au rôle de votre jeton : ni NOM ni --role.")
    acting = people_service.parse_role(role) if role else None
    issued = serve(ctx, lambda s: s.issue_token(name, days, now(), acting, label), NeedTemporal.NONE)
    owner = f" de {name}" if name else ""
    typer.echo(f"Jeton {issued.id}{owner}, valable jusqu’au {render.paris(issued.expires_at)} "
               f"(révocable : amiflow tokens revoke {issued.id}).\n{issued.token}")


@tokens_app.command("list", cls=command)
def tokens_list(ctx: typer.Context,
                name: Annotated[str | None, typer.Option("--person", metavar="NOM", help="Seulement cette personne.")]
                = None,
                as_json: Json = False) -> None:
    """Les jetons : identifiant, personne, rôle, échéance, état (jamais le jeton lui-même)."""
    if remote() is not None and name:
        raise usage("avec --api, ce sont vos propres jetons : pas de --person.")
    at = now()
    found = serve(ctx, lambda s: s.tokens(name, at), NeedTemporal.NONE)
    if as_json:
        typer.echo(render.dump([t.model_dump(mode="json") for t in found]))
        return
    states = {"active": "actif", "expired": "expiré", "revoked": "révoqué"}
    for t in found:
        typer.echo(f"{t.id}  {t.name:<20} {t.role.value:<10} jusqu’au {render.paris(t.expires_at)}  "
                   f"{states[t.state]:<8} {t.label or ''}".rstrip())
    if not found:
        typer.echo("Aucun jeton.")


@tokens_app.command("revoke", cls=command)
def tokens_revoke(ctx: typer.Context,
                  token_id: Annotated[str, typer.Argument(metavar="ID", help="L’identifiant du jeton (tok-…).")]
                  ) -> None:
    """Révoque un jeton : il ne s’ouvre plus, nulle part (API, serveur de décodage)."""
    operator = console()
    view = use(ctx, lambda rt: people_service.revoke_token(rt, operator, token_id, now()), NeedTemporal.NONE)
    typer.echo(f"Jeton {view.id} de {view.name} révoqué.")
