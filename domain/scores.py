"""The reviewers' scores as the committee reads them, and the scoring form as a reviewer fills it.

`score_table(state)`: for each criterion of the call, each reviewer's score (in the order the reviews
came in), their mean and their spread (max − min), then the overall: each reviewer's total over the
criteria, the mean and the spread of the totals. A criterion nobody scored has no mean (None).

`read_scores(call, typed)`: the scores typed in a form (texts, by criterion id) as integers, or the
French reason each one is refused (missing, not a whole number, off the call's scale 0..score_max).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from domain.calls import Call
from domain.record import Record
from domain.state import DossierState

OVERALL = "Total"


class ScoreRow(Record):
    """One line of the table: a criterion (or the overall), each reviewer's score, mean and spread."""

    criterion: str  # the criterion's id ("" for the overall)
    label: str
    scores: tuple[int | None, ...]  # in the order of `ScoreTable.reviewers`; None: not scored
    out_of: int  # the best score possible on this line
    mean: float | None
    spread: int | None


class ScoreTable(Record):
    """The reviews of a dossier, criterion by criterion; `overall` sums each reviewer's scores."""

    reviewers: tuple[str, ...]
    rows: tuple[ScoreRow, ...]
    overall: ScoreRow
    score_max: int


def _row(criterion: str, label: str, scores: Sequence[int | None], out_of: int) -> ScoreRow:
    given = [s for s in scores if s is not None]
    mean = sum(given) / len(given) if given else None
    spread = max(given) - min(given) if given else None
    return ScoreRow(criterion=criterion, label=label, scores=tuple(scores), out_of=out_of, mean=mean, spread=spread)


def score_table(state: DossierState) -> ScoreTable:
    """The score table of the dossier's reviews (empty rows when none is in, or no call is known)."""
    call = state.call
    criteria = call.criteria if call is not None else ()
    score_max = call.score_max if call is not None else 0
    reviews = state.reviews
    rows = tuple(_row(c.id, c.label, [r.scores.get(c.id) for r in reviews], score_max) for c in criteria)
    totals: list[int | None] = []
    for review in reviews:
        given = [review.scores.get(c.id) for c in criteria]
        totals.append(None if not criteria or any(s is None for s in given) else sum(s or 0 for s in given))
    overall = _row("", OVERALL, totals, score_max * len(criteria))
    return ScoreTable(reviewers=tuple(r.reviewer for r in reviews), rows=rows, overall=overall,
                      score_max=score_max)


def decimal(value: float | None) -> str:
    """A mean as French readers write it: a decimal comma, at most two decimals (« 3,5 », « 4 »); — for none."""
    if value is None:
        return "—"
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return text.replace(".", ",")


def read_scores(call: Call, typed: Mapping[str, str]) -> tuple[dict[str, int], dict[str, str]]:
    """The scores typed for each criterion of `call` (by criterion id) and, by criterion id, the French
    reason any is refused; only the call's criteria are read."""
    scores: dict[str, int] = {}
    errors: dict[str, str] = {}
    scale = f"de 0 à {call.score_max}"
    for criterion in call.criteria:
        text = (typed.get(criterion.id) or "").strip()
        if not text:
            errors[criterion.id] = f"Notez le critère « {criterion.label} » ({scale})."
        elif not text.isdigit():
            errors[criterion.id] = f"La note du critère « {criterion.label} » est un nombre entier {scale}."
        elif not 0 <= int(text) <= call.score_max:
            errors[criterion.id] = f"La note du critère « {criterion.label} » va {scale} : {text} est hors barème."
        else:
            scores[criterion.id] = int(text)
    return scores, errors
