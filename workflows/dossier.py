"""DossierWorkflow: one durable workflow per dossier, running the decider of `domain/`.

Every command is an Update whose validator runs `decide`, so a refused command leaves no trace in
history. The handler journals the events (activity) before it returns, then the main loop re-arms
the timers from `deadlines()`. Nothing here decides a status, a deadline or a permission.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from pydantic import BaseModel
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

from activities.contracts import APPEND, SEND, AppendEvents, SendNotices
from domain import SYSTEM, Actor, DossierState, Event, deadlines, decide, replay
from domain.commands import Command, ExtendDeadline
from domain.deadlines import Deadline, consequence, latest_reminders
from domain.errors import DomainError
from domain.notices import Notice, notices_for, reminder_notice
from domain.state import DeadlineKind, Status

# PostgreSQL down must not lose a transition: retry without limit, at most every 10 s.
JOURNAL_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=10)
)


class DossierInput(BaseModel):
    """Start (or continue-as-new) input: the dossier's id, and its state when continuing."""

    dossier_id: str
    state: DossierState | None = None
    done: list[str] = []  # deadlines already acted on whose consequence the rules refused


class CommandRequest(BaseModel):
    """A command given by an actor."""

    command: Command
    actor: Actor


class CommandResult(BaseModel):
    """What a command did."""

    dossier_id: str
    status: Status
    version: int
    events: list[str]


class PhaseExtended(BaseModel):
    """Signal from the call's workflow: the phase closes later."""

    until: datetime
    actor: Actor


def refusal(error: DomainError) -> ApplicationError:
    """A domain refusal as a Temporal failure a client can branch on (`type` is the error code)."""
    return ApplicationError(error.message, type=error.code, non_retryable=True)


@workflow.defn
class DossierWorkflow:
    """The life of one dossier."""

    @workflow.init
    def __init__(self, start: DossierInput) -> None:
        # The input is read here, not in `run`, so that an Update delivered with the start (a
        # command on a dossier resumed from the journal) is validated against the real state.
        self.state = start.state or DossierState()
        self.dossier_id = start.dossier_id
        self.lock = asyncio.Lock()
        self.changed = False
        self.done: set[str] = set(start.done)

    @workflow.run
    async def run(self, start: DossierInput) -> DossierState:
        """Wait for commands and deadlines until the dossier reaches a final status."""
        while True:
            pending = self._pending()
            if self.state.status.is_final and not pending:
                break
            self.changed = False
            timeout = None
            if pending:
                timeout = max(min(d.at for d in pending) - workflow.now(), timedelta(0))
            try:
                await workflow.wait_condition(lambda: self.changed, timeout=timeout)
            except TimeoutError:
                pass
            async with self.lock:
                await self._fire([d for d in pending if d.at <= workflow.now()])
            if workflow.info().is_continue_as_new_suggested():
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(
                    DossierInput(dossier_id=self.dossier_id, state=self.state, done=sorted(self.done))
                )
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.state

    def _pending(self) -> list[Deadline]:
        """What the dossier waits for, less what was acted on; forgets what no longer waits."""
        found = self._waiting()
        self.done &= {d.key for d in found}
        return [d for d in found if d.key not in self.done]

    def _waiting(self) -> list[Deadline]:
        if self.state.call is None:
            return []
        return deadlines(self.state, self.state.call, workflow.now())

    async def _fire(self, due: list[Deadline]) -> None:
        for d in due:
            command = consequence(d)  # None for a reminder: it only notifies
            if command is None:
                continue
            try:
                await self._apply(decide(self.state, command, SYSTEM, workflow.now()))
            except DomainError as exc:
                workflow.logger.info("deadline %s not acted on: %s", d.key, exc.code)
                self.done.add(d.key)
        notices = [reminder_notice(self.state, d) for d in latest_reminders(due)]
        if notices:
            await self._notify(notices)

    async def _apply(self, events: list[Event]) -> None:
        """Journal the events, then fold them and send what they notify."""
        if not events:
            return
        after = replay(events, self.state)
        call = after.call
        assert call is not None
        upcoming = [d for d in deadlines(after, call, workflow.now()) if d.kind is not DeadlineKind.REMINDER]
        await workflow.execute_activity(
            APPEND,
            AppendEvents(
                dossier_id=after.id, workflow_id=workflow.info().workflow_id,
                first_seq=self.state.version + 1, events=events, call_id=call.id,
                phase_id=after.phase_id, holder=after.holder, status=after.status,
                version=after.version, next_deadline=upcoming[0].at if upcoming else None,
                next_deadline_kind=upcoming[0].kind.value if upcoming else None,
                submitted_at=after.submitted_at,
            ),  # fmt: skip
            start_to_close_timeout=timedelta(seconds=10),  # a batch takes milliseconds; bounds recovery
            retry_policy=JOURNAL_RETRY,
        )
        notices: list[Notice] = []
        state = self.state
        for event in events:
            state = replay([event], state)
            notices.extend(notices_for(state, event))
        self.state = after
        self.changed = True
        if notices:
            await self._notify(notices)

    async def _notify(self, notices: list[Notice]) -> None:
        await workflow.execute_activity(
            SEND,
            SendNotices(notices=notices),
            start_to_close_timeout=timedelta(seconds=20),
            retry_policy=JOURNAL_RETRY,
        )

    @workflow.update
    async def command(self, request: CommandRequest) -> CommandResult:
        """Run one command of the decider: journal its events before answering."""
        async with self.lock:
            try:
                events = decide(self.state, request.command, request.actor, workflow.now())
            except DomainError as exc:  # the state moved since validation
                raise refusal(exc) from None
            await self._apply(events)
            return CommandResult(dossier_id=self.state.id, status=self.state.status,
                                 version=self.state.version, events=[e.type for e in events])  # fmt: skip

    @command.validator
    def validate(self, request: CommandRequest) -> None:
        """Refuse a bad command before it enters history."""
        try:
            decide(self.state, request.command, request.actor, workflow.now())
        except DomainError as exc:
            raise refusal(exc) from None

    @workflow.signal
    async def phase_extended(self, signal: PhaseExtended) -> None:
        """The call's phase closes later: follow the new date if the rules allow it."""
        async with self.lock:
            command = ExtendDeadline(deadline=DeadlineKind.PHASE_CLOSING, until=signal.until)
            try:
                events = decide(self.state, command, signal.actor, workflow.now())
            except DomainError as exc:
                workflow.logger.info("phase extension not applied to %s: %s", self.dossier_id, exc.code)
                return
            await self._apply(events)

    @workflow.query
    def current(self) -> DossierState:
        """The dossier's state now."""
        return self.state

    @workflow.query
    def waiting_for(self) -> list[Deadline]:
        """The deadlines the dossier waits for."""
        return [d for d in self._waiting() if d.key not in self.done]
