"""Reading the definitions shipped in deploy/: call files, the scheme catalogue, dossier files.

YAML is read with the base loader: every scalar arrives as text, so a date like 2026-02-31 reaches
the domain's validation as written (PyYAML's own date parsing would crash on it or hide it).
"""

from __future__ import annotations

import errno
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from domain.calls import Call, parse_call
from domain.errors import CallDefinitionError, DomainError, InvalidCommand, parser_reason
from domain.inputs import DOSSIER_FILE_MAX, check_dossier, check_file_size
from domain.schemes import Scheme, parse_schemes
from domain.state import DossierContent
from domain.text import KEY_MAX, check_text, unreadable_refusal

ROOT = Path(__file__).resolve().parent.parent
CALLS_DIR = ROOT / "deploy" / "calls"
FILE_MAX = DOSSIER_FILE_MAX  # a call, the catalogue or a dossier: a few pages of text each
SCHEMES_FILE = ROOT / "deploy" / "schemes.yaml"


class _Loader(yaml.BaseLoader):
    """The base loader without aliases: `*name` would let a few lines expand into billions of nodes."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise yaml.composer.ComposerError(None, None, "alias YAML (*nom) refusé", event.start_mark)
        return super().compose_node(parent, index)


def read_yaml(path: Path) -> Any:
    """Parse a YAML file (at most FILE_MAX bytes, no aliases), every scalar as text.

    Raises:
        CallDefinitionError: the file is missing, too large or is not YAML (with the line when known).
    """
    try:
        size = path.stat().st_size
        if size > FILE_MAX:
            raise CallDefinitionError(
                str(path), "(fichier)", f"{size} octets", f"fichier trop volumineux (au plus {FILE_MAX // 1024} Kio)",
                "Une définition tient en quelques pages ; les pièces se joignent à part.",
            )
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CallDefinitionError(
            str(path), "(fichier)", str(path), f"lecture impossible ({os_reason(exc)})",
            "Vérifiez le chemin du fichier.",
        ) from None
    except UnicodeDecodeError as exc:
        raise CallDefinitionError(
            str(path), f"octet {exc.start + 1}", "(encodage)", "le fichier n’est pas en UTF-8",
            "Enregistrez le fichier en UTF-8.",
        ) from None
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - BaseLoader builds no objects
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"ligne {mark.line + 1}, colonne {mark.column + 1}" if mark else "(fichier)"
        raise CallDefinitionError(
            str(path), where, "(syntaxe)", f"YAML invalide : {yaml_reason(getattr(exc, 'problem', None))}",
            "Corrigez la syntaxe (un « : » dans un texte impose des guillemets autour du texte).",
        ) from None


# PyYAML's problems (English), said in French; `\1` is the character or token it names.
YAML_REASONS: tuple[tuple[str, str], ...] = (
    (r"^alias YAML .*", r"\g<0>"),  # the loader's own refusal, already French
    (r"^mapping values are not allowed here$", "« : » inattendu (un texte qui contient « : » se met entre guillemets)"),
    (r"^(mapping keys|sequence entries) are not allowed here$", "retrait incohérent (clé ou tiret « - » mal aligné)"),
    (r"^found character '\\t' that cannot start any token$",
     "tabulation interdite (les retraits se font par des espaces)"),
    (r"^found character (.*) that cannot start any token$",
     r"caractère \1 interdit en début de valeur (mettez le texte entre guillemets)"),
    (r"^found unexpected end of stream$", "fin du fichier inattendue (guillemet non refermé ?)"),
    (r"^found unexpected document separator$", "séparateur de document « --- » inattendu"),
    (r"^(but found another document|expected a single document in the stream)$",
     "un seul document par fichier (« --- » en trop)"),
    (r"^expected '?(.)'? or '?(.)'?, but got .*$",
     r"« \1 » ou « \2 » attendu (liste ou dictionnaire entre crochets non refermé ?)"),
    (r"^could not find expected ':'$",
     "« : » attendu (une clé sans valeur, ou un texte sur plusieurs lignes sans guillemets ?)"),
    (r"^expected <block end>, but found .*$", "retrait incohérent (un élément n’est pas aligné avec les autres)"),
    (r"^invalid indentation or unclosed '\[' or '\{'$", "retrait incohérent ou « [ », « { » non refermé"),
    (r"^found unknown escape character (.*)$", r"séquence d’échappement inconnue \1 dans un texte entre guillemets"),
    (r"^found duplicate anchor .*|^second occurrence$", "ancre YAML (&nom) en double"),
    (r"^found undefined (alias|tag handle) .*$", "alias ou étiquette YAML non défini"),
    (r"^special characters are not allowed$", "caractère spécial interdit à cet endroit"),
    (r"^expected .*, but found .*$", "syntaxe inattendue à cet endroit"),
)


def yaml_reason(problem: str | None) -> str:
    """What PyYAML found wrong, in French (its own words are English)."""
    for pattern, french in YAML_REASONS:
        found = re.match(pattern, problem or "")
        if found:
            return found.expand(french)
    return "syntaxe non reconnue"


def os_reason(exc: OSError) -> str:
    """Why a file could not be read, in French (the system's own words are English)."""
    return {errno.ENOENT: "fichier introuvable", errno.EACCES: "accès refusé", errno.EPERM: "accès refusé",
            errno.EISDIR: "c’est un dossier, pas un fichier",
            errno.ENOTDIR: "un élément du chemin n’est pas un dossier",
            errno.ENAMETOOLONG: "nom de fichier trop long", errno.ELOOP: "trop de liens symboliques"}.get(
        exc.errno or 0, f"erreur système {errno.errorcode.get(exc.errno or 0, exc.errno)}")


def load_call(path: Path) -> Call:
    """Load and validate one call file; raises `CallDefinitionError`, never half-loads."""
    return parse_call(read_yaml(path), _shown(path))


@dataclass
class CallSet:
    """The calls that loaded, and the files refused with their error."""

    calls: list[Call] = field(default_factory=list)
    refused: list[CallDefinitionError] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)  # call id -> file it came from


