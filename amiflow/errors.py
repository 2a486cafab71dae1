"""Failures said to people: what an entry point prints instead of a traceback."""

from __future__ import annotations

from domain.errors import DomainError
from journal.postgres import is_database_error


def explain(exc: BaseException) -> str | None:
    """The French sentence for a failure a person can act on; None for a bug (let it surface)."""
    if isinstance(exc, DomainError):
        return exc.message
    if isinstance(exc, OSError):
        if getattr(exc, "filename", None):
            return f"{exc.strerror or exc} ({exc.filename})."
        return (f"serveur injoignable (PostgreSQL ou Temporal ; la pile tourne-t-elle ? amiflow status) : "
                f"{exc.strerror or exc}.")
    module = type(exc).__module__
    if is_database_error(exc):
        return f"base de données injoignable ou en erreur : {str(exc).splitlines()[0]}"
    if module.startswith("temporalio"):
        text = str(exc)
        if "larger than max" in text or "too large" in text.lower() or "RESOURCE_EXHAUSTED" in text:
            return ("le message dépasse la taille que Temporal accepte (2 Mo par charge) : allégez le dossier, "
                    "et joignez les pièces volumineuses avec amiflow dossier attach.")
        return f"Temporal a refusé la demande : {text.splitlines()[0] if text else type(exc).__name__}"
    if isinstance(exc, OverflowError):
        return "date hors du calendrier (années 1 à 9999)."
    return None
