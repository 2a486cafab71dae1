"""Commands as people give them: by name, with `--option value` pairs (CLI) or JSON fields (API)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, get_args

from pydantic import TypeAdapter, ValidationError

from amiflow.services.views import CommandOption, CommandSpec
from domain.calendar import date_refusal, instant_refusal, paris_wall_clock, start_of_day
from domain.commands import Command
from domain.errors import InvalidCommand, InvalidInput, parser_reason, sentence
from domain.inputs import check_file_size
from domain.schemes import Scheme
from domain.text import unreadable_refusal, visible

COMMAND = TypeAdapter(Command)
COMMAND_TYPES: dict[str, type[Any]] = {
    cls.model_fields["type"].default: cls for cls in get_args(get_args(Command)[0])
}
# Given by the worker or the system, never typed by a person.
NOT_TYPED = frozenset({"start-draft", "expire-draft", "escalate-complement", "escalate-review", "flag-late-report",
                       "attach-document"})
# Filled by the service, not by the person: the catalogue an orientation is made against.
FILLED = frozenset({"type", "catalogue"})

# How each option is written, in French.
OPTION_KINDS: dict[str, tuple[str, str]] = {
    "due": ("date", "échéance : AAAA-MM-JJ (00:00 heure de Paris ce jour-là) ou AAAA-MM-JJTHH:MM"),
    "until": ("date", "nouvelle échéance : AAAA-MM-JJ (00:00 heure de Paris) ou AAAA-MM-JJTHH:MM"),
    "scores": ("notes", "une note par critère : critere=note,critere=note"),
    "reviewers": ("liste", "noms des experts, séparés par des virgules"),
    "pieces": ("texte", "les pièces demandées"),
    "reason": ("texte", "le motif"),
    "reasons": ("texte", "les motifs de la décision"),
    "note": ("texte", "une note"),
    "summary": ("texte", "le rapport de suivi"),
    "opinion": ("texte", "l’avis de l’expert"),
    "statement": ("texte", "la déclaration"),
    "conflict": ("oui/non", "conflit d’intérêts : true ou false"),
    "retained": ("oui/non", "lauréat : true ou false"),
    "period": ("nombre", "la période de suivi (1 pour la première)"),
    "scheme-id": ("texte", "l’identifiant du dispositif (amiflow schemes list)"),
    "outcome": ("valeur", "recommended, filed, granted, refused ou abandoned (le suivi de la demande)"),
    "amount-eur": ("nombre", "le montant en euros"),
    "kind": ("valeur", "charter_signed (charte signée : le suivi commence) ou meeting_attended"),
    "deadline": ("valeur", "l’échéance prolongée : phase_closing, complement_due ou review_due"),
    "auditor": ("texte", "le nom de l’auditeur"),
    "content": ("fichier", "le contenu, un fichier YAML comme deploy/examples/ (sa clé content:)"),
}

COMMAND_LABELS: dict[str, str] = {
    "update-draft": "modifier le brouillon", "submit": "déposer", "withdraw": "retirer le dossier",
    "provide-complement": "répondre à une demande de complément", "file-report": "déposer un rapport de suivi",
    "acknowledge": "accuser réception", "request-complement": "demander un complément",
    "declare-complete": "déclarer complet", "assign-reviewers": "affecter des experts",
    "orient": "orienter vers les dispositifs", "record-filing": "suivre une demande de financement",
    "record-follow-up": "noter un point de suivi", "close": "clore le dossier",
    "extend-deadline": "prolonger une échéance", "declare-interests": "déclarer ses intérêts",
    "submit-review": "rendre une expertise", "decide": "décider", "grant-clearance": "habiliter un auditeur",
    "set-legal-hold": "poser une conservation légale", "lift-legal-hold": "lever la conservation légale",
    "destroy-content": "détruire le contenu",
}


def parse_instant(text: str) -> datetime:
    """A date or date-time typed by a person. A date alone means 00:00 Paris time that day — the
    instant before which something is due, as in the calls; a time without offset is Paris time, and
    must exist once there (not in the hour skipped or repeated when clocks change).

    Raises:
        InvalidCommand: not a date; InvalidInput: out of the calendar's range (years 1900 to 2200),
            or a Paris time that does not exist or exists twice.
    """
    try:
        if len(text) == 10:
            day = datetime.fromisoformat(text).date()
            value = None
        else:
            value = datetime.fromisoformat(text)
            day = value.date()
    except ValueError:
        raise InvalidCommand(f"« {visible(text)} » n’est pas une date (AAAA-MM-JJ ou AAAA-MM-JJTHH:MM).") from None
    problem = date_refusal(day)
    if problem is None and value is not None and value.tzinfo is not None:
        problem = instant_refusal(value)
    if problem is not None:
        raise InvalidInput(sentence(problem))
    return start_of_day(day) if value is None else paris_wall_clock(value)


def option_name(field: str) -> str:
    """A command field as an option: `scheme_id` → `scheme-id`."""
    return field.replace("_", "-")


def spec(name: str) -> CommandSpec:
    """A command's options, as a person gives them."""
    fields = COMMAND_TYPES[name].model_fields
    options = []
    for field, info in fields.items():
        if field in FILLED:
            continue
        option = option_name(field)
        kind, text = OPTION_KINDS.get(option, ("texte", option))
        options.append(CommandOption(name=option, kind=kind, required=info.is_required(), help=text))
    return CommandSpec(name=name, label=COMMAND_LABELS.get(name, name), options=options)


