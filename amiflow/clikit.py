"""What every command of the CLI shares: its options, the French help and usage errors, and the call
of a use case on the stack."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
import typer.core
from typer.core import TyperCommand, TyperGroup

from amiflow import render
from amiflow.api_client import ApiClient
from amiflow.bootstrap import NeedTemporal, Runtime, run
from amiflow.services import Principal, ReadRefused
from amiflow.services import audit as audit_service
from amiflow.services import calls as call_service
from amiflow.services import dossiers as dossier_service
from amiflow.services import people as people_service
from amiflow.services.audit import VerifyReport
from amiflow.services.people import TokenIssued, TokenView
from amiflow.services.views import (
    AttachView,
    CallView,
    CommandSpec,
    DossierPage,
    DossierView,
    HistoryView,
    TimelineView,
)
from domain.access import Role
from domain.state import DocumentRef
from workflows.call import ExtensionResult
from workflows.dossier import CommandResult

T = TypeVar("T")

HELP = "Affiche cette aide."
# click's section titles and markers, in French (typer.core looks them up through gettext).
WORDS = {"Options": "Options", "Commands": "Commandes", "Arguments": "Arguments", "required": "obligatoire",
         "default: {default}": "défaut : {default}", "env var: {var}": "variable : {var}",
         "Missing command.": "Commande manquante.", "Aborted!": "Interrompu."}


def _french(message: str) -> str:
    return WORDS.get(message, message)


typer.core._ = _french  # type: ignore[attr-defined]

DataDir = Annotated[Path | None, typer.Option("--data-dir", envvar="AMIFLOW_DATA_DIR", metavar="DOSSIER",
                                              help="Dossier de données de la pile (défaut .amiflow/) ; "
                                                   "accepté aussi après la commande.")]
Actor = Annotated[str, typer.Option("--as", metavar="ROLE:NOM", help="Qui agit : ROLE:NOM, par exemple staff:amelie.")]
Acting = Annotated[str | None, typer.Option("--as", metavar="ROLE:NOM", help="Qui agit : ROLE:NOM, par exemple "
                                            "staff:amelie (sur le serveur ; avec --api, le jeton dit qui agit).")]
Api = Annotated[str | None, typer.Option("--api", envvar="AMIFLOW_API_URL", metavar="URL",
                                         help="Passer par l’API HTTP à cette adresse, avec le jeton personnel de "
                                              "AMIFLOW_TOKEN (qui agit et lit) ; accepté aussi après la commande.")]
Reader = Annotated[str | None, typer.Option("--as", metavar="ROLE:NOM", help="Qui lit : ROLE:NOM ; le contenu n’est "
                                            "montré qu’à qui a le droit d’en connaître (sans --as : métadonnées).")]
Json = Annotated[bool, typer.Option("--json", help="Sortie JSON (pour les scripts).")]
Ident = Annotated[str, typer.Argument(metavar="ID", help="Identifiant du dossier.")]
Paths = Annotated[list[Path] | None, typer.Argument(metavar="FICHIERS", show_default=False,
                                                    help="Fichiers ou dossiers d’appels (par défaut : deploy/calls).")]


class _French:
    """French `--help` and usage line for click commands and groups."""

    def get_help_option(self, ctx: Any) -> Any:
        option = super().get_help_option(ctx)  # type: ignore[misc]
        if option is not None:
            option.help = HELP
        return option

    def format_usage(self, ctx: Any, formatter: Any) -> None:
        pieces = self.collect_usage_pieces(ctx)  # type: ignore[attr-defined]
        formatter.write_usage(ctx.command_path, " ".join(pieces), prefix="Usage : ")


class Group(_French, TyperGroup):
    """A group of commands, helped in French."""


class Command(_French, TyperCommand):
    """A command, helped in French."""


class OwnHelp(Command):
    """A command that answers `--help` itself (`dossier do`: the commands this person may give)."""

    def get_help_option(self, ctx: Any) -> Any:
        return None


def group(text: str) -> typer.Typer:
    """A group of commands, helped in French."""
    return typer.Typer(help=text, cls=Group, no_args_is_help=True, add_completion=False, rich_markup_mode=None,
                       pretty_exceptions_enable=False)


def command_class(own_help: bool = False) -> type[TyperCommand]:
    """The click class of a command."""
    return OwnHelp if own_help else Command


ROOT_OPTIONS = ("--data-dir", "--api")


def hoist_data_dir(args: list[str]) -> list[str]:
    """`--data-dir DIR` and `--api URL` are the root's options; accept them after any command too, as
    people write them."""
    out, hoisted = [], []
    rest = list(args)
    while rest:
        arg = rest.pop(0)
        if arg in ROOT_OPTIONS and rest:
            hoisted += [arg, rest.pop(0)]
        elif arg.startswith(tuple(f"{o}=" for o in ROOT_OPTIONS)):
            hoisted.append(arg)
        else:
            out.append(arg)
    return hoisted + out


USAGE_WORDS = [
    (r"^No such option: (.*?)(?: \(Possible options: (.*)\))?$", r"option inconnue : \1"),
    (r"^Missing option '(.*)'\.?(.*)$", r"option obligatoire manquante : \1\2"),
    (r"^Missing argument '(.*)'\.?$", r"argument manquant : \1"),
    (r"^Missing parameter: (.*)$", r"paramètre manquant : \1"),
    (r"^Invalid value for (.*?): (.*)$", r"valeur invalide pour \1 : \2"),
    (r"^Got unexpected extra arguments? \((.*)\)$", r"argument(s) en trop : \1"),
    (r"^No such command '(.*)'\.$", r"commande inconnue : « \1 »"),
    (r"^Option '(.*)' requires an argument\.$", r"l’option \1 attend une valeur"),
    (r"^Missing command\.$", "commande manquante"),
    (r"^Invalid value: (.*)$", r"\1"),
]


def french_usage_error(exc: Exception) -> int:
    """Say a usage error in French on stderr, with the command's usage; its exit code (2)."""
    code = int(getattr(exc, "exit_code", 2))
    ctx = getattr(exc, "ctx", None)
    format_message = getattr(exc, "format_message", None)
    if format_message is None:  # typer.Exit and the like carry only a code
        return code
    message = str(format_message())
    if type(exc).__name__ == "NoArgsIsHelpError":
        typer.echo(message, err=True)
        return code
    for pattern, french in USAGE_WORDS:
        message = re.sub(pattern, french, message)
    if ctx is not None:
        typer.echo(ctx.get_usage(), err=True)
        typer.echo(f"Aide : {ctx.command_path} --help", err=True)
    typer.echo(f"amiflow : {message}", err=True)
    return code


