"""A dossier: its statuses, its content, the commands people give and the events they produce."""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AfterValidator, Field

from domain.access import Actor
from domain.calendar import to_utc
from domain.calls import Call, Identifier, KnownHolderType
from domain.record import Record
from domain.schemes import KnownNeedKind, Scheme

Instant = Annotated[datetime, AfterValidator(to_utc)]  # aware, stored in UTC


class Status(StrEnum):
    """Where a dossier stands. Open statuses are those a dossier can still leave."""

    NEW = "new"
    DRAFT = "draft"
    SUBMITTED = "submitted"
    ACKNOWLEDGED = "acknowledged"
    COMPLEMENT_REQUESTED = "complement_requested"
    COMPLETE = "complete"
    UNDER_REVIEW = "under_review"
    RETAINED = "retained"
    NOT_RETAINED = "not_retained"
    ORIENTED = "oriented"
    FOLLOW_UP = "follow_up"
    CLOSED = "closed"
    WITHDRAWN = "withdrawn"
    EXPIRED = "expired"

    @property
    def label(self) -> str:
        """French label, as staff read it."""
        return STATUS_LABELS[self]

    @property
    def is_open(self) -> bool:
        """Whether the dossier can still move (not new, not final)."""
        return self not in FINAL_STATUSES and self is not Status.NEW

    @property
    def is_final(self) -> bool:
        """Whether the dossier has ended (its retention runs): not `not is_open`, which NEW also is."""
        return self in FINAL_STATUSES


STATUS_LABELS: dict[Status, str] = {
    Status.NEW: "inexistant",
    Status.DRAFT: "brouillon",
    Status.SUBMITTED: "déposé",
    Status.ACKNOWLEDGED: "en instruction",
    Status.COMPLEMENT_REQUESTED: "complément demandé",
    Status.COMPLETE: "complet",
    Status.UNDER_REVIEW: "en expertise",
    Status.RETAINED: "retenu (lauréat)",
    Status.NOT_RETAINED: "non retenu",
    Status.ORIENTED: "orienté vers des dispositifs",
    Status.FOLLOW_UP: "suivi de coopération",
    Status.CLOSED: "clos",
    Status.WITHDRAWN: "retiré par le porteur",
    Status.EXPIRED: "expiré (non déposé à temps)",
}

FINAL_STATUSES = frozenset({Status.NOT_RETAINED, Status.CLOSED, Status.WITHDRAWN, Status.EXPIRED})

# The lifecycle: every status change the decider may make. Tests hold the decider to it.
LIFECYCLE: dict[Status, frozenset[Status]] = {
    Status.NEW: frozenset({Status.DRAFT}),
    Status.DRAFT: frozenset({Status.SUBMITTED, Status.WITHDRAWN, Status.EXPIRED}),
    Status.SUBMITTED: frozenset(
        {Status.ACKNOWLEDGED, Status.COMPLEMENT_REQUESTED, Status.WITHDRAWN, Status.CLOSED}
    ),
    Status.ACKNOWLEDGED: frozenset(
        {Status.COMPLEMENT_REQUESTED, Status.COMPLETE, Status.WITHDRAWN, Status.CLOSED}
    ),
    Status.COMPLEMENT_REQUESTED: frozenset({Status.ACKNOWLEDGED, Status.WITHDRAWN, Status.CLOSED}),
    Status.COMPLETE: frozenset({Status.UNDER_REVIEW, Status.WITHDRAWN, Status.CLOSED}),
    Status.UNDER_REVIEW: frozenset(
        {Status.RETAINED, Status.NOT_RETAINED, Status.WITHDRAWN, Status.CLOSED}
    ),
    Status.RETAINED: frozenset({Status.ORIENTED, Status.FOLLOW_UP, Status.WITHDRAWN, Status.CLOSED}),
    Status.ORIENTED: frozenset({Status.FOLLOW_UP, Status.WITHDRAWN, Status.CLOSED}),
    Status.FOLLOW_UP: frozenset({Status.WITHDRAWN, Status.CLOSED}),
    Status.NOT_RETAINED: frozenset(),
    Status.CLOSED: frozenset(),
    Status.WITHDRAWN: frozenset(),
    Status.EXPIRED: frozenset(),
}


