"""Use cases on calls: the catalogue as loaded, and a phase's extension."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from amiflow import dossiers as gateway
from amiflow.bootstrap import Runtime
from amiflow.catalogue import CallSet, load_calls
from amiflow.services.errors import NotFound
from amiflow.services.principal import Principal
from workflows.call import ExtensionResult


def catalogue(paths: list[Path] | None = None, calls_dir: Path | None = None) -> CallSet:
    """The call files (`paths`, else `calls_dir`, else deploy/calls), loaded and checked: the calls, and
    those refused with their error.

    Raises:
        NotFound: a path given does not exist, or no call file is there.
    """
    missing = [p for p in paths or () if not p.exists()]
    if missing:
        raise NotFound("Introuvable : " + ", ".join(str(p) for p in missing))
    found = load_calls(paths or ([calls_dir] if calls_dir else ()))
    if not found.calls and not found.refused:
        raise NotFound("Aucun fichier d’appel (*.yaml) trouvé.")
    return found


async def extend(rt: Runtime, who: Principal, call_id: str, phase_id: str, until: datetime) -> ExtensionResult:
    """Move a phase's closing later; every open dossier of the phase follows (the call's workflow
    refuses what the rules refuse: `domain.calls.extend_phase`)."""
    return await gateway.extend(rt.temporal(), call_id, phase_id, until, who.actor)
