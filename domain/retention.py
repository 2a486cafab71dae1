"""How long a dossier is kept after it ends, and whether its content may be destroyed now."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from domain.calendar import add_years, end_of_day, paris_date, show
from domain.errors import DomainError, InvalidCommand, InvalidTransition, NotAllowed
from domain.state import DossierState

ShredOutcome = Literal["would_destroy", "kept", "already_destroyed"]


def retention_ends(state: DossierState) -> datetime | None:
    """When the dossier's retention ends: `retention_years` of its call after it ended (None while open).

    Kept through the whole anniversary day (Paris), as French law counts a period in years (it expires at
    the end of the day bearing the same date): the retention ends at 00:00 Paris the day after it.
    """
    ended = state.ended_at
    if ended is None or state.call is None:
        return None
    return end_of_day(add_years(paris_date(ended), state.call.retention_years))


def destruction_refusal(state: DossierState, now: datetime) -> DomainError | None:
    """Why the dossier's content may not be destroyed at `now`, as the typed refusal; None when it may:
    ended, no legal hold, retention over, not destroyed already. Who may destroy is the decider's."""
    if state.content_destroyed_at is not None:
        return InvalidTransition(f"Le contenu de ce dossier a été détruit le {show(state.content_destroyed_at)}.")
    if not state.status.is_final:
        return InvalidTransition(f"Le dossier n’est pas terminé (« {state.status.label} ») : sa durée de "
                                 "conservation n’a pas commencé.")
    if state.legal_hold:
        return NotAllowed("Ce dossier est sous conservation légale : levez-la d’abord (lift-legal-hold).")
    ends = retention_ends(state)
    if ends is None or now < ends:
        years = state.call.retention_years if state.call else "?"
        return InvalidCommand(f"La durée de conservation ({years} ans après la fin du dossier) court jusqu’au "
                              f"{show(ends) if ends else '—'} : rien n’est détruit avant.")
    return None


def shred_verdict(state: DossierState, now: datetime) -> tuple[ShredOutcome, str]:
    """What `audit shred` does with the dossier at `now`, and why (French; empty when it destroys)."""
    if state.content_destroyed_at is not None:
        return "already_destroyed", f"contenu détruit le {paris_date(state.content_destroyed_at):%Y-%m-%d}"
    refusal = destruction_refusal(state, now)
    if refusal is None:
        return "would_destroy", ""
    return "kept", refusal.message
