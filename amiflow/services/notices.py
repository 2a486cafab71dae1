"""Use cases on notifications: the notices given up on after their delivery attempts (dead letters)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime

from pydantic import BaseModel

from amiflow.bootstrap import Runtime
from amiflow.services.errors import ReadRefused
from amiflow.services.principal import Principal
from domain.notices import may_see_failed_notices


class FailedNoticeView(BaseModel):
    """One notice that was never delivered: who was to be told what kind of thing, about which dossier
    (or `call:ID`), when it was given up on and the channel's last error. Never its text."""

    key: str
    dossier_id: str
    kind: str
    recipient: str
    due: datetime | None
    created_at: datetime
    failed_at: datetime
    attempts: int
    failure: str


async def failed(rt: Runtime, who: Principal) -> list[FailedNoticeView]:
    """The notices given up on, oldest first.

    Raises:
        ReadRefused: `who` is neither staff nor an auditor (`domain.notices.may_see_failed_notices`).
    """
    decision = may_see_failed_notices(who.actor)
    if not decision.granted:
        raise ReadRefused(decision.reason)
    return [FailedNoticeView(**asdict(row)) for row in await rt.store.failed_notices()]
