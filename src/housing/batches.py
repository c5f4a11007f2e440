"""Labelled data batches: uploaded CSVs of houses with their true values, for retraining.

A batch is checked against the feature spec (``housing.validation``'s rules, per row) and the
API's business rules, and is accepted whole or not at all: a rejection lists every broken rule
with its row, column and rule name. An accepted batch is stored once, immutably, as
``data/batches/<UTC time>-<sha256[:12]>.csv`` in the prepared layout, and listed with its content
hash in ``data/batches/index.json``. Batches never touch ``data/processed``: the held-out test
split stays fixed, and a row copied from it is refused.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from housing.data import COLUMNS, processed_dir
from housing.features import FEATURES, TARGET, Feature
from housing.fileio import atomic_write, atomic_write_json
from housing.validation import EMPTY, FINITE, MISSING, RANGE, TYPE, check_frame, validate_frame

log = logging.getLogger(__name__)

BATCHES = "batches"
INDEX_FILE = "index.json"
LOCK_FILE = ".batches.lock"
"""Beside the batches folder, not in it: DVC snapshots the folder and nothing else."""
UNKNOWN = "unknown_column"
PARSE = "parse"
HELD_OUT = "held_out"
MAX_LISTED_ERRORS = 100
"""A rejection lists this many row errors (and always says how many there are in all)."""
MAX_COLUMNS = 100
"""A header with more fields is refused before any frame is built (a batch has 9 columns)."""


class BatchStoreError(RuntimeError):
    """The batch store is inconsistent (a file changed or vanished, an unknown batch id)."""


@dataclass(frozen=True)
class RowError:
    """One broken rule: the data row (1-based) and its line in the file (None for the whole
    file or a column), the column and the rule."""

    row: int | None
    line: int | None
    column: str
    rule: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class BatchRejectedError(ValueError):
    """The upload was refused as a whole; ``errors`` says why, row by row."""

    def __init__(self, source: str, errors: Sequence[RowError], rows: int) -> None:
        self.source = source
        self.errors = list(errors)
        self.rows = rows
        self.bad_rows = len({e.row for e in self.errors if e.row is not None})
        super().__init__(self.summary())

    def summary(self) -> str:
        where = f"{self.bad_rows} of {self.rows} rows" if self.bad_rows else "the file"
        return (
            f"{self.source}: batch rejected, nothing stored: {len(self.errors)} problem(s) "
            f"in {where}"
        )

    def lines(self, limit: int = MAX_LISTED_ERRORS) -> list[str]:
        """The summary, then one line per error (``line N``), at most ``limit`` of them."""
        shown = [
            f"{self.source}:{'' if e.line is None else f' line {e.line}:'} {e.message} ({e.rule})"
            for e in self.errors[:limit]
        ]
        more = len(self.errors) - len(shown)
        return [self.summary(), *shown] + ([f"... and {more} more"] if more else [])


@dataclass(frozen=True)
class Batch:
    """One stored batch, as listed in the index."""

    id: str
    file: str
    sha256: str
    """Of the stored file (the canonical CSV), which is what retraining reads."""
    rows: int
    bytes: int
    created_at: str
    source: str
    upload_sha256: str
    """Of the bytes as uploaded (before normalising to the prepared layout)."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def batches_dir(data_dir: Path) -> Path:
    """Where batches are stored (beside ``data/processed``, never inside it)."""
    return Path(data_dir) / BATCHES


# --- checking ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Upload:
    """An uploaded CSV as stripped strings (no type guessing: the checks decide), and the file
    line of each data row."""

    source: str
    frame: pd.DataFrame
    lines: list[int]

    def error(self, position: int | None, column: str, rule: str, message: str) -> RowError:
        """A RowError at data row ``position`` (0-based; None for the whole file)."""
        if position is None:
            return RowError(None, None, column, rule, message)
        return RowError(position + 1, self.lines[position], column, rule, message)


def _file_error(source: str, rule: str, message: str) -> BatchRejectedError:
    return BatchRejectedError(source, [RowError(None, None, "*", rule, message)], 0)


