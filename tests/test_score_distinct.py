"""Reading a column once per distinct value (the batch path's speed) answers as reading every cell.

:func:`training.schema.by_value` applies an element-wise reading to the distinct values of a
text or categorical column and spreads it by codes; tidy, the schema's checks and the canonical
dtypes use it. A Parquet file's categorical column and a CSV's text column must then be read
alike, blanks included.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training.schema import as_boolean, as_category, as_number, by_value, canonical
from training.tidy import tidy
from training.validation import row_reasons

CELLS = ["yes", " No", None, "", "TRUE", "1", "x", np.nan, "2.5", " female", "F"] * 5


@pytest.mark.parametrize("dtype", [object, "string", "category"])
def test_readings_by_distinct_value_equal_readings_of_every_cell(dtype: object) -> None:
    column = pd.Series(CELLS, dtype=dtype, index=pd.RangeIndex(10, 10 + len(CELLS)))
    seen: list[int] = []

    def lower(v: pd.Series) -> pd.Series:
        seen.append(len(v))
        return v.astype("string").str.strip().str.lower()

    read = by_value(column, lower)
    assert seen and max(seen) <= 10  # 9 distinct values and one missing, never 55 cells
    assert read.index.equals(column.index)
    assert read.tolist() == column.astype("string").str.strip().str.lower().tolist()
    cells = pd.Series(CELLS, dtype=object)
    for reading in (as_number, as_boolean):
        got = reading(column).to_numpy()
        np.testing.assert_array_equal(got, reading(cells).to_numpy())
    allowed = ("female", "male", "yes")
    assert as_category(column, allowed).tolist() == as_category(cells, allowed).tolist()


def test_a_column_mixing_numbers_and_text_is_read_cell_by_cell() -> None:
    column = pd.Series([1, 1.0, True, "1", "1.0", None], dtype=object)
    sizes: list[int] = []

    def as_text(v: pd.Series) -> pd.Series:
        sizes.append(len(v))
        return v.astype(str)

    # 1, 1.0 and True are one value to a hash table, three ways of writing to a reader
    assert by_value(column, as_text).tolist()[:5] == ["1", "1.0", "True", "1", "1.0"]
    assert sizes == [6]


def test_tidy_reads_categories_as_the_contracts_values_and_keeps_the_rest_as_written() -> None:
    frame = pd.DataFrame({"sex": pd.Categorical(["F", "Female", "male", "unknown", None] * 4),
                          "complaint": ["pfp"] * 20})
    tidied = tidy(frame, dedupe=False)
    assert tidied.frame["sex"].tolist()[:4] == ["female", "female", "male", "unknown"]
    assert pd.isna(tidied.frame["sex"].iloc[4])
    assert any(n.startswith("sex: 8 value(s) read as the contract's") for n in tidied.notes)


def _frame(yes_no: pd.Series) -> pd.DataFrame:
    n = len(yes_no)
    return pd.DataFrame({"complaint": ["pfp"] * n, "sex": ["female"] * n,
                         "age_years": [40.0] * n, "rf_fever": yes_no})


def test_a_blank_yes_no_answer_is_not_recorded_in_parquet_categoricals_as_in_csv_text() -> None:
    answers = ["yes", "", "no", None, "maybe"]
    as_text, _ = row_reasons(_frame(pd.Series(answers, dtype=object)), require_label=False)
    as_categorical, _ = row_reasons(_frame(pd.Series(pd.Categorical(answers))),
                                    require_label=False)
    assert as_text.tolist() == ["", "", "", "", "rf_fever: type"]
    assert as_categorical.tolist() == as_text.tolist()
    clean = canonical(_frame(pd.Series(pd.Categorical(answers))))
    np.testing.assert_array_equal(clean["rf_fever"].to_numpy(), [1.0, np.nan, 0.0, np.nan, np.nan])


def test_a_remembered_reading_tells_true_from_one() -> None:
    """Readings are remembered by distinct values across chunks; True and 1 are one key to a
    hash table, two ways of writing to a reader."""
    remember: dict[tuple[object, ...], pd.Series] = {}

    def as_text(v: pd.Series) -> pd.Series:
        return v.astype(str)

    first = by_value(pd.Series(pd.Categorical([True, "x", True])), as_text, remember=remember)
    second = by_value(pd.Series(pd.Categorical([1, "x", 1])), as_text, remember=remember)
    again = by_value(pd.Series(pd.Categorical(["x", 1])), as_text, remember=remember)
    assert first.tolist() == ["True", "x", "True"]
    assert second.tolist() == ["1", "x", "1"]
    assert again.tolist() == ["x", "1"] and len(remember) == 2
