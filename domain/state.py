"""A dossier's state: its statuses, its content, what it holds, rebuilt by folding its events."""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, Field

from domain.calendar import to_utc
from domain.calls import Call, Identifier, KnownHolderType
from domain.record import Record
from domain.schemes import KnownNeedKind

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


DOSSIER_ID = re.compile(r"[a-z0-9][a-z0-9_-]*\.[a-z0-9]+(?:-[a-z0-9]+)*")


def is_dossier_id(text: str) -> bool:
    """Whether `text` has, exactly, the shape `dossier_id` gives (a call's workflow id, `call:…`, has
    not); `fullmatch`, because `$` would accept a final line break."""
    return DOSSIER_ID.fullmatch(text) is not None


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


class FollowUpKind(StrEnum):
    """What staff record of a laureate's cooperation."""

    CHARTER_SIGNED = "charter_signed"
    MEETING_ATTENDED = "meeting_attended"


class DeadlineKind(StrEnum):
    """The instants a dossier waits for."""

    PHASE_CLOSING = "phase_closing"
    COMPLEMENT_DUE = "complement_due"
    REVIEW_DUE = "review_due"
    REPORT_DUE = "report_due"
    REMINDER = "reminder"

    @property
    def label(self) -> str:
        """French label, as a list of deadlines shows it."""
        return DEADLINE_LABELS[self]


DEADLINE_LABELS: dict[DeadlineKind, str] = {
    DeadlineKind.PHASE_CLOSING: "clôture de la phase",
    DeadlineKind.COMPLEMENT_DUE: "complément attendu",
    DeadlineKind.REVIEW_DUE: "expertise attendue",
    DeadlineKind.REPORT_DUE: "rapport de suivi attendu",
    DeadlineKind.REMINDER: "rappel",
}


class DocumentRef(Record):
    """A file attached to a dossier as events and workflows carry it: never its bytes. The name is
    the holder's and may be confidential; it travels sealed with the rest of the event."""

    id: Annotated[str, Field(pattern=r"^doc-[0-9a-f]{16}$")]
    name: Annotated[str, Field(min_length=1, max_length=255)]
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    size: Annotated[int, Field(ge=0)]
    media_type: Annotated[str, Field(min_length=1)]


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