def read_csv(payload: bytes, source: str) -> Upload:
    """Parse strictly: every line must have as many fields as the header (pandas would quietly
    take a surplus first field for an index, or drop it)."""
    try:
        text = payload.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _file_error(source, PARSE, f"not UTF-8 text (byte {exc.start}): expected CSV")
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    rows: list[list[str]] = []
    lines: list[int] = []
    try:
        for fields in reader:
            if fields:  # blank lines carry nothing
                rows.append([field.strip() for field in fields])
                lines.append(reader.line_num)
    except csv.Error as exc:
        raise _file_error(source, PARSE, f"line {reader.line_num}: not valid CSV: {exc}")
    if not rows:
        raise _file_error(source, EMPTY, "empty file")
    header, rows, lines = rows[0], rows[1:], lines[1:]
    if len(header) > MAX_COLUMNS:
        expected = f"a batch has the {len(COLUMNS)} columns {', '.join(COLUMNS)}"
        raise _file_error(source, PARSE, f"{len(header)} columns in the header: {expected}")
    ragged = [
        RowError(i + 1, lines[i], "*", PARSE, f"{len(fields)} fields, the header has {len(header)}")
        for i, fields in enumerate(rows)
        if len(fields) != len(header)
    ]
    if ragged:
        raise BatchRejectedError(source, ragged, len(rows))
    return Upload(source, pd.DataFrame(rows, columns=header, dtype=str), lines)


NAN_SPELLINGS = ("nan", "+nan", "-nan")


def _number(text: str) -> float:
    """Python's ``float`` (correctly rounded, unlike pandas' fast parser), NaN if not a number."""
    try:
        return float(text)
    except ValueError:
        return float("nan")


def _check_cells(upload: Upload, feature: Feature) -> tuple[np.ndarray, list[RowError]]:
    """The column as floats (NaN where unusable) and one error per bad cell.

    The rules of ``housing.validation.check_column`` (type, finite, inclusive range), applied
    per row: that module counts rows per rule, an upload must name them.
    """
    name = feature.name
    values = upload.frame[name]
    numbers = np.array([_number(text) for text in values], dtype=float)
    is_number = ~np.isnan(numbers) | values.str.lower().isin(NAN_SPELLINGS).to_numpy()
    finite = np.isfinite(numbers)
    with np.errstate(invalid="ignore"):
        outside = finite & ((numbers < feature.min) | (numbers > feature.max))
    bounds = f"[{feature.min:g}, {feature.max:g}] {feature.unit}"
    errors = []
    for position in np.flatnonzero(~finite | outside):
        text = values.iat[position]
        if outside[position]:
            rule, message = RANGE, f"{name} {text} is outside {bounds}"
        elif not is_number[position] and text != "":
            rule, message = TYPE, f"{name} {text!r} is not a number"
        else:
            rule, message = FINITE, f"{name} is {'empty' if text == '' else text}: need a number"
        errors.append(upload.error(int(position), name, rule, message))
    return np.where(finite & ~outside, numbers, np.nan), errors


def _rule_errors(upload: Upload, frame: pd.DataFrame, rows: np.ndarray) -> list[RowError]:
    """The API's cross-field business rules, on ``rows`` (whose values passed their checks)."""
    from housing.service.rules import BY_RULE, house_problems

    houses = frame.loc[rows, [f.name for f in FEATURES]].to_dict("records")
    return [
        upload.error(int(position), column, rule, BY_RULE[rule].message(house))
        for position, house in zip(np.flatnonzero(rows), houses)
        for column, rule in house_problems(house)
    ]


def _held_out_errors(
    upload: Upload, frame: pd.DataFrame, rows: np.ndarray, test: pd.DataFrame
) -> list[RowError]:
    """Those of ``rows`` identical to a held-out test row: training on them would grade the
    model on houses it has seen."""
    copied = frame.merge(
        test.loc[:, list(COLUMNS)].drop_duplicates(), on=list(COLUMNS), how="left", indicator=True
    )
    message = "a copy of a held-out test house (the test split must stay unseen)"
    return [
        upload.error(int(position), "*", HELD_OUT, message)
        for position in np.flatnonzero((copied["_merge"] == "both").to_numpy() & rows)
    ]


def valid_rows(frame: pd.DataFrame) -> np.ndarray:
    """Which rows of a numeric frame (``COLUMNS``) pass every cell rule and business rule."""
    from housing.service.rules import house_problems

    ok = np.ones(len(frame), dtype=bool)
    for feature in (*FEATURES, TARGET):
        values = pd.to_numeric(frame[feature.name], errors="coerce").to_numpy(dtype=float)
        with np.errstate(invalid="ignore"):
            ok &= np.isfinite(values) & (values >= feature.min) & (values <= feature.max)
    houses = frame.loc[ok, [f.name for f in FEATURES]].to_dict("records")
    ok[np.flatnonzero(ok)] = [not house_problems(house) for house in houses]
    return ok


