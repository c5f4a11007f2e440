"""The data stage: load California Housing, validate it, split it, write it atomically.

Sources: scikit-learn's ``fetch_california_housing`` (it honours ``SCIKIT_LEARN_DATA`` and
downloads when online), or a file — the raw StatLib archive (``cal_housing.tgz``), the same raw
columns as CSV (with or without a header), or a CSV in scikit-learn's 8-feature layout plus
``MedHouseVal``. Everything is validated before the first byte is written; outputs are
deterministic for given params, so DVC sees identical hashes on a re-run.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TypeVar

import numpy as np
import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from housing.features import FEATURE_NAMES, TARGET, TARGET_DOLLARS
from housing.fileio import atomic_write, atomic_write_json
from housing.validation import (
    MISSING,
    DataValidationError,
    Violation,
    check_frame,
    check_numbers,
)

log = logging.getLogger(__name__)

COLUMNS: tuple[str, ...] = (*FEATURE_NAMES, TARGET.name)
SectionT = TypeVar("SectionT", bound=BaseModel)
"""Columns of every prepared file: the 8 features in spec order, then the target."""
RAW_COLUMNS: tuple[str, ...] = (
    "longitude",
    "latitude",
    "housing_median_age",
    "total_rooms",
    "total_bedrooms",
    "population",
    "households",
    "median_income",
    "median_house_value",
)
"""The StatLib file's columns, in file order (``cal_housing.data`` has no header)."""
RAW_MEMBER = "cal_housing.data"
SKLEARN_SOURCE = "sklearn.datasets.fetch_california_housing"

PROCESSED = "processed"
TRAIN_FILE = "train.csv"
TEST_FILE = "test.csv"
VALIDATION_FILE = "validation.csv"
REFERENCE_FILE = "reference.csv"
MANIFEST_FILE = "manifest.json"


class DataNotFoundError(FileNotFoundError):
    """No prepared data where it was looked for: `housing data` has not run yet."""


class DataSourceError(ValueError):
    """A source file cannot be read, or its layout is none of the known ones."""


class ParamsError(ValueError):
    """The ``data:`` section of the params file is missing or invalid."""


class DataParams(BaseModel):
    """The ``data:`` section of params.yaml (split and drift-reference settings)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    test_size: float = Field(gt=0, lt=1)
    validation_size: float = Field(0.125, gt=0, lt=1)
    """Fraction of the training split held out for the promotion gate (0.125 of 80%: 10%)."""
    seed: int = Field(ge=0)
    reference_size: int = Field(gt=0)


@dataclass(frozen=True)
class Loaded:
    """A frame in the prepared layout, where it came from, and its first row's line number."""

    frame: pd.DataFrame
    source: str
    first_line: int | None


def processed_dir(data_dir: Path) -> Path:
    """Where `housing data` writes and the loaders read."""
    return Path(data_dir) / PROCESSED


def load_section(path: Path, name: str, model: type[SectionT]) -> SectionT:
    """Read and validate one section of a params file (``data:``, ``train:``)."""
    path = Path(path)
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ParamsError(f"{path}: not found (run from the project root)") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ParamsError(f"{path}: unreadable: {exc}") from None
    section = document.get(name) if isinstance(document, dict) else None
    if not isinstance(section, dict):
        raise ParamsError(f"{path}: no `{name}:` section")
    try:
        return model.model_validate(section)
    except ValidationError as exc:
        problems = "; ".join(
            f"{name}.{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()
        )
        raise ParamsError(f"{path}: {problems}") from None


def load_params(path: Path) -> DataParams:
    """Read the ``data:`` section of a params file."""
    return load_section(path, "data", DataParams)


# --- reading prepared data -------------------------------------------------------------------


