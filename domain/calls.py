"""Calls (AMI) as data: phases or deposit sessions, holder types, sections, criteria, follow-up.

`parse_call` turns a mapping read from a file into a `Call`, or raises `CallDefinitionError`
naming the file, the field's path and the bad value. Nothing is rolled or guessed: a date that does
not exist is refused, never moved to the next month.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BeforeValidator, Field, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from domain.access import Actor, Role
from domain.calendar import add_years, date_refusal, instant_refusal, paris_date, show, start_of_day
from domain.errors import (
    MISSING,
    CallDefinitionError,
    InvalidCommand,
    InvalidInput,
    NotAllowed,
    parser_reason,
    sentence,
)
from domain.record import Record
from domain.text import LONG_MAX, name_refusal, text_refusal


class HolderType(StrEnum):
    """Kinds of project holders (porteurs) the calls name."""

    ENTREPRISE = "entreprise"
    ACTEUR_ESS = "acteur_ess"
    ECO_ORGANISME = "eco_organisme"
    COLLECTIVITE = "collectivite"
    SYNDICAT_DECHETS = "syndicat_dechets"
    BAILLEUR_SOCIAL = "bailleur_social"
    OPERATEUR_ACCOMPAGNEMENT = "operateur_accompagnement"
    ASSOCIATION = "association"
    ETABLISSEMENT_PUBLIC = "etablissement_public"

    @property
    def label(self) -> str:
        """French label, as staff read it."""
        return HOLDER_TYPE_LABELS[self]


HOLDER_TYPE_LABELS: dict[HolderType, str] = {
    HolderType.ENTREPRISE: "entreprise",
    HolderType.ACTEUR_ESS: "acteur de l’économie sociale et solidaire",
    HolderType.ECO_ORGANISME: "éco-organisme",
    HolderType.COLLECTIVITE: "collectivité locale ou groupement",
    HolderType.SYNDICAT_DECHETS: "syndicat de gestion des déchets",
    HolderType.BAILLEUR_SOCIAL: "bailleur social",
    HolderType.OPERATEUR_ACCOMPAGNEMENT: "opérateur d’accompagnement et de coordination",
    HolderType.ASSOCIATION: "association",
    HolderType.ETABLISSEMENT_PUBLIC: "établissement public (chambre consulaire, université…)",
}


class ReviewMode(StrEnum):
    """When dossiers of a phase are reviewed."""

    FIL_DE_L_EAU = "fil_de_l_eau"  # rolling: reviewed as they arrive
    APRES_CLOTURE = "apres_cloture"  # batch: reviewed once the phase or session has closed

    @property
    def label(self) -> str:
        """French label."""
        return {
            ReviewMode.FIL_DE_L_EAU: "étude au fil de l’eau",
            ReviewMode.APRES_CLOTURE: "étude après clôture",
        }[self]


class PhaseKind(StrEnum):
    """A phase of a call, or one deposit session of a call that has several."""

    PHASE = "phase"
    SESSION = "session"


def _calendar_date(value: object) -> date:
    """A real calendar date written YYYY-MM-DD; 2026-02-31 is refused, never rolled over."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    text = str(value).strip()
    parts = text.split("-")
    if len(parts) != 3 or not all(p.isdigit() for p in parts) or len(parts[0]) != 4:
        raise PydanticCustomError(
            "calendar_date",
            "ce n’est pas une date au format AAAA-MM-JJ",
            {"advice": "Écrivez la date au format AAAA-MM-JJ, par exemple 2026-06-05."},
        )
    year, month, day = (int(p) for p in parts)
    try:
        found = date(year, month, day)
    except ValueError:
        if 1 <= month <= 12:
            problem = f"cette date n’existe pas ({_MONTHS[month - 1]} {year} n’a pas de {day})"
        else:
            problem = f"cette date n’existe pas (il n’y a pas de mois {month})"
        raise PydanticCustomError(
            "calendar_date",
            problem,
            {
                "advice": "Rien n’est reporté d’office au mois suivant : écrivez dans le fichier "
                "la date réelle voulue par l’appel (à confirmer auprès du service qui le porte), "
                "puis relancez `amiflow calls validate`."
            },
        ) from None
    out_of_range = date_refusal(found)
    if out_of_range is not None:
        raise PydanticCustomError("calendar_date", out_of_range, {"advice": "Vérifiez l’année."})
    return found