def _column_errors(upload: Upload) -> list[RowError]:
    columns = list(upload.frame.columns)
    errors = [
        upload.error(None, name, MISSING, f"column {name}: missing")
        for name in COLUMNS
        if name not in columns
    ]
    errors += [
        upload.error(None, name, UNKNOWN, f"column {name}: not one of {', '.join(COLUMNS)}")
        for name in columns
        if name not in COLUMNS
    ]
    duplicated = sorted(name for name, count in Counter(columns).items() if count > 1)
    errors += [upload.error(None, name, TYPE, f"column {name}: repeated") for name in duplicated]
    if len(upload.frame) == 0:
        errors.append(upload.error(None, "*", EMPTY, "no rows after the header"))
    return errors


def check_batch(upload: Upload, test: pd.DataFrame | None = None) -> pd.DataFrame:
    """The batch in the prepared layout (floats, ``COLUMNS``), or ``BatchRejectedError`` listing
    every problem: each bad cell, then the business rules and the held-out check on the rows
    whose cells are all fine (a row with a bad cell gets no cascade of derived errors)."""
    errors = _column_errors(upload)
    if any(e.rule == TYPE for e in errors):  # repeated names: columns are ambiguous
        raise BatchRejectedError(upload.source, errors, len(upload.frame))
    numbers: dict[str, np.ndarray] = {}
    for feature in (*FEATURES, TARGET):
        if feature.name in upload.frame.columns:
            numbers[feature.name], found = _check_cells(upload, feature)
            errors += found
    if not any(e.rule == MISSING for e in errors):
        frame = pd.DataFrame(numbers, columns=list(COLUMNS))
        clean = frame.notna().all(axis=1).to_numpy()
        errors += _rule_errors(upload, frame, clean)
        if test is not None:
            errors += _held_out_errors(upload, frame, clean, test)
        if not errors:
            # housing.validation stays the gate: anything it finds that the row checks missed
            # rejects the batch too.
            errors += [
                upload.error(v.first_row, v.column, v.rule, v.message)
                for v in validate_frame(frame, require_target=True)
            ]
    if errors:
        raise BatchRejectedError(upload.source, _by_row(errors), len(upload.frame))
    return frame


def _by_row(errors: list[RowError]) -> list[RowError]:
    """File-level errors first, then by row and column order."""
    order = {name: i for i, name in enumerate(COLUMNS)}
    return sorted(errors, key=lambda e: (e.row or 0, order.get(e.column, len(order))))


# --- storing and reading -------------------------------------------------------------------


def _sha256(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()


def canonical_csv(frame: pd.DataFrame) -> bytes:
    """The stored form: the prepared layout, floats written to round-trip exactly."""
    return frame.loc[:, list(COLUMNS)].to_csv(index=False, lineterminator="\n").encode("utf-8")


def read_index(data_dir: Path) -> list[Batch]:
    """Every stored batch, oldest first (empty before the first upload)."""
    path = batches_dir(data_dir) / INDEX_FILE
    if not path.is_file():
        return []
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))["batches"]
        return [Batch(**entry) for entry in entries]
    except (ValueError, KeyError, TypeError) as exc:
        raise BatchStoreError(f"{path}: unreadable batch index: {exc}") from None


def _held_out(data_dir: Path) -> pd.DataFrame | None:
    """The test split, when ``housing data`` has written one (read without the loader's
    validation: only equality matters here)."""
    from housing.data import TEST_FILE

    path = processed_dir(data_dir) / TEST_FILE
    return pd.read_csv(path, float_precision="round_trip") if path.is_file() else None


