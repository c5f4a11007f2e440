"""The data stage on small files: layouts, split determinism, atomic all-or-nothing writes, CLI."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from housing import data
from housing.cli import app
from housing.features import FEATURE_NAMES, FEATURES, TARGET
from housing.validation import DataValidationError

PARAMS = data.DataParams(test_size=0.2, seed=42, reference_size=10)
N = 60


@pytest.fixture(scope="module")
def raw() -> pd.DataFrame:
    """A small raw StatLib table with plausible, distinct rows."""
    rng = np.random.default_rng(7)
    households = rng.integers(50, 800, N).astype(float)
    return pd.DataFrame(
        {
            "longitude": rng.uniform(-122.5, -117.0, N).round(2),
            "latitude": rng.uniform(33.0, 38.5, N).round(2),
            "housing_median_age": rng.integers(1, 53, N).astype(float),
            "total_rooms": (households * rng.uniform(3, 8, N)).round(),
            "total_bedrooms": (households * rng.uniform(0.9, 1.2, N)).round(),
            "population": (households * rng.uniform(2, 4, N)).round(),
            "households": households,
            "median_income": rng.uniform(0.5, 15, N).round(4),
            "median_house_value": rng.integers(15000, 500001, N).astype(float),
        },
        columns=list(data.RAW_COLUMNS),
    )


def write_raw_csv(path: Path, raw: pd.DataFrame, header: bool) -> Path:
    raw.to_csv(path, index=False, header=header)
    return path


def write_tgz(path: Path, raw: pd.DataFrame) -> Path:
    payload = raw.to_csv(index=False, header=False).encode()
    with tarfile.open(path, "w:gz") as archive:
        info = tarfile.TarInfo("CaliforniaHousing/cal_housing.data")
        info.size = len(payload)
        archive.addfile(info, io.BytesIO(payload))
    return path


def write_sklearn_csv(path: Path, raw: pd.DataFrame) -> Path:
    data.from_raw(raw).to_csv(path, index=False)
    return path


def snapshot(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


# --- layouts ---------------------------------------------------------------------------------


def test_from_raw_derives_sklearn_features(raw: pd.DataFrame) -> None:
    frame = data.from_raw(raw)
    assert list(frame.columns) == [*FEATURE_NAMES, TARGET.name]
    row, source = frame.iloc[3], raw.iloc[3]
    assert row["AveRooms"] == source["total_rooms"] / source["households"]
    assert row["AveBedrms"] == source["total_bedrooms"] / source["households"]
    assert row["AveOccup"] == source["population"] / source["households"]
    assert row["MedHouseVal"] == source["median_house_value"] / 100_000
    assert row["MedInc"] == source["median_income"]
    assert (row["Latitude"], row["Longitude"]) == (source["latitude"], source["longitude"])


def test_every_layout_gives_the_same_prepared_files(tmp_path: Path, raw: pd.DataFrame) -> None:
    sources = {
        "tgz": write_tgz(tmp_path / "cal_housing.tgz", raw),
        "raw-no-header": write_raw_csv(tmp_path / "raw.csv", raw, header=False),
        "raw-header": write_raw_csv(tmp_path / "raw-header.csv", raw, header=True),
        "sklearn": write_sklearn_csv(tmp_path / "sklearn.csv", raw),
    }
    hashes = {}
    for kind, source in sources.items():
        manifest = data.prepare(tmp_path / kind, PARAMS, source)
        assert manifest["source"] == str(source)
        hashes[kind] = {name: f["sha256"] for name, f in manifest["files"].items()}
    assert len({json.dumps(h, sort_keys=True) for h in hashes.values()}) == 1, hashes


def test_raw_csv_with_extra_column_is_accepted(tmp_path: Path, raw: pd.DataFrame) -> None:
    kaggle_like = raw.assign(ocean_proximity="NEAR BAY")
    loaded = data.load_source(write_raw_csv(tmp_path / "housing.csv", kaggle_like, header=True))
    assert len(loaded.frame) == N


def test_raw_missing_values_are_named_by_raw_column(tmp_path: Path, raw: pd.DataFrame) -> None:
    broken = raw.copy()
    broken.loc[[4, 9], "total_bedrooms"] = np.nan
    source = write_raw_csv(tmp_path / "raw.csv", broken, header=True)
    with pytest.raises(DataValidationError) as caught:
        data.load_source(source)
    assert caught.value.lines() == [
        f"{source}: column total_bedrooms: 2 rows missing or infinite (NaN/inf) "
        "(first at line 6)"
    ]


def test_zero_households_are_caught_after_derivation(tmp_path: Path, raw: pd.DataFrame) -> None:
    broken = raw.copy()
    broken.loc[2, "households"] = 0
    with pytest.raises(DataValidationError) as caught:
        data.load_source(write_tgz(tmp_path / "x.tgz", broken))
    assert {(v.column, v.rule, v.rows) for v in caught.value.violations} == {
        ("AveRooms", "finite", 1),
        ("AveBedrms", "finite", 1),
        ("AveOccup", "finite", 1),
    }


def test_sklearn_csv_out_of_range_points_at_the_line(tmp_path: Path, raw: pd.DataFrame) -> None:
    frame = data.from_raw(raw)
    frame.loc[[5, 7, 8], "MedInc"] = 150.0  # dollars in $10k units
    source = tmp_path / "x.csv"
    frame.to_csv(source, index=False)
    with pytest.raises(DataValidationError) as caught:
        data.load_source(source)
    assert caught.value.lines() == [
        f"{source}: column MedInc: 3 rows out of range [0, 20] (first at line 7)"
    ]


def test_sklearn_csv_missing_a_feature_is_reported_not_guessed(
    tmp_path: Path, raw: pd.DataFrame
) -> None:
    source = tmp_path / "x.csv"
    data.from_raw(raw).drop(columns=["AveRooms"]).to_csv(source, index=False)
    with pytest.raises(DataValidationError) as caught:
        data.load_source(source)
    assert [(v.column, v.rule) for v in caught.value.violations] == [("AveRooms", "missing")]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "empty file"),
        (b"a,b,c\n1,2,3\n", "unknown layout (line 1: a, b, c)"),
        (b"\x89PNG\r\n\x1a\n\x00\xff\xfe", "not a UTF-8 text file"),
        (b"1,2,3,4,5,6,7,8,9\n1,2,3,4,5,6,7,8,9,10\n", "line 2"),
    ],
    ids=["empty", "unknown-header", "binary", "ragged"],
)
def test_unreadable_sources_name_the_file(tmp_path: Path, content: bytes, expected: str) -> None:
    source = tmp_path / "bad.csv"
    source.write_bytes(content)
    with pytest.raises(data.DataSourceError) as caught:
        data.read_source(source)
    assert str(caught.value).startswith(f"{source}: ")
    assert expected in str(caught.value)


def test_archive_without_the_data_member(tmp_path: Path) -> None:
    source = tmp_path / "other.tgz"
    with tarfile.open(source, "w:gz") as archive:
        info = tarfile.TarInfo("README")
        archive.addfile(info, io.BytesIO(b""))
    with pytest.raises(data.DataSourceError, match="archive holds no cal_housing.data"):
        data.read_source(source)


def test_missing_source_and_folder_source(tmp_path: Path) -> None:
    with pytest.raises(data.DataSourceError, match="no such file"):
        data.read_source(tmp_path / "nope.csv")
    with pytest.raises(data.DataSourceError, match="not a file"):
        data.read_source(tmp_path)


# --- split and reference ---------------------------------------------------------------------


def test_split_is_deterministic_disjoint_and_complete(raw: pd.DataFrame) -> None:
    frame = data.from_raw(raw)
    train, test = data.split_frame(frame, 0.2, 42)
    again_train, again_test = data.split_frame(frame, 0.2, 42)
    pd.testing.assert_frame_equal(train, again_train)
    pd.testing.assert_frame_equal(test, again_test)
    assert (len(train), len(test)) == (48, 12)
    combined = pd.concat([train, test]).sort_values(list(frame.columns)).reset_index(drop=True)
    expected = frame.sort_values(list(frame.columns)).reset_index(drop=True)
    pd.testing.assert_frame_equal(combined, expected)


def test_another_seed_gives_another_split(raw: pd.DataFrame) -> None:
    frame = data.from_raw(raw)
    assert not data.split_frame(frame, 0.2, 42)[1].equals(data.split_frame(frame, 0.2, 43)[1])


def test_reference_is_a_deterministic_sample_of_train(raw: pd.DataFrame) -> None:
    train, _ = data.split_frame(data.from_raw(raw), 0.2, 42)
    reference = data.reference_sample(train, 10, 42)
    pd.testing.assert_frame_equal(reference, data.reference_sample(train, 10, 42))
    assert len(reference) == 10
    assert len(reference.merge(train, how="inner")) == 10
    assert len(data.reference_sample(train, 10_000, 42)) == len(train)


# --- prepare: outputs, manifest, all-or-nothing ----------------------------------------------


def test_prepare_writes_files_and_a_manifest_that_matches_them(
    tmp_path: Path, raw: pd.DataFrame
) -> None:
    manifest = data.prepare(tmp_path / "data", PARAMS, write_tgz(tmp_path / "c.tgz", raw))
    out = tmp_path / "data" / "processed"
    assert sorted(p.name for p in out.iterdir()) == [
        "manifest.json",
        "reference.csv",
        "test.csv",
        "train.csv",
        "validation.csv",
    ]
    assert json.loads((out / "manifest.json").read_text()) == manifest
    for name, entry in manifest["files"].items():
        payload = (out / name).read_bytes()
        assert hashlib.sha256(payload).hexdigest() == entry["sha256"]
        assert len(payload) == entry["bytes"]
    assert manifest["rows"] == {"train": 42, "validation": 6, "test": 12, "reference": 10}
    assert manifest["validation_size"] == 0.125
    assert (
        manifest["source_sha256"] == hashlib.sha256((tmp_path / "c.tgz").read_bytes()).hexdigest()
    )
    assert not [p for p in (tmp_path / "data").iterdir() if p.name.startswith(".")]


def test_loaders_return_what_prepare_wrote(tmp_path: Path, raw: pd.DataFrame) -> None:
    data.prepare(tmp_path, PARAMS, write_tgz(tmp_path / "c.tgz", raw))
    train, test = data.load_split(tmp_path)
    expected_train, expected_test = data.split_frame(data.from_raw(raw), 0.2, 42)
    # The validation rows: the same seeded splitter on the training split (the benchmark's call).
    expected_fit, expected_validation = data.split_frame(expected_train, 0.125, 42)
    pd.testing.assert_frame_equal(train, expected_fit, check_exact=True)
    pd.testing.assert_frame_equal(test, expected_test, check_exact=True)
    splits = data.load_splits(tmp_path)
    pd.testing.assert_frame_equal(splits.validation, expected_validation, check_exact=True)
    pd.testing.assert_frame_equal(splits.train, train)
    pd.testing.assert_frame_equal(splits.test, test)
    reference = data.load_reference(tmp_path)
    assert list(reference.columns) == list(data.COLUMNS) and len(reference) == 10
    assert data.load_manifest(tmp_path)["seed"] == 42


def test_rerun_is_byte_identical(tmp_path: Path, raw: pd.DataFrame) -> None:
    source = write_tgz(tmp_path / "c.tgz", raw)
    data.prepare(tmp_path / "a", PARAMS, source)
    data.prepare(tmp_path / "b", PARAMS, source)
    assert snapshot(tmp_path / "a" / "processed") == snapshot(tmp_path / "b" / "processed")


def test_invalid_input_writes_nothing(tmp_path: Path, raw: pd.DataFrame) -> None:
    broken = data.from_raw(raw)
    broken.loc[0, "Latitude"] = 0.0
    source = tmp_path / "broken.csv"
    broken.to_csv(source, index=False)
    with pytest.raises(DataValidationError):
        data.prepare(tmp_path / "fresh", PARAMS, source)
    assert not (tmp_path / "fresh").exists()

    data.prepare(tmp_path / "used", PARAMS, write_tgz(tmp_path / "c.tgz", raw))
    before = snapshot(tmp_path / "used" / "processed")
    with pytest.raises(DataValidationError):
        data.prepare(tmp_path / "used", PARAMS, source)
    assert snapshot(tmp_path / "used" / "processed") == before


def test_failure_while_writing_keeps_the_previous_set(
    tmp_path: Path, raw: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    data.prepare(tmp_path, PARAMS, write_tgz(tmp_path / "c.tgz", raw))
    before = snapshot(tmp_path / "processed")

    def disk_full(path: Path, payload: object) -> None:
        raise OSError(28, "No space left on device")

    # A full disk cannot be produced here, so the manifest write (the last one) is made to fail.
    monkeypatch.setattr(data, "atomic_write_json", disk_full)
    other = data.DataParams(test_size=0.5, seed=1, reference_size=5)
    with pytest.raises(OSError, match="No space left"):
        data.prepare(tmp_path, other, tmp_path / "c.tgz")
    assert snapshot(tmp_path / "processed") == before
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert leftovers == []


def test_loaders_without_data_say_what_to_run(tmp_path: Path) -> None:
    for load in (data.load_split, data.load_reference, data.load_manifest):
        with pytest.raises(data.DataNotFoundError, match="run `housing data`"):
            load(tmp_path)


def test_loaders_validate_what_they_read(tmp_path: Path, raw: pd.DataFrame) -> None:
    data.prepare(tmp_path, PARAMS, write_tgz(tmp_path / "c.tgz", raw))
    path = tmp_path / "processed" / "test.csv"
    frame = pd.read_csv(path)
    frame.loc[1, "HouseAge"] = -5
    frame.to_csv(path, index=False)
    with pytest.raises(DataValidationError, match=r"HouseAge: 1 row out of range.*line 3"):
        data.load_split(tmp_path)


# --- params ----------------------------------------------------------------------------------


def test_params_file_is_read_and_checked(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    path.write_text("data:\n  test_size: 0.25\n  seed: 7\n  reference_size: 100\ntrain: {}\n")
    assert data.load_params(path) == data.DataParams(test_size=0.25, seed=7, reference_size=100)
    path.write_text("data:\n  test_size: 1.5\n  seed: 7\n  reference_size: 100\n")
    with pytest.raises(data.ParamsError, match="data.test_size"):
        data.load_params(path)
    path.write_text("train: {}\n")
    with pytest.raises(data.ParamsError, match="no `data:` section"):
        data.load_params(path)
    with pytest.raises(data.ParamsError, match="not found"):
        data.load_params(tmp_path / "nope.yaml")


def test_the_projects_params_file_is_valid() -> None:
    root = Path(__file__).resolve().parents[2]
    params = data.load_params(root / "params.yaml")
    assert 0 < params.test_size < 1 and params.reference_size > 0


# --- CLI -------------------------------------------------------------------------------------


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project folder: settings point the data dir and params file into tmp_path."""
    (tmp_path / "params.yaml").write_text(
        "data:\n  test_size: 0.2\n  seed: 42\n  reference_size: 10\n"
    )
    monkeypatch.setenv("HOUSING_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("HOUSING_PARAMS_FILE", str(tmp_path / "params.yaml"))
    return tmp_path


def test_cli_json_summary(project: Path, raw: pd.DataFrame) -> None:
    source = write_tgz(project / "c.tgz", raw)
    result = CliRunner().invoke(app, ["data", "--source", str(source), "--json"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1
    summary = json.loads(lines[0])
    assert summary["rows"] == {"train": 42, "validation": 6, "test": 12, "reference": 10}
    assert summary["source"] == str(source)
    manifest = data.load_manifest(project / "data")
    assert summary["sha256"] == {name: f["sha256"] for name, f in manifest["files"].items()}


def test_cli_human_summary(project: Path, raw: pd.DataFrame) -> None:
    source = write_raw_csv(project / "raw.csv", raw, header=False)
    result = CliRunner().invoke(app, ["data", "--source", str(source)])
    assert result.exit_code == 0, result.output
    assert "train 42 rows, validation 6, test 12, reference 10" in result.stdout


def test_cli_invalid_data_exits_2_with_one_line_per_violation(
    project: Path, raw: pd.DataFrame
) -> None:
    frame = data.from_raw(raw)
    frame.loc[[1, 2, 3], "MedInc"] = 25.0
    frame = frame.drop(columns=["Population"])
    source = project / "x.csv"
    frame.to_csv(source, index=False)
    result = CliRunner().invoke(app, ["data", "--source", str(source)])
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        f"error: {source}: column MedInc: 3 rows out of range [0, 20] (first at line 3)",
        f"error: {source}: column Population: missing",
    ]
    assert "Traceback" not in result.output
    assert not (project / "data").exists()


def test_cli_unknown_layout_exits_2(project: Path) -> None:
    source = project / "x.csv"
    source.write_text("foo,bar\n1,2\n")
    result = CliRunner().invoke(app, ["data", "--source", str(source)])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {source}: unknown layout")
    assert len(result.stderr.splitlines()) == 1
    assert "Traceback" not in result.output


def test_cli_bad_params_exits_1(project: Path, raw: pd.DataFrame) -> None:
    (project / "params.yaml").write_text("data:\n  test_size: 0\n")
    source = write_tgz(project / "c.tgz", raw)
    result = CliRunner().invoke(app, ["data", "--source", str(source)])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ") and "data.test_size" in result.stderr
    assert "Traceback" not in result.output


def test_spec_ranges_cover_the_small_fixture(raw: pd.DataFrame) -> None:
    """Guards the fixture itself: if the spec tightens, the tests above must not pass vacuously."""
    frame = data.from_raw(raw)
    for feature in FEATURES:
        assert frame[feature.name].between(feature.min, feature.max).all(), feature.name