_MONTHS = (
    "janvier", "février", "mars", "avril", "mai", "juin",
    "juillet", "août", "septembre", "octobre", "novembre", "décembre",
)

CalendarDate = Annotated[date, BeforeValidator(_calendar_date)]
E = TypeVar("E", bound=StrEnum)


def one_of(enum: type[E], problem: str, admitted: str) -> BeforeValidator:
    """A validator that accepts a value of `enum` and otherwise says which values are admitted."""

    def check(value: object) -> E:
        try:
            return enum(str(value))
        except ValueError:
            values = ", ".join(member.value for member in enum)
            raise PydanticCustomError("one_of", problem, {"advice": f"{admitted} : {values}."}) from None

    return BeforeValidator(check)


KnownHolderType = Annotated[HolderType, one_of(HolderType, "type de porteur inconnu", "Types admis")]
KnownReviewMode = Annotated[ReviewMode, one_of(ReviewMode, "mode d’étude inconnu", "Modes admis")]
IDENTIFIER_PATTERN = r"^[a-z0-9][a-z0-9_-]*$"
Identifier = Annotated[str, Field(pattern=IDENTIFIER_PATTERN, max_length=64)]
Text = Annotated[str, Field(min_length=1)]


def _safe_name(value: str) -> str:
    problem = name_refusal(value)
    if problem is not None:
        raise PydanticCustomError("name", problem, {"advice": "Écrivez le nom tel qu’après staff: ou committee: "
                                                              "(par exemple amelie)."})
    return value


SafeName = Annotated[str, AfterValidator(_safe_name)]


class DateRule(Record):
    """How a file states an opening or a closing: a date, or relative to another phase.

    A closing date D means "before D": the phase closes at 00:00 Paris time on D.
    `assumed` says why a date the source leaves unsaid was chosen; `source` quotes the text.
    """

    date: CalendarDate | None = None
    after_phase: Identifier | None = None
    years_after_opening: Annotated[int, Field(ge=1, le=20)] | None = None
    assumed: Text | None = None
    source: Text | None = None

    @model_validator(mode="after")
    def _one_way(self) -> DateRule:
        given = [
            n for n in ("date", "after_phase", "years_after_opening") if getattr(self, n) is not None
        ]
        if len(given) != 1:
            raise PydanticCustomError(
                "date_rule",
                "il faut exactement une des clés date, after_phase ou years_after_opening",
                {"advice": "Écrivez par exemple `date: 2026-06-05`."},
            )
        return self


class PhaseSpec(Record):
    """A phase or session as written in a call file."""

    id: Identifier
    kind: PhaseKind = PhaseKind.PHASE
    label: Text
    opens: DateRule
    closes: DateRule
    holder_types: Annotated[list[KnownHolderType], Field(min_length=1)]
    review_mode: KnownReviewMode
    description: str = ""


class Section(Record):
    """A section of the standard response dossier; every section must be filled to submit."""

    id: Identifier
    label: Text


class Criterion(Record):
    """A review criterion; reviewers score each one."""

    id: Identifier
    label: Text


class Theme(Record):
    """A theme of the call; a dossier of a call with themes names one."""

    id: Identifier
    label: Text


class FollowUpRule(Record):
    """What laureates commit to: the charter, and periodic progress reports."""

    charter: Annotated[list[Text], Field(min_length=1)]
    report_period_months: Annotated[int, Field(ge=1, le=24)]
    duration_months: Annotated[int, Field(ge=1, le=240)]
    assumed: Text | None = None