def store_batch(
    data_dir: Path, payload: bytes, source: str, *, now: datetime | None = None
) -> tuple[Batch, bool]:
    """Check an uploaded CSV and store it; returns the batch and whether it is new.

    Uploading the same content twice stores it once (the second call returns the first batch),
    so a retried upload cannot double a batch's weight in training.
    """
    from filelock import FileLock

    frame = check_batch(read_csv(payload, source), _held_out(data_dir))
    stored = canonical_csv(frame)
    digest = _sha256(stored)
    folder = batches_dir(data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    with FileLock(Path(data_dir) / LOCK_FILE, timeout=60):
        index = read_index(data_dir)
        for batch in index:
            if batch.sha256 == digest:
                return batch, False
        created = (now or datetime.now(UTC)).astimezone(UTC)
        batch_id = f"{created:%Y%m%dT%H%M%SZ}-{digest[:12]}"
        batch = Batch(
            id=batch_id,
            file=f"{batch_id}.csv",
            sha256=digest,
            rows=len(frame),
            bytes=len(stored),
            created_at=created.isoformat(timespec="seconds"),
            source=source,
            upload_sha256=_sha256(payload),
        )
        # The file first, then the index: a crash in between leaves an unlisted file, which
        # nothing reads, never a listed batch without its file.
        atomic_write(folder / batch.file, lambda handle: handle.write(stored))
        entries = [b.as_dict() for b in (*index, batch)]
        atomic_write_json(folder / INDEX_FILE, {"batches": entries})
    log.info("stored batch %s (%d rows) from %s", batch.id, batch.rows, source)
    return batch, True


def select(data_dir: Path, ids: Sequence[str] | None = None) -> list[Batch]:
    """The listed batches (all when ``ids`` is None); unknown ids raise ``BatchStoreError``."""
    index = read_index(data_dir)
    if ids is None:
        return index
    known = {batch.id: batch for batch in index}
    unknown = [batch_id for batch_id in ids if batch_id not in known]
    if unknown:
        raise BatchStoreError(f"unknown batch id(s): {', '.join(unknown)}")
    return [known[batch_id] for batch_id in dict.fromkeys(ids)]


def load_batches(data_dir: Path, batches: Sequence[Batch]) -> pd.DataFrame:
    """The batches' rows (``COLUMNS``), after checking each file still has its listed hash."""
    folder = batches_dir(data_dir)
    frames = [pd.DataFrame(columns=list(COLUMNS), dtype=float)]
    for batch in batches:
        path = folder / batch.file
        try:
            payload = path.read_bytes()
        except OSError as exc:
            raise BatchStoreError(f"batch {batch.id}: cannot read {path}: {exc}") from None
        if _sha256(payload) != batch.sha256:
            raise BatchStoreError(
                f"batch {batch.id}: {path} changed since it was stored "
                f"(sha256 {_sha256(payload)[:12]}, index says {batch.sha256[:12]})"
            )
        frame = pd.read_csv(io.BytesIO(payload), float_precision="round_trip")
        check_frame(frame, require_target=True, source=str(path), first_line=2)
        frames.append(frame.loc[:, list(COLUMNS)].astype(float))
    return pd.concat(frames, ignore_index=True)


# --- DVC -----------------------------------------------------------------------------------


class DvcError(RuntimeError):
    """`dvc add` failed on the batches folder (the message is DVC's own)."""


def dvc_root(path: Path) -> Path | None:
    """The DVC repository holding ``path`` (the nearest folder with a ``.dvc`` folder)."""
    for folder in (Path(path).resolve(), *Path(path).resolve().parents):
        if (folder / ".dvc").is_dir():
            return folder
    return None


def in_git(root: Path) -> bool:
    """Whether a git work tree holds ``root`` (a ``.git`` folder, or file for a worktree, in it
    or above it: where DVC looks)."""
    return any((folder / ".git").exists() for folder in (root, *root.parents))


def _dvc(root: Path, args: list[str], timeout: float) -> None:
    """Run `dvc ARGS` in ``root`` as a child process (its in-process API prints git hints on our
    stdout); a failure raises ``DvcError`` with DVC's ``ERROR:`` lines, not just an exit code."""
    import subprocess  # nosec B404
    import sys

    result = subprocess.run(  # nosec B603
        [sys.executable, "-m", "dvc", *args],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        lines = (result.stderr or result.stdout).strip().splitlines()
        errors = [line for line in lines if line.startswith("ERROR")] or lines[-1:]
        reason = " ".join(errors) if errors else f"exit code {result.returncode}, no message"
        raise DvcError(f"dvc {args[0]} {args[-1]} failed: {reason}")


def snapshot(data_dir: Path, timeout: float = 300.0) -> dict[str, Any] | None:
    """``dvc add data/batches``: cache the batch set and pin it in ``data/batches.dvc``.

    Returns the snapshot's DVC hash (the ``.dir`` md5 that `dvc checkout` restores) and whether
    git tracks the pin file (``scm``), or None when the data folder is not inside a DVC
    repository (a test folder). A DVC repository without git around it (a source archive, an
    export) is switched to DVC without an SCM first (``core.no_scm`` in ``.dvc/config.local``,
    which git ignores): DVC refuses to add anything there otherwise.
    """
    import yaml

    folder = batches_dir(data_dir)
    root = dvc_root(Path(data_dir))
    if root is None or not folder.is_dir():
        return None
    git = in_git(root)
    if not git:
        _dvc(root, ["config", "--local", "core.no_scm", "true"], timeout)
    # Not --quiet: DVC then prints no error either.
    _dvc(root, ["add", str(folder.resolve())], timeout)
    pinned = yaml.safe_load(folder.with_name(f"{folder.name}.dvc").read_text(encoding="utf-8"))
    (out,) = pinned["outs"]
    return {
        "md5": out["md5"],
        "files": out.get("nfiles"),
        "dvc_file": f"{folder}.dvc",
        "scm": "git" if git else "none",
    }
