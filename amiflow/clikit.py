"""What every command of the CLI shares: its options, the French help and usage errors, and the call
of a use case on the stack."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
import typer.core
from typer.core import TyperCommand, TyperGroup

from amiflow import render
from amiflow.bootstrap import NeedTemporal, Runtime, run
from amiflow.services import Principal, ReadRefused

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


def hoist_data_dir(args: list[str]) -> list[str]:
    """`--data-dir DIR` is the root's option; accept it after any command too, as people write it."""
    out, hoisted = [], []
    rest = list(args)
    while rest:
        arg = rest.pop(0)
        if arg == "--data-dir" and rest:
            hoisted += [arg, rest.pop(0)]
        elif arg.startswith("--data-dir="):
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


def use(ctx: typer.Context, work: Callable[[Runtime], Awaitable[T]],
        temporal: NeedTemporal = NeedTemporal.REQUIRED) -> T:
    """Run one use case against the stack of the command's settings, once every person the operator
    named with `--as` is found in the directory with that role."""
    from amiflow.services import people

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


def who(text: str) -> Principal:
    """The person an operator names with `--as`, on the server: recorded with the operator's OS user,
    and checked against the directory before the command runs (`use`)."""
    principal = Principal.operator(text, os_user=os_user())
    _claims.append(principal)
    return principal


def refusal(exc: ReadRefused, as_json: bool) -> None:
    """A refused read: the reason on stderr, and as JSON on stdout for scripts."""
    if as_json:
        typer.echo(render.dump(exc.view or {"content_granted": False, "reason": exc.message}))
    raise exc
