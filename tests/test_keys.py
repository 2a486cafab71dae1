"""Keys on the real components: rotation in the middle of a lifecycle, a key missing from a worker
(the workflow task retries, the dossier continues once the key is back), altered ciphertext in a
payload, a journal row and a vault file — each a clear error, never a silent wrong answer."""

from __future__ import annotations

import asyncio
import base64
import logging
import shutil
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import select
from temporalio.api.common.v1 import Payload
from temporalio.client import Client

from activities.journal import JournalActivities
from activities.notifications import NotificationActivities
from amiflow.codec import KEY_ID, EnvelopeCodec, data_converter
from amiflow.dossiers import build_command, history, send, start_calls, submit
from amiflow.temporal import build_worker
from amiflow.vault import MAGIC
from amiflow.vault import _aad as vault_aad
from domain import Actor
from domain.state import Status
from journal.keys import KEYRING, DossierKeys, KeyProblem, Keyring, Tampered, UnknownKey, seal
from journal.schema import dossier_keys, events
from tests import dates
from tests.conftest import Stack

EXAMPLE = Path(__file__).resolve().parent.parent / "deploy" / "examples" / "hdf-pmcb-reemploi.yaml"
HOLDER, STAFF = Actor.parse("holder:acme"), Actor.parse("staff:amelie")


async def submitted(stack: Stack, task_queue: str) -> str:
    with stack.env.with_time_skipping_disabled():
        await start_calls(stack.client, task_queue, [dates.shifted_call("hdf-pmcb-reemploi", datetime.now(UTC))])
        return (await submit(stack.client, task_queue, EXAMPLE, HOLDER, datetime.now(UTC))).dossier_id


async def journal_keys(stack: Stack, ident: str) -> list[str]:
    async with stack.engine.connect() as conn:
        rows = await conn.execute(select(events.c.key_id).where(events.c.dossier_id == ident).order_by(events.c.seq))
        return [r[0] for r in rows]


