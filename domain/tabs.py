"""The tabs of a call's dossier list in the back office: which tab a dossier stands in, from its state.

A tab groups statuses by what staff have to do next, as the agents of démarches-simplifiées read
their lists. Edge cases, decided here once:
- a new dossier or a draft is in no tab (None): it is the holder's, not yet submitted;
- a dossier under review stays « en revue » while a review is still expected
  (`DossierState.reviews_missing`: no review yet, or an assigned reviewer who has not declared a
  conflict still owes theirs); once every such reviewer's review is in, it is « à décider ». A reviewer
  who declared a conflict is no longer assigned (`ReviewerRecused`), so they are not waited for; if
  every reviewer recused and none reviewed, no review is in and the dossier stays « en revue »
  (staff must assign someone else: the committee decides on reviews only);
- retained and not retained are « décidés »: the not retained are final, but the decision is the
  last thing that happened to them, which is what staff look for there;
- oriented and follow-up are « en suivi »; closed, withdrawn and expired are « clos ».
"""

from __future__ import annotations

from enum import StrEnum

from domain.record import Record
from domain.state import DossierState, Status


class Tab(StrEnum):
    """A tab of the dossier list; its value is the slug of its address."""

    A_TRAITER = "a-traiter"
    COMPLEMENTS_DEMANDES = "complements-demandes"
    COMPLETS = "complets"
    EN_REVUE = "en-revue"
    A_DECIDER = "a-decider"
    DECIDES = "decides"
    EN_SUIVI = "en-suivi"
    CLOS = "clos"

    @property
    def label(self) -> str:
        """French label, as staff read it."""
        return TAB_LABELS[self]


TAB_LABELS: dict[Tab, str] = {
    Tab.A_TRAITER: "à traiter",
    Tab.COMPLEMENTS_DEMANDES: "compléments demandés",
    Tab.COMPLETS: "complets",
    Tab.EN_REVUE: "en revue",
    Tab.A_DECIDER: "à décider",
    Tab.DECIDES: "décidés",
    Tab.EN_SUIVI: "en suivi",
    Tab.CLOS: "clos",
}

TABS: tuple[Tab, ...] = tuple(Tab)

_BY_STATUS: dict[Status, Tab] = {
    Status.SUBMITTED: Tab.A_TRAITER,
    Status.ACKNOWLEDGED: Tab.A_TRAITER,
    Status.COMPLEMENT_REQUESTED: Tab.COMPLEMENTS_DEMANDES,
    Status.COMPLETE: Tab.COMPLETS,
    Status.RETAINED: Tab.DECIDES,
    Status.NOT_RETAINED: Tab.DECIDES,
    Status.ORIENTED: Tab.EN_SUIVI,
    Status.FOLLOW_UP: Tab.EN_SUIVI,
    Status.CLOSED: Tab.CLOS,
    Status.WITHDRAWN: Tab.CLOS,
    Status.EXPIRED: Tab.CLOS,
}


def tab_of(state: DossierState) -> Tab | None:
    """The tab the dossier stands in (None for a new dossier or a draft: see the module's edge cases)."""
    if state.status is Status.UNDER_REVIEW:
        return Tab.EN_REVUE if state.reviews_missing else Tab.A_DECIDER
    return _BY_STATUS.get(state.status)


class ListMetadata(Record):
    """What the dossier list keeps in clear of a dossier for its tabs and filters: its tab, the
    holder's type and territory (from the content: no name, no section), and the reviewers whose
    list shows it (assigned and not recused: one who recused is no longer assigned), in order."""

    tab: Tab | None = None
    holder_type: str | None = None
    territory: str | None = None
    reviewers: tuple[str, ...] = ()


def list_metadata(state: DossierState) -> ListMetadata:
    """The dossier's list metadata (an empty territory is none)."""
    content = state.content
    return ListMetadata(tab=tab_of(state), holder_type=content.holder_type.value if content else None,
                        territory=(content.territory or None) if content else None,
                        reviewers=tuple(a.reviewer for a in state.assignments))


def parse_tab(text: str) -> Tab | None:
    """The tab of that slug, or None when there is none."""
    return next((t for t in TABS if t.value == text), None)
