"""The pure rule set of amiflow: calls, dossiers, the decider, deadlines, orientation.

No I/O, no clock, no Temporal, no database: time arrives as an argument.
"""

from domain.access import SYSTEM, Actor, AuditOperation, ReadDecision, Role, may_audit
from domain.calls import Call, HolderType, Phase, ReviewMode, parse_call
from domain.commands import Command
from domain.deadlines import Deadline, deadlines, latest_reminders
from domain.decider import PERMISSIONS, available_commands, decide, evolve, replay
from domain.errors import CallDefinitionError, DomainError
from domain.events import Event
from domain.reading import LoggedRead, Purpose, Reading, Sight, event_shown, may_read, shown_actor, sight
from domain.retention import retention_ends, shred_verdict
from domain.schemes import NeedKind, Scheme, parse_schemes, recommend
from domain.state import DossierContent, DossierState, Status, dossier_id

__all__ = [
    "PERMISSIONS", "SYSTEM", "Actor", "AuditOperation", "Call", "CallDefinitionError", "Command", "Deadline",
    "DomainError", "DossierContent", "DossierState", "Event", "HolderType", "LoggedRead", "NeedKind", "Phase",
    "Purpose", "ReadDecision", "Reading", "ReviewMode", "Role", "Scheme", "Sight", "Status", "available_commands",
    "deadlines", "decide", "dossier_id", "event_shown", "evolve", "latest_reminders", "may_audit", "may_read",
    "parse_call", "parse_schemes", "recommend", "replay", "retention_ends", "shown_actor", "shred_verdict", "sight",
]
