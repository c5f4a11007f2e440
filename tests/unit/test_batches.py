"""Data batches: checked row by row, stored all-or-none with content hashes, never touching the
held-out test split."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess  # nosec B404 - runs the venv's own dvc
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from housing import batches
from housing.cli import app
from housing.data import COLUMNS, TEST_FILE, processed_dir
from housing.features import FEATURES, TARGET, typical_row
from housing.validation import validate_frame

HEADER = ",".join(COLUMNS)
ROOT = Path(__file__).resolve().parents[2]


def houses(rows: int, seed: int = 0) -> pd.DataFrame:
    """Plausible distinct houses around the typical one (all valid)."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame([typical_row()] * rows)
    frame["MedInc"] = rng.uniform(1.0, 9.0, rows).round(4)
    frame["HouseAge"] = rng.integers(1, 52, rows).astype(float)
    frame["Latitude"] = rng.uniform(33.8, 34.3, rows).round(2)
    frame["Longitude"] = rng.uniform(-118.4, -117.6, rows).round(2)
    frame[TARGET.name] = rng.uniform(0.5, 5.0, rows).round(5)
    return frame.loc[:, list(COLUMNS)]


def csv_bytes(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A data folder with a small held-out test split, as `housing data` writes it."""
    folder = tmp_path / "data"
    processed_dir(folder).mkdir(parents=True)
    houses(20, seed=99).to_csv(processed_dir(folder) / TEST_FILE, index=False)
    return folder


def stored_files(data_dir: Path) -> list[str]:
    folder = batches.batches_dir(data_dir)
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def rejection(data_dir: Path, payload: bytes) -> batches.BatchRejectedError:
    with pytest.raises(batches.BatchRejectedError) as caught:
        batches.store_batch(data_dir, payload, "upload.csv")
    assert stored_files(data_dir) == [], "a rejected batch must leave nothing behind"
    return caught.value


def test_valid_batch_is_stored_with_its_hash_and_reads_back_exactly(data_dir: Path) -> None:
    frame = houses(50)
    payload = csv_bytes(frame)
    batch, created = batches.store_batch(data_dir, payload, "first.csv")
    assert created and batch.rows == 50 and batch.source == "first.csv"
    assert batch.id.endswith(batch.sha256[:12]) and batch.file == f"{batch.id}.csv"
    stored = (batches.batches_dir(data_dir) / batch.file).read_bytes()
    assert hashlib.sha256(stored).hexdigest() == batch.sha256 and len(stored) == batch.bytes
    assert batch.upload_sha256 == hashlib.sha256(payload).hexdigest()
    index = json.loads((batches.batches_dir(data_dir) / batches.INDEX_FILE).read_text())
    assert index == {"batches": [batch.as_dict()]}
    loaded = batches.load_batches(data_dir, batches.select(data_dir))
    pd.testing.assert_frame_equal(loaded, frame.astype(float))


def test_same_content_is_stored_once(data_dir: Path) -> None:
    frame = houses(10)
    first, created = batches.store_batch(data_dir, csv_bytes(frame), "a.csv")
    # Same houses, different spelling (column order, spaces, CRLF): the same batch.
    text = frame.iloc[:, ::-1].to_csv(index=False, lineterminator="\r\n").replace(",", ", ")
    again, created_again = batches.store_batch(data_dir, text.encode(), "b.csv")
    assert created and not created_again and again == first
    assert len(batches.read_index(data_dir)) == 1
    other, created_other = batches.store_batch(data_dir, csv_bytes(houses(10, seed=1)), "c.csv")
    assert created_other and other.id != first.id
    assert [b.id for b in batches.read_index(data_dir)] == [first.id, other.id]


def test_one_bad_row_rejects_the_whole_batch_naming_row_column_and_rule(data_dir: Path) -> None:
    frame = houses(8).astype(object)
    frame.loc[1, "MedInc"] = "lots"  # line 3
    frame.loc[3, "HouseAge"] = ""  # line 5
    frame.loc[4, "Latitude"] = 51.0  # line 6: outside the spec's range
    frame.loc[5, "AveBedrms"] = 9.0  # line 7: more bedrooms than rooms (a business rule)
    frame.loc[6, TARGET.name] = "inf"  # line 8
    error = rejection(data_dir, csv_bytes(frame))
    found = [(e.row, e.line, e.column, e.rule) for e in error.errors]
    assert found == [
        (2, 3, "MedInc", "type"),
        (4, 5, "HouseAge", "finite"),
        (5, 6, "Latitude", "range"),
        (6, 7, "AveBedrms", "at_most_ave_rooms"),
        (7, 8, TARGET.name, "finite"),
    ]
    assert error.rows == 8 and error.bad_rows == 5
    assert "'lots' is not a number" in error.errors[0].message
    assert "51.0 is outside [32.5, 42]" in error.errors[2].message
    lines = error.lines()
    assert lines[0] == "upload.csv: batch rejected, nothing stored: 5 problem(s) in 5 of 8 rows"
    assert lines[1].startswith("upload.csv: line 3: MedInc 'lots'")


def test_a_row_breaking_a_cell_rule_gets_no_cascade_of_derived_errors(data_dir: Path) -> None:
    frame = houses(3).astype(object)
    frame.loc[0, "AveRooms"] = "x"  # AveBedrms <= AveRooms cannot be judged: not reported
    error = rejection(data_dir, csv_bytes(frame))
    assert [(e.row, e.column, e.rule) for e in error.errors] == [(1, "AveRooms", "type")]


def test_outside_california_is_refused_like_the_api_does(data_dir: Path) -> None:
    frame = houses(3)
    frame.loc[2, ["Latitude", "Longitude"]] = [34.26, -124.4]  # in range, but in the Pacific
    error = rejection(data_dir, csv_bytes(frame))
    assert [(e.line, e.column, e.rule) for e in error.errors] == [
        (4, "Longitude", "inside_california")
    ]


@pytest.mark.parametrize(
    "payload, column, rule",
    [
        (b"", "*", "empty"),
        (b"\xff\xfe\x00", "*", "parse"),
        (HEADER.encode() + b"\n", "*", "empty"),
        (b'MedInc,"unterminated\n1,2\n', "*", "parse"),
    ],
)
def test_unreadable_files_are_rejected_as_a_whole(
    data_dir: Path, payload: bytes, column: str, rule: str
) -> None:
    error = rejection(data_dir, payload)
    assert [(e.row, e.column, e.rule) for e in error.errors] == [(None, column, rule)]


def test_columns_are_checked_by_name(data_dir: Path) -> None:
    frame = houses(2).drop(columns=["Population"]).assign(Extra=1.0)
    error = rejection(data_dir, csv_bytes(frame))
    assert [(e.row, e.column, e.rule) for e in error.errors] == [
        (None, "Population", "missing"),
        (None, "Extra", "unknown_column"),
    ]


def test_a_line_with_too_many_fields_is_refused_not_shifted(data_dir: Path) -> None:
    # pandas would read a surplus first field as an index and shift every value silently.
    good = csv_bytes(houses(2)).decode().splitlines()
    payload = "\n".join([good[0], good[1], "7," + good[2]]).encode()
    error = rejection(data_dir, payload)
    assert [(e.row, e.line, e.rule) for e in error.errors] == [(2, 3, "parse")]
    assert "10 fields, the header has 9" in error.errors[0].message


@pytest.mark.parametrize("feature", [*FEATURES, TARGET], ids=lambda f: f.name)
@pytest.mark.parametrize("where", ["below", "above", "nan"])
def test_row_checks_agree_with_housing_validation(data_dir: Path, feature, where: str) -> None:
    frame = houses(4)
    value = {"below": feature.min - 1e-6, "above": feature.max + 1e-6, "nan": np.nan}[where]
    frame.loc[2, feature.name] = value
    expected = {(v.column, v.rule) for v in validate_frame(frame, require_target=True)}
    error = rejection(data_dir, csv_bytes(frame))
    assert {(e.column, e.rule) for e in error.errors} == expected
    assert {e.row for e in error.errors} == {3}


def test_copies_of_held_out_test_rows_are_refused(data_dir: Path) -> None:
    test_file = processed_dir(data_dir) / TEST_FILE
    before = test_file.read_bytes()
    held_out = pd.read_csv(test_file)
    mixed = pd.concat([houses(3, seed=5), held_out.iloc[[4, 7]]], ignore_index=True)
    error = rejection(data_dir, csv_bytes(mixed))
    assert [(e.row, e.rule) for e in error.errors] == [(4, "held_out"), (5, "held_out")]
    batch, _ = batches.store_batch(data_dir, csv_bytes(houses(3, seed=5)), "clean.csv")
    assert test_file.read_bytes() == before, "uploads never change the test split"
    assert sorted(p.name for p in processed_dir(data_dir).iterdir()) == [TEST_FILE]
    assert (batches.batches_dir(data_dir) / batch.file).is_file()


def test_a_changed_or_missing_batch_file_is_detected(data_dir: Path) -> None:
    batch, _ = batches.store_batch(data_dir, csv_bytes(houses(5)), "a.csv")
    path = batches.batches_dir(data_dir) / batch.file
    path.write_text(path.read_text().replace("1.05", "1.06"))
    with pytest.raises(batches.BatchStoreError, match="changed since it was stored"):
        batches.load_batches(data_dir, [batch])
    path.unlink()
    with pytest.raises(batches.BatchStoreError, match="cannot read"):
        batches.load_batches(data_dir, [batch])
    with pytest.raises(batches.BatchStoreError, match="unknown batch id"):
        batches.select(data_dir, ["nope"])


def test_valid_rows_marks_rows_that_break_any_rule() -> None:
    frame = houses(5)
    frame.loc[1, "MedInc"] = np.nan
    frame.loc[2, "AveBedrms"] = frame.loc[2, "AveRooms"] + 1
    frame.loc[4, TARGET.name] = TARGET.max + 1
    assert batches.valid_rows(frame).tolist() == [True, False, False, True, False]


def test_upload_and_batches_commands(data_dir: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HOUSING_DATA_DIR", str(data_dir))
    good, bad = tmp_path / "good.csv", tmp_path / "bad.csv"
    good.write_bytes(csv_bytes(houses(4)))
    frame = houses(4).astype(object)
    frame.loc[3, "Population"] = -5
    bad.write_bytes(csv_bytes(frame))
    runner = CliRunner()
    refused = runner.invoke(app, ["upload", str(bad)])
    assert refused.exit_code == 2 and "Traceback" not in refused.output
    assert "line 5: Population -5 is outside [1, 50000] people (range)" in refused.output
    stored = runner.invoke(app, ["upload", str(good), "--json"])
    assert stored.exit_code == 0, stored.output
    batch = json.loads(stored.output)
    assert batch["created"] is True and batch["rows"] == 4
    listed = runner.invoke(app, ["batches", "--json"])
    assert [json.loads(line)["id"] for line in listed.output.splitlines()] == [batch["id"]]
    missing = runner.invoke(app, ["upload", str(tmp_path / "nope.csv")])
    assert missing.exit_code == 2 and "nope.csv: cannot read" in missing.output


def test_dvc_snapshot_pins_the_batch_folder(tmp_path: Path) -> None:
    if shutil.which("git") is None:
        pytest.fail("git is needed for the DVC snapshot test")
    root = tmp_path / "repo"
    data_dir = root / "data"
    processed_dir(data_dir).mkdir(parents=True)
    houses(5, seed=9).to_csv(processed_dir(data_dir) / TEST_FILE, index=False)
    assert batches.snapshot(data_dir) is None, "outside a DVC repository: nothing to pin"
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)  # nosec B603 B607
    subprocess.run(  # nosec B603
        [sys.executable, "-m", "dvc", "init", "-q"], cwd=root, check=True, capture_output=True
    )
    batches.store_batch(data_dir, csv_bytes(houses(5)), "a.csv")
    first = batches.snapshot(data_dir)
    assert first is not None and first["md5"].endswith(".dir") and first["files"] == 2
    assert first["scm"] == "git" and not (root / ".dvc" / "config.local").exists()
    pinned = (data_dir / "batches.dvc").read_text()
    assert first["md5"] in pinned
    batches.store_batch(data_dir, csv_bytes(houses(5, seed=3)), "b.csv")
    second = batches.snapshot(data_dir)
    assert second["md5"] != first["md5"] and second["files"] == 3


def test_batches_are_pinned_in_a_copy_of_the_project_without_git(
    project_without_git: Path,
) -> None:
    root = project_without_git
    data_dir = root / "data"
    processed_dir(data_dir).mkdir(parents=True)
    houses(5, seed=9).to_csv(processed_dir(data_dir) / TEST_FILE, index=False)
    batch, _ = batches.store_batch(data_dir, csv_bytes(houses(5)), "a.csv")

    pinned = batches.snapshot(data_dir)

    assert pinned is not None and pinned["md5"].endswith(".dir") and pinned["files"] == 2
    assert pinned["scm"] == "none"
    assert "no_scm = true" in (root / ".dvc" / "config.local").read_text()
    assert (root / ".dvc" / "config").read_text() == (
        ROOT / ".dvc" / "config"
    ).read_text(), "the project's own DVC config is left as shipped"
    assert pinned["md5"] in (data_dir / "batches.dvc").read_text()
    cached = pinned["md5"].removesuffix(".dir")
    assert (root / ".dvc" / "cache" / "files" / "md5" / cached[:2] / f"{cached[2:]}.dir").is_file()
    assert (data_dir / "batches" / batch.file).is_file()


def test_a_dvc_failure_carries_dvcs_own_message(project_without_git: Path) -> None:
    root = project_without_git
    (root / ".dvc" / "config").write_text("[core]\n    no_such_option = 1\n")
    data_dir = root / "data"
    batches.store_batch(data_dir, csv_bytes(houses(3)), "a.csv")
    with pytest.raises(batches.DvcError) as failed:
        batches.snapshot(data_dir)
    message = str(failed.value)
    assert "ERROR" in message and "no_such_option" in message, message
