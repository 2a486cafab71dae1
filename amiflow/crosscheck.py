"""Cross-check of one dossier: what Temporal's histories say the workflow journaled, against what the
journal holds.

The dossier's workflow journals every event through one activity (`APPEND`) whose input — the events
numbered from `first_seq` — Temporal keeps in the workflow's history. While those histories are
retained, they are a second record of the journal. `crosscheck` reads every retained run of the
dossier's workflow (the continue-as-new chain, and earlier executions of the same id, such as the run
before a closed dossier was resumed for a clearance), replays each with the current workflow code (a
replay failure is a non-determinism: the code no longer matches the histories it must resume), and
compares, seq by seq, the events of the APPEND inputs with the journal's rows opened with the
dossier's key, and each row's clear columns (type, actor, occurred_at) with its sealed event.

Once Temporal's retention has passed, the journal is the only record: the check says so
(`retained=False`) and only looks at the journal itself (gaps, rows that do not open).
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ValidationError
from temporalio.client import Client, WorkflowHistory
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Replayer

from activities.contracts import APPEND, AppendEvents
from amiflow.temporal import SANDBOX, WORKFLOWS
from domain import DossierState, Event, replay
from domain.errors import InvalidCommand
from journal.keys import DossierKeys, KeyProblem
from journal.sealing import open_event
from journal.store import JournalStore
from workflows.dossier import DossierInput

Kind = Literal["missing_in_journal", "missing_in_temporal", "differs", "unreadable"]

class Difference(BaseModel):
    """One disagreement about one event of the dossier (`seq` is its number in the journal)."""

    seq: int
    kind: Kind
    detail: str


class CrossCheck(BaseModel):
    """What the cross-check found; `ok` when the code replays every retained run and the two records
    agree on every event they both cover."""

    dossier_id: str
    retained: bool  # Temporal still holds at least one run of the dossier's workflow
    runs: int  # runs whose history was read
    run_ids: list[str] = []  # in the order the dossier lived them
    replayed: bool  # every run read was replayed without failure
    replay_error: str | None = None
    temporal_events: int  # events found in the APPEND inputs of the histories
    journal_events: int  # rows in the journal
    # The first seq the retained histories account for (1: all). Events before it were journaled by
    # runs Temporal no longer holds; they are checked against the state the next run started from.
    covered_from: int = 1
    unconfirmed: list[int] = []  # seqs whose APPEND was scheduled but has not completed (yet)
    differences: list[Difference] = []
    ok: bool
    message: str


@dataclass
class _Run:
    """What one run's history tells."""

    run_id: str
    started_at: datetime
    start: DossierInput
    appended: dict[int, tuple[Event, bool]]  # seq → (event, APPEND completed)

    @property
    def start_version(self) -> int:
        return self.start.state.version if self.start.state is not None else 0

    @property
    def last_version(self) -> int:
        return max([self.start_version, *self.appended])


@dataclass
class _Row:
    """One journal row: its clear columns, and its sealed event opened (or why it does not open)."""

    seq: int
    type: str
    actor: str
    occurred_at: datetime
    event: Event | None
    problem: str | None


