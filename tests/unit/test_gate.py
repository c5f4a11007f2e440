"""The promotion gate decides on validation rows only: the paired bootstrap, the region, MedInc
quintile and CV guards, each refusing a planted candidate; and through the real registry, a
candidate that wins on the test split only is not promoted while the converse is."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from housing import gate, registry
from housing.data import load_splits
from housing.features import TARGET
from housing.geo import regions_of
from housing.train import validation_judge

PARAMS = gate.GateParams()
MODEL = "california-housing"


@pytest.fixture(scope="module")
def splits(trained_registry: str):
    """The splits `trained_registry` trained on (validation: 2,064 real rows)."""
    return load_splits(Path(trained_registry.removeprefix("sqlite:///")).parent / "data")


def scored(validation: pd.DataFrame, champion: np.ndarray, candidate: np.ndarray) -> gate.Scored:
    return gate.Scored(
        actual=validation[TARGET.name].to_numpy(),
        candidate=candidate,
        champion=champion,
        latitude=validation["Latitude"].to_numpy(),
        longitude=validation["Longitude"].to_numpy(),
        income=validation["MedInc"].to_numpy(),
    )


def errors(frame: pd.DataFrame, seed: int, scale: float = 0.5) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, scale, len(frame))


def test_a_clearly_better_candidate_passes_every_rule(splits) -> None:
    y, noise = splits.validation[TARGET.name].to_numpy(), errors(splits.validation, 1)
    verdict = gate.judge(scored(splits.validation, y + noise, y + 0.7 * noise), 0.40, 0.41, PARAMS)
    assert verdict.passed and verdict.refused_by == ()
    check = verdict.checks["validation"]
    assert check["mse_gain_lower"] > 0 and check["rows"] == len(splits.validation)
    assert check["candidate_rmse"] < check["champion_rmse"]
    assert verdict.reason.startswith("passes the gate: validation RMSE")


def test_a_noise_level_improvement_is_refused_by_the_paired_rule(splits) -> None:
    y, noise = splits.validation[TARGET.name].to_numpy(), errors(splits.validation, 1)
    champion = y + noise
    jitter = np.random.default_rng(2).normal(0, 0.02, len(y))
    # Better on average by a hair (it may even be better by chance): noise can explain it.
    candidate = champion + jitter - 0.001 * noise
    verdict = gate.judge(scored(splits.validation, champion, candidate), 0.40, 0.40, PARAMS)
    assert verdict.refused_by == ("validation",)
    check = verdict.checks["validation"]
    assert check["mse_gain_lower"] <= 0 and abs(check["mse_gain"]) < 0.002
    identical = gate.judge(scored(splits.validation, champion, champion.copy()), 0.4, 0.4, PARAMS)
    assert identical.refused_by == ("validation",), "no gain at all is no reason to promote"


def test_the_bootstrap_is_seeded_and_its_bound_follows_the_level() -> None:
    gains = np.random.default_rng(0).normal(0.01, 0.2, 1000)
    first = gate.paired_bootstrap(gains, 0.95, 1000, 7)
    assert gate.paired_bootstrap(gains, 0.95, 1000, 7) == first
    assert first[0] == pytest.approx(gains.mean())
    assert gate.paired_bootstrap(gains, 0.99, 1000, 7)[1] < first[1] < first[0]


def test_the_region_guard_refuses_a_candidate_worse_in_one_region(splits) -> None:
    validation = splits.validation
    y, noise = validation[TARGET.name].to_numpy(), errors(validation, 3)
    bay = regions_of(validation["Latitude"], validation["Longitude"]) == "bay_area"
    candidate = y + np.where(bay, 1.3, 0.6) * noise  # better on average, worse around the bay
    verdict = gate.judge(scored(validation, y + noise, candidate), 0.40, 0.40, PARAMS)
    assert verdict.refused_by == ("region",)
    assert "bay_area RMSE" in verdict.reasons["region"]
    assert verdict.checks["validation"]["mse_gain_lower"] > 0
    assert set(verdict.checks["region"]) == {"north", "bay_area", "central", "south"}


def test_the_quintile_guard_refuses_a_candidate_worse_for_the_poorest(splits) -> None:
    validation = splits.validation
    y, noise = validation[TARGET.name].to_numpy(), errors(validation, 4)
    poorest = gate.income_quintiles(validation["MedInc"].to_numpy()) == "q1"
    assert poorest.mean() == pytest.approx(0.2, abs=0.01)
    candidate = y + np.where(poorest, 1.3, 0.6) * noise
    verdict = gate.judge(scored(validation, y + noise, candidate), 0.40, 0.40, PARAMS)
    assert verdict.refused_by == ("quintile",)
    assert verdict.reasons["quintile"].startswith("q1 RMSE")


def test_the_cv_guard_refuses_a_candidate_whose_cv_rmse_got_worse(splits) -> None:
    y, noise = splits.validation[TARGET.name].to_numpy(), errors(splits.validation, 5)
    better = scored(splits.validation, y + noise, y + 0.7 * noise)
    # The attack: CV RMSE 0.419 -> 0.557 while the held-out score looked better.
    verdict = gate.judge(better, 0.557, 0.419, PARAMS)
    assert verdict.refused_by == ("cv",)
    assert "worse than champion 0.4190" in verdict.reasons["cv"]
    assert gate.judge(better, 0.557, None, PARAMS).passed, "no champion CV RMSE: not judged"


def planted(frame: pd.DataFrame, noise: float, seed: int) -> np.ndarray:
    """A planted model's predictions of ``frame``: its truth plus noise of that size."""
    return frame[TARGET.name].to_numpy() + errors(frame, seed, noise)


