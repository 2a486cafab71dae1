"""Typed refusals. Each carries a message a clerk can act on, in French."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# What a parser of input (pydantic) refused, in French (its own messages are English), by its error
# type; `{…}` come from the error's context.
PARSER_REASONS: dict[str, str] = {
    "json_invalid": "JSON illisible",
    "missing": "champ requis",
    "dict_type": "un dictionnaire (objet JSON) est attendu",
    "model_attributes_type": "un dictionnaire (objet JSON) est attendu",
    "model_type": "un dictionnaire (objet JSON) est attendu",
    "mapping_type": "un dictionnaire (objet JSON) est attendu",
    "list_type": "une liste est attendue",
    "tuple_type": "une liste est attendue",
    "too_long": "au plus {max_length} éléments",
    "too_short": "au moins {min_length} élément(s)",
    "extra_forbidden": "champ inconnu",
    "float_type": "un nombre est attendu",
    "float_parsing": "un nombre est attendu",
    "date_type": "une date AAAA-MM-JJ est attendue",
    "date_parsing": "une date AAAA-MM-JJ est attendue",
    "string_type": "un texte est attendu",
    "string_unicode": "texte illisible (caractère hors Unicode)",
    "string_too_long": "au plus {max_length} caractères",
    "string_too_short": "au moins {min_length} caractère(s)",
    "string_pattern_mismatch": "forme non admise (motif attendu : {pattern})",
    "none_required": "aucune valeur n’est attendue ici",
    "int_type": "un nombre entier est attendu",
    "int_parsing": "un nombre entier est attendu",
    "int_from_float": "un nombre entier est attendu",
    "bool_type": "true ou false est attendu",
    "bool_parsing": "true ou false est attendu",
    "greater_than_equal": "au moins {ge}",
    "greater_than": "plus de {gt}",
    "less_than": "moins de {lt}",
    "less_than_equal": "au plus {le}",
    "datetime_type": "une date et heure ISO 8601 est attendue (AAAA-MM-JJTHH:MM)",
    "datetime_parsing": "une date et heure ISO 8601 est attendue (AAAA-MM-JJTHH:MM)",
    "datetime_from_date_parsing": "une date et heure ISO 8601 est attendue (AAAA-MM-JJTHH:MM)",
    "enum": "une de ces valeurs : {expected}",
    "date_from_datetime_parsing": "une date AAAA-MM-JJ est attendue",
    "date_from_datetime_inexact": "une date AAAA-MM-JJ est attendue (sans heure)",
    "finite_number": "un nombre fini est attendu",
    "bytes_type": "un texte est attendu",
    "set_type": "une liste est attendue",
    "frozen_set_type": "une liste est attendue",
    "is_instance_of": "valeur d’un type non admis",
    "union_tag_invalid": "une de ces valeurs : {expected_tags}",
    "union_tag_not_found": "la clé {discriminator} est requise",
    "literal_error": "une de ces valeurs : {expected}",
}


def parser_reason(error: Mapping[str, Any]) -> str:
    """Why a parser of input (pydantic) refused a value, in French (lower case, no final stop)."""
    # pydantic joins the admitted values with an English "or" ('phase' or 'session').
    context = {k: str(v).replace("' or '", "' ou '") for k, v in (error.get("ctx") or {}).items()}
    if "advice" in context:  # the rules' own error (domain.calls), already French
        return str(error.get("msg", "valeur refusée"))
    if error.get("type") == "value_error" and context.get("error"):  # a validator's own French reason
        return context["error"]
    try:
        return PARSER_REASONS.get(str(error.get("type", "")), "valeur refusée").format(**context)
    except (KeyError, IndexError):
        return "valeur refusée"


def sentence(reason: str) -> str:
    """A reason (lower case, no final stop, as the read log keeps it) as a sentence of a message."""
    return f"{reason[:1].upper()}{reason[1:]}."


class DomainError(Exception):
    """A command or a definition the rules refuse; `code` lets callers branch, `message` explains."""

    code = "refused"
    # Which input the refusal is about, when it is one: its path in the dossier as submitted
    # (`reference`, `content.holder_type`, `content.sections.impacts`, `content.partners[2]`), so that
    # a form shows the refusal next to that field. None: the command as a whole (a closed phase…).
    field: str | None = None

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if field is not None:
            self.field = field


class NotAllowed(DomainError):
    """The actor's role, or identity, may not take this action."""

    code = "not_allowed"


class InvalidTransition(DomainError):
    """The dossier's status does not allow this command."""

    code = "invalid_transition"


class PhaseClosed(DomainError):
    """The phase is not open at the instant of the command."""

    code = "phase_closed"


class NotEligible(DomainError):
    """The holder's type is not eligible for the phase."""

    code = "not_eligible"


class IncompleteDossier(DomainError):
    """A required section or answer is missing."""

    code = "incomplete_dossier"


class InvalidCommand(DomainError):
    """The command's own values are wrong (a due date in the past, an unknown criterion…)."""

    code = "invalid_command"


class InvalidInput(InvalidCommand):
    """A text, name or date no entry point accepts: a forbidden character, beyond its limits, out of range."""

    code = "invalid_input"


class TooLarge(InvalidInput):
    """Beyond a size limit (a text, a list, a file, a dossier): the refusal states the limit."""

    code = "too_large"


class NoFittingScheme(DomainError):
    """Orientation found no scheme of the catalogue that fits the dossier."""

    code = "no_fitting_scheme"


class CallDefinitionError(DomainError):
    """A call definition file is invalid; names the file, the field's path and the bad value."""

    code = "invalid_call"

    def __init__(self, source: str, path: str, value: object, problem: str, advice: str) -> None:
        self.source = source
        self.path = path
        self.value = value
        self.problem = problem
        self.advice = advice
        shown = "(absent)" if value is _MISSING else repr(value)
        super().__init__(f"{source}: {path} = {shown} : {problem}. {advice}")


class _Missing:
    def __repr__(self) -> str:
        return "(absent)"


_MISSING = _Missing()
MISSING: object = _MISSING
