"""The committee's score table, the scoring form read, a reviewer's stage on a dossier, and the
declaration and decision forms read: pure functions of domain/scores.py and domain/assignments.py."""

from __future__ import annotations

import pytest

from domain.assignments import Stage, read_decision, read_declaration, stage
from domain.scores import OVERALL, decimal, read_scores, score_table
from domain.state import DossierState, Review
from tests.test_decider_transitions import PMCB, T0
from tests.test_reading import assigned, closed, declared, reviewed

SOLUTIONS, COURT, IMPACT = (c.id for c in PMCB.criteria)


def review(reviewer: str, solutions: int, court: int, impact: int) -> Review:
    return Review(reviewer=reviewer, scores={SOLUTIONS: solutions, COURT: court, IMPACT: impact}, opinion="avis", at=T0)


def test_each_criterion_has_each_reviewers_score_the_mean_and_the_spread() -> None:
    state = DossierState(call=PMCB, reviews=(review("rita", 4, 2, 5), review("victor", 1, 2, 4),
                                             review("remi", 3, 5, 5)))
    table = score_table(state)
    assert table.reviewers == ("rita", "victor", "remi") and table.score_max == 5
    rows = {r.criterion: r for r in table.rows}
    assert [r.criterion for r in table.rows] == [SOLUTIONS, COURT, IMPACT]  # the call's order
    assert rows[SOLUTIONS].scores == (4, 1, 3) and rows[SOLUTIONS].mean == pytest.approx(8 / 3)
    assert rows[SOLUTIONS].spread == 3
    assert rows[COURT].scores == (2, 2, 5) and rows[COURT].mean == 3 and rows[COURT].spread == 3
    assert rows[IMPACT].mean == pytest.approx(14 / 3) and rows[IMPACT].spread == 1
    assert rows[SOLUTIONS].label == PMCB.criteria[0].label
    overall = table.overall
    assert overall.label == OVERALL and overall.out_of == 15
    assert overall.scores == (11, 7, 13) and overall.mean == pytest.approx(31 / 3) and overall.spread == 6


def test_one_review_has_no_spread_and_none_has_no_mean() -> None:
    one = score_table(DossierState(call=PMCB, reviews=(review("rita", 4, 2, 5),)))
    assert all(r.spread == 0 and r.mean == r.scores[0] for r in one.rows)
    assert one.overall.mean == 11 and one.overall.spread == 0
    none = score_table(DossierState(call=PMCB))
    assert none.reviewers == () and all(r.mean is None and r.spread is None for r in (*none.rows, none.overall))
    assert len(none.rows) == len(PMCB.criteria)
    assert score_table(DossierState()).rows == ()  # no call known (metadata only): no criterion


def test_a_criterion_a_review_lacks_is_left_out_of_its_mean_and_of_the_reviewers_total() -> None:
    partial = Review(reviewer="victor", scores={SOLUTIONS: 2}, opinion="avis", at=T0)
    table = score_table(DossierState(call=PMCB, reviews=(review("rita", 4, 2, 5), partial)))
    court = next(r for r in table.rows if r.criterion == COURT)
    assert court.scores == (2, None) and court.mean == 2 and court.spread == 0
    assert table.overall.scores == (11, None) and table.overall.mean == 11


@pytest.mark.parametrize(("value", "shown"), [(3.5, "3,5"), (4.0, "4"), (8 / 3, "2,67"), (0.0, "0"), (None, "—")])
def test_a_mean_reads_with_a_decimal_comma(value: float | None, shown: str) -> None:
    assert decimal(value) == shown


def test_the_scoring_form_is_read_criterion_by_criterion() -> None:
    scores, errors = read_scores(PMCB, {SOLUTIONS: "4", COURT: " 0 ", IMPACT: "5", "inconnu": "3"})
    assert scores == {SOLUTIONS: 4, COURT: 0, IMPACT: 5} and errors == {}
    scores, errors = read_scores(PMCB, {SOLUTIONS: "6", COURT: "deux", IMPACT: "-1"})
    assert scores == {} and set(errors) == {SOLUTIONS, COURT, IMPACT}
    assert "hors barème" in errors[SOLUTIONS] and "de 0 à 5" in errors[SOLUTIONS]
    assert "nombre entier" in errors[COURT] and "nombre entier" in errors[IMPACT]
    scores, errors = read_scores(PMCB, {SOLUTIONS: "3"})
    assert scores == {SOLUTIONS: 3} and set(errors) == {COURT, IMPACT} and errors[COURT].startswith("Notez le critère")


def test_a_reviewers_stage_follows_the_dossier() -> None:
    assert stage(assigned(), "rita") is Stage.TO_DECLARE
    assert stage(declared(), "rita") is Stage.TO_REVIEW
    assert stage(declared(), "remi") is None  # a declared conflict ends the assignment
    assert stage(reviewed(), "rita") is Stage.REVIEWED
    assert stage(assigned(), "victor") is None  # never assigned
    assert stage(closed(), "rita") is Stage.REVIEWED
    closed_early = declared().model_copy(update={"status": closed().status})
    assert stage(closed_early, "rita") is Stage.CLOSED
    assert all(s.label for s in Stage)


def test_the_declaration_and_the_decision_forms_are_read() -> None:
    assert read_declaration("oui") == (True, {}) and read_declaration("non") == (False, {})
    assert read_declaration(None)[0] is None and "conflict" in read_declaration("peut-être")[1]
    assert read_decision("oui", "Projet solide") == (True, {})
    assert read_decision("non", "Hors champ") == (False, {})
    found, errors = read_decision(None, "  ")
    assert found is None and set(errors) == {"retained", "reasons"}
    assert read_decision("oui", "")[0] is None
