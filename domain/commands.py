"""The commands people (and the deadlines) give on a dossier; the decider turns them into events."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from domain.calls import Call
from domain.record import Record
from domain.schemes import Scheme
from domain.state import DeadlineKind, DocumentRef, DossierContent, FilingStatus, FollowUpKind, Instant


class StartDraft(Record):
    """Holder: open a draft for a phase of a call (the call's definition is captured)."""

    type: Literal["start-draft"] = "start-draft"
    call: Call
    phase_id: str
    reference: Annotated[str, Field(min_length=1, max_length=120)]
    content: DossierContent


class UpdateDraft(Record):
    """Holder: replace the draft's content."""

    type: Literal["update-draft"] = "update-draft"
    content: DossierContent


class Submit(Record):
    """Holder: submit the draft while the phase is open."""

    type: Literal["submit"] = "submit"


class Withdraw(Record):
    """Holder: withdraw the dossier."""

    type: Literal["withdraw"] = "withdraw"
    reason: str = ""


class ProvideComplement(Record):
    """Holder: answer a request for a complement, optionally with corrected content."""

    type: Literal["provide-complement"] = "provide-complement"
    note: Annotated[str, Field(min_length=1)]
    content: DossierContent | None = None


class FileReport(Record):
    """Holder: file the follow-up report of a period (1 for the first period)."""

    type: Literal["file-report"] = "file-report"
    period: Annotated[int, Field(ge=1)]
    summary: Annotated[str, Field(min_length=1)]


class Acknowledge(Record):
    """Staff: acknowledge receipt; the dossier is being checked."""

    type: Literal["acknowledge"] = "acknowledge"


class RequestComplement(Record):
    """Staff: ask for missing pieces, due at an instant."""

    type: Literal["request-complement"] = "request-complement"
    pieces: Annotated[str, Field(min_length=1)]
    due: Instant


class DeclareComplete(Record):
    """Staff: the dossier has every piece; it can be reviewed."""

    type: Literal["declare-complete"] = "declare-complete"


class AssignReviewers(Record):
    """Staff: assign reviewers (experts), with the review due instant."""

    type: Literal["assign-reviewers"] = "assign-reviewers"
    reviewers: Annotated[tuple[Annotated[str, Field(min_length=1)], ...], Field(min_length=1)]
    due: Instant


class Orient(Record):
    """Staff: orient a laureate toward the schemes of the catalogue that fit its need."""

    type: Literal["orient"] = "orient"
    catalogue: Annotated[tuple[Scheme, ...], Field(min_length=1)]


class RecordFiling(Record):
    """Staff: record what became of a subsidy filing under a recommended scheme."""

    type: Literal["record-filing"] = "record-filing"
    scheme_id: str
    outcome: FilingStatus
    amount_eur: Annotated[int, Field(ge=0)] | None = None
    note: str = ""


class RecordFollowUp(Record):
    """Staff: the charter is signed (follow-up starts), or a meeting was attended."""

    type: Literal["record-follow-up"] = "record-follow-up"
    kind: FollowUpKind
    note: str = ""


class Close(Record):
    """Staff: close the dossier, with a reason."""

    type: Literal["close"] = "close"
    reason: Annotated[str, Field(min_length=1)]


class ExtendDeadline(Record):
    """Staff: move a deadline later (phase closing, complement due, review due)."""

    type: Literal["extend-deadline"] = "extend-deadline"
    deadline: Literal[
        DeadlineKind.PHASE_CLOSING, DeadlineKind.COMPLEMENT_DUE, DeadlineKind.REVIEW_DUE
    ]
    until: Instant


class DeclareInterests(Record):
    """Reviewer: declare interests; a conflict removes the assignment."""

    type: Literal["declare-interests"] = "declare-interests"
    conflict: bool
    statement: str = ""


class SubmitReview(Record):
    """Reviewer: score every criterion of the call and give an opinion."""

    type: Literal["submit-review"] = "submit-review"
    scores: dict[str, int]
    opinion: Annotated[str, Field(min_length=1)]


class TakeDecision(Record):
    """Committee: retained or not retained, with reasons."""

    type: Literal["decide"] = "decide"
    retained: bool
    reasons: Annotated[str, Field(min_length=1)]


class ExpireDraft(Record):
    """System: the phase closed and the draft was never submitted."""

    type: Literal["expire-draft"] = "expire-draft"


class EscalateComplement(Record):
    """System: the complement is overdue; staff are alerted."""

    type: Literal["escalate-complement"] = "escalate-complement"


class EscalateReview(Record):
    """System: the review is overdue; staff are alerted."""

    type: Literal["escalate-review"] = "escalate-review"


class FlagLateReport(Record):
    """System: a follow-up report is past due."""

    type: Literal["flag-late-report"] = "flag-late-report"
    period: Annotated[int, Field(ge=1)]


class AttachDocument(Record):
    """Holder: attach a file (already stored, encrypted, in the vault) to the dossier."""

    type: Literal["attach-document"] = "attach-document"
    document: DocumentRef


class GrantClearance(Record):
    """Staff: let an auditor read the dossier's content, for a stated reason."""

    type: Literal["grant-clearance"] = "grant-clearance"
    auditor: Annotated[str, Field(min_length=1)]
    reason: Annotated[str, Field(min_length=1)]


class SetLegalHold(Record):
    """Staff: keep the dossier whole beyond its retention (litigation, investigation, audit)."""

    type: Literal["set-legal-hold"] = "set-legal-hold"
    reason: Annotated[str, Field(min_length=1)]


class LiftLegalHold(Record):
    """Staff: end a legal hold."""

    type: Literal["lift-legal-hold"] = "lift-legal-hold"
    reason: Annotated[str, Field(min_length=1)]


class DestroyContent(Record):
    """Staff: at the end of its retention, destroy the dossier's content (its keys); metadata stays."""

    type: Literal["destroy-content"] = "destroy-content"
    reason: Annotated[str, Field(min_length=1)] = "Fin de la durée de conservation"


Command = Annotated[
    StartDraft | UpdateDraft | Submit | Withdraw | ProvideComplement | FileReport
    | Acknowledge | RequestComplement | DeclareComplete | AssignReviewers | Orient
    | RecordFiling | RecordFollowUp | Close | ExtendDeadline
    | DeclareInterests | SubmitReview | TakeDecision
    | ExpireDraft | EscalateComplement | EscalateReview | FlagLateReport
    | AttachDocument | GrantClearance | SetLegalHold | LiftLegalHold | DestroyContent,
    Field(discriminator="type"),
]
