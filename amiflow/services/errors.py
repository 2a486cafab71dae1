"""The service layer's typed errors. All are `DomainError`s: a French message and a stable `code`."""

from __future__ import annotations

from typing import Any

from domain.errors import DomainError, InvalidCommand, NotAllowed


class ServiceError(DomainError):
    """A use case refused, with the rules' code."""

    def __init__(self, message: str, code: str | None = None, field: str | None = None) -> None:
        super().__init__(message, field)
        if code is not None:
            self.code = code


class NotFound(InvalidCommand):
    """No such dossier, call or document."""

    code = "not_found"


class Refused(ServiceError):
    """A command the dossier's workflow refused (its code is the decider's)."""


class DraftExists(Refused):
    """A new draft on a reference that already has a dossier on that call (its id is taken): the
    holder opens that one instead, or picks another reference."""

    code = "draft_exists"


class ReadRefused(NotAllowed):
    """A read the rules refused; `view` says it in the shape the reader asked for (`--json`).
    `unknown`: the reader may not even know the dossier exists (`domain.disclosure.may_know`): what an
    entry point that must not tell it from an unknown dossier answers instead (the refusal is logged)."""

    code = "read_refused"

    def __init__(self, message: str, view: dict[str, Any] | None = None, unknown: NotFound | None = None) -> None:
        super().__init__(message)
        self.view = view or {}
        self.unknown = unknown


class Unauthenticated(ServiceError):
    """No credential, or one that is unknown, expired or revoked: who asks is not known."""

    code = "unauthenticated"

    def __init__(self, message: str = "Authentification requise : jeton absent, inconnu, expiré ou révoqué.") -> None:
        super().__init__(message)