def call_files(paths: Sequence[Path] = ()) -> list[Path]:
    """The YAML files named, or found in the folders named (default: deploy/calls)."""
    found: list[Path] = []
    for path in paths or (CALLS_DIR,):
        if path.is_dir():
            found.extend(sorted([*path.glob("*.yaml"), *path.glob("*.yml")]))
        else:
            found.append(path)
    return found


def load_calls(paths: Iterable[Path] = ()) -> CallSet:
    """Load every call file; each valid file loads, each invalid one is listed as refused."""
    result = CallSet()
    seen: dict[str, str] = {}
    for path in call_files(tuple(paths)):
        try:
            call = load_call(path)
        except CallDefinitionError as exc:
            result.refused.append(exc)
            continue
        if call.id in seen:
            result.refused.append(CallDefinitionError(
                _shown(path), "id", call.id, f"identifiant déjà pris par {seen[call.id]}",
                "Chaque appel a son propre identifiant.",
            ))
            continue
        seen[call.id] = result.files[call.id] = _shown(path)
        result.calls.append(call)
    return result


def load_schemes(path: Path = SCHEMES_FILE) -> tuple[Scheme, ...]:
    """Load the financing-scheme catalogue."""
    return parse_schemes(read_yaml(path), _shown(path))


@dataclass(frozen=True)
class DossierFile:
    """A dossier as a holder prepares it in a file: which call and phase, a reference, content."""

    call: str
    phase: str
    reference: str
    content: DossierContent


def load_dossier(path: Path, shown: str | None = None) -> DossierFile:
    """Read a dossier file (see deploy/examples/); `shown` names it in refusals (its path by default;
    the API says « dossier envoyé », never a server path).

    Raises:
        InvalidCommand: the file is unreadable or malformed, with the field's path.
        InvalidInput, TooLarge: a text, a list or the file beyond the limits of `domain.inputs`.
    """
    name = shown or _shown(path)
    if path.is_file():
        check_file_size(path.stat().st_size, f"Le {name}" if shown else f"Le fichier {name}")
    try:
        data = read_yaml(path)
    except CallDefinitionError as exc:
        raise InvalidCommand(exc.message) from None
    return dossier_from(data, name)


def dossier_from(data: object, name: str) -> DossierFile:
    """A dossier read from its data (as a file holds it: call, phase, reference, content), checked as
    `load_dossier` checks a file; `name` names it in refusals.

    Raises:
        InvalidCommand, InvalidInput, TooLarge: as `load_dossier`.
    """
    if not isinstance(data, dict):
        raise InvalidCommand(f"{name} : un dossier est un dictionnaire YAML.")
    missing = [k for k in ("call", "phase", "reference", "content") if k not in data]
    if missing:
        raise InvalidCommand(f"{name} : champs absents : {', '.join(missing)}.")
    not_text = [k for k in ("call", "phase", "reference") if not isinstance(data[k], str)]
    if not_text:
        raise InvalidCommand(f"{name} : {', '.join(not_text)} : un texte d’une ligne est attendu.")
    try:
        content = DossierContent.model_validate(data["content"])
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in ("content", *err["loc"]))
        unreadable = unreadable_refusal(err.get("input"), f"{name} : {where}")
        if err["type"] == "string_unicode" and unreadable is not None:
            raise unreadable from None
        raise InvalidCommand(f"{name} : {where} : {parser_reason(err)}.", field=where) from None
    try:
        check_dossier(data["reference"], content)
        for key in ("call", "phase"):
            check_text(data[key], key, KEY_MAX, multiline=False)
    except DomainError as exc:
        raise type(exc)(f"{name} : {exc.message}", exc.field) from None
    return DossierFile(call=data["call"], phase=data["phase"], reference=data["reference"], content=content)


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)
