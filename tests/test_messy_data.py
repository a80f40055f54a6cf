"""Messy files in: separators and decimal commas, units in cells and headers, F/M and yes/no,
renamed columns (mapping and suggestions), duplicates, and a key finding absent."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cds.errors import UserError
from cds.features import BY_NAME
from cds.units import UnitProblem, conversion_factor
from training.cli import main
from training.columns import Mapping, apply_names, load_mapping, suggest
from training.dataset import load
from training.tables import read_csv, sniff
from training.tidy import absent_findings, tidy
from training.validation import DataRejected
from training.values import category_values

from .messy_site import SITE_NAMES, messy_frame, write_messy_csv

HIP_LEFT = "hip_abduction_left_nm_per_kg"


# ------------------------------------------------------------------------------ the file


@pytest.mark.parametrize(("sep", "decimal"), [(";", ","), ("\t", "."), (",", "."), ("|", ",")])
def test_separator_and_decimal_mark_are_sniffed(tmp_path: Path, sep: str, decimal: str) -> None:
    frame = pd.DataFrame({"age_years": [31, 42], "bmi_kg_m2": [21.5, 30.25]})
    frame.to_csv(tmp_path / "d.csv", sep=sep, decimal=decimal, index=False)
    read, dialect = read_csv(tmp_path / "d.csv")
    assert (dialect.separator, dialect.decimal) == (sep, decimal)
    assert read["bmi_kg_m2"].tolist() == [21.5, 30.25]


def test_a_file_mixing_decimal_commas_and_points_is_refused(tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_text("a;b\n1,5;2.5\n")
    with pytest.raises(UserError, match="both with a decimal comma"):
        sniff(tmp_path / "d.csv")


def test_windows_1252_text_is_read(tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_bytes("note;age_years\nMüller;40\n".encode("cp1252"))
    frame, dialect = read_csv(tmp_path / "d.csv")
    assert dialect.encoding == "cp1252" and frame["note"][0] == "Müller"


# ------------------------------------------------------------------------------ units


@pytest.mark.parametrize(("written", "ucum", "factor"), [
    ("Nm/kg", "N.m/kg", 1.0), ("N·m/kg", "N.m/kg", 1.0), ("N m/kg", "N.m/kg", 1.0),
    ("ft*lbf/lb", "N.m/kg", 2.98906692), ("kg/m²", "kg/m2", 1.0), ("rad", "deg", 57.29577951),
    ("weeks", "mo", 0.22997947), ("years", "a", 1.0),
])
def test_units_convert_to_the_contracts(written: str, ucum: str, factor: float) -> None:
    assert conversion_factor(written, ucum) == pytest.approx(factor, rel=1e-6)


@pytest.mark.parametrize(("written", "ucum", "why"), [
    ("Nm", "N.m/kg", "not convertible"),  # torque without body mass: not a unit conversion
    ("%", "deg", "not convertible"),  # both dimensionless, not the same kind
    ("points", "{score}", "score without a unit"),
    ("furlongs per fortnight", "deg", "not"),
])
def test_unsafe_units_are_refused(written: str, ucum: str, why: str) -> None:
    with pytest.raises(UnitProblem, match=why):
        conversion_factor(written, ucum)


def test_units_in_cells_and_header_are_converted_and_an_unsafe_one_stops_the_column() -> None:
    frame = pd.DataFrame({"Hip abd L (ft·lbf/lb)": ["0.5", "0,4"],
                          "bmi_kg_m2": ["22 kg/m2", "25,5"]})
    tidied = tidy(frame, Mapping({"Hip abd L (ft·lbf/lb)": HIP_LEFT}, {}))
    assert tidied.frame[HIP_LEFT].tolist() == pytest.approx([1.494533, 1.195627], rel=1e-5)
    assert tidied.frame["bmi_kg_m2"].tolist() == [22.0, 25.5]
    with pytest.raises(DataRejected, match=r"column 'bmi_kg_m2'.*not convertible"):
        tidy(pd.DataFrame({"bmi_kg_m2": ["22 kg", "25"]}))


# ------------------------------------------------------------------------------ values


def test_f_m_and_initials_read_as_the_contracts_values() -> None:
    sex = category_values(pd.Series(["F", "m", "Female", " MALE ", "x"]), BY_NAME["sex"])
    assert sex.tolist()[:4] == ["female", "male", "female", "male"] and pd.isna(sex[4])
    side = category_values(pd.Series(["L", "r", "B", "Both sides / central"]), BY_NAME["side"])
    assert side.tolist() == ["left", "right", "bilateral", "bilateral"]


def test_an_ambiguous_prefix_is_not_guessed() -> None:
    f = BY_NAME["activity_profile"]
    read = category_values(pd.Series(["", "c", "r"]), f)
    assert pd.isna(read[0]) and read.tolist()[1:] == ["cyclist", "runner"]


# ------------------------------------------------------------------------------ names


def test_suggestions_by_name_and_values_find_every_renamed_column() -> None:
    frame = messy_frame(400, 3)
    found = {s.source: s.target for s in suggest(frame)}
    assert found == {site: contract for contract, site in SITE_NAMES.items() if site != contract}


def test_certain_renames_only_without_a_mapping() -> None:
    frame = pd.DataFrame(columns=["Age-Years", "BMI_kg_m2 (kg/m²)", "BMI (kg/m2)", "Gender"])
    renamed, units, _ = apply_names(frame)
    assert list(renamed.columns) == ["age_years", "bmi_kg_m2", "BMI (kg/m2)", "Gender"]
    assert units == {"bmi_kg_m2": "kg/m²"}


def test_a_mapping_naming_an_unknown_column_says_did_you_mean(tmp_path: Path) -> None:
    (tmp_path / "m.yaml").write_text("columns:\n  Age: age_yeers\n  A: sex\n  B: sex\n")
    with pytest.raises(UserError) as e:
        load_mapping(tmp_path / "m.yaml")
    assert "did you mean 'age_years'" in str(e.value) and "'sex' is the target of more" in str(e.value)


def test_a_missing_required_column_says_which_file_column_it_may_be(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]
                                                                    ) -> None:
    write_messy_csv(tmp_path / "site.csv", 300, 4)
    assert main(["train", "--data", str(tmp_path / "site.csv"), "--out", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err
    assert "column 'age_years' is required and missing; did you mean 'Age'?" in err
    assert "column 'sex' is required and missing; did you mean 'Gender'?" in err


# ------------------------------------------------------------------------------ duplicates


def test_exact_duplicates_are_kept_once_and_conflicts_set_aside() -> None:
    frame = pd.DataFrame({"patient_id": ["a", "a", "b", "b", "c"],
                          "complaint": ["pfp", "pfp", "lbp", "lbp", "lbp"],
                          "pain_nrs": [3, 3, 4, 5, 6]})
    tidied = tidy(frame)
    assert tidied.duplicates == {"exact_duplicate": 1, "conflicting_duplicate": 2}
    assert tidied.frame["patient_id"].tolist() == ["a", "c"]
    assert set(tidied.set_aside["reason"]) == {"duplicate patient_id and complaint with different "
                                               "values: which is right cannot be told"}


def test_with_recorded_at_the_latest_of_a_conflict_is_kept() -> None:
    frame = pd.DataFrame({"patient_id": ["b", "b"], "complaint": ["lbp", "lbp"],
                          "pain_nrs": [4, 5], "recorded_at": ["2026-03-01", "2026-01-01"]})
    tidied = tidy(frame)
    assert tidied.frame["pain_nrs"].tolist() == [4] and len(tidied.set_aside) == 1


# ------------------------------------------------------------------------------ absent findings


def test_hip_strength_absent_from_the_whole_file_is_a_loud_warning() -> None:
    frame = messy_frame(50, 5).drop(columns=["hip_abd_L", "hip_abd_R"])
    warnings = tidy(frame).warnings
    loud = [w for w in warnings if w.startswith("WARNING")]
    assert len(loud) == 1 and "dynamometry" in loud[0] and "WITHOUT this key finding" in loud[0]
    quiet, loud_only = absent_findings({HIP_LEFT})
    assert not loud_only and quiet


def test_an_intake_finding_or_red_flag_absent_from_the_whole_file_is_reported() -> None:
    """BMI has no clinical test (no ``procedure``): its absence is said by name, as a red-flag
    question's is (the file cannot screen it)."""
    frame = messy_frame(50, 5).drop(columns=["BMI (kg/m2)", "rf_fever"])
    warnings = tidy(frame).warnings
    assert any(w.startswith("no column 'bmi_kg_m2'") and "learns without it" in w
               for w in warnings), warnings
    assert any(w.startswith("no column 'rf_fever'") and "cannot be screened" in w
               for w in warnings), warnings
    assert not any("'pain_nrs'" in w for w in warnings)  # present (renamed): not reported


