"""What the rules accept from outside: every command, whoever sends it (the CLI, the API, a client
of Temporal), and every dossier a holder submits, is checked here before anything is decided.

Names keep to a safe set of characters; texts hold no control, bidirectional or invisible character;
every text and list has a maximum length; a dossier's content, and the dossier as a whole, stay far
below what Temporal carries in one payload (2 MB, 4 MB per gRPC message), so that nothing accepted
can leave a workflow that fails for ever. Dates stay within 1900–2200.

Only input is checked: events already journaled are folded as they are (`evolve`), so that a journal
written before a limit existed still loads.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from enum import Enum

from domain.access import Actor
from domain.calendar import instant_refusal
from domain.commands import AttachDocument, Command, ProvideComplement, StartDraft, UpdateDraft
from domain.errors import DomainError, InvalidCommand, InvalidInput, TooLarge, sentence
from domain.record import Record
from domain.state import DossierContent, DossierState, dossier_id
from domain.text import KEY_MAX, LINE_MAX, LONG_MAX, NAME_MAX, TEXT_MAX, check_name, check_text, visible

KIO = 1024
MIO = 1024 * 1024

# A dossier file a holder submits (YAML or JSON): its description of the project, not its pieces.
DOSSIER_FILE_MAX = 256 * KIO
# A dossier's content, as it travels (JSON, UTF-8): a text of N characters may take up to 4 N bytes.
CONTENT_MAX = 256 * KIO
# The whole dossier as Temporal carries it (query result, continue-as-new input), before sealing:
# half of Temporal's 2 MB payload limit, a quarter of its 4 MB gRPC limit.
STATE_MAX = 1 * MIO
# Attachments: they go to the vault (Temporal carries only their reference).
DOCUMENT_MAX = 50 * MIO
DOCUMENTS_MAX = 30
DOCUMENTS_TOTAL_MAX = 200 * MIO
# Reference of a dossier (its id derives from it).
REFERENCE_MAX = 120
# A number in a command (an amount in euros, a period).
NUMBER_MAX = 10**12

# How each field of a command or a content is checked: a name, one line, a key, or a text (lines
# admitted) of at most so many characters. A field not listed is a text of TEXT_MAX.
NAME, LINE, KEY, TEXT = "name", "line", "key", "text"
FIELDS: dict[str, tuple[str, int]] = {
    "reviewers": (NAME, NAME_MAX), "auditor": (NAME, NAME_MAX),
    "reference": (LINE, REFERENCE_MAX), "holder_name": (LINE, LINE_MAX), "region": (LINE, LINE_MAX),
    "territory": (LINE, LINE_MAX), "partners": (LINE, LINE_MAX), "name": (LINE, 255),
    "media_type": (LINE, LINE_MAX),
    "scheme_id": (KEY, KEY_MAX), "phase_id": (KEY, KEY_MAX), "theme": (KEY, KEY_MAX), "id": (KEY, KEY_MAX),
    "sha256": (KEY, KEY_MAX),
    "pieces": (TEXT, TEXT_MAX), "reason": (TEXT, TEXT_MAX), "reasons": (TEXT, TEXT_MAX),
    "note": (TEXT, TEXT_MAX), "statement": (TEXT, TEXT_MAX), "description": (TEXT, TEXT_MAX),
    "opinion": (TEXT, LONG_MAX), "summary": (TEXT, LONG_MAX), "sections": (TEXT, LONG_MAX),
}
# Entries of each list or mapping; a list not named here has at most LIST_MAX.
LIST_MAX = 50
LISTS: dict[str, int] = {"reviewers": 20, "partners": 50, "sections": 50, "scores": 50, "kinds": 20}
# Filled by the service or the worker, never typed by a person: the call's definition (from a
# validated call file) and the catalogue an orientation is made against. Their size counts in STATE_MAX.
NOT_INPUT = frozenset({"type", "call", "catalogue"})


def check_command(state: DossierState, command: Command, actor: Actor) -> None:
    """Refuse a command whose values no entry point may take (before the rules decide it).

    Raises:
        InvalidInput: a name outside the safe set, a forbidden character, a date out of range.
        TooLarge: a text, a list, a content or the attachments beyond their limit (stated).
    """
    check_name(actor.name, "Le nom de la personne qui agit")
    _walk(command, "", "", f"« {command.type} » : ")
    if isinstance(command, StartDraft | UpdateDraft | ProvideComplement) and command.content is not None:
        check_content_size(command.content)
    if isinstance(command, AttachDocument):
        check_attachment(state, command.document.size)


def check_reference(reference: str) -> None:
    """A dossier's reference: one line, and something its id can be made of.

    Raises:
        InvalidInput: a forbidden character, or too long.
        InvalidCommand: it has no letter or digit to make an id of (as the rules refuse it).
    """
    check_text(reference, "reference", REFERENCE_MAX, multiline=False)
    try:
        dossier_id("appel", reference)
    except ValueError:
        raise InvalidCommand("reference : il faut au moins une lettre ou un chiffre (l’identifiant du dossier "
                             "en est tiré).") from None


def check_dossier(reference: str, content: DossierContent) -> None:
    """A dossier as a holder submits it (a file, or the API's body): its reference and content.

    Raises:
        InvalidInput, TooLarge: as `check_command`.
    """
    try:
        check_reference(reference)
    except DomainError as exc:
        exc.field = "reference"
        raise
    _walk(content, "content", "")
    check_content_size(content)


def check_content_size(content: DossierContent) -> None:
    """The content as it travels (JSON, UTF-8) is at most CONTENT_MAX bytes.

    Raises:
        TooLarge: with the size and the limit.
    """
    size = len(content.model_dump_json())
    if size > CONTENT_MAX:
        raise TooLarge(f"Le contenu du dossier fait {_kio(size)} une fois encodé, au plus {_kio(CONTENT_MAX)} "
                       "admis : le dossier décrit le projet ; joignez les pièces volumineuses "
                       "(amiflow dossier attach).")


def check_size(after: DossierState) -> None:
    """The dossier as Temporal carries it stays at most STATE_MAX bytes (JSON, before sealing).

    Raises:
        TooLarge: with the size and the limit.
    """
    size = len(after.model_dump_json())
    if size > STATE_MAX:
        raise TooLarge(f"Le dossier ferait {_kio(size)} une fois encodé, au plus {_kio(STATE_MAX)} admis "
                       "(limite de transport du moteur de workflows) : raccourcissez les textes ; les pièces "
                       "volumineuses se joignent (amiflow dossier attach).")


def check_attachment(state: DossierState, size: int, name: str | None = None) -> None:
    """One more document of `size` bytes (named `name`, when known): at most DOCUMENT_MAX each,
    DOCUMENTS_MAX documents and DOCUMENTS_TOTAL_MAX in all per dossier; its name one clean line.

    Raises:
        TooLarge: with the limit reached.
        InvalidInput: a forbidden character in the name.
    """
    if name is not None:
        check_document_name(name)
    if size > DOCUMENT_MAX:
        raise document_too_large(size)
    if len(state.documents) >= DOCUMENTS_MAX:
        raise too_many_documents(len(state.documents))
    total = sum(d.size for d in state.documents) + size
    if total > DOCUMENTS_TOTAL_MAX:
        raise TooLarge(f"Les documents joints feraient {_mio(total)} en tout, au plus {_mio(DOCUMENTS_TOTAL_MAX)} "
                       "admis par dossier.")


def check_document_name(name: str) -> None:
    """A document's name is one clean line (the same words on every entry point).

    Raises:
        InvalidInput, TooLarge: as `check_text`.
    """
    check_text(name, "le nom du document", FIELDS["name"][1], multiline=False)


def document_too_large(size: int | None = None) -> TooLarge:
    """The refusal of a document past DOCUMENT_MAX (of `size` bytes; None while it is still arriving)."""
    weight = _mio(size) if size is not None else f"plus de {_mio(DOCUMENT_MAX)}"
    return TooLarge(f"Le document fait {weight}, au plus {_mio(DOCUMENT_MAX)} admis par document.")


def too_many_documents(count: int) -> TooLarge:
    """The refusal of one more document when the dossier has `count` already."""
    return TooLarge(f"Le dossier a déjà {count} documents joints, au plus {DOCUMENTS_MAX} admis.")


def check_file_size(size: int, what: str) -> None:
    """A dossier file (or a `--content` file) of `size` bytes.

    Raises:
        TooLarge: beyond DOSSIER_FILE_MAX, with the limit.
    """
    if size > DOSSIER_FILE_MAX:
        raise TooLarge(f"{what} fait {_kio(size)}, au plus {_kio(DOSSIER_FILE_MAX)} admis pour un fichier de "
                       "dossier : il décrit le projet ; joignez les pièces volumineuses (amiflow dossier attach).")


def _walk(value: object, path: str, field: str, prefix: str = "") -> None:
    """Check every text, list, number and date in `value`; `path` names it (`content.sections.x`),
    and a refusal carries it as its `field` (the innermost path)."""
    try:
        _walk_checked(value, path, field, prefix)
    except DomainError as exc:
        if exc.field is None and path:
            exc.field = path
        raise


def _walk_checked(value: object, path: str, field: str, prefix: str) -> None:
    where = f"{prefix}{path}"
    if isinstance(value, Enum | bool):
        return
    if isinstance(value, str):
        _check_str(value, where, field)
    elif isinstance(value, int):
        if not -NUMBER_MAX <= value <= NUMBER_MAX:
            raise TooLarge(f"{where} : nombre hors limites (au plus 10^12 en valeur absolue).")
    elif isinstance(value, datetime):
        problem = instant_refusal(value, f"{where} : la date")
        if problem is not None:
            raise InvalidInput(sentence(problem))
    elif isinstance(value, Record):
        for name in type(value).model_fields:
            if name not in NOT_INPUT:
                _walk(getattr(value, name), f"{path}.{name}" if path else name, name, prefix)
    elif isinstance(value, tuple | list | Mapping):
        limit = LISTS.get(field, LIST_MAX)
        if len(value) > limit:
            raise TooLarge(f"{where} : {len(value)} éléments, au plus {limit} admis.")
        if isinstance(value, Mapping):
            for key, item in value.items():
                check_text(str(key), f"{where} (clé « {visible(str(key), 40)} »)", KEY_MAX, multiline=False)
                _walk(item, f"{path}.{key}", field, prefix)
        else:
            for i, item in enumerate(value):
                _walk(item, f"{path}[{i}]", field, prefix)


def _check_str(value: str, where: str, field: str) -> None:
    kind, limit = FIELDS.get(field, (TEXT, TEXT_MAX))
    if kind == NAME:
        check_name(value, where)
    else:
        check_text(value, where, limit, multiline=kind == TEXT)


def _kio(size: int) -> str:
    return f"{size / KIO:.0f} Kio" if size >= KIO else f"{size} octets"


def _mio(size: int) -> str:
    return f"{size / MIO:.1f} Mio".replace(".", ",")