def test_keyring_is_private_refuses_a_silent_new_key_and_rotates(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with pytest.raises(KeyProblem, match="amiflow up"):
        Keyring.open(data)  # reading, never creating
    keyring = Keyring.open(data, create=True)
    path = data / KEYRING
    assert path.stat().st_mode & 0o777 == 0o600 and path.parent.stat().st_mode & 0o777 == 0o700
    first = keyring.key("k1")
    assert keyring.rotate() == "k2" and Keyring.open(data).active == "k2"
    assert Keyring.open(data).key("k1") == first  # old data still opens
    (data / "stack.json").write_text("{}")
    path.unlink()
    with pytest.raises(KeyProblem, match="restaurez le trousseau"):
        Keyring.open(data, create=True)  # a used directory: never a new key in place of a lost one
    with pytest.raises(UnknownKey, match="« k7 » absente du trousseau"):
        keyring.key("k7")


def test_a_running_process_follows_a_rotation_made_elsewhere(tmp_path: Path) -> None:
    """A worker's keyring seals with the new key as soon as `amiflow keys rotate` (another process)
    has written the file: new payloads use the new key without a restart."""
    worker = Keyring.open(tmp_path, create=True)
    assert worker.active == "k1"
    elsewhere = Keyring.open(tmp_path)
    assert elsewhere.rotate() == "k2" and Keyring.open(tmp_path).rotate() == "k3"  # serialised, none lost
    assert worker.active == "k3" and sorted(worker.keys) == ["k1", "k2", "k3"]
    assert elsewhere.active == "k3" and elsewhere.key("k2") == worker.key("k2")


async def test_rotation_in_the_middle_of_a_lifecycle(stack: Stack) -> None:
    ident = await submitted(stack, stack.task_queue)
    await send(stack.client, ident, build_command("acknowledge", {}), STAFF)
    assert stack.keys.keyring.rotate() == "k2"
    due = dates.due(datetime.now(UTC), 20).arg
    await send(stack.client, ident, build_command("request-complement", {"pieces": "Kbis", "due": due}), STAFF)
    result = await send(stack.client, ident, build_command("provide-complement", {"note": "joint"}), HOLDER)
    assert result.status is Status.ACKNOWLEDGED
    assert await journal_keys(stack, ident) == ["k1", "k1", "k1", "k2", "k2"]
    async with stack.engine.connect() as conn:
        wrapped = await conn.execute(select(dossier_keys.c.key_id).where(dossier_keys.c.dossier_id == ident))
        assert sorted(r[0] for r in wrapped) == ["k1", "k2"]
    # Both generations open, in a process that starts afresh from the keyring file.
    fresh = DossierKeys(Keyring.open(stack.data_dir), stack.store)
    assert [e.type for e in await history(stack.store, fresh, ident)][-2:] == ["complement_requested",
                                                                                "complement_provided"]
    # Temporal's copy: the last update's payload names the new key.
    accepted = [e.workflow_execution_update_accepted_event_attributes
                for e in (await stack.client.get_workflow_handle(ident).fetch_history()).events
                if e.HasField("workflow_execution_update_accepted_event_attributes")]
    payload = accepted[-1].accepted_request.input.args.payloads[0]
    assert payload.metadata[KEY_ID] == b"k2" and payload.metadata["encoding"] == b"binary/encrypted"


@pytest.mark.timeout(180)
async def test_a_worker_without_the_key_retries_until_the_key_is_back(
    stack: Stack, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The client rotates; a worker whose keyring file lacks the new key cannot open the update: its
    workflow task fails with the key's name and is retried, nothing is journaled, and once the keyring
    file is brought back the same update completes."""
    behind = tmp_path / "worker-data"
    (behind / "keys").mkdir(parents=True)
    shutil.copy(stack.data_dir / KEYRING, behind / KEYRING)
    worker_keys = DossierKeys(Keyring.open(behind), stack.store)
    worker_client = await Client.connect(stack.client.service_client.config.target_host, namespace=stack.namespace,
                                         data_converter=data_converter(worker_keys))
    queue = f"{stack.task_queue}-behind"
    journal = JournalActivities(stack.store, worker_keys)
    notices = NotificationActivities(stack.store, worker_keys, tmp_path / "maildrop")
    caplog.set_level(logging.WARNING)
    async with build_worker(worker_client, queue, [journal.append, journal.open_dossiers, notices.send]):
        ident = await submitted(stack, queue)
        await send(stack.client, ident, build_command("acknowledge", {}), STAFF)
        stack.keys.keyring.rotate()
        pending = asyncio.create_task(send(stack.client, ident, build_command("declare-complete", {}), STAFF))
        for _ in range(100):
            if "« k2 » absente du trousseau" in caplog.text:
                break
            await asyncio.sleep(0.2)
        assert "« k2 » absente du trousseau" in caplog.text
        assert not pending.done() and await journal_keys(stack, ident) == ["k1", "k1", "k1"]
        shutil.copy(stack.data_dir / KEYRING, behind / KEYRING)  # the key is back
        result = await asyncio.wait_for(pending, 120)
    assert result.status is Status.COMPLETE
    assert await journal_keys(stack, ident) == ["k1", "k1", "k1", "k2"]


async def test_altered_ciphertext_is_a_clear_error_everywhere(stack: Stack, tmp_path: Path) -> None:
    ident = await submitted(stack, stack.task_queue)
    codec = EnvelopeCodec(stack.keys, ident)
    [sealed] = await codec.encode([Payload(metadata={"encoding": b"json/plain"}, data=b'"secret"')])
    altered = Payload()
    altered.CopyFrom(sealed)
    altered.data = sealed.data[:-1] + bytes([sealed.data[-1] ^ 1])
    with pytest.raises(Tampered, match=f"charge utile du dossier {ident}"):
        await codec.decode([altered])
    unknown = Payload()
    unknown.CopyFrom(sealed)
    unknown.metadata[KEY_ID] = b"k9"
    with pytest.raises(UnknownKey, match="k9"):
        await codec.decode([unknown])
    assert (await codec.decode([sealed]))[0].data == b'"secret"'

    # A journal row changed in place (by someone with the database's rights): named, not misread.
    owner = await asyncpg.connect(stack.owner_url)
    await owner.execute("set session_replication_role = replica")  # the append-only trigger off, as an attacker
    sealed_bytes = await owner.fetchval("select sealed from events where dossier_id = $1 and seq = 2", ident)
    flipped = sealed_bytes[:20] + bytes([sealed_bytes[20] ^ 1]) + sealed_bytes[21:]
    await owner.execute("update events set sealed = $1 where dossier_id = $2 and seq = 2", flipped, ident)
    await owner.close()
    with pytest.raises(Tampered, match=f"événement 2 du dossier {ident}"):
        await history(stack.store, stack.keys, ident)

    # A vault file replaced or altered: its seal or its SHA-256 refuses it.
    piece = tmp_path / "budget.pdf"
    piece.write_bytes(b"%PDF-1.4 budget" * 100)
    ref = await stack.vault.store(ident, piece)
    assert await stack.vault.fetch(ident, ref) == piece.read_bytes()
    path = stack.vault.path(ident, ref.id)
    body = path.read_bytes()
    path.write_bytes(body[:-5] + bytes([body[-5] ^ 1]) + body[-4:])
    with pytest.raises(Tampered, match=ref.id):
        await stack.vault.fetch(ident, ref)
    other = await stack.vault.store(ident, EXAMPLE)  # a well-sealed file, but not the one the journal names
    shutil.copy(stack.vault.path(ident, other.id), path)
    with pytest.raises(Tampered, match="ne s’ouvre pas"):
        await stack.vault.fetch(ident, ref)
    key_id, key = await stack.keys.current(ident)  # re-sealed by someone holding the key: the hash refuses it
    path.write_bytes(MAGIC + key_id.encode() + b"\n" + seal(key, b"autre contenu", vault_aad(ident, ref.id)))
    with pytest.raises(Tampered, match="empreinte SHA-256"):
        await stack.vault.fetch(ident, ref)


def test_keys_commands(tmp_path: Path) -> None:
    """`amiflow keys …`: ids only, never the keys; rotate adds one; init refuses to replace a keyring."""
    import json
    import subprocess
    import sys

    def amiflow(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "amiflow.cli", "--data-dir", str(tmp_path / "data"), *args],
                              capture_output=True, text=True, timeout=60, check=False)

    assert amiflow("keys", "list").returncode == 1  # no keyring yet, and `list` never makes one
    assert amiflow("keys", "init").returncode == 0
    assert amiflow("keys", "init").returncode == 1  # never over an existing keyring
    rotated = amiflow("keys", "rotate")
    assert rotated.returncode == 0 and "Clé active : k2" in rotated.stdout
    listed = json.loads(amiflow("keys", "list", "--json").stdout)
    assert listed["active"] == "k2" and listed["keys"] == ["k1", "k2"]
    secret = Keyring.open(tmp_path / "data").key("k2")
    assert base64.b64encode(secret).decode() not in rotated.stdout + amiflow("keys", "list", "--json").stdout


def test_the_blind_index_of_a_territory(tmp_path: Path) -> None:
    """Equal territories (case and spaces aside) give one digest, which a rotation keeps; another
    keyring, or another purpose, gives another; nothing of the text shows."""
    from journal.keys import blind_index

    keyring = Keyring.open(tmp_path / "a", create=True)
    nord = blind_index(keyring, "territory", "Pas-de-Calais — Lens")
    assert blind_index(keyring, "territory", "  pas-de-calais   —  LENS ") == nord and len(nord) == 64
    assert "lens" not in nord.casefold() and blind_index(keyring, "territory", "Oise") != nord
    keyring.rotate()
    assert blind_index(keyring, "territory", "Pas-de-Calais — Lens") == nord  # still k1's, after rotation
    assert blind_index(keyring, "other", "Pas-de-Calais — Lens") != nord
    assert blind_index(Keyring.open(tmp_path / "b", create=True), "territory", "Pas-de-Calais — Lens") != nord