class CallFile(Record):
    """A call definition file, as written."""

    id: Identifier
    title: Text
    region: Text
    owner: Text
    contact: Text
    source: Text
    confidentiality: Text
    phases: Annotated[list[PhaseSpec], Field(min_length=1)]
    themes: list[Theme] = []
    sections: Annotated[list[Section], Field(min_length=1)]
    criteria: Annotated[list[Criterion], Field(min_length=1)]
    score_max: Annotated[int, Field(ge=1, le=20)] = 5
    reminder_days: Annotated[list[Annotated[int, Field(ge=1, le=365)]], Field(min_length=1)] = [
        30,
        7,
        1,
    ]
    follow_up: FollowUpRule
    notes: list[Text] = []
    # Years a dossier is kept after it ends (EU funds: years after the last payment, which staff mark by
    # closing the dossier); then its content may be destroyed (`amiflow audit shred`).
    retention_years: Annotated[int, Field(ge=1, le=50)] = 10
    # The staff members (names, as in `staff:NAME`) in charge of the call, who read its dossiers.
    # Empty: every staff member of the Region reads them.
    staff: list[SafeName] = []
    # The committee members (names, as in `committee:NAME`) who decide on the call's dossiers.
    # Empty: every committee member of the Region sits on it.
    committee: list[SafeName] = []


class Phase(Record):
    """A phase with its instants resolved (UTC); `*_assumed` say why a date was assumed."""

    id: str
    kind: PhaseKind
    label: str
    opens_at: datetime
    closes_at: datetime
    opens_assumed: str | None
    closes_assumed: str | None
    closes_source: str | None
    holder_types: tuple[HolderType, ...]
    review_mode: ReviewMode

    def is_open(self, now: datetime) -> bool:
        """Whether the phase is open at `now`: opened, not yet closed (its closing excluded)."""
        return self.opens_at <= now < self.closes_at


class Call(Record):
    """A call ready to run: every date real and resolved, phases in order and not overlapping."""

    id: str
    title: str
    region: str
    owner: str
    contact: str
    source: str
    confidentiality: str
    phases: tuple[Phase, ...]
    themes: tuple[Theme, ...]
    sections: tuple[Section, ...]
    criteria: tuple[Criterion, ...]
    score_max: int
    reminder_days: tuple[int, ...]
    follow_up: FollowUpRule
    notes: tuple[str, ...]
    staff: tuple[str, ...] = ()
    retention_years: int = 10
    committee: tuple[str, ...] = ()

    def phase(self, phase_id: str) -> Phase | None:
        """The phase of that id, if the call has one."""
        return next((p for p in self.phases if p.id == phase_id), None)

    def has_staff(self, name: str) -> bool:
        """Whether staff member `name` is in charge of this call (any staff member when none is named)."""
        return not self.staff or name in self.staff

    def has_committee_member(self, name: str) -> bool:
        """Whether committee member `name` sits on this call's committee (any when none is named)."""
        return not self.committee or name in self.committee

    @property
    def not_staff(self) -> str:
        """Why a staff member not named in `staff` is refused (French, lower case, no final stop)."""
        return f"vous n’êtes pas chargé de mission de cet appel ({', '.join(self.staff)})"

    @property
    def not_committee(self) -> str:
        """Why a committee member not named in `committee` is refused (French, lower case, no final stop)."""
        return f"vous ne siégez pas au comité de cet appel ({', '.join(self.committee)})"


def parse_call(data: Mapping[str, Any] | object, source: str) -> Call:
    """Validate a call definition read from `source` and resolve its dates.

    Raises:
        CallDefinitionError: the first problem found, with the file, the field's path, the bad
            value and what a person should do. Nothing is half-loaded.
    """
    if not isinstance(data, Mapping):
        raise CallDefinitionError(
            source, "(racine)", data, "le fichier doit décrire un appel (un dictionnaire YAML)",
            "Reprenez un fichier de deploy/calls/ comme modèle.",
        )
    try:
        spec = CallFile.model_validate(dict(data))
    except ValidationError as exc:
        raise definition_error(exc, data, source) from None
    _check_texts(spec, (), source)
    return _resolve(spec, source)


CALL_LIST_MAX = 100  # phases, sections, criteria, themes, notes, staff…