async def crosscheck(client: Client, store: JournalStore, keys: DossierKeys, dossier_id: str) -> CrossCheck:
    """Compare the dossier's retained Temporal histories with its journal; replay each run.

    `client` must use the data converter the workflows ran with (amiflow's sealing converter in
    production). Raises InvalidCommand when neither Temporal nor the journal knows the dossier.
    """
    histories = await _histories(client, dossier_id)
    rows = await _journal(store, keys, dossier_id)
    if not histories and not rows:
        raise InvalidCommand(f"Dossier inconnu « {dossier_id} » (ni dans Temporal ni dans le journal).")
    # In the order the dossier lived them: each run starts from a later state (a clock that was
    # fast-forwarded in a test makes start times alone unreliable).
    runs = sorted([await _read_run(client, run_id, h) for run_id, h in histories.items()],
                  key=lambda r: (r.start_version, r.started_at))

    replay_error = await _replay(client, [(r.run_id, histories[r.run_id]) for r in runs]) if runs else None
    differences: list[Difference] = []
    temporal: dict[int, tuple[Event, bool, str]] = {}
    for run in runs:
        for seq, (event, confirmed) in sorted(run.appended.items()):
            if seq in temporal and _dump(temporal[seq][0]) != _dump(event):
                differences.append(Difference(seq=seq, kind="differs", detail=(
                    f"Dossier {dossier_id}, événement {seq} : les exécutions {temporal[seq][2]} et {run.run_id} "
                    f"de Temporal l’ont journalisé différemment ({_fields(temporal[seq][0], event)})."
                )))
                continue
            if seq not in temporal or (confirmed and not temporal[seq][1]):
                temporal[seq] = (event, confirmed, run.run_id)

    journal = {row.seq: row for row in rows}
    last = max([*journal, *temporal], default=0)
    uncovered = _uncovered(runs, last)
    for seq in range(1, last + 1):
        differences.extend(_compare(dossier_id, seq, temporal.get(seq), journal.get(seq), seq in uncovered))
    differences.extend(_start_states(dossier_id, runs, journal))
    differences.sort(key=lambda d: d.seq)

    unconfirmed = sorted(s for s, (_, confirmed, _) in temporal.items() if not confirmed)
    ok = replay_error is None and not differences
    result = CrossCheck(
        dossier_id=dossier_id, retained=bool(runs), runs=len(runs), run_ids=[r.run_id for r in runs],
        replayed=bool(runs) and replay_error is None, replay_error=replay_error,
        temporal_events=len(temporal), journal_events=len(rows),
        covered_from=min([s for s in range(1, last + 2) if s not in uncovered]), unconfirmed=unconfirmed,
        differences=differences, ok=ok, message="",
    )
    result.message = _summary(result)
    return result


def _dump(event: Event) -> dict[str, Any]:
    dumped: dict[str, Any] = event.model_dump(mode="json")
    return dumped


def _fields(a: Event, b: Event) -> str:
    """The differing fields' names (never their values: an event carries the dossier's content)."""
    left, right = _dump(a), _dump(b)
    names = sorted(k for k in left.keys() | right.keys() if left.get(k) != right.get(k))
    text = "champs différents : " + ", ".join(names)
    if "type" in names:
        text += f" ; type « {a.type} » contre « {b.type} »"
    return text


async def _histories(client: Client, dossier_id: str) -> dict[str, WorkflowHistory]:
    """Every retained run of the dossier's workflow: the current chain, followed from its first run
    through each continue-as-new (or back from the current run when the first is gone), and earlier
    executions of the same id that visibility still lists."""
    try:
        info = (await client.get_workflow_handle(dossier_id).describe()).raw_description.workflow_execution_info
    except RPCError as exc:
        if exc.status is not RPCStatusCode.NOT_FOUND:
            raise
        return {}
    found: dict[str, WorkflowHistory] = {}
    run_id = info.first_run_id
    while run_id and run_id not in found:  # forward from the chain's first run
        history = await _fetch(client, dossier_id, run_id)
        if history is None:
            break
        found[run_id] = history
        run_id = _next_run(history)
    run_id = info.execution.run_id
    while run_id and run_id not in found:  # back from the current run (earlier runs may be gone)
        history = await _fetch(client, dossier_id, run_id)
        if history is None:
            break
        found[run_id] = history
        run_id = history.events[0].workflow_execution_started_event_attributes.continued_execution_run_id
    try:
        async for execution in client.list_workflows(f'WorkflowId = "{dossier_id}"'):
            if execution.run_id not in found:
                history = await _fetch(client, dossier_id, execution.run_id)
                if history is not None:
                    found[execution.run_id] = history
    except RPCError:  # visibility unavailable: the chain alone
        pass
    return found


