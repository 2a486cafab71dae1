"""Call files refused in French, whatever is wrong with them: every malformed variant of the PMCB call
(wrong types, missing and unknown keys, bad dates and enums, in the phases, sections, criteria and
follow-up too), broken YAML and unreadable files go through the loader (amiflow.catalogue.load_call),
and each refusal names the field and says what is wrong and what to do without a word of the
parser's (pydantic's, PyYAML's) or the system's English."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from amiflow.catalogue import load_call
from domain.errors import CallDefinitionError

ROOT = Path(__file__).resolve().parent.parent
BASE = yaml.load((ROOT / "deploy" / "calls" / "hdf-pmcb-reemploi.yaml").read_text(encoding="utf-8"),
                 Loader=yaml.BaseLoader)  # every scalar as text, as the loader reads it
GONE = object()  # the key is removed

# What pydantic, PyYAML or the system say in English (their phrases, then words no French text has).
ENGLISH = re.compile(
    r"Field required|Input should|Extra inputs|value is not|String should|should have|Value error|unable to parse|"
    r"valid (string|integer|list|dictionary)|greater than|less than|not allowed|but found|but got|No such file|"
    r"Is a directory|\b(the|should|must|required|allowed|expected|found|input|string|integer|error|such|than|"
    r"not|is|are|or|but|got|character|cannot|token|stream|mapping|field|extra|instance|value|values|file)\b",
    re.IGNORECASE)
FRENCH = re.compile(r"[àâçéèêëîïôûùœ’«»]|\b(le|la|les|un|une|des|du|de|en|au|est|ce|cette|ou|attendu|champ|inconnu|"
                    r"admis|absent|corrigez|retirez|ajoutez)\b")

# name: (path of the value changed, the value (GONE: removed), the field the refusal must name)
VARIANTS: dict[str, tuple[tuple[str | int, ...], Any, str]] = {
    "id-liste": (("id",), ["x"], "id"),
    "id-dictionnaire": (("id",), {"a": "b"}, "id"),
    "id-majuscules": (("id",), "Mauvais Id", "id"),
    "id-vide": (("id",), "", "id"),
    "id-trop-long": (("id",), "a" * 65, "id"),
    "titre-vide": (("title",), "", "title"),
    "titre-liste": (("title",), ["a"], "title"),
    "titre-absent": (("title",), GONE, "title"),
    "cle-inconnue": (("couleur",), "bleu", "couleur"),
    "phases-texte": (("phases",), "unique", "phases"),
    "phases-dictionnaire": (("phases",), {"id": "x"}, "phases"),
    "phases-vides": (("phases",), [], "phases"),
    "phases-absentes": (("phases",), GONE, "phases"),
    "phase-texte": (("phases", 0), "unique", "phases[0]"),
    "phase-cle-inconnue": (("phases", 0, "couleur"), "bleu", "phases[0].couleur"),
    "phase-id-absent": (("phases", 0, "id"), GONE, "phases[0].id"),
    "phase-genre-inconnu": (("phases", 0, "kind"), "etape", "phases[0].kind"),
    "phase-genre-liste": (("phases", 0, "kind"), ["phase"], "phases[0].kind"),
    "phase-mode-inconnu": (("phases", 0, "review_mode"), "vite", "phases[0].review_mode"),
    "porteurs-vides": (("phases", 0, "holder_types"), [], "phases[0].holder_types"),
    "porteurs-texte": (("phases", 0, "holder_types"), "entreprise", "phases[0].holder_types"),
    "porteur-inconnu": (("phases", 0, "holder_types", 0), "pirate", "phases[0].holder_types[0]"),
    "phase-libelle-dictionnaire": (("phases", 0, "label"), {"a": "b"}, "phases[0].label"),
    "phase-description-liste": (("phases", 0, "description"), ["a"], "phases[0].description"),
    "ouverture-texte": (("phases", 0, "opens"), "2026-01-01", "phases[0].opens"),
    "ouverture-vide": (("phases", 0, "opens"), {}, "phases[0].opens"),
    "date-inexistante": (("phases", 0, "opens", "date"), "2026-02-31", "phases[0].opens.date"),
    "date-francaise": (("phases", 0, "opens", "date"), "01/02/2026", "phases[0].opens.date"),
    "date-mois-13": (("phases", 0, "opens", "date"), "2026-13-01", "phases[0].opens.date"),
    "date-an-9999": (("phases", 0, "opens", "date"), "9999-01-01", "phases[0].opens.date"),
    "date-liste": (("phases", 0, "opens", "date"), ["2026-01-01"], "phases[0].opens.date"),
    "date-dictionnaire": (("phases", 0, "opens", "date"), {"a": "b"}, "phases[0].opens.date"),
    "ouverture-cle-inconnue": (("phases", 0, "opens", "quand"), "demain", "phases[0].opens.quand"),
    "apres-phase-mal-formee": (("phases", 0, "opens", "after_phase"), "Pas Bon", "phases[0].opens.after_phase"),
    "annees-texte": (("phases", 0, "closes", "years_after_opening"), "trois", "phases[0].closes.years_after_opening"),
    "annees-zero": (("phases", 0, "closes", "years_after_opening"), "0", "phases[0].closes.years_after_opening"),
    "annees-99": (("phases", 0, "closes", "years_after_opening"), "99", "phases[0].closes.years_after_opening"),
    "annees-decimal": (("phases", 0, "closes", "years_after_opening"), "2.5", "phases[0].closes.years_after_opening"),
    "annees-liste": (("phases", 0, "closes", "years_after_opening"), ["3"], "phases[0].closes.years_after_opening"),
    "cloture-absente": (("phases", 0, "closes"), GONE, "phases[0].closes"),
    "hypothese-vide": (("phases", 0, "opens", "assumed"), "", "phases[0].opens.assumed"),
    "sections-texte": (("sections",), "x", "sections"),
    "section-texte": (("sections", 0), "presentation", "sections[0]"),
    "section-cle-inconnue": (("sections", 0, "x"), "y", "sections[0].x"),
    "section-id-absent": (("sections", 0, "id"), GONE, "sections[0].id"),
    "section-libelle-liste": (("sections", 0, "label"), ["a"], "sections[0].label"),
    "section-id-accent": (("sections", 0, "id"), "présentation", "sections[0].id"),
    "criteres-vides": (("criteria",), [], "criteria"),
    "critere-texte": (("criteria", 0), "c", "criteria[0]"),
    "critere-cle-inconnue": (("criteria", 0, "poids"), "2", "criteria[0].poids"),
    "critere-libelle-absent": (("criteria", 0, "label"), GONE, "criteria[0].label"),
    "themes-texte": (("themes",), "t", "themes"),
    "theme-sans-libelle": (("themes",), [{"id": "t"}], "themes[0].label"),
    "note-max-texte": (("score_max",), "cinq", "score_max"),
    "note-max-50": (("score_max",), "50", "score_max"),
    "note-max-zero": (("score_max",), "0", "score_max"),
    "note-max-decimale": (("score_max",), "4.5", "score_max"),
    "note-max-liste": (("score_max",), ["5"], "score_max"),
    "rappels-texte": (("reminder_days",), "7", "reminder_days"),
    "rappel-texte": (("reminder_days",), ["x"], "reminder_days[0]"),
    "rappel-zero": (("reminder_days",), ["0"], "reminder_days[0]"),
    "rappel-999": (("reminder_days",), ["999"], "reminder_days[0]"),
    "rappels-vides": (("reminder_days",), [], "reminder_days"),
    "suivi-texte": (("follow_up",), "oui", "follow_up"),
    "suivi-absent": (("follow_up",), GONE, "follow_up"),
    "suivi-cle-inconnue": (("follow_up", "x"), "y", "follow_up.x"),
    "charte-vide": (("follow_up", "charter"), [], "follow_up.charter"),
    "charte-texte": (("follow_up", "charter"), "signer", "follow_up.charter"),
    "charte-dictionnaire": (("follow_up", "charter", 0), {"a": "b"}, "follow_up.charter[0]"),
    "periode-texte": (("follow_up", "report_period_months"), "six", "follow_up.report_period_months"),
    "periode-99": (("follow_up", "report_period_months"), "99", "follow_up.report_period_months"),
    "duree-zero": (("follow_up", "duration_months"), "0", "follow_up.duration_months"),
    "notes-texte": (("notes",), "n", "notes"),
    "note-liste": (("notes",), [["a"]], "notes[0]"),
    "conservation-texte": (("retention_years",), "dix", "retention_years"),
    "conservation-500": (("retention_years",), "500", "retention_years"),
    "staff-texte": (("staff",), "amelie", "staff"),
    "staff-nom-interdit": (("staff",), ["amélie pierre!"], "staff[0]"),
    "staff-dictionnaire": (("staff",), [{"a": "b"}], "staff[0]"),
    "comite-saut-de-ligne": (("committee",), ["a\nb"], "committee[0]"),
    "titre-controle": (("title",), "a\x07b", "title"),
    "titre-trop-long": (("title",), "a" * 200_000, "title"),
}

# Files that are not YAML as the loader reads it, or not a mapping.
TEXTS: dict[str, str] = {
    "deux-points": "id: a\ntitle: a: b\n",
    "guillemet-ouvert": 'id: "abc\n',
    "tabulation": "id:\n\t- a\n",
    "retrait": "id: a\n  title: b\n- c\n",
    "alias": "a: &x 1\nb: *x\n",
    "crochet-ouvert": "id: [a, b\n",
    "accolade-ouverte": "id: {a\n",
    "ancre-en-double": "a: &x 1\nb: &x 2\n",
    "liste-puis-cle": "- a\nb: c\n",
    "arobase": "id: @a\n",
    "deux-documents": "a: 1\n---\nb: 2\n",
    "echappement": 'id: "\\q"\n',
    "cle-sans-deux-points": "id: a\ntitle\nregion: b\n",
    "liste": "- a\n- b\n",
    "texte": "bonjour\n",
    "vide": "",
}


def changed(path: tuple[str | int, ...], value: Any) -> Any:
    data = copy.deepcopy(BASE)
    *parents, last = path
    holder = data
    for key in parents:
        holder = holder[key]
    if value is GONE:
        del holder[last]
    else:
        holder[last] = value
    return data


def refusal(path: Path) -> CallDefinitionError:
    with pytest.raises(CallDefinitionError) as caught:
        load_call(path)
    return caught.value


def assert_french(exc: CallDefinitionError) -> None:
    """What the loader says of the problem, and the advice, are French, with no English left."""
    said = f"{exc.problem}. {exc.advice}"
    assert not ENGLISH.search(said), said
    assert FRENCH.search(said), said
    assert exc.message.endswith(said), exc.message


@pytest.mark.parametrize("name", VARIANTS)
def test_a_malformed_call_is_refused_in_french(name: str, tmp_path: Path) -> None:
    path, value, field = VARIANTS[name]
    file = tmp_path / f"{name}.yaml"
    file.write_text(yaml.safe_dump(changed(path, value), allow_unicode=True, width=10**9), encoding="utf-8")
    exc = refusal(file)
    assert exc.path == field and exc.source.endswith(f"{name}.yaml"), exc.message
    assert_french(exc)


@pytest.mark.parametrize("name", TEXTS)
def test_a_file_that_is_no_call_is_refused_in_french(name: str, tmp_path: Path) -> None:
    file = tmp_path / f"{name}.yaml"
    file.write_text(TEXTS[name], encoding="utf-8")
    assert_french(refusal(file))


def test_an_unreadable_file_is_refused_in_french(tmp_path: Path) -> None:
    folder = tmp_path / "appels.yaml"
    folder.mkdir()
    latin = tmp_path / "latin1.yaml"
    latin.write_bytes("title: Région\n".encode("latin-1"))
    for path in (tmp_path / "absent.yaml", folder, latin, folder / "dessous.yaml"):
        exc = refusal(path)
        assert_french(exc)
    assert "fichier introuvable" in refusal(tmp_path / "absent.yaml").problem
    assert "c’est un dossier" in refusal(folder).problem