@pytest.mark.parametrize(
    ("validation_noise", "test_noise", "promoted"),
    [(0.6, 0.1, False), (0.3, 0.9, True)],
    ids=["test-only-winner-refused", "validation-winner-promoted"],
)
def test_the_registry_gate_reads_validation_never_test(
    splits, registry_copy: str, validation_noise: float, test_noise: float, promoted: bool
) -> None:
    client = MlflowClient(tracking_uri=registry_copy, registry_uri=registry_copy)
    champion = registry.champion(client, MODEL)
    # The planted champion: noise 0.45 on every row. The candidate is much better on one
    # split and much worse on the other.
    champion_predictions = {"validation": planted(splits.validation, 0.45, 10)}
    candidate = {"validation": planted(splits.validation, validation_noise, 11)}
    test_rmse = {
        "candidate": float(np.sqrt(np.mean(errors(splits.test, 12, test_noise) ** 2))),
        "champion": float(np.sqrt(np.mean(errors(splits.test, 13, 0.45) ** 2))),
    }
    assert (test_rmse["candidate"] < test_rmse["champion"]) is not promoted
    seen: list[int] = []

    def champion_predict(version, features: pd.DataFrame) -> np.ndarray:
        seen.append(len(features))
        pd.testing.assert_frame_equal(features, splits.validation.loc[:, features.columns])
        return champion_predictions["validation"]

    version = registry.register(client, MODEL, champion.source, champion.run_id, {"cv_rmse": 0.4})
    decide = validation_judge(
        candidate["validation"], 0.4, splits.validation, PARAMS, champion_predict
    )
    decision = registry.gate(client, MODEL, version, decide)

    assert seen == [len(splits.validation)], "the champion is scored on the validation rows"
    assert decision.promoted is promoted
    assert registry.champion(client, MODEL).version == (
        version.version if promoted else champion.version
    )
    tags = client.get_model_version(MODEL, version.version).tags
    assert tags["gate"] == ("promoted" if promoted else "refused")
    assert "validation RMSE" in tags["gate_reason"] and "test" not in tags["gate_reason"]
    if not promoted:
        assert decision.refused_by[0] == "validation"


def test_a_passing_candidate_waits_for_approval_without_auto_promote(
    splits, registry_copy: str
) -> None:
    client = MlflowClient(tracking_uri=registry_copy, registry_uri=registry_copy)
    champion = registry.champion(client, MODEL)
    version = registry.register(client, MODEL, champion.source, champion.run_id, {})
    better, worse = planted(splits.validation, 0.2, 1), planted(splits.validation, 0.6, 2)
    decide = validation_judge(better, 0.4, splits.validation, PARAMS, lambda v, x: worse)
    decision = registry.gate(client, MODEL, version, decide, auto_promote=False)
    assert not decision.promoted and decision.pending and decision.refused_by == ()
    assert f"POST /admin/versions/{version.version}/promote" in decision.reason
    assert registry.champion(client, MODEL).version == champion.version
    assert client.get_model_version(MODEL, version.version).tags["gate"] == "pending_approval"

    registry.promote(client, MODEL, int(version.version))
    assert registry.champion(client, MODEL).version == version.version
    assert client.get_model_version(MODEL, version.version).tags["gate"] == "approved"