def typed_commands() -> list[str]:
    """Every command a person may type, by name."""
    return sorted(n for n in COMMAND_TYPES if n not in NOT_TYPED)


def build(name: str, options: Mapping[str, Any], catalogue: tuple[Scheme, ...] = (), files: bool = True) -> Command:
    """A decider command from its name and its options: strings as typed (lists comma-separated,
    scores as `criterion=score,…`, dates as AAAA-MM-JJ) or JSON values. `files`: whether a text may name
    a file to read (`--content FILE` on the server's command line; never over the network).

    Raises:
        InvalidCommand: unknown command or option, or a value the command refuses.
    """
    cls = COMMAND_TYPES.get(name)
    if cls is None or name in NOT_TYPED:
        raise InvalidCommand(f"Commande inconnue « {name} » (commandes : {', '.join(typed_commands())}).")
    fields = cls.model_fields
    data: dict[str, Any] = {"type": name}
    for key, raw in options.items():
        field = key.replace("-", "_")
        if field not in fields or field in FILLED:
            allowed = ", ".join("--" + option_name(f) for f in fields if f not in FILLED) or "aucune"
            raise InvalidCommand(f"Option inconnue --{key} pour « {name} » (options : {allowed}).")
        if field == "content" and isinstance(raw, str) and not files:
            raise InvalidCommand(f"« {name} » : content est le contenu du dossier (un objet), pas un nom de fichier.")
        data[field] = _value(field, str(fields[field].annotation), raw)
    if name == "orient":
        data["catalogue"] = catalogue
    try:
        return COMMAND.validate_python(data)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in err["loc"][1:]) or name
        unreadable = unreadable_refusal(err.get("input"), f"« {name} » : --{option_name(where)}")
        if err["type"] == "string_unicode" and unreadable is not None:
            raise unreadable from None
        raise InvalidCommand(f"« {name} » : --{option_name(where)} : {parser_reason(err)}.", field=where) from None


def _value(field: str, annotation: str, raw: Any) -> Any:
    if not isinstance(raw, str):  # JSON: already typed
        return raw
    if field in ("due", "until"):
        return parse_instant(raw)
    if field == "content":
        return _content(raw)
    if field == "scores":
        return _pairs(raw)
    if "tuple" in annotation:
        return tuple(v.strip() for v in raw.split(",") if v.strip())
    return raw


def _content(path: str) -> object:
    """A dossier's content from a YAML file: a whole dossier file (its `content:`) or the content alone."""
    from amiflow.catalogue import read_yaml
    from domain.errors import CallDefinitionError

    file = Path(path)
    if not file.is_file():
        raise InvalidCommand(f"--content : fichier introuvable « {visible(path)} ».")
    check_file_size(file.stat().st_size, f"--content : le fichier {visible(path)}")
    try:
        data = read_yaml(file)
    except CallDefinitionError as exc:
        raise InvalidCommand(exc.message) from None
    return data.get("content", data) if isinstance(data, dict) else data


def _pairs(raw: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for part in raw.split(","):
        key, sep, value = part.partition("=")
        if not sep or not value.strip().lstrip("-").isdigit():
            raise InvalidCommand(f"« {part} » : écrivez critère=note, par exemple solutions=4.")
        out[key.strip()] = int(value)
    return out
