"""The promotion gate's rules: a candidate replaces the champion only on validation evidence.

Both models predict the same validation rows (never the test split, which only reports).
A candidate is promoted when every rule passes:

- ``validation``: a paired bootstrap of the per-row squared-error differences (champion minus
  candidate) puts the lower confidence bound of the mean improvement above 0, so an
  improvement that resampling noise could explain is not enough;
- ``region``: on no region of the state (``housing.geo.REGIONS``) is its RMSE worse than the
  champion's by more than ``region_margin`` (relative), so labels poisoned in one place cannot
  buy an average gain elsewhere;
- ``quintile``: likewise on each MedInc quintile of the validation rows;
- ``cv``: its cross-validated RMSE is not worse than the champion's by more than ``cv_margin``.

Pure functions on arrays: ``housing.train`` feeds them, ``housing.registry`` acts on the verdict.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from housing.geo import REGIONS, regions_of

RULES: tuple[str, ...] = ("validation", "region", "quintile", "cv")
QUINTILES = 5
CHUNK = 250
"""Bootstrap resamples drawn at a time (bounds memory: CHUNK x rows indices)."""


class GateParams(BaseModel):
    """The ``train.gate:`` section of params.yaml."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    confidence: float = Field(0.95, gt=0.5, lt=1)
    """One-sided level of the bootstrap's lower bound on the improvement."""
    resamples: int = Field(2000, ge=100)
    seed: int = Field(0, ge=0)
    region_margin: float = Field(0.05, ge=0)
    """A region's RMSE may exceed the champion's by this fraction (0.05 = 5 %) at most."""
    quintile_margin: float = Field(0.05, ge=0)
    cv_margin: float = Field(0.10, ge=0)
    min_group_rows: int = Field(30, ge=1)
    """Regions or quintiles with fewer validation rows are not judged (too noisy)."""


@dataclass(frozen=True)
class Scored:
    """The validation rows and both models' predictions of them."""

    actual: np.ndarray
    candidate: np.ndarray
    champion: np.ndarray
    latitude: np.ndarray
    longitude: np.ndarray
    income: np.ndarray


@dataclass(frozen=True)
class Verdict:
    """Every rule's outcome; ``refused_by`` lists the rules that failed, in ``RULES`` order."""

    refused_by: tuple[str, ...]
    reasons: dict[str, str]
    checks: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return not self.refused_by

    @property
    def reason(self) -> str:
        """One line: the failed rules' words, or the evidence that passed."""
        if self.refused_by:
            return "refused by " + "; ".join(f"{r}: {self.reasons[r]}" for r in self.refused_by)
        return "passes the gate: " + self.reasons["validation"]


def _rmse(actual: np.ndarray, predicted: np.ndarray) -> float:
    return float(np.sqrt(np.mean((actual - predicted) ** 2)))


def paired_bootstrap(
    differences: np.ndarray, confidence: float, resamples: int, seed: int
) -> tuple[float, float]:
    """Mean of ``differences`` and the one-sided lower ``confidence`` bound of that mean, from
    ``resamples`` seeded bootstrap resamples of the rows (the pairs stay together)."""
    values = np.asarray(differences, dtype=float)
    rng = np.random.default_rng(seed)
    means = np.empty(resamples)
    for start in range(0, resamples, CHUNK):
        size = min(CHUNK, resamples - start)
        rows = rng.integers(0, len(values), size=(size, len(values)))
        means[start : start + size] = values[rows].mean(axis=1)
    return float(values.mean()), float(np.quantile(means, 1 - confidence))


def validation_rule(scored: Scored, params: GateParams) -> tuple[bool, str, dict[str, Any]]:
    """The paired bootstrap on squared errors (positive = the candidate is better)."""
    gain = (scored.actual - scored.champion) ** 2 - (scored.actual - scored.candidate) ** 2
    mean, lower = paired_bootstrap(gain, params.confidence, params.resamples, params.seed)
    candidate, champion = _rmse(scored.actual, scored.candidate), _rmse(
        scored.actual, scored.champion
    )
    check = {
        "candidate_rmse": candidate,
        "champion_rmse": champion,
        "mse_gain": mean,
        "mse_gain_lower": lower,
        "confidence": params.confidence,
        "rows": len(gain),
    }
    words = (
        f"validation RMSE {candidate:.4f} vs champion {champion:.4f}; MSE gain {mean:.5f}, "
        f"{params.confidence:.0%} lower bound {lower:.5f}"
    )
    return lower > 0, words, check


def _group_rule(
    scored: Scored, labels: np.ndarray, names: tuple[str, ...], margin: float, minimum: int
) -> tuple[bool, str, dict[str, Any]]:
    """RMSE per group, candidate vs champion; fails on any group worse beyond ``margin``."""
    check: dict[str, Any] = {}
    worse: list[str] = []
    for name in names:
        rows = labels == name
        if rows.sum() < minimum:
            continue
        candidate = _rmse(scored.actual[rows], scored.candidate[rows])
        champion = _rmse(scored.actual[rows], scored.champion[rows])
        check[name] = {
            "candidate_rmse": candidate,
            "champion_rmse": champion,
            "rows": int(rows.sum()),
        }
        if candidate > champion * (1 + margin):
            worse.append(f"{name} RMSE {candidate:.4f} > champion {champion:.4f} + {margin:.0%}")
    words = ", ".join(worse) or f"no group worse than the champion by more than {margin:.0%}"
    return not worse, words, check


def income_quintiles(income: np.ndarray) -> np.ndarray:
    """Each row's MedInc quintile among the validation rows (``q1`` lowest ... ``q5``)."""
    edges = np.quantile(income, np.linspace(0, 1, QUINTILES + 1)[1:-1])
    return np.array([f"q{i + 1}" for i in np.searchsorted(edges, income, side="right")])


def cv_rule(
    candidate_cv: float, champion_cv: float | None, margin: float
) -> tuple[bool, str, dict[str, Any]]:
    """The candidate's CV RMSE against the champion's (not judged when the champion has none)."""
    if champion_cv is None or not np.isfinite(champion_cv):
        return True, "the champion has no CV RMSE: not judged", {"candidate_cv_rmse": candidate_cv}
    check = {"candidate_cv_rmse": candidate_cv, "champion_cv_rmse": champion_cv}
    ok = candidate_cv <= champion_cv * (1 + margin)
    relation = "within" if ok else "worse than"
    words = f"CV RMSE {candidate_cv:.4f} {relation} champion {champion_cv:.4f} + {margin:.0%}"
    return ok, words, check


def judge(
    scored: Scored, candidate_cv: float, champion_cv: float | None, params: GateParams
) -> Verdict:
    """Every rule on the validation rows; the candidate passes only if all of them pass."""
    quintile_names = tuple(f"q{i + 1}" for i in range(QUINTILES))
    outcomes = {
        "validation": validation_rule(scored, params),
        "region": _group_rule(
            scored,
            regions_of(scored.latitude, scored.longitude),
            REGIONS,
            params.region_margin,
            params.min_group_rows,
        ),
        "quintile": _group_rule(
            scored,
            income_quintiles(scored.income),
            quintile_names,
            params.quintile_margin,
            params.min_group_rows,
        ),
        "cv": cv_rule(candidate_cv, champion_cv, params.cv_margin),
    }
    return Verdict(
        refused_by=tuple(rule for rule in RULES if not outcomes[rule][0]),
        reasons={rule: outcome[1] for rule, outcome in outcomes.items()},
        checks={rule: outcome[2] for rule, outcome in outcomes.items()},
    )