async def _fetch(client: Client, dossier_id: str, run_id: str) -> WorkflowHistory | None:
    try:
        history = await client.get_workflow_handle(dossier_id, run_id=run_id).fetch_history()
    except RPCError as exc:
        if exc.status is RPCStatusCode.NOT_FOUND:
            return None
        raise
    return history if history.events else None


def _next_run(history: WorkflowHistory) -> str:
    for event in reversed(history.events):
        if event.HasField("workflow_execution_continued_as_new_event_attributes"):
            return event.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
    return ""


async def _read_run(client: Client, run_id: str, history: WorkflowHistory) -> _Run:
    """The run's start input and the events its APPEND activities carried, by seq."""
    first = history.events[0]
    started = first.workflow_execution_started_event_attributes
    if started.workflow_type.name != "DossierWorkflow":
        raise InvalidCommand(f"« {history.workflow_id} » n’est pas un dossier (workflow {started.workflow_type.name}).")
    [start] = await client.data_converter.decode(list(started.input.payloads), [DossierInput])
    batches: dict[int, AppendEvents] = {}  # by the id of the event that scheduled the activity
    completed: set[int] = set()
    for event in history.events:
        if event.HasField("activity_task_scheduled_event_attributes"):
            attrs = event.activity_task_scheduled_event_attributes
            if attrs.activity_type.name == APPEND:
                [batch] = await client.data_converter.decode(list(attrs.input.payloads), [AppendEvents])
                batches[event.event_id] = batch
        elif event.HasField("activity_task_completed_event_attributes"):
            completed.add(event.activity_task_completed_event_attributes.scheduled_event_id)
    appended: dict[int, tuple[Event, bool]] = {}
    for scheduled, batch in batches.items():
        for i, e in enumerate(batch.events):
            appended[batch.first_seq + i] = (e, scheduled in completed)
    return _Run(run_id=run_id, started_at=first.event_time.ToDatetime(tzinfo=UTC), start=start,
                appended=appended)


async def _replay(client: Client, runs: Sequence[tuple[str, WorkflowHistory]]) -> str | None:
    """Replay each run with the current code; the failures, in French, or None."""
    failures = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        replayer = Replayer(workflows=WORKFLOWS, workflow_runner=SANDBOX, data_converter=client.data_converter,
                            workflow_task_executor=pool)
        for run_id, history in runs:
            result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
            if result.replay_failure is not None:
                failure = result.replay_failure
                failures.append(f"l’exécution {run_id} ne se rejoue pas avec le code actuel "
                                f"({type(failure).__name__} : {failure})")
    return " ; ".join(failures) or None


async def _journal(store: JournalStore, keys: DossierKeys, dossier_id: str) -> list[_Row]:
    """The journal's rows of the dossier, each opened with its key (a row that does not open is kept,
    with the reason)."""
    rows = []
    for r in await store.events(dossier_id):
        event: Event | None = None
        problem = None
        try:
            event = await open_event(keys, r)
        except KeyProblem as exc:
            problem = exc.message
        except ValidationError as exc:  # a clear row (before encryption) that is no event
            problem = f"ce n’est pas un événement ({exc.error_count()} erreur(s) de validation)"
        rows.append(_Row(seq=r.seq, type=r.type, actor=r.actor, occurred_at=r.occurred_at, event=event,
                         problem=problem))
    return rows


def _uncovered(runs: Sequence[_Run], last: int) -> set[int]:
    """Seqs (up to `last`) no retained history accounts for: before the first retained run, and
    between runs when one in the middle is gone; all of them when no run is retained."""
    if not runs:
        return set(range(1, last + 1))
    gaps = set(range(1, runs[0].start_version + 1))
    for before, after in zip(runs, runs[1:], strict=False):
        gaps |= set(range(before.last_version + 1, after.start_version + 1))
    return gaps


