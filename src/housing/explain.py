"""Per-prediction explanations: exact interventional Shapley values over the raw inputs.

**Players.** The 8 inputs a user types, except that Latitude and Longitude are one player,
``location``: the pipeline never uses one without the other (the rotated coordinates and the
neighbour price both take the pair), so splitting credit between them says nothing a user can
act on. 7 players, ``PLAYERS``, the same everywhere (API, UI, log, tests).

**Game.** ``v(S)`` is the expected prediction when the players in ``S`` take this house's
values and the others take a background row's values (interventional: the background rows are
not conditioned on ``S``), averaged over a fixed background sample of the training split stored
with the model version (``BACKGROUND_ARTIFACT``). The model is the whole served pipeline, raw
features in, prediction out, called through the service's own predict function (treelite when
compiled), so the explanation is of exactly what /predict serves (``HOUSING_EXPLAIN_PREDICT=
pipeline`` sends the coalitions to the scikit-learn pipeline instead, which agrees with treelite
to 1e-9 and is faster on thousands of rows).

**Exact.** All 2**7 = 128 coalitions are enumerated and the Shapley weights applied in closed
form, so ``base_value + sum(contributions) == prediction`` holds to float rounding (efficiency),
with ``base_value = v({})`` (mean prediction over the background) and ``prediction = v(all)``
(the house itself). The 128 x background rows go to the model in one batched call.

**Why not ``shap.explainers.Exact`` at serving time.** shap's exact explainer enumerates
coalitions of the *columns* its masker hides; its own way of tying columns together is a
hierarchical clustering (``maskers.Partition``), for which it computes Owen values over a binary
tree, not Shapley values over 7 flat players. It can be given a custom masker over the 7 players
(the tests do exactly that), but it then calls the masker once per coalition from Python and the
model in several batches. So serving does the coalition sum here (numpy, one predict call), and
the tests check it against shap's ``Exact`` explainer (pinned in requirements-dev.txt: 0.51.0,
the newest release for Python 3.11; 0.52 and later need Python 3.12), both over the 8 raw inputs
and over the 7 players.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import combinations

import numpy as np
import pandas as pd

from housing.features import FEATURE_NAMES

Predict = Callable[[np.ndarray], np.ndarray]
"""(n, 8) raw features in spec order -> (n,) predictions (``LoadedModel.predict``)."""

LOCATION = "location"
GROUPS: dict[str, tuple[str, ...]] = {
    **{name: (name,) for name in FEATURE_NAMES if name not in ("Latitude", "Longitude")},
    LOCATION: ("Latitude", "Longitude"),
}
"""Player -> the raw inputs it sets. Every input belongs to exactly one player."""
PLAYERS: tuple[str, ...] = tuple(GROUPS)
PLAYER_OF: dict[str, str] = {name: player for player, names in GROUPS.items() for name in names}

BACKGROUND_ROWS = 50
"""Background rows stored with a model version. The explanation is exact for the background it
is given; the size sets how well that background stands for the training split, and the cost of
every explanation, linear in it: 128 coalitions x 50 rows = 6,400 rows in one predict. Measured
on the 300-tree champion on the shared 2-core machine (load ~12): treelite ~170 us per row,
scikit-learn ~40 us, so 100 rows (12,800) would double a cost already far above 100 ms. With 50
the mean prediction over the background is within about sd/7 (~$15,000) of the training split's,
which moves only the base value, never the additivity.
"""
BACKGROUND_SEED = 20_240_115
BACKGROUND_ARTIFACT = "explain/background.csv"
"""Run artifact (of the registered model's run) holding the background sample."""
METHOD = "exact interventional Shapley over 7 players (location = Latitude + Longitude)"


def background_sample(train: pd.DataFrame, rows: int = BACKGROUND_ROWS) -> pd.DataFrame:
    """A fixed, seeded sample of the training split's raw inputs (spec order)."""
    frame = train.loc[:, list(FEATURE_NAMES)].astype("float64")
    sample = frame.sample(min(rows, len(frame)), random_state=BACKGROUND_SEED)
    return sample.reset_index(drop=True)


def log_background(train: pd.DataFrame) -> None:
    """Log the background sample to the active MLflow run (training calls this per candidate,
    so whichever is registered carries the background it is explained with)."""
    import mlflow

    mlflow.log_text(background_sample(train).to_csv(index=False), BACKGROUND_ARTIFACT)


def coalitions(players: int) -> np.ndarray:
    """Every subset of ``players`` as a boolean (2**players, players) matrix, by size."""
    rows = [
        [i in chosen for i in range(players)]
        for size in range(players + 1)
        for chosen in combinations(range(players), size)
    ]
    return np.array(rows, dtype=bool)


def shapley_matrix(masks: np.ndarray) -> np.ndarray:
    """``W`` with ``phi = W @ v`` for coalition values ``v`` (one per row of ``masks``).

    ``phi_i = sum over S not containing i of |S|!(p-|S|-1)!/p! * (v(S + i) - v(S))``: each
    coalition's value enters player i's sum with + the weight of ``S - i`` if it contains i,
    with - the weight of ``S`` if not.
    """
    players = masks.shape[1]
    weight = [
        math.factorial(k) * math.factorial(players - k - 1) / math.factorial(players)
        for k in range(players)
    ]
    sizes = masks.sum(axis=1)
    out = np.zeros((players, len(masks)))
    for s, (mask, size) in enumerate(zip(masks, sizes, strict=True)):
        for i in range(players):
            out[i, s] = weight[size - 1] if mask[i] else -weight[size]
    return out


@dataclass(frozen=True)
class Explanation:
    """Shapley values of one house, in the model's unit (the target's)."""

    prediction: float
    base_value: float
    contributions: dict[str, float]
    """Player -> its Shapley value, in ``PLAYERS`` order."""


class ShapleyExplainer:
    """Exact interventional Shapley values of ``predict`` over ``groups``, on ``background``.

    ``groups`` maps each player to column positions of the (n, d) inputs; the coalition matrix
    and its weights are computed once here, so a request only builds rows and predicts.
    """

    def __init__(
        self, background: np.ndarray, groups: Sequence[Sequence[int]], names: Sequence[str]
    ) -> None:
        self.background = np.ascontiguousarray(background, dtype=np.float64)
        self.names = tuple(names)
        width = self.background.shape[1]
        self.masks = coalitions(len(groups))
        self.weights = shapley_matrix(self.masks)
        columns = np.zeros((len(groups), width), dtype=bool)
        for player, positions in enumerate(groups):
            columns[player, list(positions)] = True
        # Column mask of each coalition: an input is the house's when its player is in.
        self.column_masks = (self.masks.astype(np.int64) @ columns.astype(np.int64)) > 0

    def rows(self, house: np.ndarray) -> np.ndarray:
        """(coalitions x background, d): each background row with the coalition's inputs set."""
        mixed = np.where(self.column_masks[:, None, :], house[None, None, :], self.background)
        return mixed.reshape(-1, self.background.shape[1])

    def explain(self, predict: Predict, house: Sequence[float]) -> Explanation:
        """One batched predict over every coalition, then the Shapley sum."""
        values = np.asarray(predict(self.rows(np.asarray(house, dtype=np.float64))))
        value = values.reshape(len(self.masks), len(self.background)).mean(axis=1)
        phi = self.weights @ value
        return Explanation(
            prediction=float(value[-1]),
            base_value=float(value[0]),
            contributions=dict(zip(self.names, phi.tolist(), strict=True)),
        )


def for_raw_inputs(background: np.ndarray) -> ShapleyExplainer:
    """The explainer over ``PLAYERS`` for (n, 8) raw features in spec order."""
    groups = [[FEATURE_NAMES.index(name) for name in GROUPS[p]] for p in PLAYERS]
    return ShapleyExplainer(background, groups, PLAYERS)
