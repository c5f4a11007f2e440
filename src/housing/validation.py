"""Check a DataFrame against the feature spec before anything trusts it.

Pure, vectorised functions over whole columns: every rule reports how many rows break it, so a
user fixing a file sees the size of the problem at once. The ranges come from
``housing.features``; nothing here restates one.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pandas.api.types import is_bool_dtype, is_numeric_dtype

from housing.features import FEATURES, TARGET, Feature

MISSING = "missing"
TYPE = "type"
FINITE = "finite"
RANGE = "range"
EMPTY = "empty"
RULES: tuple[str, ...] = (MISSING, TYPE, FINITE, RANGE, EMPTY)
"""Rule names, as reported in ``Violation.rule`` (and in metrics labels elsewhere)."""


@dataclass(frozen=True)
class Violation:
    """One rule broken by one column: which column, which rule, how many rows."""

    column: str
    rule: str
    rows: int
    message: str
    first_row: int | None = None
    """Position (0-based, in frame order) of the first breaking row, when rows are involved."""


class DataValidationError(ValueError):
    """Raised when a frame breaks the spec; carries every violation, not just the first."""

    def __init__(
        self,
        violations: Sequence[Violation],
        source: str | None = None,
        first_line: int | None = None,
    ) -> None:
        self.violations = list(violations)
        self.source = source
        self.first_line = first_line
        """File line number of the frame's first row, when the frame came from a text file."""
        super().__init__("; ".join(self.lines()))

    def lines(self) -> list[str]:
        """One human line per violation, prefixed with the source and pointing at a line."""
        prefix = f"{self.source}: " if self.source else ""
        lines = []
        for v in self.violations:
            where = ""
            if self.first_line is not None and v.first_row is not None:
                where = f" (first at line {self.first_line + v.first_row})"
            lines.append(f"{prefix}{v.message}{where}")
        return lines


def _bound(value: float) -> str:
    return f"{value:g}"


def _rows(count: int) -> str:
    return f"{count} row" if count == 1 else f"{count} rows"


def _first(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def check_numbers(values: pd.Series, name: str) -> tuple[np.ndarray, list[Violation]]:
    """The column as floats (NaN where unusable) and its type and NaN/inf violations."""
    if is_bool_dtype(values.dtype):
        count = len(values)
        violation = Violation(name, TYPE, count, f"column {name}: {_rows(count)} not numeric", 0)
        return np.full(count, np.nan), [violation] if count else []
    if is_numeric_dtype(values.dtype):
        numbers = values.to_numpy(dtype=float, na_value=np.nan)
        not_numeric = np.zeros(len(values), dtype=bool)
    else:
        numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        not_numeric = np.isnan(numbers) & values.notna().to_numpy()
    violations = []
    if not_numeric.any():
        count = int(not_numeric.sum())
        message = f"column {name}: {_rows(count)} not numeric"
        violations.append(Violation(name, TYPE, count, message, _first(not_numeric)))
    not_finite = ~np.isfinite(numbers) & ~not_numeric
    if not_finite.any():
        count = int(not_finite.sum())
        message = f"column {name}: {_rows(count)} missing or infinite (NaN/inf)"
        violations.append(Violation(name, FINITE, count, message, _first(not_finite)))
    return numbers, violations


def check_column(values: pd.Series, feature: Feature) -> list[Violation]:
    """Violations of the type, NaN/inf and range rules (inclusive bounds) for one column."""
    numbers, violations = check_numbers(values, feature.name)
    with np.errstate(invalid="ignore"):
        outside = np.isfinite(numbers) & ((numbers < feature.min) | (numbers > feature.max))
    if outside.any():
        count = int(outside.sum())
        message = (
            f"column {feature.name}: {_rows(count)} out of range "
            f"[{_bound(feature.min)}, {_bound(feature.max)}]"
        )
        violations.append(Violation(feature.name, RANGE, count, message, _first(outside)))
    return violations


def validate_frame(df: pd.DataFrame, *, require_target: bool) -> list[Violation]:
    """Every violation of the spec in ``df`` (empty list = valid); extra columns are ignored."""
    spec: Iterable[Feature] = (*FEATURES, TARGET) if require_target else FEATURES
    violations: list[Violation] = []
    if len(df) == 0:
        violations.append(Violation("*", EMPTY, 0, "no rows"))
    for feature in spec:
        if feature.name not in df.columns:
            message = f"column {feature.name}: missing"
            violations.append(Violation(feature.name, MISSING, len(df), message))
            continue
        column = df[feature.name]
        if isinstance(column, pd.DataFrame):  # duplicated header
            message = f"column {feature.name}: appears {column.shape[1]} times"
            violations.append(Violation(feature.name, TYPE, len(df), message))
            continue
        violations.extend(check_column(column, feature))
    return violations


def check_frame(
    df: pd.DataFrame,
    *,
    require_target: bool,
    source: str | None = None,
    first_line: int | None = None,
) -> None:
    """Raise ``DataValidationError`` listing every violation, if there is any."""
    violations = validate_frame(df, require_target=require_target)
    if violations:
        raise DataValidationError(violations, source, first_line)
