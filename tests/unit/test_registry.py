"""Registry: promotion gate, promote, rollback and safe loading, on a real MLflow sqlite store."""

from __future__ import annotations

import os
from types import SimpleNamespace

import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import Pipeline

from housing import registry
from housing.features import typical_row
from housing.gate import Verdict


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """A fresh sqlite store holding one logged skops model and one cloudpickle model."""
    root = tmp_path_factory.mktemp("registry")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment = client.create_experiment("tests", artifact_location=(root / "art").as_uri())
    X = pd.DataFrame([typical_row()] * 4)
    model = LinearRegression().fit(X, [1.0, 2.0, 3.0, 4.0])
    saved = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    try:
        with mlflow.start_run(experiment_id=experiment) as run:
            # Explicit requirements: MLflow would otherwise spawn a process to infer them.
            skops_info = mlflow.sklearn.log_model(model, name="model", pip_requirements=[])
            pickle_info = mlflow.sklearn.log_model(
                model, name="pickled", serialization_format="cloudpickle", pip_requirements=[]
            )
    finally:
        mlflow.set_tracking_uri(saved)
    return SimpleNamespace(
        uri=uri,
        client=client,
        run_id=run.info.run_id,
        model_uri=skops_info.model_uri,
        pickle_uri=pickle_info.model_uri,
    )


@pytest.fixture
def name(request: pytest.FixtureRequest) -> str:
    """A registered-model name of its own for each test (the store is shared)."""
    return f"model-{request.node.name}"


def _register(store: SimpleNamespace, name: str, rmse: float):
    tags = {"candidate": "linear", "val_rmse": rmse}
    return registry.register(store.client, name, store.model_uri, store.run_id, tags)


def _gate(store: SimpleNamespace, name: str, rmse: float, **options) -> registry.Decision:
    """Gate a new version with a planted judge: it passes when its RMSE is below the
    champion's (housing.gate's real rules are tested in test_gate.py)."""
    version = _register(store, name, rmse)

    def judge(champ) -> Verdict:
        best = float(champ.tags["val_rmse"])
        words = {"validation": f"validation RMSE {rmse:.4f} vs champion {best:.4f}"}
        return Verdict(() if rmse < best else ("validation",), words, {"validation": {}})

    return registry.gate(store.client, name, version, judge, **options)


def test_empty_registry_has_no_champion(store, name) -> None:
    assert registry.champion(store.client, name) is None
    assert registry.aliases(store.client, name) == {}


def test_first_version_becomes_champion(store, name) -> None:
    decision = _gate(store, name, 0.5)
    assert decision.promoted
    assert registry.aliases(store.client, name) == {"champion": "1"}
    assert registry.champion(store.client, name).tags["val_rmse"] == "0.5"
    assert registry.champion(store.client, name).tags["gate"] == "promoted"


def test_worse_model_is_registered_not_promoted(store, name) -> None:
    _gate(store, name, 0.5)
    decision = _gate(store, name, 0.6)
    assert not decision.promoted
    assert str(decision.champion.version) == "1"
    assert decision.refused_by == ("validation",)
    assert decision.reason.startswith("refused by validation: validation RMSE 0.6000")
    assert "against champion v1" in decision.reason
    assert registry.aliases(store.client, name) == {"champion": "1"}
    tags = store.client.get_model_version(name, "2").tags
    assert tags["val_rmse"] == "0.6" and tags["gate"] == "refused"
    assert tags["gate_reason"] == decision.reason


def test_equal_model_is_not_promoted(store, name) -> None:
    _gate(store, name, 0.5)
    assert not _gate(store, name, 0.5).promoted


def test_better_model_is_promoted_and_the_old_champion_becomes_previous(store, name) -> None:
    _gate(store, name, 0.5)
    _gate(store, name, 0.6)
    decision = _gate(store, name, 0.4)
    assert decision.promoted and str(decision.version.version) == "3"
    assert registry.aliases(store.client, name) == {"champion": "3", "previous": "1"}