def _read_prepared(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise DataNotFoundError(
            f"no prepared data in {path.parent}: run `housing data` ({path.name} is missing)"
        )
    frame = pd.read_csv(path, float_precision="round_trip")
    check_frame(frame, require_target=True, source=str(path), first_line=2)
    return frame.loc[:, list(COLUMNS)].astype(float)


def load_split(data_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The prepared (train, test) frames, validated; columns are ``COLUMNS``. ``train`` holds
    the fitting rows only (the validation rows are in ``load_splits``)."""
    directory = processed_dir(data_dir)
    return _read_prepared(directory / TRAIN_FILE), _read_prepared(directory / TEST_FILE)


@dataclass(frozen=True)
class Splits:
    """The three prepared splits: models fit on ``train``, the gate decides on ``validation``,
    ``test`` is for reporting only."""

    train: pd.DataFrame
    validation: pd.DataFrame
    test: pd.DataFrame


def load_splits(data_dir: Path) -> Splits:
    """The prepared (train, validation, test) frames, validated."""
    directory = processed_dir(data_dir)
    train, test = load_split(data_dir)
    return Splits(train, _read_prepared(directory / VALIDATION_FILE), test)


def load_reference(data_dir: Path) -> pd.DataFrame:
    """The prepared drift reference (a deterministic sample of the train split)."""
    return _read_prepared(processed_dir(data_dir) / REFERENCE_FILE)


def load_manifest(data_dir: Path) -> dict[str, Any]:
    """The manifest written with the prepared files."""
    path = processed_dir(data_dir) / MANIFEST_FILE
    if not path.is_file():
        raise DataNotFoundError(f"no prepared data in {path.parent}: run `housing data`")
    return json.loads(path.read_text(encoding="utf-8"))


# --- reading sources -------------------------------------------------------------------------


def from_raw(raw: pd.DataFrame) -> pd.DataFrame:
    """Derive scikit-learn's 8 features and target from the raw StatLib columns, as it does."""
    households = raw["households"].to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):  # 0 households → inf, caught later
        derived = {
            "MedInc": raw["median_income"].to_numpy(dtype=float),
            "HouseAge": raw["housing_median_age"].to_numpy(dtype=float),
            "AveRooms": raw["total_rooms"].to_numpy(dtype=float) / households,
            "AveBedrms": raw["total_bedrooms"].to_numpy(dtype=float) / households,
            "Population": raw["population"].to_numpy(dtype=float),
            "AveOccup": raw["population"].to_numpy(dtype=float) / households,
            "Latitude": raw["latitude"].to_numpy(dtype=float),
            "Longitude": raw["longitude"].to_numpy(dtype=float),
            TARGET.name: raw["median_house_value"].to_numpy(dtype=float) / TARGET_DOLLARS,
        }
    return pd.DataFrame(derived, columns=list(COLUMNS))


def _raw_violations(raw: pd.DataFrame) -> list[Violation]:
    """Missing, non-numeric and NaN/inf raw columns, named as in the raw file."""
    violations = []
    for name in RAW_COLUMNS:
        if name not in raw.columns:
            violations.append(Violation(name, MISSING, len(raw), f"column {name}: missing"))
        else:
            violations.extend(check_numbers(raw[name], name)[1])
    return violations


def _raw_to_frame(raw: pd.DataFrame, source: str, first_line: int) -> pd.DataFrame:
    violations = _raw_violations(raw)
    if violations:
        raise DataValidationError(violations, source, first_line)
    return from_raw(raw)


def _read_csv(handle: IO[bytes] | Path, source: str, **options: Any) -> pd.DataFrame:
    """pandas' reader, with its errors turned into one line naming the file (and line)."""
    try:
        return pd.read_csv(handle, float_precision="round_trip", **options)
    except pd.errors.EmptyDataError:
        raise DataSourceError(f"{source}: empty file, no columns") from None
    except pd.errors.ParserError as exc:
        # pandas names the line itself ("Expected 9 fields in line 7, saw 10").
        raise DataSourceError(f"{source}: cannot parse as CSV: {exc}") from None
    except UnicodeDecodeError as exc:
        raise DataSourceError(
            f"{source}: not a UTF-8 text file (byte {exc.start}): expected CSV or .tgz"
        ) from None


def _read_archive(path: Path, source: str) -> Loaded:
    try:
        with tarfile.open(path, mode="r:*") as archive:
            member = next(
                (m for m in archive.getmembers() if m.isfile() and m.name.endswith(RAW_MEMBER)),
                None,
            )
            if member is None:
                raise DataSourceError(f"{source}: archive holds no {RAW_MEMBER}")
            handle = archive.extractfile(member)  # read in memory; nothing is extracted
            if handle is None:  # pragma: no cover - isfile() members always have data
                raise DataSourceError(f"{source}: cannot read {member.name}")
            raw = _read_csv(handle, f"{source}:{member.name}", header=None, names=RAW_COLUMNS)
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise DataSourceError(f"{source}: unreadable archive: {exc}") from None
    return Loaded(_raw_to_frame(raw, f"{source}:{member.name}", 1), source, 1)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _read_text(path: Path, source: str) -> Loaded:
    first = _read_csv(path, source, header=None, nrows=1, dtype=str, keep_default_na=False)
    fields = [str(value).strip() for value in first.iloc[0]] if len(first) else []
    if set(fields) & set(COLUMNS):
        frame = _read_csv(path, source)
        frame.columns = [str(c).strip() for c in frame.columns]
        return Loaded(frame, source, 2)
    if set(fields) & set(RAW_COLUMNS):
        raw = _read_csv(path, source)
        raw.columns = [str(c).strip() for c in raw.columns]
        return Loaded(_raw_to_frame(raw, source, 2), source, 2)
    if len(fields) == len(RAW_COLUMNS) and all(_is_number(f) for f in fields):
        raw = _read_csv(path, source, header=None, names=RAW_COLUMNS)
        return Loaded(_raw_to_frame(raw, source, 1), source, 1)
    shown = ", ".join(fields[:10]) or "(nothing)"
    raise DataSourceError(
        f"{source}: unknown layout (line 1: {shown}); expected a header with "
        f"{', '.join(COLUMNS)}, or the raw StatLib columns {', '.join(RAW_COLUMNS)} "
        "with or without a header"
    )


def read_source(path: Path) -> Loaded:
    """A source file in any known layout, as a frame in the prepared layout (not yet validated)."""
    path = Path(path)
    source = str(path)
    if not path.exists():
        raise DataSourceError(f"{source}: no such file")
    if not path.is_file():
        raise DataSourceError(f"{source}: not a file")
    try:
        is_archive = tarfile.is_tarfile(path)
    except OSError as exc:
        raise DataSourceError(f"{source}: unreadable: {exc}") from None
    return _read_archive(path, source) if is_archive else _read_text(path, source)


def fetch_sklearn() -> Loaded:
    """scikit-learn's copy (offline from ``SCIKIT_LEARN_DATA`` when it holds the cache)."""
    from sklearn.datasets import fetch_california_housing

    try:
        bunch = fetch_california_housing(as_frame=True)
    except OSError as exc:  # URLError is an OSError: offline without a cached copy
        raise DataSourceError(
            f"{SKLEARN_SOURCE}: cannot load ({exc}); set SCIKIT_LEARN_DATA to a folder holding "
            "cal_housing_py3.pkz, or pass --source"
        ) from None
    return Loaded(bunch.frame, SKLEARN_SOURCE, None)


def load_source(source: Path | None = None) -> Loaded:
    """Load and validate a source; raise ``DataValidationError`` naming every broken rule."""
    loaded = read_source(source) if source is not None else fetch_sklearn()
    check_frame(
        loaded.frame, require_target=True, source=loaded.source, first_line=loaded.first_line
    )
    frame = loaded.frame.loc[:, list(COLUMNS)].astype(float).reset_index(drop=True)
    return Loaded(frame, loaded.source, loaded.first_line)


# --- splitting and writing -------------------------------------------------------------------


def split_frame(
    frame: pd.DataFrame, test_size: float, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A shuffled, seeded train/test split (scikit-learn's ``train_test_split``)."""
    from sklearn.model_selection import train_test_split

    train, test = train_test_split(frame, test_size=test_size, random_state=seed, shuffle=True)
    return train.reset_index(drop=True), test.reset_index(drop=True)


def reference_sample(train: pd.DataFrame, size: int, seed: int) -> pd.DataFrame:
    """A seeded sample of the train split (all of it when smaller) for drift detection."""
    return train.sample(n=min(size, len(train)), random_state=seed).reset_index(drop=True)


def _csv_bytes(frame: pd.DataFrame) -> bytes:
    # pandas writes floats with repr(), so values round-trip exactly.
    return frame.to_csv(index=False, lineterminator="\n").encode("utf-8")


def _sha256(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _publish(out: Path, payloads: dict[str, bytes], manifest: dict[str, Any]) -> None:
    """Write the files into a staging folder beside ``out``, then swap it in by renames.

    Each file is written atomically (``housing.fileio``); the folder swap keeps train, test,
    reference and manifest from one run together, so a failure half-way never leaves a mixed
    set. Readers racing the two renames see no folder (``DataNotFoundError``), never a mix.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".new"))
    retired = staging.with_suffix(".old")
    try:
        staging.chmod(0o755)  # mkdtemp makes it 0700; the folder is ordinary project output
        for name, payload in payloads.items():
            atomic_write(staging / name, lambda handle, data=payload: handle.write(data))
        atomic_write_json(staging / MANIFEST_FILE, manifest)
        if out.exists():
            os.replace(out, retired)
        try:
            os.replace(staging, out)
        except BaseException:
            if retired.exists():
                os.replace(retired, out)
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(retired, ignore_errors=True)


def prepare(data_dir: Path, params: DataParams, source: Path | None = None) -> dict[str, Any]:
    """Load, validate, split and write the processed files; return the manifest.

    Everything is computed and validated before the first write, so invalid input leaves the
    previous outputs untouched; the new set then replaces the old one as a whole.
    """
    loaded = load_source(source)
    train, test = split_frame(loaded.frame, params.test_size, params.seed)
    # The validation rows come out of the training split with the same seeded splitter, so the
    # gate's rows are fixed by params.yaml like the test rows (a benchmark redraws them alike).
    train, validation = split_frame(train, params.validation_size, params.seed)
    reference = reference_sample(train, params.reference_size, params.seed)
    frames = {
        TRAIN_FILE: train,
        VALIDATION_FILE: validation,
        TEST_FILE: test,
        REFERENCE_FILE: reference,
    }
    payloads = {name: _csv_bytes(frame) for name, frame in frames.items()}
    manifest: dict[str, Any] = {
        "source": loaded.source,
        "source_sha256": _file_sha256(Path(source)) if source is not None else None,
        "seed": params.seed,
        "test_size": params.test_size,
        "validation_size": params.validation_size,
        "reference_size": params.reference_size,
        "columns": list(COLUMNS),
        "rows": {name.removesuffix(".csv"): len(frame) for name, frame in frames.items()},
        "files": {
            name: {"sha256": _sha256(payload), "bytes": len(payload), "rows": len(frames[name])}
            for name, payload in payloads.items()
        },
    }
    _publish(processed_dir(data_dir), payloads, manifest)
    log.info("wrote %s: %s", processed_dir(data_dir), manifest["rows"])
    return manifest
