"""Retention on the real components: a legal hold (set and lifted by staff, as events, on a dossier
already closed) stops the shredding; at the end of the retention the dossier's keys are destroyed, its
content becomes unreadable by anyone — journal, documents, Temporal payloads — while its metadata and
chains still verify. An open dossier is never shredded. `amiflow audit shred` finishes a destruction
whose process was killed half-way (after journaling it, or after destroying the keys)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
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
from tests.test_cli_stack import EXAMPLE, PMCB_ID, Run, cli, pmcb_file  # noqa: F401 (fixtures)

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
    listed = await stack.store.dossier(closed)  # the list's metadata remain: still in its tab
    assert listed is not None and (listed.status, listed.tab) == ("closed", "clos")

    # Unreadable by anyone, everywhere: the journal, the vault, Temporal's payloads, another process.
    with pytest.raises(KeyDestroyed, match="plus lisible par personne"):
        await history(stack.store, stack.keys, closed)
    assert not stack.vault.path(closed, ref.id).exists()
    with pytest.raises(KeyDestroyed):
        await EnvelopeCodec(stack.keys).decode([sealed_payload])
    # Another process's cache lets go once its `FRESH_FOR` has passed.
    await unreadable_soon(stack, elsewhere, closed)
    # Its metadata stays, the destruction is in it, and every chain still verifies.
    rows = await stack.store.events(closed)
    assert [r.type for r in rows][-3:] == ["legal_hold_set", "legal_hold_lifted", "content_destroyed"]
    assert rows[-1].actor == "staff:amelie"
    assert await audit.verify_journal(stack.store) == []
    again = await audit.shred(stack.client, stack.store, stack.keys, stack.vault, STAFF, later, False, closed)
    assert again[0]["outcome"] == "already_destroyed"
    # The open dossier is untouched.
    assert (await history(stack.store, stack.keys, still_open))[-1].type == "submitted"


async def unreadable_soon(stack: Stack, keys: DossierKeys, ident: str, timeout: float = 30) -> None:
    """Wait until `keys` (another process's, its cache warm) refuse the dossier as destroyed."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            await history(stack.store, keys, ident)
        except KeyDestroyed:
            return
        assert loop.time() < deadline, f"{ident} still readable {timeout} s after its keys were destroyed"
        await asyncio.sleep(0.05)


async def _state(stack: Stack, ident: str) -> DossierState:
    return replay(await history(stack.store, stack.keys, ident))


async def _a_payload(stack: Stack, ident: str) -> Payload:
    """A payload of the dossier as Temporal stores it (the first update's, which carries the content)."""
    events = (await stack.client.get_workflow_handle(ident).fetch_history()).events
    accepted = next(e.workflow_execution_update_accepted_event_attributes for e in events
                    if e.HasField("workflow_execution_update_accepted_event_attributes"))
    return accepted.accepted_request.input.args.payloads[0]


# `audit shred` with a chosen instant (the command line uses the clock), in a process of its own that
# stops itself (SIGSTOP) when it reaches `HALT_AT`, so that the test can kill it there.
SHRED_UNTIL_HALTED = """
import asyncio, os, signal, sys
from datetime import datetime
from amiflow import audit
from amiflow.bootstrap import NeedTemporal, runtime
from amiflow.settings import load_settings
from amiflow.vault import Vault
from domain import Actor
from journal.keys import DossierKeys

halt_at = {"keys": DossierKeys.destroy, "vault": Vault.destroy}[sys.argv[3]].__code__

def halt(frame, event, arg):
    if event == "call" and frame.f_code is halt_at:
        os.kill(os.getpid(), signal.SIGSTOP)

async def main():
    async with runtime(load_settings(), NeedTemporal.NONE) as rt:
        sys.setprofile(halt)
        await audit.shred(None, rt.store, rt.keys, rt.vault, Actor.parse("staff:amelie"),
                          datetime.fromisoformat(sys.argv[1]), False, sys.argv[2])

asyncio.run(main())
"""


def shred_killed_at(stack: Stack, ident: str, now: datetime, step: str) -> None:
    """Run the destruction of `ident` at `now` in another process and SIGKILL it when it reaches
    `step`: "keys" (the destruction journaled, the keys not destroyed yet) or "vault" (the keys
    destroyed, the documents not removed yet)."""
    env = {**os.environ, "AMIFLOW_DATA_DIR": str(stack.data_dir), "AMIFLOW_DATABASE_URL": stack.database_url}
    process = subprocess.Popen([sys.executable, "-c", SHRED_UNTIL_HALTED, now.isoformat(), ident, step],
                               cwd=Path(__file__).resolve().parent.parent, env=env, stderr=subprocess.PIPE)
    deadline, state = time.monotonic() + 60, ""
    try:
        while process.poll() is None and time.monotonic() < deadline:  # until it stops itself at `step`
            state = Path(f"/proc/{process.pid}/stat").read_text().split()[2]
            if state == "T":
                break
            time.sleep(0.05)
    finally:
        process.kill()
        _, err = process.communicate(timeout=30)
    assert state == "T", (state, err)


async def test_audit_shred_finishes_a_destruction_killed_half_way(cli: Run, stack: Stack, tmp_path: Path) -> None:  # noqa: F811
    piece = tmp_path / "budget.pdf"
    piece.write_bytes(b"%PDF budget " * 50)
    idents, ends = [], []
    for reference in ("FIN-3", "FIN-4"):
        with stack.env.with_time_skipping_disabled():
            ident = (await submit(stack.client, stack.task_queue, await reference_file(tmp_path, reference), HOLDER,
                                  datetime.now(UTC))).dossier_id
        await send(stack.client, ident, AttachDocument(document=await stack.vault.store(ident, piece)), HOLDER)
        await send(stack.client, ident, build_command("close", {"reason": "Projet abandonné"}), STAFF)
        await stack.client.get_workflow_handle(ident).result()
        idents.append(ident)
        ends.append(retention_ends(await _state(stack, ident)))
    later = max(e for e in ends if e is not None) + timedelta(days=1)

    # Killed after journaling the destruction, before destroying the keys; the other one after destroying
    # the keys, before removing the documents.
    journaled, keys_gone = idents
    shred_killed_at(stack, journaled, later, "keys")
    shred_killed_at(stack, keys_gone, later, "vault")
    assert [r.type for r in await stack.store.events(journaled)][-1] == "content_destroyed"
    assert await stack.keys.destroyed(journaled) is None
    assert [r.type for r in await stack.store.events(keys_gone)][-1] == "content_destroyed"
    assert await stack.keys.destroyed(keys_gone) is not None
    assert all(any((stack.vault.root / i).iterdir()) for i in idents)

    # `audit shred --dry-run` touches nothing; `audit shred` finishes both, today: what the rules decided
    # (and the journal recorded) is not decided again.
    code, out, err = await cli("audit", "shred", "--dry-run", "--as", "staff:amelie", "--json")
    assert code == 0, err
    assert all(any((stack.vault.root / i).iterdir()) for i in idents)
    assert await stack.keys.destroyed(journaled) is None
    code, out, err = await cli("audit", "shred", "--as", "staff:amelie", "--json")
    assert code == 0, err
    done = {r["dossier_id"]: r for r in json.loads(out)["dossiers"]}
    assert [(done[i]["outcome"], done[i]["documents"]) for i in idents] == [("destroyed", 1), ("destroyed", 1)]
    assert done[journaled]["keys"] >= 1 and done[keys_gone]["keys"] == 0
    assert all("destruction achevée" in done[i]["reason"] for i in idents)
    reader = DossierKeys(Keyring.open(stack.data_dir), stack.store)  # keys cached by no one
    for ident in idents:
        assert not (stack.vault.root / ident).exists()
        with pytest.raises(KeyDestroyed):
            await history(stack.store, reader, ident)
        assert [r.type for r in await stack.store.events(ident)].count("content_destroyed") == 1
    code, out, _ = await cli("audit", "shred", "--as", "staff:amelie", "--json")
    assert code == 0 and [r["outcome"] for r in json.loads(out)["dossiers"]] == ["already_destroyed"] * 2
    assert await audit.verify_journal(stack.store) == []
