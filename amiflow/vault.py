"""The document vault: files attached to dossiers, sealed with the dossier's data key.

Events and workflows carry a `DocumentRef` (id, name, SHA-256, size, media type), never the bytes.
A file is written once, under its dossier, and checked on every read: its seal (AES-GCM) and then its
SHA-256 against the one the journal recorded.
"""

from __future__ import annotations

import hashlib
import mimetypes
import os
import re
import secrets
from pathlib import Path

from domain.inputs import DOCUMENT_MAX, check_attachment
from domain.state import DocumentRef, DossierState, is_dossier_id
from journal.keys import DossierKeys, KeyProblem, Tampered, seal, unseal

MAGIC = b"AMIFLOW-DOC1\n"
MAX_SIZE = DOCUMENT_MAX  # a dossier piece, not an archive; Temporal never sees the bytes anyway


class Vault:
    """Sealed files under `root/<dossier id>/<document id>`."""

    def __init__(self, root: Path, keys: DossierKeys) -> None:
        self.root = root
        self.keys = keys

    def path(self, dossier_id: str, document_id: str) -> Path:
        """Where a document's sealed file lives.

        Raises:
            KeyProblem: an id that is not a dossier's or a document's (a path must stay in the vault).
        """
        if not is_dossier_id(dossier_id) or not re.fullmatch(r"doc-[0-9a-f]{16}", document_id):
            raise KeyProblem(f"Identifiant inattendu : « {dossier_id} » / « {document_id} ».")
        return self.root / dossier_id / f"{document_id}.sealed"

    async def store(self, dossier_id: str, file: Path) -> DocumentRef:
        """Seal `file` into the vault; returns the reference to attach to the dossier.

        Raises:
            KeyProblem: unreadable file, too large, or no key.
        """
        try:
            if file.stat().st_size > MAX_SIZE:  # before reading it whole
                check_attachment(DossierState(), file.stat().st_size)
            data = file.read_bytes()
        except OSError as exc:
            raise KeyProblem(f"Fichier illisible : {file} ({exc.strerror}).") from None
        if len(data) > MAX_SIZE:
            raise KeyProblem(f"{file.name} : {len(data)} octets, au-delà de la limite de {MAX_SIZE} octets.")
        ref = DocumentRef(
            id=f"doc-{secrets.token_hex(8)}", name=file.name, sha256=hashlib.sha256(data).hexdigest(),
            size=len(data), media_type=mimetypes.guess_type(file.name)[0] or "application/octet-stream",
        )
        target = self.path(dossier_id, ref.id)  # checks the id before any key is made for it
        key_id, key = await self.keys.current(dossier_id)
        target.parent.mkdir(parents=True, exist_ok=True)
        body = MAGIC + key_id.encode() + b"\n" + seal(key, data, _aad(dossier_id, ref.id))
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(body)
            out.flush()
            os.fsync(out.fileno())
        return ref

    def destroy(self, dossier_id: str) -> int:
        """Remove every sealed file of the dossier (end of retention); returns how many."""
        folder = self.path(dossier_id, "doc-" + "0" * 16).parent
        files = list(folder.glob("*.sealed")) if folder.exists() else []
        for path in files:
            path.unlink()
        if folder.exists():
            folder.rmdir()
        return len(files)

    def discard(self, dossier_id: str, ref: DocumentRef) -> None:
        """Remove a stored file the dossier refused to attach."""
        self.path(dossier_id, ref.id).unlink(missing_ok=True)

    async def fetch(self, dossier_id: str, ref: DocumentRef) -> bytes:
        """The document's bytes, checked.

        Raises:
            Tampered: the file was altered (its seal or its SHA-256 do not match the journal's).
            KeyProblem: the file is missing or its key is unknown or destroyed.
        """
        path = self.path(dossier_id, ref.id)
        try:
            body = path.read_bytes()
        except FileNotFoundError:
            raise KeyProblem(
                f"Document {ref.id} absent du coffre ({path}) : restaurez-le depuis la sauvegarde."
            ) from None
        if not body.startswith(MAGIC) or b"\n" not in body[len(MAGIC):]:
            raise Tampered(f"Document {ref.id} ({ref.name}) : fichier altéré, en-tête illisible.")
        key_id, _, blob = body[len(MAGIC):].partition(b"\n")
        key = await self.keys.get(dossier_id, key_id.decode(errors="replace"))
        data = unseal(key, blob, _aad(dossier_id, ref.id), f"Document {ref.id} ({ref.name})")
        digest = hashlib.sha256(data).hexdigest()
        if digest != ref.sha256 or len(data) != ref.size:
            raise Tampered(f"Document {ref.id} ({ref.name}) : empreinte SHA-256 {digest} ≠ {ref.sha256} "
                           "inscrite au journal ; le fichier a été remplacé.")
        return data


def _aad(dossier_id: str, document_id: str) -> bytes:
    return f"amiflow:document:{dossier_id}:{document_id}".encode()
