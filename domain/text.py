"""What a text typed or sent by a person may hold: names in a safe set of characters, texts without
control or bidirectional characters, and a maximum length for each kind of text and list.

These checks apply where input enters (commands, submitted dossiers, call files), never to events
already journaled: a journal written before a limit existed must still load. The limits themselves
are listed in the README ("Limits") and said in every refusal.
"""

from __future__ import annotations

import unicodedata

from domain.errors import InvalidInput, TooLarge, sentence

# Names of actors, reviewers, auditors, staff and committee members (`staff:NAME`).
NAME_MAX = 64
# One line: a holder's name, a region, a partner, a reference, a document's name…
LINE_MAX = 200
# A free text of a few paragraphs: a reason, pieces asked for, a note, a declaration, a description.
TEXT_MAX = 5_000
# A long text: a section of the dossier, a reviewer's opinion, a follow-up report.
LONG_MAX = 20_000
# Identifiers written by people (a section's or a criterion's id, a scheme's id).
KEY_MAX = 64

# Bidirectional formatting characters: they make a text read differently from what it holds
# ("Trojan Source"), and a name look like another.
BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
# Invisible characters that make two names look alike, or end a line where a reader does not see one.
INVISIBLE = frozenset("\u200b\u200c\u200d\u2060\ufeff\u2028\u2029\u00ad")
# Characters allowed in a name besides letters and digits; a space only between two other characters.
NAME_PUNCTUATION = frozenset(".-_'’ ")


def _char_label(char: str) -> str:
    name = unicodedata.name(char, "")
    return f"U+{ord(char):04X}" + (f" {name}" if name else "")


def _forbidden(char: str, multiline: bool) -> bool:
    if char in BIDI or char in INVISIBLE:
        return True
    category = unicodedata.category(char)
    if category == "Cc":
        return not (multiline and char in "\n\t\r")
    return category in ("Cs", "Co", "Cn")  # lone surrogates, private use, unassigned


def text_refusal(value: str, where: str, limit: int, multiline: bool = True) -> InvalidInput | None:
    """Why `value` may not be taken as a text of at most `limit` characters (lines allowed when
    `multiline`), or None."""
    if len(value) > limit:
        return TooLarge(f"{where} : {len(value)} caractères, au plus {limit} admis.")
    for i, char in enumerate(value):
        if _forbidden(char, multiline):
            kind = "retour à la ligne" if char in "\n\r" else "caractère de contrôle"
            if char in BIDI:
                kind = "caractère de mise en forme bidirectionnelle"
            elif char in INVISIBLE:
                kind = "caractère invisible"
            elif unicodedata.category(char) in ("Cs", "Co", "Cn"):
                kind = "caractère non attribué ou réservé"
            return InvalidInput(f"{where} : {kind} {_char_label(char)} (position {i + 1}) refusé.")
    return None


def unreadable_refusal(value: object, where: str) -> InvalidInput | None:
    """The refusal, in the words of `text_refusal`, of a text a model could not read (a lone surrogate,
    which JSON's `\\ud800` carries); None when `value` is no such text."""
    return text_refusal(value, where, len(value)) if isinstance(value, str) else None


def check_text(value: str, where: str, limit: int, multiline: bool = True) -> str:
    """`value` if it is a clean text of at most `limit` characters.

    Raises:
        InvalidInput: too long, or a control, bidirectional or invisible character.
    """
    problem = text_refusal(value, where, limit, multiline)
    if problem is not None:
        raise problem
    return value


def name_refusal(name: str, where: str = "nom") -> str | None:
    """Why `name` is not a safe name, or None. French, lower case, no final stop.

    A name is 1 to 64 characters: letters (accented ones too), digits, `.`, `-`, `_`, an apostrophe
    (' or ’), and single spaces between them. It starts with a letter or a digit, and is written in
    composed form (NFC), so that one person has one spelling. Nothing else: a colon separates the role,
    a comma separates names in a list, `=`, `<`, `>`, `"`, `@`, `/` mean something to mail headers,
    paths or scores, and a line break or a control character ends a mail header.
    """
    admitted = ("lettres, chiffres, « . », « - », « _ », apostrophe et espaces simples ; "
                f"de 1 à {NAME_MAX} caractères, commençant par une lettre ou un chiffre")
    if not name:
        return f"{where} vide ({admitted})"
    if len(name) > NAME_MAX:
        return f"{where} : {len(name)} caractères, au plus {NAME_MAX} admis"
    if unicodedata.normalize("NFC", name) != name:
        return f"{where} « {visible(name)} » n’est pas en forme composée (NFC)"
    if not _name_char(name[0]) or name[0] in NAME_PUNCTUATION or unicodedata.category(name[0]).startswith("M"):
        return f"{where} « {visible(name)} » : doit commencer par une lettre ou un chiffre ({admitted})"
    if name.endswith(" ") or "  " in name:
        return f"{where} « {visible(name)} » : espace en fin de nom ou double espace refusés"
    for char in name:
        if not _name_char(char):
            shown = f"« {char} »" if char.isprintable() and not char.isspace() else _char_label(char)
            return f"{where} « {visible(name)} » : caractère {shown} refusé ({admitted})"
    return None


def check_name(name: str, where: str = "nom") -> str:
    """`name` if it is a safe name (see `name_refusal`).

    Raises:
        InvalidInput: with what a name may hold.
    """
    problem = name_refusal(name, where)
    if problem is not None:
        raise (TooLarge if len(name) > NAME_MAX else InvalidInput)(sentence(problem))
    return name


def _name_char(char: str) -> bool:
    """A letter (any script, accented), a combining mark, an ASCII digit or the admitted punctuation."""
    return (unicodedata.category(char)[0] in "LM" or char in "0123456789" or char in NAME_PUNCTUATION)


def visible(text: str, limit: int = 80) -> str:
    """A text as a message may quote it: control and invisible characters written <U+XXXX>, cut
    after `limit` characters."""
    shown = "".join(c if c.isprintable() and c not in BIDI and c not in INVISIBLE else f"<U+{ord(c):04X}>"
                    for c in text[:limit])
    return shown + ("…" if len(text) > limit else "")


def comparable(text: str) -> str:
    """A text as a filter compares it: Unicode NFC, case folded, spaces collapsed and trimmed
    (« Pas-de-Calais  » and « pas-de-calais » are the same territory)."""
    return " ".join(unicodedata.normalize("NFC", text).casefold().split())
