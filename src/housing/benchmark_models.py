"""How good the candidates are, over several splits and on places with no known houses nearby.

``housing train`` measures one split; one split is not a result. This benchmark refits every
candidate of ``params.yaml`` under the training protocol on several split seeds and reports the
mean and standard deviation of the test metrics, then repeats the fits on a *spatial* hold-out.

Protocol for split seed ``s`` (the registered model's: hyperparameters chosen by CV on ``fit``,
``fit`` is what the model is trained on, the test rows are only scored)::

    train, test = split_frame(frame, test_size, s)
    fit, validation = split_frame(train, validation_size, s)

The candidate with the lowest *validation* RMSE on a seed is that seed's champion (what the gate
would pick); its test metrics make the ``champion`` row.

Two figures, two questions:

- **random split**: more than half of the test rows share exact coordinates with a training row,
  so it measures *filling gaps between known houses* — a house in a neighbourhood the model has
  seen sold.
- **spatial hold-out**: k-means clusters of the coordinates, whole clusters held out in grouped
  K-fold (the training rows of a fold come from the other clusters only), so it measures a
  *place with no known houses nearby* — a new town, or a region missing from the data.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from housing.candidates import build, serving_threads
from housing.data import split_frame
from housing.evaluation import regression_metrics
from housing.features import FEATURE_NAMES, TARGET
from housing.train import TrainParams

log = logging.getLogger(__name__)

METRICS: tuple[str, ...] = ("rmse", "mae", "r2")
CHAMPION = "champion"
"""Row of the seed-by-seed champion (lowest validation RMSE) in the results."""


@dataclass(frozen=True)
class Protocol:
    """How the benchmark splits the data (the JSON's ``protocol`` object)."""

    seeds: tuple[int, ...] = (0, 1, 2, 3, 42)
    test_size: float = 0.2
    validation_size: float = 0.125
    spatial_folds: int = 5
    spatial_clusters: int = 50
    spatial_seed: int = 42


@dataclass
class Scores:
    """Test metrics of one candidate, one value per split (seed or spatial fold)."""

    values: dict[str, list[float]] = field(default_factory=lambda: {m: [] for m in METRICS})

    def add(self, metrics: dict[str, float]) -> None:
        for name in METRICS:
            self.values[name].append(float(metrics[name]))

    def summary(self) -> dict[str, Any]:
        """``{metric: {mean, sd, values}}``; sd is the sample standard deviation (ddof=1)."""
        out: dict[str, Any] = {}
        for name, values in self.values.items():
            array = np.asarray(values, dtype=np.float64)
            sd = float(array.std(ddof=1)) if len(array) > 1 else 0.0
            out[name] = {
                "mean": round(float(array.mean()), 6),
                "sd": round(sd, 6),
                "values": [round(v, 6) for v in values],
            }
        return out


def fit_candidate(name: str, fit: pd.DataFrame, params: TrainParams, seed: int):
    """The candidate ``name`` with hyperparameters chosen by CV on ``fit`` and refitted on it
    (``housing train``'s search, with ``seed`` for the folds and the estimators)."""
    from sklearn.model_selection import GridSearchCV, KFold
    from threadpoolctl import threadpool_limits

    candidate = build(name, params.candidates[name], n_neighbors=params.n_neighbors, seed=seed)
    search = GridSearchCV(
        candidate.pipeline,
        candidate.grid,
        cv=KFold(params.cv_folds, shuffle=True, random_state=seed),
        scoring="neg_root_mean_squared_error",
        n_jobs=candidate.search_jobs,
        error_score="raise",
    )
    with threadpool_limits(limits=1):  # as train.py: one OpenMP thread on a busy machine
        search.fit(fit.loc[:, list(FEATURE_NAMES)], fit[TARGET.name])
    return serving_threads(search.best_estimator_)


def _score(model, rows: pd.DataFrame) -> dict[str, float]:
    predicted = model.predict(rows.loc[:, list(FEATURE_NAMES)])
    return regression_metrics(rows[TARGET.name].to_numpy(), predicted)


def spatial_groups(frame: pd.DataFrame, clusters: int, seed: int) -> np.ndarray:
    """A k-means cluster label per row, from (latitude, longitude) alone."""
    from sklearn.cluster import KMeans

    coords = frame.loc[:, ["Latitude", "Longitude"]].to_numpy(dtype=np.float64)
    clusters = min(clusters, len(np.unique(coords, axis=0)))
    return KMeans(n_clusters=clusters, n_init=4, random_state=seed).fit_predict(coords)


def spatial_folds(
    frame: pd.DataFrame, folds: int, clusters: int, seed: int
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(train rows, held-out rows) positions: grouped K-fold over the k-means clusters, so
    every cluster is held out whole, exactly once."""
    from sklearn.model_selection import GroupKFold

    groups = spatial_groups(frame, clusters, seed)
    splitter = GroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    yield from splitter.split(frame, groups=groups)


@dataclass
class BenchmarkResult:
    """Per candidate (and the champion row), random-split and spatial scores."""

    protocol: Protocol
    candidates: tuple[str, ...]
    random: dict[str, Scores]
    spatial: dict[str, Scores]
    champions: list[str]
    """The champion's candidate on each seed, in seed order."""
    rows: int
    seconds: float

    def summary(self) -> dict[str, Any]:
        """The JSON document ``housing benchmark-models`` writes."""
        names = [*self.candidates, CHAMPION]
        return {
            "protocol": vars(self.protocol) | {"seeds": list(self.protocol.seeds)},
            "rows": self.rows,
            "candidates": list(self.candidates),
            "champions": self.champions,
            "random_split": {n: self.random[n].summary() for n in names if n in self.random},
            "spatial": {n: self.spatial[n].summary() for n in names if n in self.spatial},
            "seconds": round(self.seconds, 1),
        }


def _random_splits(
    frame: pd.DataFrame, params: TrainParams, protocol: Protocol
) -> tuple[dict[str, Scores], list[str]]:
    names = list(params.candidates)
    scores = {name: Scores() for name in [*names, CHAMPION]}
    champions = []
    for seed in protocol.seeds:
        train, test = split_frame(frame, protocol.test_size, seed)
        fit, validation = split_frame(train, protocol.validation_size, seed)
        best_name, best_rmse, best_test = "", np.inf, {}
        for name in names:
            model = fit_candidate(name, fit, params, seed)
            val_rmse, metrics = _score(model, validation)["rmse"], _score(model, test)
            scores[name].add(metrics)
            log.info("seed %d %s: validation %.4f test %.4f", seed, name, val_rmse, metrics["rmse"])
            if val_rmse < best_rmse:
                best_name, best_rmse, best_test = name, val_rmse, metrics
        scores[CHAMPION].add(best_test)
        champions.append(best_name)
    return scores, champions


def _spatial(frame: pd.DataFrame, params: TrainParams, protocol: Protocol) -> dict[str, Scores]:
    # The fitted rows are the same share of the data as in the random split (the other folds,
    # less a validation share), so the two figures differ in which rows are held out, not in
    # how many the model learned from.
    scores = {name: Scores() for name in params.candidates}
    seed = protocol.spatial_seed
    split = spatial_folds(frame, protocol.spatial_folds, protocol.spatial_clusters, seed)
    for fold, (train_rows, held_rows) in enumerate(split):
        fit, _ = split_frame(frame.iloc[train_rows], protocol.validation_size, seed)
        held = frame.iloc[held_rows]
        for name in params.candidates:
            metrics = _score(fit_candidate(name, fit, params, seed), held)
            scores[name].add(metrics)
            log.info("spatial fold %d %s: test %.4f", fold, name, metrics["rmse"])
    return scores


def benchmark(frame: pd.DataFrame, params: TrainParams, protocol: Protocol) -> BenchmarkResult:
    """Every candidate on every seed, then on the spatial folds (``spatial_folds=0``: none)."""
    started = time.perf_counter()
    frame = frame.reset_index(drop=True)
    random, champions = _random_splits(frame, params, protocol)
    spatial = _spatial(frame, params, protocol) if protocol.spatial_folds else {}
    return BenchmarkResult(
        protocol,
        tuple(params.candidates),
        random,
        spatial,
        champions,
        len(frame),
        time.perf_counter() - started,
    )


def _cell(summary: dict[str, Any] | None, metric: str) -> str:
    if summary is None:
        return "-"
    return f"{summary[metric]['mean']:.4f} ± {summary[metric]['sd']:.4f}"


def table(summary: dict[str, Any]) -> list[str]:
    """The result as a Markdown table (the README's), one line per candidate and the champion."""
    header = "| candidate | " + " | ".join(
        f"{split} {metric.upper() if metric != 'r2' else 'R²'}"
        for split in ("random", "spatial")
        for metric in METRICS
    )
    lines = [header + " |", "|" + " --- |" * (1 + 2 * len(METRICS))]
    for name in [*summary["candidates"], CHAMPION]:
        random, spatial = summary["random_split"].get(name), summary["spatial"].get(name)
        cells = [_cell(random, m) for m in METRICS] + [_cell(spatial, m) for m in METRICS]
        label = f"champion ({_picked(summary['champions'])})" if name == CHAMPION else name
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def _picked(champions: Sequence[str]) -> str:
    """``gradient_boosting ×4, linear ×1``: which candidate validation picked, how often."""
    counts = pd.Series(list(champions)).value_counts()
    return ", ".join(f"{name} ×{count}" for name, count in counts.items())


def sample_rows(frame: pd.DataFrame, rows: int | None, seed: int) -> pd.DataFrame:
    """``rows`` rows drawn with ``seed`` (all of them when None or more than there are)."""
    if rows is None or rows >= len(frame):
        return frame
    return frame.sample(n=rows, random_state=seed).reset_index(drop=True)


def seeds_given(options: Sequence[int] | None, extra: Sequence[str]) -> list[int]:
    """``--seeds 0 1 2`` on the command line: Click gives an option one value, so the values
    after the first arrive as extra arguments. No ``--seeds``: the default five."""
    if options is None and not extra:
        return list(Protocol().seeds)
    if options is None:
        raise ValueError(f"unexpected argument(s) {' '.join(extra)} (seeds go after --seeds)")
    bad = [value for value in extra if not value.isdigit()]
    if bad:
        raise ValueError(f"--seeds takes non-negative integers; got {' '.join(bad)}")
    return [*options, *(int(value) for value in extra)]


def check_seeds(seeds: Sequence[int]) -> tuple[int, ...]:
    """The seeds as a tuple; one or more distinct, non-negative."""
    if not seeds:
        raise ValueError("at least one --seeds value is needed")
    if len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise ValueError(f"--seeds must be distinct non-negative integers; got {list(seeds)}")
    return tuple(seeds)
