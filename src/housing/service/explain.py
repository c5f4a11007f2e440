"""What the service needs to explain a model version: its background sample and importances.

Both are artifacts of the registered version's run (``housing train`` logs them beside the
model), loaded with the model and swapped with it, so an explanation always uses the background
of the version that predicted. A version trained before explanations existed has no background:
it still serves predictions, and /explain answers 503 saying so (a sample of whatever training
split is on disk now would not be the one that model was trained on, and the service does not
read the data folder).
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from housing.explain import BACKGROUND_ARTIFACT, ShapleyExplainer, for_raw_inputs
from housing.features import FEATURE_NAMES

log = logging.getLogger(__name__)

IMPORTANCE_ARTIFACT = "feature_importance.csv"
"""Permutation importances ``housing train`` logs for every candidate (train.py)."""
T = TypeVar("T")


@dataclass(frozen=True)
class ExplainAssets:
    """A version's explainer, or why it has none."""

    explainer: ShapleyExplainer | None
    missing: str | None = None


def _download(client: Any, run_id: str, path: str, folder: str) -> Path:
    from housing.tracking import mlflow_env

    # No progress bar: the service's stderr carries JSON log lines only.
    with mlflow_env(MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR="false"):
        return Path(client.download_artifacts(run_id, path, folder))


def read_background(path: Path) -> np.ndarray:
    """The background CSV as (n, 8) floats in spec order; raises ValueError when it is not."""
    frame = pd.read_csv(path, float_precision="round_trip")  # the exact floats written
    if list(frame.columns) != list(FEATURE_NAMES):
        raise ValueError(f"columns {list(frame.columns)} are not {list(FEATURE_NAMES)}")
    values = frame.to_numpy(dtype=np.float64)
    if len(values) == 0 or not np.isfinite(values).all():
        raise ValueError("the background must be one or more rows of finite numbers")
    return values


def load_assets(client: Any, name: str, version: str, run_id: str | None) -> ExplainAssets:
    """The version's explainer; never raises (a version without one still serves)."""
    if not run_id:
        return ExplainAssets(None, f"{name} v{version} has no training run to read a background")
    try:
        with tempfile.TemporaryDirectory(prefix="housing-explain-") as folder:
            background = read_background(_download(client, run_id, BACKGROUND_ARTIFACT, folder))
    except Exception as exc:
        log.warning("no explanations for %s v%s: %s", name, version, exc)
        return ExplainAssets(
            None,
            f"{name} v{version} was trained without a background sample for explanations "
            f"({BACKGROUND_ARTIFACT} in run {run_id}); retrain it to explain its predictions",
        )
    return ExplainAssets(for_raw_inputs(background))


_IMPORTANCES: dict[tuple[str, str], list[dict[str, Any]]] = {}


def load_importances(client: Any, tracking_uri: str, run_id: str) -> list[dict[str, Any]]:
    """The run's permutation importances, largest first (a run's artifacts never change, so
    they are read once per run). Raises when the run has none."""
    key = (tracking_uri, run_id)
    if key not in _IMPORTANCES:
        with tempfile.TemporaryDirectory(prefix="housing-importance-") as folder:
            frame = pd.read_csv(_download(client, run_id, IMPORTANCE_ARTIFACT, folder))
        frame = frame.sort_values("importance_mean", ascending=False)
        _IMPORTANCES[key] = frame.loc[:, ["feature", "importance_mean", "importance_std"]].to_dict(
            "records"
        )
    return _IMPORTANCES[key]


class ExplainPool:
    """One dedicated thread for explanations and what-if curves.

    Off the event loop, so /predict's batches keep running while a 12,800-row predict does;
    one thread, so concurrent explanations queue instead of taking both cores from /predict;
    its own OpenMP/BLAS limit, as the batcher's thread has.
    """

    def __init__(self, threads: int) -> None:
        from housing.service.batcher import limit_threads

        self._executor = ThreadPoolExecutor(
            1, thread_name_prefix="housing-explain", initializer=limit_threads, initargs=(threads,)
        )

    async def run(self, function: Callable[..., T], *args: Any) -> T:
        """``function(*args)`` on the explain thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, partial(function, *args))

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
