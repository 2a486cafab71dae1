"""CallWorkflow: one per call. Holds the call's definition as it stands (with staff's deadline
extensions), tells staff when a phase opens and closes, and carries an extension to every open
dossier of the phase."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from pydantic import BaseModel
from temporalio import workflow
from temporalio.exceptions import FailureError

from activities.contracts import OPEN_DOSSIERS, SEND, CallStanding, OpenDossiers, PhaseExtension, SendNotices
from domain import Actor, Call
from domain.calls import extend_phase
from domain.errors import DomainError
from domain.notices import Moment, announcement, moments_to_announce
from workflows.common import (
    ANNOUNCE_TIMEOUT,
    JOURNAL_RETRY,
    NOTICES_AFTER,
    OPEN_DOSSIERS_TIMEOUT,
    refusal,
    send_or_give_up,
    untrusted,
)
from workflows.dossier import PhaseExtended


class CallInput(BaseModel):
    """The call as loaded from its file, or as it stood when continuing."""

    call: Call
    announced: list[str] = []
    extensions: dict[str, PhaseExtension] = {}  # by phase id: who moved its closing, and to when


class ExtendPhase(BaseModel):
    """Staff: the phase closes later."""

    phase_id: str
    until: datetime
    actor: Actor


class ExtensionResult(BaseModel):
    """Which dossiers were told of the new closing."""

    phase_id: str
    closes_at: datetime
    dossiers: list[str]


def call_workflow_id(call_id: str) -> str:
    """The id of a call's workflow."""
    return f"call:{call_id}"


@workflow.defn
class CallWorkflow:
    """The life of one call."""

    @workflow.init
    def __init__(self, start: CallInput) -> None:
        # Read here, not in `run`: a query or an update delivered with the start sees the call.
        self.call: Call = start.call
        self.changed = False
        self.announced: set[str] = set(start.announced)
        self.extensions: dict[str, PhaseExtension] = dict(start.extensions)

    @workflow.run
    async def run(self, start: CallInput) -> None:
        """Announce each opening and closing at its instant, and stay to carry extensions."""
        if workflow.info().workflow_id != call_workflow_id(start.call.id):
            # Dossiers ask `call:<id>` for their call: a definition of another call must not answer there.
            raise untrusted(f"le workflow {workflow.info().workflow_id} ne porte pas l’appel {start.call.id}")
        while True:
            upcoming = moments_to_announce(self.call, self.announced, workflow.now())
            self.changed = False
            timeout = max(upcoming[0].at - workflow.now(), timedelta(0)) if upcoming else None
            try:
                await workflow.wait_condition(lambda: self.changed, timeout=timeout)
            except TimeoutError:
                await self._announce(upcoming[0])
            if workflow.info().is_continue_as_new_suggested():
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(CallInput(call=self.call, announced=sorted(self.announced),
                                                   extensions=self.extensions))

    async def _announce(self, moment: Moment) -> None:
        assert self.call is not None
        self.announced.add(moment.key)
        notice = announcement(self.call, moment)
        if workflow.patched(NOTICES_AFTER):  # a refused announcement is given up on, not retried for ever
            await send_or_give_up([notice], ANNOUNCE_TIMEOUT)
            return
        await workflow.execute_activity(SEND, SendNotices(notices=[notice]), start_to_close_timeout=ANNOUNCE_TIMEOUT,
                                        retry_policy=JOURNAL_RETRY)

    @workflow.query
    def definition(self) -> Call:
        """The call as it stands, extensions included: what new dossiers run under."""
        return self.call

    @workflow.query
    def standing(self) -> CallStanding:
        """The call as it stands and who extended which phase: what dossiers read (by an activity)
        when they start a draft or hear of an extension, instead of believing a client."""
        return CallStanding(call=self.call, extensions=self.extensions)

    @workflow.update
    async def extend(self, request: ExtendPhase) -> ExtensionResult:
        """Move a phase's closing later and tell every open dossier of the phase."""
        try:
            self.call = self._extended(request)
        except DomainError as exc:
            raise refusal(exc) from None
        self.extensions[request.phase_id] = PhaseExtension(until=request.until, actor=request.actor)
        self.changed = True
        ids: list[str] = await workflow.execute_activity(
            OPEN_DOSSIERS, OpenDossiers(call_id=self.call.id, phase_id=request.phase_id),
            start_to_close_timeout=OPEN_DOSSIERS_TIMEOUT, retry_policy=JOURNAL_RETRY,
            result_type=list[str],
        )
        # The signal only tells the dossier to ask: it reads the extension back from this workflow.
        signal = PhaseExtended(until=request.until, actor=request.actor)

        async def tell(dossier_id: str) -> None:
            try:
                await workflow.get_external_workflow_handle(dossier_id).signal("phase_extended", signal)
            except FailureError:  # the dossier’s workflow ended meanwhile
                workflow.logger.info("dossier %s no longer running", dossier_id)

        await asyncio.gather(*(tell(i) for i in ids))  # all signals in one workflow task
        return ExtensionResult(phase_id=request.phase_id, closes_at=request.until, dossiers=ids)

    @extend.validator
    def validate_extend(self, request: ExtendPhase) -> None:
        """Only staff extend, and only later."""
        try:
            self._extended(request)
        except DomainError as exc:
            raise refusal(exc) from None

    def _extended(self, request: ExtendPhase) -> Call:
        return extend_phase(self.call, request.phase_id, request.until, request.actor, workflow.now())
