"""DossierWorkflow: one durable workflow per dossier, running the decider of `domain/`.

Every command is an Update whose validator runs `decide`, so a refused command leaves no trace in
history. The handler journals the events (activity) before it returns, then the main loop re-arms
the timers from `deadlines()`. What the events notify is queued and sent by a coroutine of its own,
after the command has answered: a notice that cannot be delivered is given up on after a few
attempts (a dead letter) and never holds the dossier. Nothing here decides a status, a deadline or
a permission.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from pydantic import BaseModel
from temporalio import workflow

from activities.contracts import (
    APPEND,
    LOAD,
    READ_CALL,
    SEND,
    AppendEvents,
    CallStanding,
    LoadDossier,
    PhaseExtension,
    ReadCall,
    SendNotices,
)
from domain import SYSTEM, Actor, DossierState, Event, deadlines, decide, replay
from domain.access import Origin
from domain.commands import Command, ExtendDeadline, StartDraft
from domain.deadlines import Deadline, consequence, latest_reminders
from domain.errors import DomainError
from domain.notices import Notice, notices_for, reminder_notice
from domain.state import DeadlineKind, Status
from domain.tabs import list_metadata
from workflows.common import (
    CALL_FROM_WORKER,
    CALL_READ_TIMEOUT,
    EXTENSION_FROM_CALL,
    JOURNAL_READ_TIMEOUT,
    JOURNAL_RETRY,
    JOURNAL_WRITE_TIMEOUT,
    NOTICES_AFTER,
    NOTICES_TIMEOUT,
    TRUSTED_START,
    continued_by_itself,
    refusal,
    send_or_give_up,
    untrusted,
)

__all__ = ["JOURNAL_RETRY", "DossierInput", "DossierWorkflow", "refusal"]  # re-exported for older imports


class DossierInput(BaseModel):
    """Start (or continue-as-new) input: the dossier's id (the workflow's own), and its state when
    the workflow continues as new — taken from no other start."""

    dossier_id: str
    state: DossierState | None = None
    done: list[str] = []  # deadlines already acted on whose consequence the rules refused
    resume: bool = False  # a finished dossier reopened: its state is read from the journal


class CommandRequest(BaseModel):
    """A command given by an actor; `origin` says where it came from (absent in older histories)."""

    command: Command
    actor: Actor
    origin: Origin | None = None


class CommandResult(BaseModel):
    """What a command did."""

    dossier_id: str
    status: Status
    version: int
    events: list[str]


class PhaseExtended(BaseModel):
    """Signal from the call's workflow: the phase closes later. Its dates and actor are not believed
    (anyone reaching Temporal can send it): the dossier reads the extension from the call's workflow."""

    until: datetime
    actor: Actor