def _check_texts(value: object, loc: tuple[int | str, ...], source: str) -> None:
    """Every text of a call file: no control, bidirectional or invisible character (lines admitted),
    at most LONG_MAX characters; every list at most CALL_LIST_MAX entries."""
    if isinstance(value, StrEnum):
        return
    if isinstance(value, str):
        problem = text_refusal(value, _path(loc), LONG_MAX)
        if problem is not None:
            raise CallDefinitionError(source, _path(loc), value[:80], problem.message.split(" : ", 1)[-1].rstrip("."),
                                      "Retirez ce caractère ou raccourcissez le texte.")
    elif isinstance(value, Record):
        for name in type(value).model_fields:
            _check_texts(getattr(value, name), (*loc, name), source)
    elif isinstance(value, list | tuple):
        if len(value) > CALL_LIST_MAX:
            raise CallDefinitionError(source, _path(loc), f"{len(value)} éléments",
                                      f"au plus {CALL_LIST_MAX} éléments admis", "Raccourcissez la liste.")
        for i, item in enumerate(value):
            _check_texts(item, (*loc, i), source)


def definition_error(
    exc: ValidationError, data: Mapping[str, Any], source: str
) -> CallDefinitionError:
    """The first validation problem of a definition file, said for the person who edits it."""
    err = exc.errors(include_url=False)[0]
    loc = tuple(err["loc"])
    path = _path(loc)
    value = _lookup(data, loc)
    kind = err["type"]
    ctx = err.get("ctx") or {}
    if kind == "missing":
        return CallDefinitionError(
            source, path, MISSING, "champ obligatoire absent",
            "Ajoutez ce champ (voir les autres fichiers de deploy/calls/ pour un exemple).",
        )
    if kind == "extra_forbidden":
        return CallDefinitionError(
            source, path, value, "champ inconnu",
            "Retirez-le ou corrigez son nom (faute de frappe ?).",
        )
    if kind == "too_short":
        return CallDefinitionError(
            source, path, value, "la liste est vide",
            "Un appel doit avoir au moins une phase, une section du dossier et un critère."
            if loc in (("phases",), ("sections",), ("criteria",)) else "Donnez au moins un élément à cette liste.",
        )
    if kind == "string_pattern_mismatch" and ctx.get("pattern") == IDENTIFIER_PATTERN:
        return CallDefinitionError(
            source, path, value, "identifiant mal formé",
            "Un identifiant s’écrit en minuscules sans accent, chiffres, « - » et « _ », en commençant par une "
            "lettre ou un chiffre (par exemple phase-1).",
        )
    advice = str(ctx.get("advice", "Corrigez cette valeur dans le fichier."))
    return CallDefinitionError(source, path, value, parser_reason(err), advice)


def _path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not part.startswith("function-") and "[" not in part:
            out += f".{part}" if out else part
    return out or "(racine)"


def _lookup(data: object, loc: tuple[int | str, ...]) -> object:
    current = data
    for part in loc:
        if isinstance(current, Mapping) and part in current:
            current = current[part]
        elif isinstance(current, list) and isinstance(part, int) and part < len(current):
            current = current[part]
        elif isinstance(part, str) and (part.startswith("function-") or "[" in part):
            continue
        else:
            return MISSING
    return current


