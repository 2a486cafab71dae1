"""A document uploaded as `multipart/form-data`, streamed to a file on disk as it arrives: never whole
in memory, cut off as soon as it passes the domain's size limit (`domain.uploads`)."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from fastapi import Request
from python_multipart.multipart import MultipartParser, parse_options_header

from amiflow.api.problems import ApiRefusal
from domain.errors import InvalidCommand, TooLarge
from domain.inputs import document_too_large
from domain.uploads import DOCUMENT_MAX_BYTES, check_document

ENVELOPE = 64 * 1024  # what multipart adds around one file: boundaries and part headers
UPLOAD_MAX_BYTES = DOCUMENT_MAX_BYTES + ENVELOPE
FIELD = "file"


@dataclass
class Upload:
    """The file received: where it was written (under its own name) and its declared media type."""

    path: Path
    media_type: str
    fields: dict[str, str] = field(default_factory=dict)  # the other (small) fields of the form: `csrf`…


@dataclass
class _Part:
    headers: dict[str, str] = field(default_factory=dict)
    name: str = ""
    filename: str | None = None
    out: Any = None
    size: int = 0
    value: bytearray = field(default_factory=bytearray)  # a field's text (never the file's bytes)


def too_large() -> TooLarge:
    """The refusal of a body past the limit: the rules' words (`domain.inputs`), as the CLI says them."""
    return document_too_large()


class _Receiver:
    """The parser's callbacks: part headers collected, the one file part written to `folder`."""

    def __init__(self, folder: Path, before_file: Callable[[dict[str, str]], None] | None = None) -> None:
        self.folder = folder
        self.before_file = before_file
        self.parts: list[_Part] = []
        self.field, self.value = b"", b""

    def callbacks(self) -> dict[str, Any]:
        return {"on_part_begin": lambda: self.parts.append(_Part()), "on_header_field": self.header_field,
                "on_header_value": self.header_value, "on_header_end": self.header_end,
                "on_headers_finished": self.headers_finished, "on_part_data": self.data,
                "on_part_end": self.close_last}

    def fields(self) -> dict[str, str]:
        """The form's other fields received so far (a file part's bytes are never among them)."""
        return {p.name: p.value.decode("utf-8", "replace") for p in self.parts if p.filename is None}

    def header_field(self, data: bytes, start: int, end: int) -> None:
        self.field += data[start:end]

    def header_value(self, data: bytes, start: int, end: int) -> None:
        self.value += data[start:end]

    def header_end(self) -> None:
        # Latin-1 keeps the bytes as they came (the parser of options wants Latin-1); names are UTF-8.
        self.parts[-1].headers[self.field.decode("latin-1").lower()] = self.value.decode("latin-1")
        self.field, self.value = b"", b""

    def headers_finished(self) -> None:
        part = self.parts[-1]
        _, disposition = parse_options_header(part.headers.get("content-disposition", ""))
        part.name = disposition.get(b"name", b"").decode("utf-8", "replace")
        raw = disposition.get(b"filename")
        part.filename = raw.decode("utf-8", "replace") if raw is not None else None
        if part.filename is None:
            return
        if self.before_file is not None:  # e.g. the form's CSRF token, checked before a byte is written
            self.before_file(self.fields())
        if part.name != FIELD or sum(1 for p in self.parts if p.filename is not None) > 1:
            raise InvalidCommand(f"Un seul document par envoi, dans le champ « {FIELD} ».")
        check_document(part.filename, part.headers.get("content-type", ""), None, 0)  # refused before it is read
        part.out = (self.folder / part.filename).open("wb")

    def data(self, data: bytes, start: int, end: int) -> None:
        part = self.parts[-1]
        part.size += end - start
        if part.out is not None:
            if part.size > DOCUMENT_MAX_BYTES:
                raise too_large()
            part.out.write(data[start:end])
        elif part.size > ENVELOPE:
            raise InvalidCommand("Champ de formulaire trop long : seul le document (« file ») est attendu.")
        else:
            part.value += data[start:end]

    def close_last(self) -> None:
        if self.parts and self.parts[-1].out is not None:
            self.parts[-1].out.close()

    def close_all(self) -> None:
        for part in self.parts:
            if part.out is not None and not part.out.closed:
                part.out.close()


async def receive(request: Request, folder: Path,
                  before_file: Callable[[dict[str, str]], None] | None = None) -> Upload:
    """Stream the request's one file part (`file`) into `folder`; `before_file` is given the fields
    sent before the file (and may refuse) before any of the file is written.

    Raises:
        ApiRefusal: not multipart (415), or larger than the limit (413).
        InvalidCommand: no file part, more than one, or a name or media type the rules refuse.
    """
    kind, params = parse_options_header(request.headers.get("content-type", ""))
    boundary = params.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise ApiRefusal("Envoyez le document en multipart/form-data, dans le champ « file ».",
                         "unsupported_media_type")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > UPLOAD_MAX_BYTES:
        raise too_large()
    receiver = _Receiver(folder, before_file)
    parser = MultipartParser(boundary, cast(Any, receiver.callbacks()))
    received = 0
    try:
        async for chunk in request.stream():
            received += len(chunk)
            if received > UPLOAD_MAX_BYTES:
                raise too_large()
            parser.write(chunk)
        parser.finalize()
    except (ValueError, UnicodeError) as exc:  # the parser's own refusals of a malformed body
        raise InvalidCommand(f"Corps multipart illisible ({type(exc).__name__}).") from None
    finally:
        receiver.close_all()
    files = [p for p in receiver.parts if p.filename is not None and p.out is not None]
    if not files:
        raise InvalidCommand(f"Aucun document reçu : envoyez-le dans le champ « {FIELD} » (multipart/form-data).")
    return Upload(folder / (files[0].filename or ""), files[0].headers.get("content-type", ""), receiver.fields())


def scratch(root: Path) -> tempfile.TemporaryDirectory[str]:
    """A folder of its own for one upload, removed with everything in it once the request is done."""
    root.mkdir(parents=True, exist_ok=True)
    return tempfile.TemporaryDirectory(prefix="upload-", dir=root)