# ------------------------------------------------------------------------------ end to end


def test_the_messy_site_trains_with_a_suggested_mapping(tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    site = write_messy_csv(tmp_path / "site.csv", 4500, 7)
    assert main(["columns", "suggest", str(site), "--out", str(tmp_path / "mapping.yaml")]) == 0
    mapping = load_mapping(tmp_path / "mapping.yaml")
    assert mapping.columns["hip_abd_L"] == HIP_LEFT and mapping.columns["outcome"] == "hip_driver"
    out = tmp_path / "models" / "gmed-driver" / "0.2.0"
    assert main(["train", "--data", str(site), "--columns", str(tmp_path / "mapping.yaml"),
                 "--out", str(out), "--threads", "1", "--quarantine", str(tmp_path / "q.csv")]) == 0
    err = capsys.readouterr().err
    assert "3 exact duplicate row(s) kept once" in err and "0 rejected" in err
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["training_data"]["validation"]["excluded"]["conflicting_duplicate"] == 2
    aside = pd.read_csv(tmp_path / "q.csv")  # rows as the file had them, with the reason
    conflicts = aside[aside["reason"].str.startswith("duplicate patient_id")]
    assert len(conflicts) == 2 and set(conflicts["Gender"]) <= {"F", "M"}
    assert conflicts["hip_abd_L"].dropna().str.endswith(" Nm/kg").all()
    assert (aside["reason"] == "excluded: red_flag").sum() > 0 and "Age" in aside.columns
    ds = load(site, columns=tmp_path / "mapping.yaml")
    raw = messy_frame(4500, 7)
    first = pd.to_numeric(raw["hip_abd_L"].str.replace(",", ".").str.removesuffix(" Nm/kg"),
                          errors="coerce")
    assert np.nanmax(ds.frame[HIP_LEFT]) == pytest.approx(np.nanmax(first))


def test_the_data_description_says_how_the_csv_was_read(tmp_path: Path) -> None:
    from training.sources import read_source

    write_messy_csv(tmp_path / "site.csv", 50, 2)
    assert "semicolon-separated, decimal comma, utf-8" in read_source(tmp_path / "site.csv").description