def _resolve(spec: CallFile, source: str) -> Call:
    for field, ids in (
        ("phases", [p.id for p in spec.phases]), ("themes", [t.id for t in spec.themes]),
        ("sections", [s.id for s in spec.sections]), ("criteria", [c.id for c in spec.criteria]),
    ):
        for i, ident in enumerate(ids):
            if ident in ids[:i]:
                raise CallDefinitionError(
                    source, f"{field}[{i}].id", ident, "identifiant en double",
                    "Donnez à chaque élément un identifiant unique.",
                )

    phases: list[Phase] = []
    for i, p in enumerate(spec.phases):
        if p.opens.years_after_opening is not None:
            raise CallDefinitionError(
                source, f"phases[{i}].opens.years_after_opening", p.opens.years_after_opening,
                "une ouverture ne peut pas dépendre d’elle-même",
                "Écrivez la date d’ouverture (`date:`) ou `after_phase:`.",
            )
        if p.opens.date is not None:
            opens_at = start_of_day(p.opens.date)
            opens_assumed = p.opens.assumed
        else:
            previous = next((q for q in phases if q.id == p.opens.after_phase), None)
            if previous is None:
                raise CallDefinitionError(
                    source, f"phases[{i}].opens.after_phase", p.opens.after_phase,
                    "cette phase n’est pas définie plus haut dans le fichier",
                    "Nommez une phase déjà décrite au-dessus de celle-ci.",
                )
            opens_at = previous.closes_at
            opens_assumed = p.opens.assumed or previous.closes_assumed
        if p.closes.after_phase is not None:
            raise CallDefinitionError(
                source, f"phases[{i}].closes.after_phase", p.closes.after_phase,
                "une clôture s’écrit par une date ou une durée",
                "Écrivez `date:` (clôture à 00:00, heure de Paris, ce jour-là) "
                "ou `years_after_opening:`.",
            )
        if p.closes.date is not None:
            closes_at = start_of_day(p.closes.date)
            closes_assumed = p.closes.assumed
        else:
            years = p.closes.years_after_opening or 0
            closes_at = start_of_day(add_years(paris_date(opens_at), years))
            closes_assumed = p.closes.assumed or opens_assumed
        if closes_at <= opens_at:
            raise CallDefinitionError(
                source, f"phases[{i}].closes.date",
                p.closes.date.isoformat() if p.closes.date else paris_date(closes_at).isoformat(),
                f"la phase « {p.label} » se clôt avant (ou quand) elle ouvre "
                f"(ouverture le {paris_date(opens_at).isoformat()})",
                "Vérifiez les deux dates de cette phase.",
            )
        for j, q in enumerate(phases):
            if opens_at < q.closes_at and q.opens_at < closes_at:
                raise CallDefinitionError(
                    source, f"phases[{i}].opens", paris_date(opens_at).isoformat(),
                    f"la phase « {p.label} » chevauche la phase « {q.label} » (phases[{j}]), "
                    f"ouverte jusqu’au {paris_date(q.closes_at).isoformat()}",
                    "Les phases d’un appel se suivent sans se chevaucher : "
                    "ouvrez celle-ci à la clôture de la précédente ou après.",
                )
        phases.append(
            Phase(
                id=p.id, kind=p.kind, label=p.label, opens_at=opens_at, closes_at=closes_at,
                opens_assumed=opens_assumed, closes_assumed=closes_assumed,
                closes_source=p.closes.source, holder_types=tuple(p.holder_types),
                review_mode=p.review_mode,
            )
        )
    return Call(
        id=spec.id, title=spec.title, region=spec.region, owner=spec.owner,
        contact=spec.contact, source=spec.source, confidentiality=spec.confidentiality,
        phases=tuple(phases), themes=tuple(spec.themes), sections=tuple(spec.sections),
        criteria=tuple(spec.criteria), score_max=spec.score_max,
        reminder_days=tuple(sorted(set(spec.reminder_days), reverse=True)),
        follow_up=spec.follow_up, notes=tuple(spec.notes), staff=tuple(spec.staff),
        retention_years=spec.retention_years, committee=tuple(spec.committee),
    )



def extend_phase(call: Call, phase_id: str, until: datetime, actor: Actor, now: datetime) -> Call:
    """The call with that phase's closing moved to `until` (staff's deadline extension).

    Raises:
        NotAllowed: the actor is not staff.
        InvalidCommand: unknown phase, a closing not later than the current one, or in the past.
    """
    if actor.role is not Role.STAFF:
        raise NotAllowed("Prolonger une phase est réservé aux chargés de mission (staff).")
    if not call.has_staff(actor.name):
        raise NotAllowed(f"« {call.id} » : {call.not_staff}.")

    phase = call.phase(phase_id)
    if phase is None:
        known = ", ".join(p.id for p in call.phases)
        raise InvalidCommand(f"L’appel « {call.id} » n’a pas de phase « {phase_id} » ({known}).")
    if until <= phase.closes_at:
        raise InvalidCommand(
            f"Une prolongation repousse la clôture : {show(until)} n’est pas après {show(phase.closes_at)}."
        )
    if until <= now:
        raise InvalidCommand(f"La nouvelle clôture ({show(until)}) doit être dans le futur.")
    out_of_range = instant_refusal(until, "la nouvelle clôture")
    if out_of_range is not None:
        raise InvalidInput(sentence(out_of_range))
    phases = tuple(p.model_copy(update={"closes_at": until}) if p.id == phase_id else p for p in call.phases)
    return call.model_copy(update={"phases": phases})
