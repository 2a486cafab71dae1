"""The rules the HTTP API asks the domain: who may know a dossier exists and which part of the list they
see (domain/disclosure.py), what a document may be (domain/uploads.py). Pure functions: no stack. (The
rate buckets of the API are domain/throttle.py's, tested with the codec server's.)"""

from __future__ import annotations

import pytest

from amiflow.bootstrap import Runtime
from domain import Actor
from domain.disclosure import list_scope, may_know
from domain.errors import InvalidCommand
from domain.uploads import DOCUMENT_MAX_BYTES, DOCUMENTS_PER_DOSSIER_MAX, check_document
from tests.test_services import CALL, REVIEWED, SUBMITTED, journal, rt  # noqa: F401 - the fixture


async def test_who_may_know_a_dossier_exists(rt: Runtime) -> None:  # noqa: F811
    submitted = (await journal(rt, SUBMITTED, "REF-A")).state
    reviewed = (await journal(rt, REVIEWED, "REF-B")).state
    knows = {text: may_know(submitted, Actor.parse(text)) for text in (
        "holder:acme", "holder:autre", "staff:amelie", "staff:bruno", "committee:cora", "committee:zoe",
        "reviewer:rita", "auditor:odile", "system:echeances")}
    assert knows == {"holder:acme": True, "holder:autre": False, "staff:amelie": True, "staff:bruno": False,
                     "committee:cora": True, "committee:zoe": False, "reviewer:rita": False,
                     "auditor:odile": True, "system:echeances": False}
    assert may_know(reviewed, Actor.parse("reviewer:rita"))  # assigned: knows it, even before declaring
    assert not may_know(reviewed, Actor.parse("reviewer:victor"))


def test_each_person_sees_their_part_of_the_list() -> None:
    calls = [CALL]
    assert list_scope(Actor.parse("holder:acme"), calls).holder == "acme"
    assert list_scope(Actor.parse("staff:amelie"), calls).call_ids == (CALL.id,)
    assert list_scope(Actor.parse("staff:bruno"), calls).call_ids == ()
    assert list_scope(Actor.parse("committee:zoe"), calls).call_ids == ()
    everything = list_scope(Actor.parse("auditor:odile"), calls)
    assert everything.holder is None and everything.call_ids is None and everything.refused is None
    rita = list_scope(Actor.parse("reviewer:rita"), calls)  # their assignments (issue 12)
    assert rita.refused is None and rita.reviewer == "rita" and rita.holder is None


def test_a_document_within_the_limits_and_every_refusal_said() -> None:
    assert check_document("kbis.pdf", "application/pdf", 10, 0) == "application/pdf"
    assert check_document("budget.ods", "", None, 3) == "application/vnd.oasis.opendocument.spreadsheet"
    refused = {
        "too large": ("a.pdf", "application/pdf", DOCUMENT_MAX_BYTES + 1, 0),
        "one too many": ("a.pdf", "application/pdf", 1, DOCUMENTS_PER_DOSSIER_MAX),
        "type": ("a.exe", "application/x-msdownload", 1, 0),
        "extension ≠ type": ("a.pdf", "image/png", 1, 0),
        "path": ("../a.pdf", "application/pdf", 1, 0),
        "control": ("a\nb.pdf", "application/pdf", 1, 0),
        "empty": ("", "application/pdf", 1, 0),
        "long": ("é" * 150 + ".pdf", "application/pdf", 1, 0),
    }
    for what, (name, media, size, count) in refused.items():
        with pytest.raises(InvalidCommand):
            check_document(name, media, size, count)
            pytest.fail(what)
