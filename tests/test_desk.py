"""Who works on a call's staff pages (`domain.disclosure.desk_refusal`), and which phase is open
(`domain.calls.Phase.is_open`): pure rules, no stack."""

from __future__ import annotations

from datetime import timedelta

from domain import Actor
from domain.access import Role
from domain.disclosure import desk_refusal
from tests.test_decider_transitions import AUDITOR, HOLDER, NOW, PMCB, STAFF


def test_only_the_staff_in_charge_of_a_call_work_on_its_pages() -> None:
    assert desk_refusal(STAFF) is None and desk_refusal(STAFF, PMCB) is None
    other = Actor(role=Role.STAFF, name="quelquun-dautre")
    assert desk_refusal(other) is None  # their home page: their own calls
    refused = desk_refusal(other, PMCB)  # PMCB names its staff
    assert refused is not None and refused.unknown and "chargé de mission" in refused.reason
    assert desk_refusal(other, PMCB.model_copy(update={"staff": ()})) is None  # none named: every staff member
    for someone in (HOLDER, AUDITOR):
        found = desk_refusal(someone, PMCB)
        assert found is not None and not found.unknown and "agents instructeurs" in found.reason


def test_a_phase_is_open_from_its_opening_to_just_before_its_closing() -> None:
    phase = PMCB.phases[0]
    assert phase.is_open(phase.opens_at) and not phase.is_open(phase.opens_at - timedelta(microseconds=1))
    assert phase.is_open(phase.closes_at - timedelta(microseconds=1)) and not phase.is_open(phase.closes_at)
    assert phase.is_open(NOW)
