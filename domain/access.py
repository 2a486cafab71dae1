"""Who acts: roles, actors, and which role may take which command."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field

from domain.errors import InvalidCommand
from domain.record import Record


class Role(StrEnum):
    """The kinds of people (and the one machine) that act on dossiers."""

    HOLDER = "holder"  # porteur de projet
    STAFF = "staff"  # chargé de mission
    REVIEWER = "reviewer"  # expert
    COMMITTEE = "committee"  # comité de décision
    AUDITOR = "auditor"  # contrôle interne, auditeurs des fonds européens
    SYSTEM = "system"  # échéances automatiques

    @property
    def label(self) -> str:
        """French label."""
        return ROLE_LABELS[self]


ROLE_LABELS: dict[Role, str] = {
    Role.HOLDER: "porteur",
    Role.STAFF: "chargé de mission",
    Role.REVIEWER: "expert",
    Role.COMMITTEE: "comité",
    Role.AUDITOR: "auditeur",
    Role.SYSTEM: "système (échéances)",
}


class Actor(Record):
    """A person (or the system) acting in a role, written `role:name` on the command line."""

    role: Role
    name: Annotated[str, Field(min_length=1, max_length=120, pattern=r"^[^\s:][^:]*$")]

    @classmethod
    def parse(cls, text: str) -> Actor:
        """Parse `ROLE:NAME`, e.g. `staff:amelie`.

        Raises:
            InvalidCommand: the text is not of that form or names an unknown role.
        """
        role, sep, name = text.partition(":")
        roles = ", ".join(r.value for r in Role)
        if not sep or not name.strip():
            raise InvalidCommand(f"« {text} » : écrivez ROLE:NOM, par exemple staff:amelie ({roles}).")
        try:
            return cls(role=Role(role.strip()), name=name.strip())
        except ValueError:
            raise InvalidCommand(f"« {role} » n’est pas un rôle connu (rôles : {roles}).") from None

    def __str__(self) -> str:
        return f"{self.role.value}:{self.name}"


SYSTEM = Actor(role=Role.SYSTEM, name="echeances")


class Origin(Record):
    """Where an action came from, beside who took it: the channel (`cli`, `token`, `oidc`,
    `invitation`, `codec`) and, for an operator's command line on the server, the OS user who typed
    it. Written `cli:julien`."""

    via: Annotated[str, Field(pattern=r"^[a-z]{1,20}$")]
    os_user: Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]{1,64}$")] | None = None

    def __str__(self) -> str:
        return f"{self.via}:{self.os_user}" if self.os_user else self.via


class ReadDecision(Record):
    """The answer to a reading request, with the reason written in the read log."""

    granted: bool
    reason: str


class AuditOperation(StrEnum):
    """What auditors run over the journal as a whole, beyond one dossier's reading rules."""

    WHATIF = "whatif"  # replay dossiers under a changed call definition
    CROSSCHECK = "crosscheck"  # compare the journal with Temporal's histories
    EXPORT = "export"  # write a dossier's self-verifying bundle

    @property
    def label(self) -> str:
        """French label."""
        return {
            AuditOperation.WHATIF: "simulation sous une autre définition d’appel",
            AuditOperation.CROSSCHECK: "comparaison du journal et des historiques Temporal",
            AuditOperation.EXPORT: "export d’un bundle d’audit",
        }[self]


def may_audit(actor: Actor | None, operation: AuditOperation) -> ReadDecision:
    """Whether `actor` may run an audit operation: auditors only (they see what every dossier became)."""
    if actor is None:
        return ReadDecision(granted=False, reason=f"« audit {operation.value} » : sans identité "
                                                  "(--as auditor:NOM), aucune opération d’audit")
    if actor.role is not Role.AUDITOR:
        return ReadDecision(granted=False, reason=f"« audit {operation.value} » est réservé aux auditeurs "
                            f"(auditor) ; vous agissez comme {actor.role.label} ({actor.role.value})")
    return ReadDecision(granted=True, reason=f"auditeur : {operation.label}")
