"""The pure rule set of amiflow: calls, dossiers, the decider, deadlines, orientation.

No I/O, no clock, no Temporal, no database: time arrives as an argument.
"""

from domain.access import SYSTEM, Actor, Role
from domain.calls import Call, HolderType, Phase, ReviewMode, parse_call
from domain.deadlines import Deadline, deadlines
from domain.decider import PERMISSIONS, decide, evolve, replay
from domain.dossier import Command, DossierContent, DossierState, Event, Status, dossier_id
from domain.errors import CallDefinitionError, DomainError
from domain.schemes import NeedKind, Scheme, parse_schemes, recommend

__all__ = [
    "PERMISSIONS", "SYSTEM", "Actor", "Call", "CallDefinitionError", "Command", "Deadline",
    "DomainError", "DossierContent", "DossierState", "Event", "HolderType", "NeedKind", "Phase",
    "ReviewMode", "Role", "Scheme", "Status", "deadlines", "decide", "dossier_id", "evolve",
    "parse_call", "parse_schemes", "recommend", "replay",
]  # fmt: skip
