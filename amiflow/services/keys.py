"""Use cases on the keyring of a data directory: list, rotate, create the first one."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from journal.keys import KEYRING, KeyProblem, Keyring


class KeyringView(BaseModel):
    """The master keys' ids and the active one (never the keys)."""

    keyring: str
    active: str
    keys: list[str]


def _view(keyring: Keyring) -> KeyringView:
    return KeyringView(keyring=str(keyring.path), active=keyring.active, keys=sorted(keyring.keys))


def listing(data_dir: Path) -> KeyringView:
    """The keyring's key ids."""
    return _view(Keyring.open(data_dir))


def rotate(data_dir: Path) -> KeyringView:
    """A new master key, made active: new data use it, old data stay readable."""
    keyring = Keyring.open(data_dir)
    keyring.rotate()
    return _view(keyring)


def init(data_dir: Path) -> KeyringView:
    """The first keyring of a data directory made before encryption; refused if one exists (a lost
    keyring is restored, never replaced)."""
    if (data_dir / KEYRING).exists():
        raise KeyProblem(f"Un trousseau existe déjà : {data_dir / KEYRING}.")
    return _view(Keyring.open(data_dir, create=True, in_use=True))
