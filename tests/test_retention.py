"""Retention on the real components: a legal hold (set and lifted by staff, as events, on a dossier
already closed) stops the shredding; at the end of the retention the dossier's keys are destroyed, its
content becomes unreadable by anyone — journal, documents, Temporal payloads — while its metadata and
chains still verify. An open dossier is never shredded."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from temporalio.api.common.v1 import Payload

from amiflow import audit
from amiflow.codec import EnvelopeCodec
from amiflow.dossiers import build_command, history, send, start_calls, submit
from domain import Actor, DossierState, replay
from domain.calendar import PARIS
from domain.commands import AttachDocument
from domain.retention import retention_ends
from domain.state import Status
from journal.keys import DossierKeys, KeyDestroyed, Keyring
from tests import dates
from tests.conftest import Stack
from tests.test_audit import reference_file

HOLDER, STAFF = Actor.parse("holder:acme"), Actor.parse("staff:amelie")


async def test_shredding_after_retention_and_legal_hold(stack: Stack, tmp_path: Path) -> None:  # noqa: PLR0915
    with stack.env.with_time_skipping_disabled():
        await start_calls(stack.client, stack.task_queue, [dates.shifted_call("hdf-pmcb-reemploi", datetime.now(UTC))])
        now = datetime.now(UTC)
        closed = (await submit(stack.client, stack.task_queue, await reference_file(tmp_path, "FIN-1"), HOLDER,
                               now)).dossier_id
        still_open = (await submit(stack.client, stack.task_queue, await reference_file(tmp_path, "OUVERT-2"), HOLDER,
                                   now)).dossier_id
    piece = tmp_path / "budget.pdf"
    piece.write_bytes(b"%PDF budget " * 50)
    ref = await stack.vault.store(closed, piece)
    await send(stack.client, closed, AttachDocument(document=ref), HOLDER)
    await send(stack.client, closed, build_command("close", {"reason": "Projet abandonné"}), STAFF)
    await stack.client.get_workflow_handle(closed).result()
    state_before = await _state(stack, closed)
    ends = retention_ends(state_before)
    assert ends is not None and state_before.closed_at is not None
    day = state_before.closed_at.astimezone(PARIS).date()  # ten years (call file: retention_years: 10), kept
    assert ends == datetime(day.year + 10, day.month, day.day, tzinfo=PARIS) + timedelta(days=1)  # all that day
    later = ends + timedelta(days=1)

    # A legal hold, set on the closed dossier as an event (its workflow runs again to journal it).
    hold = build_command("set-legal-hold", {"reason": "Contentieux devant le tribunal administratif"})
    assert (await send(stack.client, closed, hold, STAFF, stack.store, stack.keys, stack.task_queue)).status \
        is Status.CLOSED
    report = await audit.shred(stack.client, stack.store, stack.keys, stack.vault, STAFF, later, False, closed)
    assert report[0]["outcome"] == "kept" and "conservation légale" in report[0]["reason"]
    # Before the end of the retention, nothing either.
    lift = build_command("lift-legal-hold", {"reason": "Jugement rendu"})
    await send(stack.client, closed, lift, STAFF, stack.store, stack.keys, stack.task_queue)
    early = await audit.shred(stack.client, stack.store, stack.keys, stack.vault, STAFF, ends - timedelta(days=1),
                              False, closed)
    assert early[0]["outcome"] == "kept" and "court jusqu’au" in early[0]["reason"]
    # An open dossier: never.
    refused = await audit.shred(stack.client, stack.store, stack.keys, stack.vault, STAFF, later, False, still_open)
    assert refused[0]["outcome"] == "kept" and "n’est pas terminé" in refused[0]["reason"]

    # Dry run: says what would go, touches nothing.
    sealed_payload = await _a_payload(stack, closed)
    dry = await audit.shred(stack.client, stack.store, stack.keys, stack.vault, STAFF, later, True)
    assert [(r["dossier_id"], r["outcome"]) for r in dry] == [(closed, "would_destroy")]
    assert len(await history(stack.store, stack.keys, closed)) == state_before.version + 2
    assert await stack.vault.fetch(closed, ref) == piece.read_bytes()

    elsewhere = DossierKeys(Keyring.open(stack.data_dir), stack.store)  # a worker's keys, warmed
    elsewhere.FRESH_FOR = 0.5  # 30 s in production
    await history(stack.store, elsewhere, closed)
    done = await audit.shred(stack.client, stack.store, stack.keys, stack.vault, STAFF, later, False)
    assert [(r["dossier_id"], r["outcome"], r["documents"]) for r in done] == [(closed, "destroyed", 1)]
    assert done[0]["keys"] >= 1

    # Unreadable by anyone, everywhere: the journal, the vault, Temporal's payloads, another process.
    with pytest.raises(KeyDestroyed, match="plus lisible par personne"):
        await history(stack.store, stack.keys, closed)
    assert not stack.vault.path(closed, ref.id).exists()
    with pytest.raises(KeyDestroyed):
        await EnvelopeCodec(stack.keys).decode([sealed_payload])
    # Another process's cache lets go after `FRESH_FOR` seconds.
    await asyncio.sleep(0.6)
    with pytest.raises(KeyDestroyed):
        await history(stack.store, elsewhere, closed)
    # Its metadata stays, the destruction is in it, and every chain still verifies.
    rows = await stack.store.events(closed)
    assert [r.type for r in rows][-3:] == ["legal_hold_set", "legal_hold_lifted", "content_destroyed"]
    assert rows[-1].actor == "staff:amelie"
    assert await audit.verify_journal(stack.store) == []
    again = await audit.shred(stack.client, stack.store, stack.keys, stack.vault, STAFF, later, False, closed)
    assert again[0]["outcome"] == "already_destroyed"
    # The open dossier is untouched.
    assert (await history(stack.store, stack.keys, still_open))[-1].type == "submitted"


async def _state(stack: Stack, ident: str) -> DossierState:
    return replay(await history(stack.store, stack.keys, ident))


async def _a_payload(stack: Stack, ident: str) -> Payload:
    """A payload of the dossier as Temporal stores it (the first update's, which carries the content)."""
    events = (await stack.client.get_workflow_handle(ident).fetch_history()).events
    accepted = next(e.workflow_execution_update_accepted_event_attributes for e in events
                    if e.HasField("workflow_execution_update_accepted_event_attributes"))
    return accepted.accepted_request.input.args.payloads[0]