def now() -> datetime:
    """The instant a command runs."""
    return datetime.now(UTC)


# The `--as` of the command being run (one command per process), checked against the directory by `use`.
_claims: list[Principal] = []
# The API and personal token of the command being run, when the CLI works as an API client (`--api`).
_api: list[tuple[str, str]] = []


def connect(url: str | None, token: str | None) -> None:
    """`--api URL` with `AMIFLOW_TOKEN`: the commands go to the HTTP API as the token's person."""
    _claims.clear()
    _api.clear()
    if not url:
        return
    if not token:
        raise usage("--api demande un jeton personnel dans AMIFLOW_TOKEN (amiflow tokens issue).")
    if not url.startswith(("http://", "https://")):
        raise usage(f"--api attend une adresse http(s)://…, pas « {url} ».")
    _api.append((url, token))


def remote() -> tuple[str, str] | None:
    """The API and token the command works through, or None: in process, on the server."""
    return _api[0] if _api else None


def usage(message: str) -> typer.BadParameter:
    """A usage error (exit 2), said as is."""
    return typer.BadParameter(message)


class Local:
    """The service functions the command line uses, in process on the stack (the operator's side of
    amiflow.api_client.ApiClient: same names, same arguments)."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    async def calls(self) -> list[CallView]:
        return call_service.listing(self.rt)

    async def extend(self, who: Principal | None, call_id: str, phase_id: str, until: datetime) -> ExtensionResult:
        return await call_service.extend(self.rt, _acting(who), call_id, phase_id, until)

    async def listing(self, now: datetime, call_id: str | None = None, status: str | None = None,
                      phase_id: str | None = None, overdue: bool = False, after: str | None = None,
                      limit: int | None = None, *, tab: str | None = None, order: str = "id") -> DossierPage:
        return await dossier_service.listing(self.rt, now, call_id, status, phase_id, overdue, after, limit, tab=tab,
                                             order=order)

    async def show(self, who: Principal | None, dossier_id: str, now: datetime, as_of: datetime | None = None,
                   all_deadlines: bool = False) -> DossierView:
        return await dossier_service.show(self.rt, who, dossier_id, now, as_of, all_deadlines)

    async def history(self, who: Principal | None, dossier_id: str, now: datetime,
                      bodies: bool = False) -> HistoryView:
        return await dossier_service.history(self.rt, who, dossier_id, now, bodies=bodies)

    async def timeline(self, who: Principal | None, dossier_id: str, now: datetime) -> TimelineView:
        return await dossier_service.timeline(self.rt, _acting(who), dossier_id, now)

    async def available(self, who: Principal | None, dossier_id: str, now: datetime) -> list[CommandSpec]:
        return await dossier_service.available(self.rt, _acting(who), dossier_id, now)

    async def command(self, who: Principal | None, dossier_id: str, name: str,
                      options: dict[str, str]) -> CommandResult:
        return await dossier_service.command(self.rt, _acting(who), dossier_id, name, options)

    async def submit(self, who: Principal | None, call_id: str, file: Path, now: datetime) -> CommandResult:
        return await dossier_service.submit(self.rt, _acting(who), call_id, file, now)

    async def attach(self, who: Principal | None, dossier_id: str, file: Path) -> AttachView:
        return await dossier_service.attach(self.rt, _acting(who), dossier_id, file)

    async def document(self, who: Principal | None, dossier_id: str, document_id: str,
                       now: datetime) -> tuple[DocumentRef, bytes]:
        ref, data = await dossier_service.document(self.rt, _acting(who), dossier_id, document_id, now)
        return ref, data

    async def verify(self, dossier_id: str | None = None, anchors: Path | None = None) -> VerifyReport:
        return await audit_service.verify(self.rt, dossier_id, anchors)

    async def export(self, who: Principal | None, dossier_id: str, out: Path, now: datetime,
                     today: date) -> dict[str, Any]:
        return await audit_service.export(self.rt, _acting(who), dossier_id, out, now, today)

    async def tokens(self, name: str | None = None, now: datetime | None = None) -> list[TokenView]:
        return await people_service.tokens(self.rt, name, now)

    async def issue_token(self, name: str | None, days: int, now: datetime, role: Role | None = None,
                          label: str | None = None) -> TokenIssued:
        if name is None:
            raise usage("argument manquant : NOM (à qui est le jeton ?)")
        return await people_service.issue_token(self.rt, name, days, now, role, label)


Services = Local | ApiClient


def _acting(who: Principal | None) -> Principal:
    if who is None:  # `who` asks for --as on the server: never None here
        raise usage("option obligatoire manquante : --as")
    return who


def serve(ctx: typer.Context, work: Callable[[Services], Awaitable[T]],
          temporal: NeedTemporal = NeedTemporal.REQUIRED) -> T:
    """Run one use case through the services: over the HTTP API as the token's person (`--api`), or
    in process on the stack (`use`)."""
    api = remote()
    if api is None:
        return use(ctx, lambda rt: work(Local(rt)), temporal)

    async def through() -> T:
        async with ApiClient(*api) as client:
            return await work(client)

    return asyncio.run(through())


def use(ctx: typer.Context, work: Callable[[Runtime], Awaitable[T]],
        temporal: NeedTemporal = NeedTemporal.REQUIRED) -> T:
    """Run one use case against the stack of the command's settings, once every person the operator
    named with `--as` is found in the directory with that role."""
    from amiflow.services import people

    if remote() is not None:
        raise usage("cette commande se donne sur le serveur, sans --api (elle n’existe pas par l’API).",
                               )
    claims = list(_claims)

    async def checked(rt: Runtime) -> T:
        for claim in claims:
            await people.check_operator(rt, claim)
        return await work(rt)

    return run(ctx.obj, checked, temporal)


def os_user() -> str:
    """Who runs the command on the server (the OS account), in the safe characters the journal keeps."""
    import getpass

    try:
        name = getpass.getuser()
    except (OSError, KeyError):  # no login name, no passwd entry (containers)
        return "inconnu"
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)[:64] or "inconnu"


def console() -> Principal:
    """The operator on the server themself, acting for nobody of the directory (`tokens revoke`)."""
    from domain.access import Actor, Role

    return Principal(Actor(role=Role.SYSTEM, name="operateur"), via="cli", os_user=os_user())


def who(text: str | None) -> Principal | None:
    """The person an operator names with `--as`, on the server: recorded with the operator's OS user,
    and checked against the directory before the command runs (`use`). Through the API the token is
    who acts: no `--as` (None)."""
    if remote() is not None:
        if text is not None:
            raise usage("--as n’a pas de sens avec --api : le jeton (AMIFLOW_TOKEN) dit qui agit.")
        return None
    if text is None:
        raise usage("option obligatoire manquante : --as ROLE:NOM (qui agit ?)")
    principal = Principal.operator(text, os_user=os_user())
    _claims.append(principal)
    return principal


def claim(text: str) -> Principal:
    """`who` for the commands given only on the server (no --api)."""
    if remote() is not None:
        raise usage("cette commande se donne sur le serveur, sans --api (elle n’existe pas par l’API).")
    principal = who(text)
    assert principal is not None
    return principal


def refusal(exc: ReadRefused, as_json: bool) -> None:
    """A refused read: the reason on stderr, and as JSON on stdout for scripts."""
    if as_json:
        typer.echo(render.dump(exc.view or {"content_granted": False, "reason": exc.message}))
    raise exc
