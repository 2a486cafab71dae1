"""What the back office needs to offer a command as a form: which commands are irreversible (and ask
for a confirmation first, in French), the choices of a field whose values are fixed by the rules (with
their French labels), who may look at a dossier as it stood at a past instant, and the French names of
the timeline's events and reads. Pure: no I/O."""

from __future__ import annotations

import typing
from enum import Enum

from domain.access import AuditOperation, Role
from domain.commands import Command
from domain.reading import Reading
from domain.state import FollowUpKind

# Steps that cannot be undone: the dossier ends, a decision or an orientation is final, a content is
# destroyed, an auditor is let in for good (a clearance is never withdrawn).
CONFIRMATIONS: dict[str, str] = {
    "close": "Clore le dossier {dossier} ?",
    "withdraw": "Retirer le dossier {dossier} ?",
    "destroy-content": "Détruire le contenu du dossier {dossier} ?",
    "decide": "Rendre la décision du comité sur le dossier {dossier} ?",
    "orient": "Orienter le dossier {dossier} vers les dispositifs ?",
    "grant-clearance": "Habiliter cet auditeur à lire le dossier {dossier} ?",
    "lift-legal-hold": "Lever la conservation légale du dossier {dossier} ?",
}

FOLLOW_UP_LABELS: dict[FollowUpKind, str] = {
    FollowUpKind.CHARTER_SIGNED: "charte signée (le suivi commence)",
    FollowUpKind.MEETING_ATTENDED: "participation à une réunion",
}

EVENT_LABELS: dict[str, str] = {
    "draft_started": "brouillon commencé", "draft_updated": "brouillon modifié", "submitted": "dossier déposé",
    "withdrawn": "dossier retiré", "complement_provided": "complément fourni",
    "report_filed": "rapport de suivi déposé",
    "acknowledged": "accusé de réception", "complement_requested": "complément demandé",
    "declared_complete": "dossier déclaré complet", "reviewers_assigned": "experts affectés",
    "oriented": "orienté vers des dispositifs", "filing_recorded": "demande de financement suivie",
    "follow_up_recorded": "point de suivi noté", "closed": "dossier clos", "deadline_extended": "échéance prolongée",
    "interests_declared": "intérêts déclarés", "reviewer_recused": "expert déporté (conflit d’intérêts)",
    "review_submitted": "expertise rendue", "decision_taken": "décision du comité", "draft_expired": "brouillon expiré",
    "complement_overdue": "complément en retard (alerte)", "review_overdue": "expertise en retard (alerte)",
    "report_late": "rapport de suivi en retard", "document_attached": "document joint",
    "clearance_granted": "auditeur habilité", "legal_hold_set": "conservation légale posée",
    "legal_hold_lifted": "conservation légale levée", "content_destroyed": "contenu détruit",
}

READ_LABELS: dict[str, str] = {
    **{r.value: r.label for r in Reading}, **{a.value: a.label for a in AuditOperation},
    "commands": "commandes possibles", "timeline": "chronologie",
}

# Who is offered « voir le dossier tel qu’il était le… »: those who check what was done, and when.
AS_OF_ROLES = frozenset({Role.STAFF, Role.AUDITOR})
# Who sees the clearances granted on a dossier (who, why, when).
CLEARANCE_ROLES = frozenset({Role.STAFF, Role.AUDITOR})


def is_irreversible(command: str) -> bool:
    """Whether giving `command` cannot be undone, so that a person confirms it first."""
    return command in CONFIRMATIONS


def confirmation(command: str, dossier: str) -> str:
    """The question a person answers before an irreversible step: « Clore le dossier X ? »."""
    return CONFIRMATIONS.get(command, "Donner cette commande au dossier {dossier} ?").format(dossier=dossier)


def _label(value: Enum) -> str:
    if isinstance(value, FollowUpKind):
        return FOLLOW_UP_LABELS[value]
    label = getattr(value, "label", None)
    return label if isinstance(label, str) else str(value.value)


def choices(command: str, option: str) -> list[tuple[str, str]]:
    """The values a command's field takes, with their French labels, when the rules fix them (an
    enumeration or a closed list of values), else []. `option` is written as a person gives it
    (`scheme-id`)."""
    classes = {c.model_fields["type"].default: c for c in typing.get_args(typing.get_args(Command)[0])}
    cls = classes.get(command)
    info = cls.model_fields.get(option.replace("-", "_")) if cls is not None else None
    if info is None:
        return []
    kinds = [a for a in (info.annotation, *typing.get_args(info.annotation)) if a is not None]
    for kind in kinds:
        if isinstance(kind, type) and issubclass(kind, Enum):
            return [(str(v.value), _label(v)) for v in kind]
    literal = [v for v in typing.get_args(info.annotation) if isinstance(v, Enum)]
    if typing.get_origin(info.annotation) is typing.Literal and literal:
        return [(str(v.value), _label(v)) for v in literal]
    return []


def event_label(event_type: str | None) -> str:
    """An event's French name in a timeline."""
    return EVENT_LABELS.get(event_type or "", event_type or "")


def read_label(what: str | None) -> str:
    """What a read was of, in French: « contenu du dossier », « document doc-… », « export d’un bundle… »."""
    text = what or ""
    base, at, instant = text.partition("@")
    if base.startswith("document:"):
        label = f"document {base.removeprefix('document:')}"
    else:
        label = READ_LABELS.get(base, base)
    return f"{label} (tel qu’au {instant})" if at else label
