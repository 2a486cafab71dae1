"""A reviewer's assignment as they work it, and the committee's decision form.

`stage(state, reviewer)`: where the reviewer's work on the dossier stands — interests to declare
first (nothing of the content is shown before), then the review to give, then given; « closed » when
the dossier left the review without theirs (decided, withdrawn, closed). None when the reviewer is not
(or no longer: a declared conflict ends the assignment) assigned to it.

`read_declaration` and `read_decision`: a form's answers (texts as a browser sends them) read into a
command's values, or the French reason, by field name, that each one is refused.
"""

from __future__ import annotations

from enum import StrEnum

from domain.state import DossierState, Status

YES, NO = "oui", "non"


class Stage(StrEnum):
    """Where a reviewer's work on one dossier stands."""

    TO_DECLARE = "a-declarer"
    TO_REVIEW = "a-rendre"
    REVIEWED = "rendue"
    CLOSED = "close"

    @property
    def label(self) -> str:
        """French label, as the reviewer's list shows it."""
        return STAGE_LABELS[self]


STAGE_LABELS: dict[Stage, str] = {
    Stage.TO_DECLARE: "intérêts à déclarer",
    Stage.TO_REVIEW: "expertise à rendre",
    Stage.REVIEWED: "expertise rendue",
    Stage.CLOSED: "expertise close sans avis",
}


def stage(state: DossierState, reviewer: str) -> Stage | None:
    """The reviewer's stage on the dossier (None: not assigned, or recused)."""
    assignment = state.assignment(reviewer)
    if assignment is None:
        return None
    if state.review_of(reviewer) is not None:
        return Stage.REVIEWED
    if state.status is not Status.UNDER_REVIEW:
        return Stage.CLOSED
    return Stage.TO_REVIEW if assignment.declared else Stage.TO_DECLARE


def _yes_no(answer: str | None) -> bool | None:
    return {YES: True, NO: False}.get((answer or "").strip())


def read_declaration(conflict: str | None) -> tuple[bool | None, dict[str, str]]:
    """Whether the reviewer declares a conflict of interest (« oui »/« non »), or why the answer is refused."""
    found = _yes_no(conflict)
    if found is None:
        return None, {"conflict": "Indiquez si vous avez un conflit d’intérêts avec ce porteur (oui ou non)."}
    return found, {}


def read_decision(retained: str | None, reasons: str) -> tuple[bool | None, dict[str, str]]:
    """Whether the committee retains the dossier (« oui »/« non ») with its reasons, or why the form is refused."""
    found = _yes_no(retained)
    errors: dict[str, str] = {}
    if found is None:
        errors["retained"] = "Indiquez si le dossier est retenu (oui ou non)."
    if not reasons.strip():
        errors["reasons"] = "Donnez les motifs de la décision : ils sont communiqués avec elle."
    return (None if errors else found), errors