def test_without_auto_promote_a_passing_version_waits_and_approval_promotes_it(store, name) -> None:
    _gate(store, name, 0.5)
    refused = _gate(store, name, 0.6, auto_promote=False)
    assert not refused.pending and refused.refused_by == ("validation",)
    waiting = _gate(store, name, 0.4, auto_promote=False)
    assert waiting.pending and not waiting.promoted and str(waiting.champion.version) == "1"
    assert "waiting for an admin's approval (POST /admin/versions/3/promote)" in waiting.reason
    assert registry.aliases(store.client, name) == {"champion": "1"}
    assert store.client.get_model_version(name, "3").tags["gate"] == "pending_approval"
    registry.promote(store.client, name, 3)
    assert registry.aliases(store.client, name) == {"champion": "3", "previous": "1"}
    assert store.client.get_model_version(name, "3").tags["gate"] == "approved"
    registry.promote(store.client, name, 2)  # by hand, a refused one: its tag says so still
    assert store.client.get_model_version(name, "2").tags["gate"] == "refused"


def test_rollback_restores_previous_and_a_second_rollback_undoes_it(store, name) -> None:
    _gate(store, name, 0.5)
    _gate(store, name, 0.4)
    restored, demoted = registry.rollback(store.client, name)
    assert (str(restored.version), str(demoted.version)) == ("1", "2")
    assert registry.aliases(store.client, name) == {"champion": "1", "previous": "2"}
    registry.rollback(store.client, name)
    assert registry.aliases(store.client, name) == {"champion": "2", "previous": "1"}


def test_promote_a_version_by_hand(store, name) -> None:
    _gate(store, name, 0.5)
    _gate(store, name, 0.6)  # registered, not promoted
    target, replaced = registry.promote(store.client, name, 2)
    assert (str(target.version), replaced) == ("2", "1")
    assert registry.aliases(store.client, name) == {"champion": "2", "previous": "1"}
    target, replaced = registry.promote(store.client, name, 2)
    assert (str(target.version), replaced) == ("2", None)
    assert registry.aliases(store.client, name) == {"champion": "2", "previous": "1"}


def test_promote_unknown_version_or_model_is_a_clear_error(store, name) -> None:
    with pytest.raises(registry.RegistryError, match="no registered model .* run `housing train`"):
        registry.promote(store.client, name, 1)
    _gate(store, name, 0.5)
    with pytest.raises(registry.RegistryError, match="has no version 7"):
        registry.promote(store.client, name, 7)


def test_rollback_needs_a_model_a_champion_and_a_previous(store, name) -> None:
    with pytest.raises(registry.RegistryError, match="no registered model"):
        registry.rollback(store.client, name)
    _register(store, name, 0.5)
    with pytest.raises(registry.RegistryError, match="no champion yet: run `housing train`"):
        registry.rollback(store.client, name)
    registry.promote(store.client, name, 1)
    with pytest.raises(registry.RegistryError, match="no `previous` version"):
        registry.rollback(store.client, name)


def test_load_model_refuses_pickled_models(store, name) -> None:
    registry.register(store.client, name, store.pickle_uri, store.run_id, {})
    with pytest.raises(registry.RegistryError, match="not a skops-serialised sklearn model"):
        registry.load_model(name, 1, tracking_uri=store.uri)
    registry.register(store.client, name, store.model_uri, store.run_id, {})
    assert isinstance(registry.load_model(name, 2, tracking_uri=store.uri), LinearRegression)


def test_model_uri_for_versions_and_aliases() -> None:
    assert registry.model_uri("m", 3) == "models:/m/3"
    assert registry.model_uri("m", "champion") == "models:/m@champion"


def test_training_leaves_mlflow_global_uri_alone(trained_registry: str) -> None:
    assert os.environ.get("MLFLOW_TRACKING_URI") != trained_registry
    assert mlflow.get_tracking_uri() != trained_registry
    assert mlflow.get_registry_uri() != trained_registry


def test_load_model_gives_the_champion_pipeline(trained_registry: str) -> None:
    model = registry.load_model("california-housing", "champion", tracking_uri=trained_registry)
    assert isinstance(model, Pipeline)
    prediction = model.predict(pd.DataFrame([typical_row()]))
    assert prediction.shape == (1,) and 0.5 < prediction[0] < 5.0