def dossier_id(call_id: str, reference: str) -> str:
    """The dossier's id, derived from the call and the holder's reference, so that submitting the
    same reference to the same call again finds the same dossier instead of creating another."""
    text = unicodedata.normalize("NFKD", reference).encode("ascii", "ignore").decode().lower()
    slug = re.sub(r"[^a-z0-9]+", "-", text).strip("-")
    if not slug:
        raise ValueError(f"référence de dossier inutilisable : « {reference} »")
    return f"{call_id}.{slug}"


DOSSIER_ID = re.compile(r"^[a-z0-9][a-z0-9_-]*\.[a-z0-9]+(?:-[a-z0-9]+)*$")


def is_dossier_id(text: str) -> bool:
    """Whether `text` has the shape `dossier_id` gives (a call's workflow id, `call:…`, has not)."""
    return DOSSIER_ID.match(text) is not None


# --- content --------------------------------------------------------------------------------


class FinancingNeed(Record):
    """The financing need a holder states, which orientation matches against schemes."""

    kinds: Annotated[tuple[KnownNeedKind, ...], Field(min_length=1)]
    amount_eur: Annotated[int, Field(ge=0)] | None = None
    description: str = ""


class DossierContent(Record):
    """What the holder writes: identity, territory, theme, the sections, the financing need.

    Confidential: the whole of it is what later issues encrypt.
    """

    holder_name: Annotated[str, Field(min_length=1)]
    holder_type: KnownHolderType
    region: Annotated[str, Field(min_length=1)]
    territory: str = ""  # département, intercommunalité…
    theme: Identifier | None = None
    partners: tuple[str, ...] = ()
    sections: dict[str, str] = {}
    financing_need: FinancingNeed | None = None


# --- commands -------------------------------------------------------------------------------


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


class FilingStatus(StrEnum):
    """Sub-status of one recommended scheme: recommended → filed → granted / refused / abandoned."""

    RECOMMENDED = "recommended"
    FILED = "filed"
    GRANTED = "granted"
    REFUSED = "refused"
    ABANDONED = "abandoned"

    @property
    def label(self) -> str:
        """French label."""
        return {
            FilingStatus.RECOMMENDED: "recommandé",
            FilingStatus.FILED: "demande déposée",
            FilingStatus.GRANTED: "aide accordée",
            FilingStatus.REFUSED: "aide refusée",
            FilingStatus.ABANDONED: "abandonné",
        }[self]


FILING_STEPS: dict[FilingStatus, frozenset[FilingStatus]] = {
    FilingStatus.RECOMMENDED: frozenset({FilingStatus.FILED, FilingStatus.ABANDONED}),
    FilingStatus.FILED: frozenset(
        {FilingStatus.GRANTED, FilingStatus.REFUSED, FilingStatus.ABANDONED}
    ),
    FilingStatus.GRANTED: frozenset(),
    FilingStatus.REFUSED: frozenset(),
    FilingStatus.ABANDONED: frozenset(),
}


class RecordFiling(Record):
    """Staff: record what became of a subsidy filing under a recommended scheme."""

    type: Literal["record-filing"] = "record-filing"
    scheme_id: str
    outcome: FilingStatus
    amount_eur: Annotated[int, Field(ge=0)] | None = None
    note: str = ""


class FollowUpKind(StrEnum):
    """What staff record of a laureate's cooperation."""

    CHARTER_SIGNED = "charter_signed"
    MEETING_ATTENDED = "meeting_attended"


class RecordFollowUp(Record):
    """Staff: the charter is signed (follow-up starts), or a meeting was attended."""

    type: Literal["record-follow-up"] = "record-follow-up"
    kind: FollowUpKind
    note: str = ""


class Close(Record):
    """Staff: close the dossier, with a reason."""

    type: Literal["close"] = "close"
    reason: Annotated[str, Field(min_length=1)]


class DeadlineKind(StrEnum):
    """The instants a dossier waits for."""

    PHASE_CLOSING = "phase_closing"
    COMPLEMENT_DUE = "complement_due"
    REVIEW_DUE = "review_due"
    REPORT_DUE = "report_due"
    REMINDER = "reminder"


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


