"""Reading an uploaded CSV for batch predictions: clear refusals, blanks kept for the API,
non-finite numbers (which JSON cannot carry) refused per row before anything is sent."""

from __future__ import annotations

import pytest

from frontend.batch import MAX_ROWS, BatchInputError, not_finite, read_csv, records

NAMES = ["MedInc", "HouseAge"]


def test_reads_rows_and_keeps_extra_columns() -> None:
    frame = read_csv(b"MedInc,HouseAge,note\n3.5,20,a\n8.1,5,b\n", NAMES)
    assert list(frame.columns) == ["MedInc", "HouseAge", "note"]
    assert len(frame) == 2


def test_missing_columns_are_named() -> None:
    with pytest.raises(BatchInputError, match="lacks the column\\(s\\) HouseAge"):
        read_csv(b"MedInc,Age\n3.5,20\n", NAMES)


def test_header_only_and_too_many_rows_are_refused() -> None:
    with pytest.raises(BatchInputError, match="no rows"):
        read_csv(b"MedInc,HouseAge\n", NAMES)
    too_long = b"MedInc,HouseAge\n" + b"1,2\n" * (MAX_ROWS + 1)
    with pytest.raises(BatchInputError, match="limit"):
        read_csv(too_long, NAMES)


def test_not_a_csv_is_refused_plainly() -> None:
    with pytest.raises(BatchInputError):
        read_csv(b"", NAMES)


def test_blank_cells_become_null_and_only_features_are_sent() -> None:
    frame = read_csv(b"MedInc,HouseAge,note\n3.5,,x\n", NAMES)
    assert records(frame, NAMES) == [{"MedInc": 3.5, "HouseAge": None}]


def test_infinite_values_are_named_per_row_and_column() -> None:
    frame = read_csv(b"MedInc,HouseAge\ninf,20\n3.5,-inf\n3.5,20\n1e999,Infinity\n", NAMES)
    reasons = [not_finite(row) for row in records(frame, NAMES)]
    assert reasons == [
        "MedInc must be a finite number, not inf",
        "HouseAge must be a finite number, not -inf",
        None,
        "MedInc must be a finite number, not inf; HouseAge must be a finite number, not inf",
    ]


def test_numbers_in_a_column_with_text_are_sent_as_numbers() -> None:
    # One typo makes pandas read the whole column as text; only that row should be refused.
    frame = read_csv(b"MedInc,HouseAge\n3.5,20\nabc,5\nINF,7\n", NAMES)
    rows = records(frame, NAMES)
    assert rows[:2] == [{"MedInc": 3.5, "HouseAge": 20}, {"MedInc": "abc", "HouseAge": 5}]
    assert [not_finite(row) for row in rows] == [
        None,
        None,  # the API refuses "abc" in its own words
        "MedInc must be a finite number, not inf",
    ]
