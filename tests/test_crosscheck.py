"""The cross-check of Temporal's histories against the journal (amiflow.crosscheck), on the real
stack: a whole PMCB lifecycle agrees and replays; a journal altered behind the workflow's back (as the
database owner, triggers off) is caught event by event; a dossier whose workflow continued-as-new,
and a closed dossier resumed by a new execution, are checked across their runs; code that no longer
replays its histories is reported; a dossier Temporal no longer holds is said to be so."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest
from temporalio.client import Client

from amiflow.crosscheck import CrossCheck, crosscheck
from amiflow.dossiers import build_command, history, send, start_calls, submit
from domain.errors import InvalidCommand
from domain.state import Status
from journal.sealing import seal_event
from tests import dates
from tests.conftest import NamespacePool, Stack
from tests.test_deadline_timers import follow_up
from tests.test_lifecycle import EXAMPLES, EXPECTED, HOLDER, STAFF, drive
from workflows.call import CallWorkflow

PMCB = "hdf-pmcb-reemploi.yaml"


async def pmcb(stack: Stack) -> str:
    """A whole PMCB lifecycle (test_lifecycle's), closed: 17 events."""
    return await drive(stack, dates.shifted_call("hdf-pmcb-reemploi", datetime.now(UTC)), EXAMPLES / PMCB,
                       "solutions=4,court_terme=3,impact_socio_economique=5", after_closing=False)


async def check(stack: Stack, ident: str) -> CrossCheck:
    return await crosscheck(stack.client, stack.store, stack.keys, ident)


@pytest.fixture
async def owner(stack: Stack) -> AsyncIterator[asyncpg.Connection]:
    """A plain connection as the database owner (not the application's role), with triggers — the
    journal's append-only guards — off, as someone with the server's rights could do."""
    conn = await asyncpg.connect(stack.owner_url)
    await conn.execute("SET session_replication_role = replica")
    yield conn
    await conn.close()


def assert_clean(found: CrossCheck, events: int) -> None:
    assert found.ok, found.message + "\n" + "\n".join(d.detail for d in found.differences)
    assert found.retained and found.replayed and found.replay_error is None
    assert found.temporal_events == found.journal_events == events
    assert found.differences == [] and found.unconfirmed == [] and found.covered_from == 1


async def test_a_whole_lifecycle_agrees_and_replays(stack: Stack) -> None:
    ident = await pmcb(stack)
    found = await check(stack, ident)
    assert_clean(found, len(EXPECTED))
    assert found.runs == 1 and len(found.run_ids) == 1
    assert found.message == (f"Dossier {ident} : Temporal et le journal concordent (17 événements, "
                             "1 exécution(s) rejouée(s) sans erreur).")
    assert json.loads(found.model_dump_json())["ok"] is True  # JSON-able


async def test_a_changed_column_and_a_deleted_event_are_caught(stack: Stack, owner: asyncpg.Connection) -> None:
    ident = await pmcb(stack)
    await owner.execute("UPDATE events SET type = 'declared_complete' WHERE dossier_id = $1 AND seq = 3", ident)
    await owner.execute("DELETE FROM events WHERE dossier_id = $1 AND seq = 17", ident)
    found = await check(stack, ident)
    assert not found.ok and found.replayed  # the code still replays: the journal is at fault
    assert (found.temporal_events, found.journal_events) == (17, 16)
    assert [(d.seq, d.kind) for d in found.differences] == [(3, "differs"), (17, "missing_in_journal")]
    changed, missing = found.differences
    assert changed.detail == (f"Dossier {ident}, événement 3 : la colonne type du journal (« declared_complete ») "
                              "contredit l’événement scellé (« acknowledged »).")
    assert missing.detail == (f"Dossier {ident}, événement 17 (closed) : journalisé selon Temporal "
                              f"(exécution {found.run_ids[0]}) mais absent du journal.")
    assert found.message == f"Dossier {ident} : 2 écart(s) entre Temporal et le journal."


async def test_moved_seals_a_forged_row_and_a_gap_are_caught(stack: Stack, owner: asyncpg.Connection) -> None:
    """Events 5 and 6 swap their sealed bytes: neither opens where it now stands (a seal is bound to
    its place); event 10 deleted from the middle; a clear row appended after the last: in no run."""
    ident = await pmcb(stack)
    closed = (await history(stack.store, stack.keys, ident))[-1]
    five, six = [bytes(r["sealed"]) for r in await owner.fetch(
        "SELECT sealed FROM events WHERE dossier_id = $1 AND seq IN (5, 6) ORDER BY seq", ident)]
    await owner.execute("UPDATE events SET sealed = $2 WHERE dossier_id = $1 AND seq = 5", ident, six)
    await owner.execute("UPDATE events SET sealed = $2 WHERE dossier_id = $1 AND seq = 6", ident, five)
    await owner.execute("DELETE FROM events WHERE dossier_id = $1 AND seq = 10", ident)
    await owner.execute(
        "INSERT INTO events (dossier_id, seq, type, actor, occurred_at, workflow_id, payload, hash, gseq, ghash)"
        " SELECT dossier_id, 18, type, actor, occurred_at, workflow_id, $2::jsonb, hash, 1000000, ghash FROM events"
        " WHERE dossier_id = $1 AND seq = 17", ident, json.dumps({**closed.model_dump(mode="json"), "reason": "Bis."}),
    )
    found = await check(stack, ident)
    assert [(d.seq, d.kind) for d in found.differences] == [
        (5, "unreadable"), (6, "unreadable"), (10, "missing_in_journal"), (18, "missing_in_temporal")]
    assert found.differences[0].detail.startswith(f"Dossier {ident}, événement 5 (complement_provided) : illisible")
    assert "ne s’ouvre pas avec sa clé" in found.differences[0].detail
    assert found.differences[3].detail == (f"Dossier {ident}, événement 18 (closed) : dans le journal mais dans "
                                           "aucune exécution de Temporal.")
    assert (found.temporal_events, found.journal_events) == (17, 17)


async def test_an_event_resealed_with_the_dossiers_key_differs_from_temporal(
    stack: Stack, owner: asyncpg.Connection
) -> None:
    """Someone holding the keys reseals event 9 (the review) with another opinion: it opens and its
    clear columns agree, yet Temporal's record of what the workflow journaled disagrees. The finding
    names the field, never the content."""
    ident = await pmcb(stack)
    review = (await history(stack.store, stack.keys, ident))[8]
    assert review.type == "review_submitted"
    key_id, sealed = await seal_event(stack.keys, ident, 9, review.model_copy(update={"opinion": "Fragile."}))
    await owner.execute("UPDATE events SET sealed = $2, key_id = $3 WHERE dossier_id = $1 AND seq = 9",
                        ident, sealed, key_id)
    found = await check(stack, ident)
    [difference] = found.differences
    assert (difference.seq, difference.kind) == (9, "differs")
    assert difference.detail == (f"Dossier {ident}, événement 9 : le journal diffère de Temporal (exécution "
                                 f"{found.run_ids[0]}) — champs différents : opinion.")


async def test_a_dossier_that_continued_as_new_is_checked_across_its_runs(
    stack: Stack, owner: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Forty meetings recorded in follow-up: the dev server suggests continue-as-new at 300 history
    events, so the workflow runs in several runs; each is replayed, and together they hold every event."""
    with stack.env.with_time_skipping_disabled():
        await start_calls(stack.client, stack.task_queue, [dates.shifted_call("hdf-pmcb-reemploi", datetime.now(UTC))])
        ident = (await submit(stack.client, stack.task_queue, EXAMPLES / PMCB, HOLDER, datetime.now(UTC))).dossier_id
    await follow_up(stack, ident)
    meeting = build_command("record-follow-up", {"kind": "meeting_attended"})
    for _ in range(40):
        await send(stack.client, ident, meeting, STAFF)
    running = await check(stack, ident)  # a workflow still running is checked as well
    assert_clean(running, running.journal_events)
    result = await send(stack.client, ident, build_command("close", {"reason": "Suivi achevé."}), STAFF)
    assert result.status is Status.CLOSED
    await stack.client.get_workflow_handle(ident).result()

    found = await check(stack, ident)
    assert found.runs >= 2, found
    assert_clean(found, result.version)
    assert len(set(found.run_ids)) == found.runs

    # The first run gone (retention removes runs one by one, oldest first; simulated): the events it
    # journaled are in no retained history, and are checked against the state the next run started from.
    import amiflow.crosscheck

    fetch = amiflow.crosscheck._fetch

    async def retained(client: Client, dossier_id: str, run_id: str) -> object:
        return None if run_id == found.run_ids[0] else await fetch(client, dossier_id, run_id)

    monkeypatch.setattr(amiflow.crosscheck, "_fetch", retained)
    partial = await check(stack, ident)
    assert partial.ok and partial.runs == found.runs - 1 and partial.covered_from > 1, partial
    assert partial.journal_events == result.version == partial.temporal_events + partial.covered_from - 1
    assert f"Les événements 1 à {partial.covered_from - 1} ne sont plus dans Temporal" in partial.message

    # An early event resealed by someone holding the keys: only the carried state can tell.
    [(seq, review)] = [(i, e) for i, e in enumerate(await history(stack.store, stack.keys, ident), 1)
                       if e.type == "review_submitted"]
    assert seq < partial.covered_from
    key_id, sealed = await seal_event(stack.keys, ident, seq, review.model_copy(update={"opinion": "Fragile."}))
    await owner.execute("UPDATE events SET sealed = $2, key_id = $3 WHERE dossier_id = $1 AND seq = $4",
                        ident, sealed, key_id, seq)
    tampered = await check(stack, ident)
    start = partial.covered_from - 1
    assert [(d.seq, d.kind) for d in tampered.differences] == [(start, "differs")]
    assert tampered.differences[0].detail == (
        f"Dossier {ident}, événement {start} : les événements 1 à {start} du journal ne donnent pas l’état dont "
        f"l’exécution {partial.run_ids[0]} de Temporal est partie.")


async def test_a_closed_dossier_resumed_for_a_clearance_is_checked_across_executions(stack: Stack) -> None:
    """A clearance on a closed dossier is journaled by a new execution of its workflow (same id, a new
    chain); the earlier execution, found through visibility, still counts."""
    ident = await pmcb(stack)
    grant = build_command("grant-clearance", {"auditor": "odile", "reason": "Contrôle FEDER"})
    result = await send(stack.client, ident, grant, STAFF, stack.store, stack.keys, stack.task_queue)
    assert result.events == ["clearance_granted"]
    await stack.client.get_workflow_handle(ident).result()
    for _ in range(50):  # visibility lists the earlier execution within moments
        found = await check(stack, ident)
        if found.runs == 2:
            break
        await asyncio.sleep(0.1)
    assert found.runs == 2
    assert_clean(found, 18)


async def test_code_that_no_longer_replays_is_reported(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    """The worker's code changed without `workflow.patched`: the cross-check says which run fails."""
    from tests.test_histories import NoticesFirst

    ident = await pmcb(stack)
    monkeypatch.setattr("amiflow.crosscheck.WORKFLOWS", [NoticesFirst, CallWorkflow])
    found = await check(stack, ident)
    assert not found.ok and not found.replayed and found.differences == []
    assert found.replay_error is not None
    assert found.replay_error.startswith(f"l’exécution {found.run_ids[0]} ne se rejoue pas avec le code actuel "
                                         "(NondeterminismError")
    assert "Rejeu en échec" in found.message


async def test_a_dossier_temporal_no_longer_holds(stack: Stack, namespaces: NamespacePool) -> None:
    """After Temporal's retention only the journal remains: said, not failed. Simulated by asking a
    second, empty namespace of the test's own, that never ran the dossier (deleting an execution takes
    the dev server ~35 s)."""
    ident = await pmcb(stack)
    async with namespaces.lease() as empty:
        config = stack.client.config()
        config["namespace"] = empty
        elsewhere = Client(**config)
        found = await crosscheck(elsewhere, stack.store, stack.keys, ident)
        assert not found.retained and not found.replayed and found.runs == 0
        assert found.ok and found.journal_events == 17 and found.temporal_events == 0 and found.differences == []
        assert found.message == (f"Dossier {ident} : Temporal n’a plus d’historique (durée de rétention passée) ; "
                                 "le journal (17 événements) en est le seul registre, sans défaut.")
        with pytest.raises(InvalidCommand, match="Dossier inconnu"):
            await crosscheck(elsewhere, stack.store, stack.keys, "hdf-pmcb-reemploi.inconnu")
