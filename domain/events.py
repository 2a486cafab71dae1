"""The events of a dossier: what happened, who did it and when; the journal keeps them, `evolve` folds them."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from domain.access import Actor, Origin
from domain.calls import Call
from domain.record import Record
from domain.schemes import Scheme
from domain.state import DeadlineKind, DocumentRef, DossierContent, FilingStatus, FollowUpKind, Instant


class EventBase(Record):
    """What every event carries: who, and when it happened (UTC); and, for events written since people
    are checked against the directory, where the command came from (an operator's command line and
    its OS user, a personal token, a sign-in)."""

    actor: Actor
    at: Instant
    origin: Origin | None = None


class DraftStarted(EventBase):
    type: Literal["draft_started"] = "draft_started"
    dossier_id: str
    call: Call
    phase_id: str
    reference: str
    content: DossierContent


class DraftUpdated(EventBase):
    type: Literal["draft_updated"] = "draft_updated"
    content: DossierContent


class DossierSubmitted(EventBase):
    type: Literal["submitted"] = "submitted"


class DossierWithdrawn(EventBase):
    type: Literal["withdrawn"] = "withdrawn"
    reason: str


class ComplementProvided(EventBase):
    type: Literal["complement_provided"] = "complement_provided"
    note: str
    content: DossierContent | None


class ReportFiled(EventBase):
    type: Literal["report_filed"] = "report_filed"
    period: int
    summary: str
    late: bool


class DossierAcknowledged(EventBase):
    type: Literal["acknowledged"] = "acknowledged"


class ComplementRequested(EventBase):
    type: Literal["complement_requested"] = "complement_requested"
    pieces: str
    due: Instant


class DossierDeclaredComplete(EventBase):
    type: Literal["declared_complete"] = "declared_complete"


class ReviewersAssigned(EventBase):
    type: Literal["reviewers_assigned"] = "reviewers_assigned"
    reviewers: tuple[str, ...]
    due: Instant


class DossierOriented(EventBase):
    type: Literal["oriented"] = "oriented"
    schemes: tuple[Scheme, ...]


class FilingRecorded(EventBase):
    type: Literal["filing_recorded"] = "filing_recorded"
    scheme_id: str
    outcome: FilingStatus
    amount_eur: int | None
    note: str


class FollowUpRecorded(EventBase):
    type: Literal["follow_up_recorded"] = "follow_up_recorded"
    kind: FollowUpKind
    note: str


class DossierClosed(EventBase):
    type: Literal["closed"] = "closed"
    reason: str


class DeadlineExtended(EventBase):
    type: Literal["deadline_extended"] = "deadline_extended"
    deadline: DeadlineKind
    until: Instant


class InterestsDeclared(EventBase):
    type: Literal["interests_declared"] = "interests_declared"
    reviewer: str
    statement: str


class ReviewerRecused(EventBase):
    type: Literal["reviewer_recused"] = "reviewer_recused"
    reviewer: str
    statement: str


class ReviewSubmitted(EventBase):
    type: Literal["review_submitted"] = "review_submitted"
    reviewer: str
    scores: dict[str, int]
    opinion: str


class DecisionTaken(EventBase):
    type: Literal["decision_taken"] = "decision_taken"
    retained: bool
    reasons: str


class DraftExpired(EventBase):
    type: Literal["draft_expired"] = "draft_expired"


class ComplementOverdue(EventBase):
    type: Literal["complement_overdue"] = "complement_overdue"


class ReviewOverdue(EventBase):
    type: Literal["review_overdue"] = "review_overdue"


class ReportLate(EventBase):
    type: Literal["report_late"] = "report_late"
    period: int


class DocumentAttached(EventBase):
    type: Literal["document_attached"] = "document_attached"
    document: DocumentRef


class ClearanceGranted(EventBase):
    type: Literal["clearance_granted"] = "clearance_granted"
    auditor: str
    reason: str


class LegalHoldSet(EventBase):
    type: Literal["legal_hold_set"] = "legal_hold_set"
    reason: str


class LegalHoldLifted(EventBase):
    type: Literal["legal_hold_lifted"] = "legal_hold_lifted"
    reason: str


class ContentDestroyed(EventBase):
    type: Literal["content_destroyed"] = "content_destroyed"
    reason: str


Event = Annotated[
    DraftStarted | DraftUpdated | DossierSubmitted | DossierWithdrawn | ComplementProvided
    | ReportFiled | DossierAcknowledged | ComplementRequested | DossierDeclaredComplete
    | ReviewersAssigned | DossierOriented | FilingRecorded | FollowUpRecorded | DossierClosed
    | DeadlineExtended | InterestsDeclared | ReviewerRecused | ReviewSubmitted | DecisionTaken
    | DraftExpired | ComplementOverdue | ReviewOverdue | ReportLate
    | DocumentAttached | ClearanceGranted | LegalHoldSet | LegalHoldLifted | ContentDestroyed,
    Field(discriminator="type"),
]