def _compare(dossier_id: str, seq: int, temporal: tuple[Event, bool, str] | None, row: _Row | None,
             uncovered: bool) -> list[Difference]:
    where = f"Dossier {dossier_id}, événement {seq}"
    if row is None:
        if temporal is None:
            return [Difference(seq=seq, kind="missing_in_journal",
                               detail=f"{where} : absent du journal (trou entre les événements voisins).")]
        event, confirmed, run_id = temporal
        if not confirmed:  # scheduled, not completed: in flight, or its run ended before it did
            return []
        return [Difference(seq=seq, kind="missing_in_journal", detail=(
            f"{where} ({event.type}) : journalisé selon Temporal (exécution {run_id}) mais absent du journal."))]
    if row.event is None:
        return [Difference(seq=seq, kind="unreadable", detail=f"{where} ({row.type}) : illisible — {row.problem}")]
    out = []
    clear = {"type": (row.type, row.event.type), "actor": (row.actor, str(row.event.actor)),
             "occurred_at": (row.occurred_at, row.event.at)}
    for column, (stored, sealed) in clear.items():
        if stored != sealed:
            out.append(Difference(seq=seq, kind="differs", detail=(
                f"{where} : la colonne {column} du journal (« {stored} ») contredit l’événement scellé "
                f"(« {sealed} »).")))
    if temporal is None:
        if not uncovered:
            out.append(Difference(seq=seq, kind="missing_in_temporal", detail=(
                f"{where} ({row.event.type}) : dans le journal mais dans aucune exécution de Temporal.")))
        return out
    event, _, run_id = temporal
    if _dump(event) != _dump(row.event):
        out.append(Difference(seq=seq, kind="differs", detail=(
            f"{where} : le journal diffère de Temporal (exécution {run_id}) — {_fields(event, row.event)}.")))
    return out


def _start_states(dossier_id: str, runs: Sequence[_Run], journal: dict[int, _Row]) -> list[Difference]:
    """A run that starts from a state (continue-as-new, or a final dossier resumed) that no retained
    run before it reached: the journal's events up to that state must fold into it."""
    out = []
    for i, run in enumerate(runs):
        state = run.start.state
        if state is None or (i > 0 and runs[i - 1].last_version >= state.version):
            continue
        opened = [journal[s].event for s in range(1, state.version + 1) if s in journal]
        if len(opened) < state.version or any(e is None for e in opened):
            continue  # the gap or the unreadable row is reported on its own
        folded = replay([e for e in opened if e is not None], DossierState())
        if folded.model_dump(mode="json") != state.model_dump(mode="json"):
            out.append(Difference(seq=state.version, kind="differs", detail=(
                f"Dossier {dossier_id}, événement {state.version} : les événements 1 à {state.version} du journal "
                f"ne donnent pas l’état dont l’exécution {run.run_id} de Temporal est partie.")))
    return out


def _summary(check: CrossCheck) -> str:
    d, n = check.dossier_id, len(check.differences)
    if not check.retained:
        text = (f"Dossier {d} : Temporal n’a plus d’historique (durée de rétention passée) ; le journal "
                f"({check.journal_events} événements) en est le seul registre")
        return text + (f", et il a {n} défaut(s)." if n else ", sans défaut.")
    if check.ok:
        text = (f"Dossier {d} : Temporal et le journal concordent ({check.journal_events} événements, "
                f"{check.runs} exécution(s) rejouée(s) sans erreur).")
    else:
        text = f"Dossier {d} : {n} écart(s) entre Temporal et le journal."
        if check.replay_error:
            text += f" Rejeu en échec : {check.replay_error}."
    if check.covered_from > 1:
        text += (f" Les événements 1 à {check.covered_from - 1} ne sont plus dans Temporal : ils sont "
                 "vérifiés contre l’état de départ de l’exécution suivante.")
    if check.unconfirmed:
        text += f" Journalisation en cours ou non confirmée : événements {', '.join(map(str, check.unconfirmed))}."
    return text