class DocumentRef(Record):
    """A file attached to a dossier as events and workflows carry it: never its bytes. The name is
    the holder's and may be confidential; it travels sealed with the rest of the event."""

    id: Annotated[str, Field(pattern=r"^doc-[0-9a-f]{16}$")]
    name: Annotated[str, Field(min_length=1, max_length=255)]
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    size: Annotated[int, Field(ge=0)]
    media_type: Annotated[str, Field(min_length=1)]


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
]  # fmt: skip


# --- events ---------------------------------------------------------------------------------


class EventBase(Record):
    """What every event carries: who, and when it happened (UTC)."""

    actor: Actor
    at: Instant


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
]  # fmt: skip


# --- state ----------------------------------------------------------------------------------


class Assignment(Record):
    """A reviewer assigned to the dossier; reads it only once declared free of conflict."""

    reviewer: str
    declared: bool = False


class Review(Record):
    """A reviewer's scores (one per criterion) and opinion."""

    reviewer: str
    scores: dict[str, int]
    opinion: str
    at: datetime


class Decision(Record):
    """The committee's decision."""

    retained: bool
    reasons: str
    at: datetime


class Filing(Record):
    """One recommended scheme and what became of the subsidy filing under it."""

    scheme_id: str
    scheme_name: str
    status: FilingStatus = FilingStatus.RECOMMENDED
    amount_eur: int | None = None


class Report(Record):
    """A follow-up report received."""

    period: int
    at: datetime
    late: bool


class DossierState(Record):
    """Everything the rules need to know about one dossier, rebuilt by folding its events."""

    status: Status = Status.NEW
    id: str = ""
    call: Call | None = None
    phase_id: str = ""
    reference: str = ""
    holder: str = ""
    content: DossierContent | None = None
    version: int = 0
    started_at: datetime | None = None
    submitted_at: datetime | None = None
    phase_closes_at: datetime | None = None
    complement_pieces: str = ""
    complement_requested_at: datetime | None = None
    complement_due: datetime | None = None
    complement_overdue: bool = False
    review_assigned_at: datetime | None = None
    review_due: datetime | None = None
    review_overdue: bool = False
    assignments: tuple[Assignment, ...] = ()
    recused: tuple[str, ...] = ()
    reviews: tuple[Review, ...] = ()
    decision: Decision | None = None
    filings: tuple[Filing, ...] = ()
    follow_up_started_at: datetime | None = None
    reports: tuple[Report, ...] = ()
    late_reports: tuple[int, ...] = ()
    meetings_attended: int = 0
    last_meeting_at: datetime | None = None
    closed_reason: str = ""
    closed_at: datetime | None = None
    documents: tuple[DocumentRef, ...] = ()
    clearances: tuple[str, ...] = ()  # auditors whom staff let read the content
    legal_hold: bool = False
    content_destroyed_at: datetime | None = None

    @property
    def ended_at(self) -> datetime | None:
        """When the dossier reached its final status (its retention runs from then), if it has."""
        if not self.status.is_final:
            return None
        if self.closed_at is not None:
            return self.closed_at
        return self.decision.at if self.decision is not None else None

    def document(self, document_id: str) -> DocumentRef | None:
        """The attached document of that id, if any."""
        return next((d for d in self.documents if d.id == document_id), None)

    def assignment(self, reviewer: str) -> Assignment | None:
        """The reviewer's current assignment, if any."""
        return next((a for a in self.assignments if a.reviewer == reviewer), None)

    def declared_reviewer(self, reviewer: str) -> bool:
        """Whether `reviewer` is assigned and has declared no conflict of interest: who may review (and read)."""
        assignment = self.assignment(reviewer)
        return assignment is not None and assignment.declared

    def review_of(self, reviewer: str) -> Review | None:
        """The review that reviewer submitted, if any."""
        return next((r for r in self.reviews if r.reviewer == reviewer), None)

    @property
    def reviews_missing(self) -> bool:
        """No review yet (every reviewer may have recused), or an assigned reviewer still owes one."""
        return not self.reviews or any(self.review_of(a.reviewer) is None for a in self.assignments)