@workflow.defn
class DossierWorkflow:
    """The life of one dossier."""

    @workflow.init
    def __init__(self, start: DossierInput) -> None:
        # The input is read here, not in `run`, so that an Update delivered with the start is
        # validated against the real state (or refused while the state is not known yet).
        self.dossier_id = workflow.info().workflow_id
        self.untrusted = self._untrusted(start)
        self.state = (start.state if self.untrusted is None else None) or DossierState()
        self.loading = start.resume and self.untrusted is None
        self.lock = asyncio.Lock()
        self.changed = False
        self.done: set[str] = set(start.done)
        self.outgoing: list[list[Notice]] = []  # told by commands and deadlines, sent by `_send_outgoing`

    def _untrusted(self, start: DossierInput) -> str | None:
        """Why the input cannot be taken, if it cannot: the workflow works on its own dossier only,
        and takes a state only from its own continue-as-new (a client's state would be sealed and
        chained into the real journal)."""
        if start.dossier_id != self.dossier_id:
            return f"le workflow {self.dossier_id} ne peut pas porter le dossier {start.dossier_id}"
        if start.state is None:
            return None
        if start.state.id not in ("", self.dossier_id):
            return f"l’état fourni est celui du dossier {start.state.id}, pas de {self.dossier_id}"
        # Runs started with a state before this check (reopened dossiers) keep the path they recorded.
        if not continued_by_itself() and workflow.patched(TRUSTED_START):
            return f"un état de dossier ne se donne pas au démarrage ({self.dossier_id}) : il se lit au journal"
        return None

    @workflow.run
    async def run(self, start: DossierInput) -> DossierState:
        """Wait for commands and deadlines until the dossier reaches a final status."""
        if self.untrusted is not None:
            workflow.logger.warning("start refused: %s", self.untrusted)
            raise untrusted(self.untrusted)
        if self.loading:  # reopened: the journal, read by the worker, is the only source of the state
            self.state = await workflow.execute_activity(
                LOAD, LoadDossier(dossier_id=self.dossier_id), start_to_close_timeout=JOURNAL_READ_TIMEOUT,
                retry_policy=JOURNAL_RETRY, result_type=DossierState,
            )
            self.loading = False
        sender = asyncio.create_task(self._send_outgoing())
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
                await self._settled()
                workflow.continue_as_new(
                    DossierInput(dossier_id=self.dossier_id, state=self.state, done=sorted(self.done))
                )
        await self._settled()
        sender.cancel()
        return self.state

    async def _settled(self) -> None:
        """Every command answered and every notice sent (or given up on): the run may end."""
        await workflow.wait_condition(lambda: workflow.all_handlers_finished() and not self.outgoing)

    async def _send_outgoing(self) -> None:
        """Send the notices in the order they were told, one batch at a time, outside any command's
        lock: a channel that refuses them delays only them, and gives them up after a few attempts."""
        while True:
            await workflow.wait_condition(lambda: bool(self.outgoing))
            await send_or_give_up(self.outgoing[0], NOTICES_TIMEOUT)
            self.outgoing.pop(0)

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
            await self._tell(notices)

    async def _apply(self, events: list[Event]) -> None:
        """Journal the events, then fold them and send what they notify."""
        if not events:
            return
        after = replay(events, self.state)
        call = after.call
        assert call is not None
        upcoming = [d for d in deadlines(after, call, workflow.now()) if d.kind is not DeadlineKind.REMINDER]
        listed = list_metadata(after)
        await workflow.execute_activity(
            APPEND,
            AppendEvents(
                dossier_id=after.id, workflow_id=workflow.info().workflow_id,
                first_seq=self.state.version + 1, events=events, call_id=call.id,
                phase_id=after.phase_id, holder=after.holder, status=after.status,
                version=after.version, next_deadline=upcoming[0].at if upcoming else None,
                next_deadline_kind=upcoming[0].kind.value if upcoming else None,
                submitted_at=after.submitted_at, tab=listed.tab, holder_type=listed.holder_type,
                territory=listed.territory, reviewers=list(listed.reviewers),
            ),
            start_to_close_timeout=JOURNAL_WRITE_TIMEOUT,
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
            await self._tell(notices)

    async def _tell(self, notices: list[Notice]) -> None:
        """Queue the notices for `_send_outgoing`; runs that recorded the old path send them here,
        inside the command, until they are delivered."""
        if workflow.patched(NOTICES_AFTER):
            self.outgoing.append(notices)
        else:
            await self._notify(notices)

    async def _notify(self, notices: list[Notice]) -> None:
        await workflow.execute_activity(
            SEND,
            SendNotices(notices=notices),
            start_to_close_timeout=NOTICES_TIMEOUT,
            retry_policy=JOURNAL_RETRY,
        )

    @workflow.update
    async def command(self, request: CommandRequest) -> CommandResult:
        """Run one command of the decider: journal its events before answering."""
        if self.untrusted is not None:
            raise untrusted(self.untrusted)
        await workflow.wait_condition(lambda: not self.loading)
        async with self.lock:
            command = request.command
            if isinstance(command, StartDraft) and workflow.patched(CALL_FROM_WORKER):
                # The client's snapshot is replaced by the call's workflow's own: it holds the extensions
                # the catalogue lacks, and a workflow cannot query another, so an activity asks it.
                standing = await self._read_call(ReadCall(call_id=command.call.id))
                command = command.model_copy(update={"call": standing.call})
            try:
                events = decide(self.state, command, request.actor, workflow.now())
                self._check_own(events)
                if request.origin is not None:  # the journal records where the command came from too
                    events = [e.model_copy(update={"origin": request.origin}) for e in events]
            except DomainError as exc:  # the state moved since validation, or the call differs
                raise refusal(exc) from None
            await self._apply(events)
            return CommandResult(dossier_id=self.state.id, status=self.state.status,
                                 version=self.state.version, events=[e.type for e in events])

    @command.validator
    def validate(self, request: CommandRequest) -> None:
        """Refuse a bad command before it enters history."""
        if self.untrusted is not None:
            raise untrusted(self.untrusted)
        if self.loading:
            return  # the state is being read from the journal: the handler decides once it is known
        try:
            self._check_own(decide(self.state, request.command, request.actor, workflow.now()))
        except DomainError as exc:
            raise refusal(exc) from None

    def _check_own(self, events: list[Event]) -> None:
        """A draft started here is this workflow's dossier (its id derives from call and reference)."""
        after = replay(events, self.state) if events else self.state
        if after.id and after.id != self.dossier_id:
            raise DomainError(f"Ce workflow porte le dossier {self.dossier_id}, pas {after.id}.")

    async def _read_call(self, request: ReadCall) -> CallStanding:
        result: CallStanding = await workflow.execute_activity(
            READ_CALL, request, start_to_close_timeout=CALL_READ_TIMEOUT,
            retry_policy=JOURNAL_RETRY, result_type=CallStanding,
        )
        return result

    @workflow.signal
    async def phase_extended(self, signal: PhaseExtended) -> None:
        """The call's phase closes later: follow the new date if the rules allow it.

        Temporal does not tell a signal's handler who sent it (the sender's identity is whatever the
        client declared), so the signal is only a prompt: the dossier asks its call's workflow, the
        source of truth, for its phase's closing and who moved it. A forged signal changes nothing.
        """
        async with self.lock:
            if not workflow.patched(EXTENSION_FROM_CALL):  # runs that recorded the old path replay it
                until, actor = signal.until, signal.actor
            else:
                if self.state.call is None:
                    return
                # The signal's claim only lets an answer the call's workflow already gave confirm it.
                claim = PhaseExtension(until=signal.until, actor=signal.actor)
                standing = await self._read_call(ReadCall(call_id=self.state.call.id, phase_id=self.state.phase_id,
                                                          claim=claim))
                extension = standing.extensions.get(self.state.phase_id)
                if extension is None:
                    workflow.logger.info("no extension of phase %s in the call's workflow", self.state.phase_id)
                    return
                until, actor = extension.until, extension.actor
            command = ExtendDeadline(deadline=DeadlineKind.PHASE_CLOSING, until=until)
            try:
                events = decide(self.state, command, actor, workflow.now())
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
