"""What a document attached to a dossier may be: its size, how many a dossier holds, its media type.
Every entry point (API upload, CLI attach) asks here before anything is stored."""

from __future__ import annotations

from domain.errors import InvalidCommand
from domain.inputs import (
    DOCUMENT_MAX,
    DOCUMENTS_MAX,
    check_document_name,
    document_too_large,
    too_many_documents,
)

# The limits on documents are those of `domain.inputs` (one home); these names are the API's.
DOCUMENT_MAX_BYTES = DOCUMENT_MAX
DOCUMENTS_PER_DOSSIER_MAX = DOCUMENTS_MAX
DOCUMENT_NAME_MAX = 200  # in UTF-8 bytes: a file name on any file system
# What the calls ask holders to send: office documents, PDF, images, spreadsheets, plain text and YAML.
DOCUMENT_MEDIA_TYPES: dict[str, tuple[str, ...]] = {
    "application/pdf": (".pdf",),
    "image/png": (".png",),
    "image/jpeg": (".jpg", ".jpeg"),
    "text/plain": (".txt",),
    "text/csv": (".csv",),
    "application/yaml": (".yaml", ".yml"),
    "application/vnd.oasis.opendocument.text": (".odt",),
    "application/vnd.oasis.opendocument.spreadsheet": (".ods",),
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": (".docx",),
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": (".xlsx",),
}


def check_document(name: str, media_type: str, size: int | None, attached: int) -> str:
    """The media type of a document about to be attached, once its name, declared type, size (None while
    unknown) and the dossier's count of documents (`attached`) are within the limits.

    Raises:
        InvalidCommand: a name that is empty, too long or has control characters; a media type not
            accepted or that does not match the name's extension; too large; one document too many.
    """
    check_document_name(name)  # a control, bidirectional or invisible character: said as for any text
    size_ok = 0 < len(name.encode("utf-8", "replace")) <= DOCUMENT_NAME_MAX
    if not size_ok or any(ord(c) < 32 or ord(c) == 127 for c in name) or "/" in name or "\\" in name \
            or name in (".", ".."):
        raise InvalidCommand(f"Nom de document refusé : de 1 à {DOCUMENT_NAME_MAX} octets, sans "
                             "caractère de contrôle ni « / ».")
    declared = media_type.split(";", maxsplit=1)[0].strip().lower()
    extension = "." + name.rsplit(".", 1)[-1].lower() if "." in name else ""
    if declared in ("", "application/octet-stream"):  # not declared: the extension says it
        declared = next((t for t, exts in DOCUMENT_MEDIA_TYPES.items() if extension in exts), declared)
    accepted = ", ".join(sorted(DOCUMENT_MEDIA_TYPES))
    if declared not in DOCUMENT_MEDIA_TYPES:
        raise InvalidCommand(f"Type de document refusé « {declared or 'inconnu'} » (acceptés : {accepted}).")
    if extension not in DOCUMENT_MEDIA_TYPES[declared]:
        raise InvalidCommand(f"« {name} » : l’extension ne correspond pas au type {declared} "
                             f"({', '.join(DOCUMENT_MEDIA_TYPES[declared])}).")
    if size is not None and size > DOCUMENT_MAX_BYTES:
        raise document_too_large(size)
    if attached >= DOCUMENTS_PER_DOSSIER_MAX:
        raise too_many_documents(attached)
    return declared
