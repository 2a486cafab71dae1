"""Who may know that a dossier exists at all, and which part of the dossier list a person sees.

Someone with no relation to a dossier (another holder, an unassigned reviewer, staff or committee of
another call) cannot tell it from a dossier that does not exist: their refused read is logged, and
they are answered « inconnu ». Someone related to it but refused a part (a reviewer who has not
declared their interests, an auditor without clearance) is told why."""

from __future__ import annotations

from collections.abc import Sequence

from domain.access import Actor, Role
from domain.calls import Call
from domain.record import Record
from domain.state import DossierState


def may_know(state: DossierState, actor: Actor, operator: bool = False) -> bool:
    """Whether `actor` may know that the dossier exists (its id, its status). An operator on the
    server's command line, who holds the keyring, knows every dossier (and is told the rules' refusal)."""
    if operator:
        return True
    call = state.call
    match actor.role:
        case Role.HOLDER:
            return actor.name == state.holder
        case Role.STAFF:
            return call is None or call.has_staff(actor.name)
        case Role.REVIEWER:
            return state.assignment(actor.name) is not None
        case Role.COMMITTEE:
            return call is None or call.has_committee_member(actor.name)
        case Role.AUDITOR:
            return True
    return False


class ListScope(Record):
    """The part of the dossier list a person sees: `refused` says why they have none; otherwise only
    the dossiers of `holder` (when set), of the calls `call_ids` (when set) and assigned to
    `reviewer` (when set)."""

    refused: str | None = None
    holder: str | None = None
    call_ids: tuple[str, ...] | None = None
    reviewer: str | None = None


def list_scope(actor: Actor, calls: Sequence[Call]) -> ListScope:
    """Which dossiers `actor` may see listed: a holder their own, staff and the committee those of
    their calls, an auditor all (ids, statuses and deadlines are metadata), a reviewer their
    assignments: the dossiers they are assigned to and did not declare a conflict on (the projection's
    `reviewers`, `domain.tabs.listed_reviewers`)."""
    match actor.role:
        case Role.HOLDER:
            return ListScope(holder=actor.name)
        case Role.STAFF:
            return ListScope(call_ids=tuple(c.id for c in calls if c.has_staff(actor.name)))
        case Role.COMMITTEE:
            return ListScope(call_ids=tuple(c.id for c in calls if c.has_committee_member(actor.name)))
        case Role.AUDITOR:
            return ListScope()
        case Role.REVIEWER:
            return ListScope(reviewer=actor.name)
    return ListScope(refused="les échéances automatiques ne lisent pas la liste des dossiers")
