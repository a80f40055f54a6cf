"""Errors cross a process boundary intact (a Dask worker's task raises, the client reports)."""

from __future__ import annotations

import pickle

from cds.errors import CdsError, FieldError, InvalidRecord
from training.validation import DataRejected


def test_data_rejected_keeps_its_problems_and_message_through_pickle() -> None:
    error = DataRejected(["column 'age_years' is required", "row 3: sex 'X' is not allowed"])
    back = pickle.loads(pickle.dumps(error))
    assert type(back) is DataRejected
    assert back.problems == error.problems
    assert str(back) == str(error)
    assert (back.status, back.code) == (422, "invalid-data")


def test_invalid_record_keeps_its_errors_and_total_through_pickle() -> None:
    error = InvalidRecord([FieldError(f"f{i}", "required", f"f{i} is required")
                           for i in range(100)])
    back = pickle.loads(pickle.dumps(error))
    assert type(back) is InvalidRecord
    assert back.errors == error.errors and back.total == error.total == 100
    assert str(back) == str(error)


def test_a_plain_core_error_still_pickles() -> None:
    back = pickle.loads(pickle.dumps(CdsError("model not found")))
    assert type(back) is CdsError and str(back) == "model not found"
