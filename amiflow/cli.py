"""The `amiflow` command line: parses arguments, calls the service layer, renders what comes back.
Exit 0 done, 1 refused or invalid input (reason on stderr), 2 usage error."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from amiflow import render
from amiflow.bootstrap import NeedTemporal
from amiflow.cli_audit import audit_app
from amiflow.cli_notices import notices_app
from amiflow.cli_people import people_app, tokens_app
from amiflow.cli_serve import register as register_serve
from amiflow.clikit import (
    Acting,
    Actor,
    Api,
    DataDir,
    Ident,
    Json,
    Paths,
    Reader,
    command_class,
    connect,
    french_usage_error,
    group,
    hoist_data_dir,
    usage,
)
from amiflow.clikit import (
    claim as _claim,
)
from amiflow.clikit import (
    now as _now,
)
from amiflow.clikit import (
    refusal as _refusal,
)
from amiflow.clikit import (
    remote as _remote,
)
from amiflow.clikit import (
    serve as _serve,
)
from amiflow.clikit import (
    use as _use,
)
from amiflow.clikit import (
    who as _who,
)
from amiflow.services import ReadRefused
from amiflow.services import calls as call_service
from amiflow.services import codec as codec_service
from amiflow.services import commands as command_service
from amiflow.services import keys as key_service
from amiflow.settings import load_settings
from domain.errors import DomainError

app = group("amiflow : le cycle de vie des dossiers des appels à manifestation d’intérêt (AMI).")
calls_app = group("Les appels (AMI) définis dans deploy/calls.")
schemes_app = group("Le catalogue des dispositifs de financement.")
dossier_app = group("Les dossiers, sur la pile qui tourne (amiflow up).")
keys_app = group("Les clés de chiffrement du dossier de données.")
codec_app = group("Le serveur de décodage pour l’interface web de Temporal.")
app.add_typer(audit_app, name="audit")
app.add_typer(notices_app, name="notices")
app.add_typer(people_app, name="people")
app.add_typer(tokens_app, name="tokens")
for name, sub in (("calls", calls_app), ("schemes", schemes_app), ("dossier", dossier_app), ("keys", keys_app),
                  ("codec", codec_app)):
    app.add_typer(sub, name=name)
command = command_class()
register_serve(app)

@app.callback()
def _root(ctx: typer.Context, data_dir: DataDir = None, api: Api = None) -> None:
    """amiflow : le cycle de vie des dossiers des appels à manifestation d’intérêt (AMI)."""
    ctx.obj = load_settings(data_dir)
    connect(api, os.environ.get("AMIFLOW_TOKEN"))


# --- calls and schemes ---------------------------------------------------------------------


@calls_app.command("validate", cls=command)
def calls_validate(ctx: typer.Context, paths: Paths = None) -> None:
    """Valide les fichiers d’appels ; code de sortie 1 si l’un d’eux est refusé."""
    found = call_service.catalogue(paths, ctx.obj.calls_dir)
    for call in found.calls:
        typer.echo(f"valide   {found.files[call.id]} ({call.id})")
    for error in found.refused:
        typer.echo(f"REFUSÉ   {error.message}", err=True)
    if found.refused:
        raise typer.Exit(1)


@calls_app.command("list", cls=command)
def calls_list(ctx: typer.Context, paths: Paths = None, as_json: Json = False) -> None:
    """Liste les appels, leurs phases (heure de Paris et UTC) et les fichiers refusés ; avec --api, les
    appels que sert l’API."""
    if _remote() is not None:  # the server's calls, not files here
        if paths:
            raise usage("avec --api, ce sont les appels du serveur : pas de FICHIERS.")
        render.call_views(_serve(ctx, lambda s: s.calls()), typer.echo, as_json)
        return
    render.calls(call_service.catalogue(paths, ctx.obj.calls_dir), typer.echo, as_json)


@calls_app.command("extend", cls=command)
def calls_extend(ctx: typer.Context,
                 call: Annotated[str, typer.Argument(metavar="APPEL", help="Identifiant de l’appel.")],
                 phase: Annotated[str, typer.Argument(metavar="PHASE", help="Identifiant de la phase.")],
                 until: Annotated[str, typer.Option("--until", metavar="DATE", help="Nouvelle clôture : 00:00 (heure "
                                                    "de Paris) ce jour-là, ou AAAA-MM-JJTHH:MM.")],
                 actor: Acting = None) -> None:
    """Prolonge une phase ; chaque dossier ouvert de la phase suit la nouvelle date (porteur prévenu)."""
    when, who = command_service.parse_instant(until), _who(actor)
    result = _serve(ctx, lambda s: s.extend(who, call, phase, when))
    typer.echo(f"{call} / {phase} : clôture au {render.paris(result.closes_at)} ; "
               f"{len(result.dossiers)} dossier(s) ouvert(s) prévenu(s).")


@schemes_app.command("list", cls=command)
def schemes_list(as_json: Json = False) -> None:
    """Liste les dispositifs de financement (deploy/schemes.yaml)."""
    from amiflow.catalogue import load_schemes

    render.schemes(load_schemes(), typer.echo, as_json)


# --- the running stack ---------------------------------------------------------------------


@app.command("up", cls=command)
def up_command(ctx: typer.Context, workers: Annotated[int, typer.Option(help="Nombre de workers à lancer.", min=1,
                                                                          max=16)] = 1) -> None:
    """Démarre tout (Temporal, PostgreSQL, worker, décodage) dans le dossier de données ; Ctrl-C arrête tout."""
    from amiflow.logs import configure
    from amiflow.stack import up

    configure()
    raise typer.Exit(up(ctx.obj, workers=workers, echo=typer.echo))


@app.command("status", cls=command)
def status_command(ctx: typer.Context, as_json: Json = False) -> None:
    """Ce qui tourne dans le dossier de données : adresses et processus."""
    from amiflow.stack import status

    info = status(ctx.obj)
    if as_json:
        typer.echo(render.dump(info))
    elif not info["running"]:
        typer.echo(f"Rien ne tourne dans {info['data_dir']} (amiflow up pour démarrer).")
    else:
        typer.echo(f"Back office   {info.get('web_url') or '—'}\n"
                   f"Temporal      {info['temporal_address']}\nTemporal UI   {info['ui_url']}\n"
                   f"PostgreSQL    {info['database_url']}\nDécodage      {info['codec_url']}\n"
                   f"API           {info['api_url']}\n"
                   f"Identités     {info.get('idp_url') or '—'}\n"
                   f"Workers       {', '.join(map(str, info['worker_pids']))}")
    if not info["running"]:
        raise typer.Exit(1)


# --- dossiers ------------------------------------------------------------------------------


@dossier_app.command("submit", cls=command)
def dossier_submit(ctx: typer.Context, call: Annotated[str, typer.Option("--call", metavar="APPEL",
                                                                         help="Identifiant de l’appel.")],
                   file: Annotated[Path, typer.Option("--file", metavar="FICHIER",
                                                      help="Le dossier (YAML, voir deploy/examples/).")],
                   actor: Acting = None) -> None:
    """Crée et dépose un dossier ; un second dépôt de la même référence retrouve le même dossier.
    La dernière ligne affichée est l’identifiant du dossier."""
    who = _who(actor)
    result = _serve(ctx, lambda s: s.submit(who, call, file, _now()))
    typer.echo(f"Dossier {result.status.label}, version {result.version}.\n{result.dossier_id}")


@dossier_app.command("do", cls=command_class(own_help=True),
                     context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def dossier_do(ctx: typer.Context, dossier_id: Annotated[str | None, typer.Argument(metavar="ID")] = None,
               name: Annotated[str | None, typer.Argument(metavar="COMMANDE")] = None,
               actor: Annotated[str | None, typer.Option("--as", metavar="ROLE:NOM", help="Qui agit (sans --api).")]
               = None,
               as_json: Json = False,
               show_help: Annotated[bool, typer.Option("--help", help="Les commandes possibles et leurs options.")]
               = False) -> None:
    """Donne une commande au dossier, par exemple :
    amiflow dossier do ID request-complement --pieces "Kbis" --due 2026-07-01 --as staff:amelie
    (une date seule vaut 00:00, heure de Paris, ce jour-là). `amiflow dossier do ID --help --as ROLE:NOM`
    liste les commandes que cette personne peut donner maintenant, avec leurs options."""
    if show_help or not dossier_id or not name:
        specs = [command_service.spec(n) for n in command_service.typed_commands()]
        personal = bool(dossier_id and (actor or _remote()))
        if personal and dossier_id:
            reader = _who(actor)
            specs = _serve(ctx, lambda s: s.available(reader, dossier_id, _now()))
        typer.echo(ctx.get_help() + "\n")
        render.command_specs(specs, typer.echo, personal)
        raise typer.Exit(0 if show_help else 2)
    options, who = _options(ctx.args), _who(actor)
    result = _serve(ctx, lambda s: s.command(who, dossier_id, name, options))
    if as_json:
        typer.echo(result.model_dump_json(indent=2))
    else:
        events = ", ".join(result.events)
        typer.echo(f"{result.dossier_id} : {result.status.label}, version {result.version} — {events}")


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


@dossier_app.command("show", cls=command)
def dossier_show(ctx: typer.Context, dossier_id: Ident, actor: Reader = None, as_json: Json = False,
                 as_of: Annotated[str | None, typer.Option("--as-of", metavar="DATE", help="L’état à cet instant "
                                  "passé (AAAA-MM-JJTHH:MM, heure de Paris), rejoué depuis le journal.")] = None,
                 show_all: Annotated[bool, typer.Option("--all", help="Toutes les échéances à venir, pas seulement "
                                                        "la prochaine de chaque sorte.")] = False) -> None:
    """L’état du dossier et ce qu’il attend, tel que la personne peut le lire. Chaque lecture,
    accordée ou refusée, est inscrite au journal des lectures (amiflow dossier history)."""
    who = _who(actor) if actor else None
    instant = command_service.parse_instant(as_of) if as_of else None
    try:
        view = _serve(ctx, lambda s: s.show(who, dossier_id, _now(), instant, show_all), NeedTemporal.OPTIONAL)
    except ReadRefused as exc:
        _refusal(exc, as_json)
    render.dossier(view, typer.echo, as_json)


@dossier_app.command("history", cls=command)
def dossier_history(ctx: typer.Context, dossier_id: Ident, actor: Reader = None, as_json: Json = False) -> None:
    """Qui a fait quoi et quand (heure de Paris), lectures comprises. Le contenu des événements
    (--json) n’est montré qu’à qui peut lire le contenu."""
    who = _who(actor) if actor else None
    try:
        view = _serve(ctx, lambda s: s.history(who, dossier_id, _now(), bodies=as_json), NeedTemporal.NONE)
    except ReadRefused as exc:
        _refusal(exc, as_json)
    render.history(view, typer.echo, as_json)


@dossier_app.command("timeline", cls=command)
def dossier_timeline(ctx: typer.Context, dossier_id: Ident, actor: Acting = None, as_json: Json = False) -> None:
    """Événements et lectures dans l’ordre (heure de Paris) : métadonnées seulement, lisibles par qui
    peut lire l’historique — même après la destruction du contenu en fin de conservation."""
    who = _who(actor)
    try:
        view = _serve(ctx, lambda s: s.timeline(who, dossier_id, _now()), NeedTemporal.NONE)
    except ReadRefused as exc:
        _refusal(exc, as_json)
    render.timeline(view, typer.echo, as_json)


@dossier_app.command("attach", cls=command)
def dossier_attach(ctx: typer.Context, dossier_id: Ident,
                   file: Annotated[Path, typer.Argument(metavar="FICHIER", help="Le fichier à joindre.", exists=True,
                                                        dir_okay=False)],
                   actor: Acting = None, as_json: Json = False) -> None:
    """Joint un fichier au dossier : il est chiffré dans le coffre, le journal garde son empreinte.
    La dernière ligne affichée est l’identifiant du document."""
    who = _who(actor)
    view = _serve(ctx, lambda s: s.attach(who, dossier_id, file))
    if as_json:
        typer.echo(render.dump(view.model_dump(mode="json")))
        return
    ref = view.document
    typer.echo(f"{ref.name} joint à {view.dossier_id} : {ref.size} octets, {ref.media_type}, sha256 {ref.sha256}")
    typer.echo(ref.id)


@dossier_app.command("document", cls=command)
def dossier_document(ctx: typer.Context, dossier_id: Ident,
                     document_id: Annotated[str, typer.Argument(metavar="DOCUMENT", help="Identifiant (doc-…).")],
                     out: Annotated[Path, typer.Option("--out", metavar="FICHIER", help="Où écrire le fichier.")],
                     actor: Acting = None) -> None:
    """Extrait un document du coffre, après vérification du droit d’en connaître et de son empreinte."""
    who = _who(actor)
    ref, data = _serve(ctx, lambda s: s.document(who, dossier_id, document_id, _now()))
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # a confidential piece: its reader's only
    with os.fdopen(fd, "wb") as written:
        written.write(data)
    typer.echo(f"{ref.name} → {out} ({ref.size} octets, empreinte sha256 vérifiée)")


@dossier_app.command("list", cls=command)
def dossier_list(ctx: typer.Context,
                 call: Annotated[str | None, typer.Option("--call", metavar="APPEL", help="Seulement cet appel.")]
                 = None,
                 status: Annotated[str | None, typer.Option("--status", metavar="STATUT",
                                                            help="Seulement ce statut (submitted…).")] = None,
                 phase: Annotated[str | None, typer.Option("--phase", metavar="PHASE", help="Seulement cette phase.")]
                 = None,
                 overdue: Annotated[bool, typer.Option("--overdue", help="Seulement les dossiers en retard.")] = False,
                 after: Annotated[str | None, typer.Option("--after", metavar="ID", help="La page après ce dossier.")]
                 = None,
                 limit: Annotated[int | None, typer.Option("--limit", metavar="N", help="Au plus N dossiers.")] = None,
                 tab: Annotated[str | None, typer.Option("--tab", metavar="ONGLET", help="Seulement cet onglet du "
                                                         "back office (a-traiter, en-revue, a-decider…).")] = None,
                 sort: Annotated[str, typer.Option("--sort", metavar="ORDRE", help="id (par défaut) ou deadline "
                                                   "(prochaine échéance d’abord ; --after prend alors le curseur "
                                                   "« suite » de la page précédente).")] = "id",
                 as_json: Json = False) -> None:
    """La liste des dossiers : statut, phase, prochaine échéance (aucun contenu)."""
    page = _serve(ctx, lambda s: s.listing(_now(), call, status, phase, overdue, after, limit, tab=tab, order=sort),
                  NeedTemporal.NONE)
    render.dossiers(page, typer.echo, as_json)


# --- keys and the codec server -------------------------------------------------------------


@keys_app.command("list", cls=command)
def keys_list(ctx: typer.Context, as_json: Json = False) -> None:
    """Les identifiants des clés maîtresses et la clé active (jamais les clés elles-mêmes)."""
    view = key_service.listing(ctx.obj.data_dir)
    if as_json:
        typer.echo(render.dump(view.model_dump()))
        return
    for key_id in view.keys:
        typer.echo(f"{key_id}{'  (active)' if key_id == view.active else ''}")


@keys_app.command("rotate", cls=command)
def keys_rotate(ctx: typer.Context) -> None:
    """Crée une nouvelle clé maîtresse et l’active : les nouvelles données l’utilisent, les anciennes
    restent lisibles. Les workers la prennent d’eux-mêmes. Sauvegardez le trousseau."""
    view = key_service.rotate(ctx.obj.data_dir)
    typer.echo(f"Clé active : {view.active} (clés : {', '.join(view.keys)}) — trousseau {view.keyring}")


@keys_app.command("init", cls=command)
def keys_init(ctx: typer.Context) -> None:
    """Crée le premier trousseau d’un dossier de données créé avant le chiffrement ; refusé s’il en
    existe un. Jamais pour remplacer un trousseau perdu : restaurez-le."""
    view = key_service.init(ctx.obj.data_dir)
    typer.echo(f"Trousseau créé : {view.keyring} (clé {view.active}). Sauvegardez-le hors de la machine.")


@codec_app.command("token", cls=command)
def codec_token(ctx: typer.Context, actor: Actor,
                days: Annotated[int, typer.Option("--days", min=1, max=365, help="Durée de validité.")] = 1) -> None:
    """Un jeton personnel pour le serveur de décodage (chargés de mission, auditeurs) : il ne décode que
    ce que cette personne peut lire, chaque décodage est inscrit au journal des lectures, et il se
    révoque avec amiflow tokens revoke ID. La dernière ligne est le jeton."""
    from amiflow.stack import read_stack

    who = _claim(actor)
    issued = _use(ctx, lambda rt: codec_service.issue_token(rt, who, days, _now()), NeedTemporal.NONE)
    endpoint = (read_stack(ctx.obj) or {}).get("codec_url", "http://127.0.0.1:8234")
    typer.echo(f"Jeton {issued.id} de {who.actor}, valable jusqu’au {render.paris(issued.expires_at)} "
               f"(révocable : amiflow tokens revoke {issued.id}).\n"
               f"  serveur de décodage : {endpoint}, en-tête Authorization: Bearer JETON\n"
               f"  temporal CLI        : --codec-endpoint {endpoint} --codec-auth 'Bearer {issued.token}'\n"
               f"{issued.token}")


def main() -> None:
    """Entry point: a refusal prints its reason on stderr and exits 1, without a traceback; a usage
    error exits 2. The process ends with `os._exit` once output is flushed: the Temporal client's
    runtime can abort during interpreter finalisation, which must not turn a done command into a crash."""
    import logging

    from amiflow.logs import configure

    configure(os.environ.get("AMIFLOW_LOG_FORMAT", "console"), logging.WARNING)  # a command's output is its own
    code = _exit_code(lambda: app(args=hoist_data_dir(sys.argv[1:]), prog_name="amiflow", standalone_mode=False))
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _exit_code(call: Callable[[], Any]) -> int:
    from amiflow.errors import explain

    try:
        result = call()
    except typer.TyperException as exc:
        return french_usage_error(exc)
    except (KeyboardInterrupt, typer.Abort):
        typer.echo("Interrompu.", err=True)
        return 1
    except Exception as exc:
        reason = explain(exc)
        if reason is None:
            raise
        typer.echo(f"amiflow : {reason}", err=True)
        return 1
    if result == INTERRUPTED:  # Ctrl-C while a command waited: said, not a traceback
        typer.echo("Interrompu.", err=True)
    return result if isinstance(result, int) else 0


INTERRUPTED = 130  # what click answers to Ctrl-C


if __name__ == "__main__":
    main()

