"""Keys: the master keyring (a file under the data directory) and the per-dossier data keys it wraps
(envelope encryption, kept wrapped by the journal's store).

Every confidential byte amiflow writes — Temporal payloads, journal events, vault documents — is
sealed with AES-256-GCM. A dossier's content is sealed with that dossier's data key; each data key is
wrapped by one master key, named by its id (`k1`, `k2`…). Rotating the master key adds a new id: new
payloads use it (and, per dossier, a new data key wrapped by it), old ones still open. Destroying a
dossier's data keys makes its content unreadable everywhere at once (retention, issue 6).
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import hmac
import json
import os
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from domain.errors import DomainError
from domain.text import comparable
from journal.store import JournalStore

NONCE = 12  # bytes, the GCM standard
KEYRING = Path("keys") / "keyring.json"
# What says a data directory has been used: a keyring can only be created before any of these.
USED_MARKERS = ("stack.json", "temporal.db", "pgdata")


def write_private(path: Path, text: str) -> None:
    """Replace `path` with `text`, readable by its owner only (0600, folder 0700), atomically and
    durably: a crash leaves the old file or the new one, never half of one nor a lost rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    temporary = path.with_suffix(".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # a leftover temporary file keeps its mode otherwise
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
        out.flush()
        os.fsync(out.fileno())
    os.replace(temporary, path)
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


def keyring_path(data_dir: Path) -> Path:
    """Where the keyring of a data directory is (`AMIFLOW_KEYRING` when set)."""
    return Path(os.environ.get("AMIFLOW_KEYRING") or data_dir / KEYRING)


class KeyProblem(DomainError):
    """A key problem a person must solve (restore a keyring, bring a key back): the message says how."""

    code = "key_problem"


class UnknownKey(KeyProblem):
    """A payload or a row names a key that is not in the keyring (or a dossier key not in the store)."""

    code = "unknown_key"


class Tampered(KeyProblem):
    """The ciphertext does not open with its key: altered bytes, or the wrong key."""

    code = "tampered"


class KeyDestroyed(KeyProblem):
    """The dossier's data keys were destroyed at the end of its retention: its content is gone."""

    code = "key_destroyed"


def seal(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """AES-256-GCM: a fresh random nonce, then the ciphertext with its tag. `aad` binds the bytes
    to where they belong (a dossier, an event's place), so moving them elsewhere fails."""
    nonce = secrets.token_bytes(NONCE)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def unseal(key: bytes, blob: bytes, aad: bytes, what: str) -> bytes:
    """Open what `seal` made.

    Raises:
        Tampered: the bytes were altered, or belong elsewhere, or the key is not theirs.
    """
    try:
        return AESGCM(key).decrypt(blob[:NONCE], blob[NONCE:], aad)
    except (InvalidTag, ValueError):
        raise Tampered(f"{what} : le chiffré ne s’ouvre pas avec sa clé (données altérées ou clé erronée).") from None


@dataclass
class Keyring:
    """The master keys, by id; `active` seals new data. Follows its file: a rotation done by another
    process (`amiflow keys rotate`) reaches running workers at their next payload."""

    path: Path
    _active: str
    keys: dict[str, bytes] = field(repr=False)
    _seen: int = 0  # the file's mtime (ns) when last read

    @property
    def active(self) -> str:
        """The id of the key new data is sealed with, as the keyring file says now."""
        self._follow()
        return self._active

    def _follow(self) -> None:
        try:
            mtime = self.path.stat().st_mtime_ns
        except OSError:  # the file gone under a running process: keep the keys it has
            return
        if mtime != self._seen:
            fresh = self._read(self.path)
            self.keys, self._active, self._seen = fresh.keys, fresh._active, mtime

    @classmethod
    def open(cls, data_dir: Path, create: bool = False, in_use: bool = False) -> Keyring:
        """The keyring of a data directory (or of `AMIFLOW_KEYRING` when set).

        With `create`, a fresh data directory gets a new random key (file mode 0600). A data directory
        already in use whose keyring is missing is an error, never a silent new key: data sealed with
        the lost key would be unreadable, and new data would not be readable by the other processes.
        `in_use` overrides that, for a person initialising a directory made before encryption.

        Raises:
            KeyProblem: missing or unreadable keyring, with what to do.
        """
        path = keyring_path(data_dir)
        if not path.exists():
            used = [] if in_use else [m for m in USED_MARKERS if (data_dir / m).exists()]
            if not create or used:
                raise KeyProblem(
                    f"Trousseau de clés introuvable : {path}. "
                    + (f"Le répertoire {data_dir} est déjà utilisé ({', '.join(used)}) : restaurez le "
                       "trousseau depuis votre sauvegarde ; amiflow ne crée pas de clé nouvelle, qui "
                       "rendrait illisible ce qui a été chiffré avant. (Pour un répertoire créé avant le "
                       "chiffrement, `amiflow keys init` crée le premier trousseau.)" if used else
                       "Lancez `amiflow up` pour créer la pile et son trousseau, ou indiquez-le avec "
                       "AMIFLOW_KEYRING.")
                )
            keyring = cls(path=path, _active="k1", keys={"k1": AESGCM.generate_key(bit_length=256)})
            keyring._write()
            return keyring
        return cls._read(path)

    @classmethod
    def _read(cls, path: Path) -> Keyring:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            keys = {k: base64.b64decode(v) for k, v in data["keys"].items()}
            active = str(data["active"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise KeyProblem(
                f"Trousseau de clés illisible : {path} ({exc}). Restaurez-le depuis votre sauvegarde."
            ) from None
        if active not in keys or any(len(k) != 32 for k in keys.values()):
            raise KeyProblem(
                f"Trousseau de clés incohérent : {path} (clé active {active} absente ou clé de taille fausse)."
            )
        return cls(path=path, _active=active, keys=keys, _seen=path.stat().st_mtime_ns)

    def _write(self) -> None:
        data = {"active": self._active, "keys": {k: base64.b64encode(v).decode() for k, v in self.keys.items()},
                "written_at": datetime.now(UTC).isoformat()}
        write_private(self.path, json.dumps(data, indent=1))
        self._seen = self.path.stat().st_mtime_ns

    def rotate(self) -> str:
        """Add a new master key and make it the active one; returns its id. Old keys stay, so
        everything sealed with them still opens. Two rotations at once are serialised (file lock), so
        neither's key is lost."""
        with open(self.path.with_suffix(".lock"), "a", encoding="utf-8") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            fresh = self._read(self.path) if self.path.exists() else self
            number = max(int(k[1:]) for k in fresh.keys if k[1:].isdigit()) + 1
            self.keys = {**fresh.keys, f"k{number}": AESGCM.generate_key(bit_length=256)}
            self._active = f"k{number}"
            self._write()
        return self._active

    def key(self, key_id: str) -> bytes:
        """The master key of that id.

        Raises:
            UnknownKey: not in the keyring, even after reading its file again.
        """
        if key_id not in self.keys and self.path.exists():
            fresh = self._read(self.path)
            self.keys, self._active, self._seen = fresh.keys, fresh._active, fresh._seen
        if key_id not in self.keys:
            raise UnknownKey(
                f"Clé maîtresse « {key_id} » absente du trousseau {self.path} (clés connues : "
                f"{', '.join(sorted(self.keys))}). Remettez le trousseau qui la contient ; rien n’est perdu."
            )
        return self.keys[key_id]


def blind_index(keyring: Keyring, purpose: str, text: str) -> str:
    """A keyed digest of a text the dossier list filters on but must not keep in clear (the holder's
    territory): equal texts (`domain.text.comparable`) give equal digests, and without the keyring
    nothing tells what a digest stands for. The key is derived from the keyring's first master key
    (`k1`), which rotation keeps, so that digests stay comparable across rotations."""
    first = min(keyring.keys, key=lambda k: (int(k[1:]) if k[1:].isdigit() else 0, k))
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
               info=f"amiflow blind index {purpose}".encode()).derive(keyring.key(first))
    return hmac.new(key, comparable(text).encode("utf-8"), hashlib.sha256).hexdigest()


class DossierKeys:
    """Per-dossier data keys: created on first use, wrapped by the active master key, cached
    unwrapped in this process."""

    # An unwrapped key is used from memory this long, then its row is read again: a dossier shredded
    # by another process stops opening everywhere within this delay. While the database does not
    # answer, a key already known keeps working (a destruction needs the database to happen at all).
    FRESH_FOR = 30.0

    def __init__(self, keyring: Keyring, store: JournalStore) -> None:
        self.keyring = keyring
        self.store = store
        self._cache: dict[tuple[str, str], tuple[bytes, float]] = {}

    async def current(self, dossier_id: str) -> tuple[str, bytes]:
        """The data key new data of that dossier is sealed with, and its id (the master key's)."""
        key_id = self.keyring.active
        cached = self._cached(dossier_id, key_id)
        if cached is not None:
            return key_id, cached
        wrapped = await self._recheck(dossier_id, key_id)
        if isinstance(wrapped, tuple):
            return key_id, wrapped[0]
        if wrapped is None:
            fresh = AESGCM.generate_key(bit_length=256)
            wrapped = seal(self.keyring.key(key_id), fresh, _aad(dossier_id, key_id))
            await self.store.add_key(dossier_id, key_id, wrapped)
            wrapped = await self._wrapped(dossier_id, key_id)  # another process may have won the race
            assert wrapped is not None
        return key_id, self._unwrap(dossier_id, key_id, wrapped)

    async def get(self, dossier_id: str, key_id: str) -> bytes:
        """The data key of that dossier under master key `key_id`.

        Raises:
            KeyDestroyed: the dossier's keys were destroyed (retention).
            UnknownKey: no such key, or its master key is not in the keyring.
        """
        cached = self._cached(dossier_id, key_id)
        if cached is not None:
            return cached
        wrapped = await self._recheck(dossier_id, key_id)
        if isinstance(wrapped, tuple):
            return wrapped[0]
        if wrapped is None:
            raise UnknownKey(f"Aucune clé « {key_id} » pour le dossier {dossier_id}.")
        return self._unwrap(dossier_id, key_id, wrapped)

    async def _recheck(self, dossier_id: str, key_id: str) -> bytes | tuple[bytes] | None:
        """The key's row again; or, the database out of reach, the key as last known (in a 1-tuple)."""
        try:
            return await self._wrapped(dossier_id, key_id)
        except KeyProblem:
            raise
        except Exception:
            known = self._cache.get((dossier_id, key_id))
            if known is None:
                raise
            return (known[0],)

    async def _wrapped(self, dossier_id: str, key_id: str) -> bytes | None:
        row = await self.store.key(dossier_id, key_id)
        if row is None:
            return None
        if row.destroyed_at is not None:
            raise KeyDestroyed(
                f"Le contenu du dossier {dossier_id} a été détruit le {row.destroyed_at:%Y-%m-%d} "
                "(fin de la durée de conservation) : il n’est plus lisible par personne."
            )
        return row.wrapped

    def _unwrap(self, dossier_id: str, key_id: str, wrapped: bytes) -> bytes:
        key = unseal(self.keyring.key(key_id), wrapped, _aad(dossier_id, key_id), f"clé du dossier {dossier_id}")
        self._cache[(dossier_id, key_id)] = (key, time.monotonic() + self.FRESH_FOR)
        return key

    async def destroyed(self, dossier_id: str) -> datetime | None:
        """When the dossier's keys were destroyed, if they were."""
        return await self.store.keys_destroyed_at(dossier_id)

    async def destroy(self, dossier_id: str) -> int:
        """Destroy every data key of the dossier (end of retention): its content, wherever it is sealed
        — Temporal, journal, outbox, vault — can no longer be opened by anyone. Returns how many keys."""
        count = await self.store.destroy_keys(dossier_id)
        self.forget(dossier_id)
        return count

    def _cached(self, dossier_id: str, key_id: str) -> bytes | None:
        entry = self._cache.get((dossier_id, key_id))
        if entry is None or entry[1] < time.monotonic():
            return None
        return entry[0]

    def forget(self, dossier_id: str) -> None:
        """Drop this process's cached keys of a dossier (after they are destroyed)."""
        for k in [k for k in self._cache if k[0] == dossier_id]:
            del self._cache[k]


def _aad(dossier_id: str, key_id: str) -> bytes:
    return f"amiflow:dossier-key:{dossier_id}:{key_id}".encode()
