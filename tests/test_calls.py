"""Call files: each bad input is refused with the file, the field's path, the bad value and advice;
the shipped files behave as the issue says; nothing half-loads."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from amiflow.catalogue import CALLS_DIR, load_call, load_calls, load_schemes, read_yaml
from domain.calls import HolderType, parse_call
from domain.errors import CallDefinitionError

PMCB = CALLS_DIR / "hdf-pmcb-reemploi.yaml"
RESSOURCERIES = CALLS_DIR / "hdf-ressourceries.yaml"
CREC = CALLS_DIR / "normandie-crec-2018.yaml"


@pytest.fixture
def pmcb() -> dict[str, Any]:
    data = read_yaml(PMCB)
    assert isinstance(data, dict)
    return data


def refusal(data: object, source: str = "appel.yaml") -> CallDefinitionError:
    with pytest.raises(CallDefinitionError) as info:
        parse_call(data, source)
    return info.value


def test_shipped_ressourceries_is_refused_on_the_31st_of_february() -> None:
    with pytest.raises(CallDefinitionError) as info:
        load_call(RESSOURCERIES)
    err = info.value
    assert err.source.endswith("deploy/calls/hdf-ressourceries.yaml")
    assert err.path == "phases[0].closes.date"
    assert err.value == "2026-02-31"
    assert err.message.endswith(
        "hdf-ressourceries.yaml: phases[0].closes.date = '2026-02-31' : cette date n’existe pas "
        "(février 2026 n’a pas de 31). Rien n’est reporté d’office au mois suivant : écrivez dans "
        "le fichier la date réelle voulue par l’appel (à confirmer auprès du service qui le porte), "
        "puis relancez `amiflow calls validate`."
    )


def test_shipped_calls_load_except_ressourceries() -> None:
    found = load_calls([CALLS_DIR])
    assert sorted(c.id for c in found.calls) == ["hdf-pmcb-reemploi", "normandie-crec-2018"]
    assert [e.path for e in found.refused] == ["phases[0].closes.date"]


def test_corrected_ressourceries_closes_phase_2_before_5_june_paris(tmp_path: Path) -> None:
    fixed = tmp_path / "ressourceries.yaml"
    fixed.write_text(RESSOURCERIES.read_text().replace("date: 2026-02-31", "date: 2026-03-01"))
    call = load_call(fixed)
    phase1, phase2 = call.phases
    assert phase1.closes_at.isoformat() == "2026-02-28T23:00:00+00:00"
    assert phase2.opens_at == phase1.closes_at
    assert phase2.closes_at.isoformat() == "2026-06-04T22:00:00+00:00"
    assert phase2.closes_assumed is None and phase2.opens_assumed is not None
    assert phase2.holder_types == (
        HolderType.COLLECTIVITE, HolderType.SYNDICAT_DECHETS, HolderType.ENTREPRISE,
        HolderType.ACTEUR_ESS, HolderType.ECO_ORGANISME,
    )


def test_pmcb_is_open_three_years_from_the_assumed_deliberation() -> None:
    call = load_call(PMCB)
    (phase,) = call.phases
    assert phase.opens_at.isoformat() == "2025-06-30T22:00:00+00:00"
    assert phase.closes_at == datetime(2028, 6, 30, 22, tzinfo=UTC)  # 1 July 2028, 00:00 Paris (CEST)
    assert phase.opens_assumed and phase.closes_assumed  # closing follows the assumed opening
    assert [s.id for s in call.sections] == [
        "presentation", "partenariats", "problematiques", "etapes", "suites", "impacts", "financement",
    ]
    assert len(call.criteria) == 3


def test_crec_has_a_deposit_session_and_four_themes() -> None:
    call = load_call(CREC)
    (session,) = call.phases
    assert session.kind.value == "session"
    assert session.closes_at.isoformat() == "2018-09-07T22:00:00+00:00"
    assert session.closes_assumed and "2018" in session.closes_assumed
    assert len(call.themes) == 4


def test_unknown_holder_type(pmcb: dict[str, Any]) -> None:
    pmcb["phases"][0]["holder_types"] = ["entreprise", "startup"]
    err = refusal(pmcb)
    assert err.path == "phases[0].holder_types[1]"
    assert err.value == "startup"
    assert err.message.startswith("appel.yaml: phases[0].holder_types[1] = 'startup' : "
                                  "type de porteur inconnu. Types admis : entreprise, acteur_ess,")


def test_phase_closing_before_opening(pmcb: dict[str, Any]) -> None:
    pmcb["phases"][0]["closes"] = {"date": "2025-06-01"}
    err = refusal(pmcb)
    assert err.message == (
        "appel.yaml: phases[0].closes.date = '2025-06-01' : la phase « Phase unique — "
        "étude au fil de l’eau » se clôt avant (ou quand) elle ouvre (ouverture le 2025-07-01). "
        "Vérifiez les deux dates de cette phase."
    )


def test_overlapping_phases(pmcb: dict[str, Any]) -> None:
    second = copy.deepcopy(pmcb["phases"][0])
    second.update(id="bis", label="Phase bis", opens={"date": "2026-01-01"}, closes={"date": "2026-06-01"})
    pmcb["phases"].append(second)
    err = refusal(pmcb)
    assert err.path == "phases[1].opens"
    assert err.value == "2026-01-01"
    assert "chevauche la phase « Phase unique — étude au fil de l’eau » (phases[0])" in err.message
    assert "ouvrez celle-ci à la clôture de la précédente ou après" in err.message


def test_missing_section_list(pmcb: dict[str, Any]) -> None:
    pmcb["sections"] = []
    err = refusal(pmcb)
    assert err.message == (
        "appel.yaml: sections = [] : la liste est vide. Un appel doit avoir au moins une phase, "
        "une section du dossier et un critère."
    )


def test_missing_criteria(pmcb: dict[str, Any]) -> None:
    del pmcb["criteria"]
    err = refusal(pmcb)
    assert err.message == (
        "appel.yaml: criteria = (absent) : champ obligatoire absent. "
        "Ajoutez ce champ (voir les autres fichiers de deploy/calls/ pour un exemple)."
    )


def test_criterion_without_label(pmcb: dict[str, Any]) -> None:
    del pmcb["criteria"][1]["label"]
    assert refusal(pmcb).path == "criteria[1].label"


def test_date_that_is_not_a_date(pmcb: dict[str, Any]) -> None:
    pmcb["phases"][0]["opens"] = {"date": "1er juillet 2025"}
    err = refusal(pmcb)
    assert err.path == "phases[0].opens.date"
    assert "ce n’est pas une date au format AAAA-MM-JJ" in err.message


def test_thirteenth_month(pmcb: dict[str, Any]) -> None:
    pmcb["phases"][0]["opens"] = {"date": "2025-13-01"}
    assert "il n’y a pas de mois 13" in refusal(pmcb).message


def test_leap_day_only_in_leap_years(pmcb: dict[str, Any]) -> None:
    pmcb["phases"][0]["opens"] = {"date": "2024-02-29"}
    assert parse_call(pmcb, "appel.yaml").phases[0].opens_at.isoformat() == "2024-02-28T23:00:00+00:00"
    pmcb["phases"][0]["opens"] = {"date": "2027-02-29"}
    assert "février 2027 n’a pas de 29" in refusal(pmcb).message


def test_unknown_after_phase(pmcb: dict[str, Any]) -> None:
    pmcb["phases"][0]["opens"] = {"after_phase": "phase-0"}
    err = refusal(pmcb)
    assert err.path == "phases[0].opens.after_phase"
    assert err.value == "phase-0"


def test_duplicate_ids(pmcb: dict[str, Any]) -> None:
    pmcb["sections"][1]["id"] = "presentation"
    err = refusal(pmcb)
    assert (err.path, err.value) == ("sections[1].id", "presentation")


def test_unknown_field_is_a_typo(pmcb: dict[str, Any]) -> None:
    pmcb["phases"][0]["holder_type"] = ["entreprise"]
    err = refusal(pmcb)
    assert err.path == "phases[0].holder_type"
    assert "champ inconnu" in err.message


def test_an_invalid_file_never_half_loads(tmp_path: Path) -> None:
    good = tmp_path / "a.yaml"
    good.write_text(PMCB.read_text())
    bad = tmp_path / "b.yaml"
    bad.write_text(CREC.read_text().replace("- etablissement_public", "- ministere"))
    found = load_calls([tmp_path])
    assert [c.id for c in found.calls] == ["hdf-pmcb-reemploi"]
    assert len(found.refused) == 1 and found.refused[0].value == "ministere"


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "c.yaml"
    bad.write_text("id: x\ntitle: Pour la phase 1 : réponses\n")
    with pytest.raises(CallDefinitionError) as info:
        load_call(bad)
    assert info.value.path == "ligne 2, colonne 24"
    assert "guillemets" in info.value.message


def test_two_files_with_one_id(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(PMCB.read_text())
    (tmp_path / "b.yaml").write_text(PMCB.read_text())
    found = load_calls([tmp_path])
    assert len(found.calls) == 1
    assert "identifiant déjà pris" in found.refused[0].message


def test_scheme_catalogue() -> None:
    schemes = {s.id: s for s in load_schemes()}
    for wanted in ("fratri", "booster-rev3", "feder-hdf", "ftj", "interreg-cross", "riv-circular",
                   "feder-grand-est", "ari", "territoires-industrie", "france-2030"):
        assert wanted in schemes
    assert schemes["ftj"].envelope_eur == 180_000_000
    assert schemes["feder-grand-est"].envelope_eur == 1_140_000_000
    assert schemes["feder-grand-est"].regions == ("Grand Est",)
