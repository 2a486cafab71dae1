"""A refusal of a holder's input says which field it is about (`DomainError.field`), so that a form
shows it next to that field: the parser's, the input checks', and the rules' own refusals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from amiflow.catalogue import dossier_from
from domain import Actor, decide, replay
from domain.access import Role
from domain.commands import StartDraft, Submit
from domain.errors import DomainError
from domain.state import DossierContent, DossierState
from tests import dates

HOLDER = Actor(role=Role.HOLDER, name="acme")
CONTENT = {"holder_name": "Acme", "holder_type": "entreprise", "region": "Hauts-de-France"}


def refused_field(content: dict[str, object], reference: str = "Réf 1") -> str | None:
    with pytest.raises(DomainError) as caught:
        dossier_from({"call": "c", "phase": "p", "reference": reference, "content": content}, "brouillon")
    return caught.value.field


def test_the_input_checks_name_the_field() -> None:
    assert refused_field({**CONTENT, "holder_name": ""}) == "content.holder_name"
    assert refused_field({**CONTENT, "territory": "Lens\u202e"}) == "content.territory"
    assert refused_field({**CONTENT, "partners": ["ok", "mal\u200b"]}) == "content.partners[1]"
    no_kind = {"kinds": [], "amount_eur": 5}
    assert refused_field({**CONTENT, "financing_need": no_kind}) == "content.financing_need.kinds"
    assert refused_field(CONTENT, reference="!!!") == "reference"


def test_the_rules_name_the_section_to_fill_and_the_holder_type() -> None:
    now = datetime.now(UTC)
    call = dates.shifted_call("hdf-pmcb-reemploi", now)
    phase = call.phases[0]
    at = max(now, phase.opens_at + timedelta(minutes=1))
    content = DossierContent.model_validate({**CONTENT, "sections": {"presentation": "Texte."}})
    draft = replay(decide(DossierState(), StartDraft(call=call, phase_id=phase.id, reference="R", content=content),
                          HOLDER, at))
    with pytest.raises(DomainError) as caught:
        decide(draft, Submit(), HOLDER, at)
    assert caught.value.field == f"content.sections.{call.sections[1].id}"  # the first one empty
    wrong = DossierContent.model_validate({**CONTENT, "holder_type": "association"})
    with pytest.raises(DomainError) as caught:
        decide(DossierState(), StartDraft(call=call, phase_id=phase.id, reference="R", content=wrong), HOLDER, at)
    assert caught.value.code == "not_eligible" and caught.value.field == "content.holder_type"
