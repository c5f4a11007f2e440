"""The model registry: register candidates, gate the `champion` alias, promote, roll back, load.

Aliases replace MLflow's deprecated stages: ``champion`` is the model the service serves and
``previous`` the one it replaced, so a rollback is one alias swap. Every function takes an
``MlflowClient`` so callers (and tests) choose the tracking/registry URI explicitly.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST, ErrorCode

from housing.gate import Verdict
from housing.tracking import mlflow_env

log = logging.getLogger(__name__)

CHAMPION = "champion"
PREVIOUS = "previous"
GATE_TAG, GATE_REASON_TAG = "gate", "gate_reason"
"""Version tags: the gate's outcome and its words."""
GATE_PROMOTED, GATE_REFUSED, GATE_PENDING, GATE_APPROVED = (
    "promoted", "refused", "pending_approval", "approved",
)  # fmt: skip
TAG_LIMIT = 5000
"""MLflow's limit on a tag value."""

TRUSTED_TYPES: list[str] = [
    # Our own transformers (housing.transformers): plain estimators with numpy attributes.
    "housing.transformers.ArrayFeatureUnion",
    "housing.transformers.NeighbourTargetEncoder",
    "housing.transformers.RatioFeatures",
    "housing.transformers.RotatedCoordinates",
    # scikit-learn / scipy internals the three pipelines contain.
    "sklearn.tree._tree.Tree",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.neighbors._kd_tree.KDTree",
    "sklearn.metrics._dist_metrics.EuclideanDistance64",
    "scipy.interpolate._bsplines.BSpline",
    "scipy._lib.array_api_compat.numpy._aliases.asarray",
]
"""Types skops may load besides its defaults. The list lives in code, not in the artifact:
a tampered model cannot widen it (MLflow's own loader trusts the list stored in MLmodel)."""


class RegistryError(RuntimeError):
    """The registry is not in a state the command can work with (message says what to do)."""


@dataclass(frozen=True)
class Decision:
    """Outcome of the promotion gate for a newly registered version."""

    version: ModelVersion
    promoted: bool
    champion: ModelVersion
    reason: str
    refused_by: tuple[str, ...] = ()
    """The gate rules that refused it (``housing.gate.RULES``); empty when it passed."""
    checks: dict[str, Any] = field(default_factory=dict)
    pending: bool = False
    """It passed the gate but waits for an admin's approval (alert-started retrains)."""


def _code(exc: MlflowException) -> int:
    return ErrorCode.Value(exc.error_code) if isinstance(exc.error_code, str) else exc.error_code


def aliases(client: MlflowClient, name: str) -> dict[str, str]:
    """``{alias: version}`` of the registered model; empty when it does not exist yet."""
    try:
        return {alias: str(v) for alias, v in client.get_registered_model(name).aliases.items()}
    except MlflowException as exc:
        if _code(exc) == RESOURCE_DOES_NOT_EXIST:
            return {}
        raise


def champion(client: MlflowClient, name: str) -> ModelVersion | None:
    """The version aliased ``champion``, or None (no model, or no champion yet)."""
    version = aliases(client, name).get(CHAMPION)
    return None if version is None else client.get_model_version(name, version)


def _require_model(client: MlflowClient, name: str) -> None:
    try:
        client.get_registered_model(name)
    except MlflowException as exc:
        if _code(exc) == RESOURCE_DOES_NOT_EXIST:
            raise RegistryError(f"no registered model {name!r} yet: run `housing train`") from None
        raise


def _get_version(client: MlflowClient, name: str, version: int) -> ModelVersion:
    _require_model(client, name)
    try:
        return client.get_model_version(name, str(version))
    except MlflowException as exc:
        if _code(exc) == RESOURCE_DOES_NOT_EXIST:
            raise RegistryError(
                f"model {name!r} has no version {version} (see `mlflow ui` or run `housing train`)"
            ) from None
        raise


def register(client: MlflowClient, name: str, model_uri: str, run_id: str, tags: dict[str, Any]):
    """Create a new version of ``name`` from a logged model, with the contract's tags."""
    try:
        client.get_registered_model(name)
    except MlflowException as exc:
        if _code(exc) != RESOURCE_DOES_NOT_EXIST:
            raise
        client.create_registered_model(name, description="California median house value, $100k")
    source, model_id = model_uri, None
    if model_uri.startswith("models:/m-"):
        # A logged model: resolve it with *our* client. MLflow's sqlite registry would look it
        # up through the global tracking URI (a TODO in its SqlAlchemyStore).
        model_id = model_uri.removeprefix("models:/")
        source = client.get_logged_model(model_id).artifact_location
    return client.create_model_version(
        name,
        source=source,
        run_id=run_id,
        tags={key: str(value) for key, value in tags.items()},
        model_id=model_id,
    )


def _set_champion(client: MlflowClient, name: str, version: str) -> str | None:
    """Point ``champion`` at ``version``; the replaced champion becomes ``previous``."""
    version = str(version)
    current = aliases(client, name).get(CHAMPION)
    if current == version:
        return None
    if current is not None:
        client.set_registered_model_alias(name, PREVIOUS, current)
    client.set_registered_model_alias(name, CHAMPION, version)
    log.info("%s: champion %s -> %s", name, current, version)
    return current


def gate(
    client: MlflowClient,
    name: str,
    candidate: ModelVersion,
    judge: Callable[[ModelVersion], Verdict],
    *,
    auto_promote: bool = True,
) -> Decision:
    """Promote ``candidate`` only if ``judge`` (``housing.gate``'s rules on the validation rows,
    against the current champion) passes it; without ``auto_promote`` a passing candidate waits
    for an admin's approval (``promote``). The outcome is tagged on the version (``gate``)."""
    current = champion(client, name)
    if current is None:
        _set_champion(client, name, candidate.version)
        _tag_outcome(client, name, candidate, GATE_PROMOTED, "no champion yet")
        return Decision(candidate, True, candidate, "no champion yet")
    verdict = judge(current)
    against = f"against champion v{current.version}"
    if not verdict.passed:
        reason = f"{verdict.reason} ({against})"
        _tag_outcome(client, name, candidate, GATE_REFUSED, reason)
        return Decision(candidate, False, current, reason, verdict.refused_by, verdict.checks)
    if not auto_promote:
        reason = (
            f"{verdict.reason} ({against}); waiting for an admin's approval "
            f"(POST /admin/versions/{candidate.version}/promote)"
        )
        _tag_outcome(client, name, candidate, GATE_PENDING, reason)
        return Decision(candidate, False, current, reason, (), verdict.checks, pending=True)
    _set_champion(client, name, candidate.version)
    reason = f"{verdict.reason} ({against})"
    _tag_outcome(client, name, candidate, GATE_PROMOTED, reason)
    return Decision(candidate, True, candidate, reason, (), verdict.checks)


def _tag_outcome(
    client: MlflowClient, name: str, version: ModelVersion, outcome: str, reason: str
) -> None:
    client.set_model_version_tag(name, version.version, GATE_TAG, outcome)
    client.set_model_version_tag(name, version.version, GATE_REASON_TAG, reason[:TAG_LIMIT])


def promote(client: MlflowClient, name: str, version: int) -> tuple[ModelVersion, str | None]:
    """Make ``version`` the champion by hand; returns it and the version it replaced."""
    target = _get_version(client, name, version)
    replaced = _set_champion(client, name, target.version)
    if target.tags.get(GATE_TAG) == GATE_PENDING:
        client.set_model_version_tag(name, target.version, GATE_TAG, GATE_APPROVED)
    return target, replaced


def rollback(client: MlflowClient, name: str) -> tuple[ModelVersion, ModelVersion]:
    """Swap ``champion`` and ``previous`` (so a second rollback undoes the first)."""
    _require_model(client, name)
    current = aliases(client, name)
    if CHAMPION not in current:
        raise RegistryError(f"model {name!r} has no champion yet: run `housing train`")
    if PREVIOUS not in current:
        raise RegistryError(
            f"model {name!r} has no `previous` version to roll back to "
            f"(champion is v{current[CHAMPION]}; use `housing promote --version N`)"
        )
    client.set_registered_model_alias(name, CHAMPION, current[PREVIOUS])
    client.set_registered_model_alias(name, PREVIOUS, current[CHAMPION])
    return (
        client.get_model_version(name, current[PREVIOUS]),
        client.get_model_version(name, current[CHAMPION]),
    )


def model_uri(name: str, version_or_alias: int | str) -> str:
    """``models:/name/3`` for a version, ``models:/name@champion`` for an alias."""
    text = str(version_or_alias)
    return f"models:/{name}/{text}" if text.isdigit() else f"models:/{name}@{text}"


def load_model(
    name: str, version_or_alias: int | str = CHAMPION, *, tracking_uri: str | None = None
):
    """Load a registered sklearn Pipeline with skops, trusting only ``TRUSTED_TYPES``.

    Other serialisations (pickle, cloudpickle) are refused: they run arbitrary code on load.
    The version is resolved with our own client: MLflow's ``models:/`` resolver would use the
    process-global registry URI instead of ``tracking_uri``.
    """
    import tempfile

    import mlflow
    import skops.io
    from mlflow.models import Model

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    text = str(version_or_alias)
    try:
        version = text if text.isdigit() else client.get_model_version_by_alias(name, text).version
        source = client.get_model_version_download_uri(name, str(version))
    except MlflowException as exc:
        raise RegistryError(f"cannot find {model_uri(name, text)}: {exc.message}") from None
    quiet = mlflow_env(MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR="false")
    with quiet, tempfile.TemporaryDirectory(prefix="housing-model-") as tmp:
        local = Path(
            mlflow.artifacts.download_artifacts(
                artifact_uri=source, dst_path=tmp, tracking_uri=tracking_uri
            )
        )
        flavor = Model.load(local).flavors.get("sklearn")
        if flavor is None or flavor.get("serialization_format") != "skops":
            raise RegistryError(f"{model_uri(name, text)} is not a skops-serialised sklearn model")
        return skops.io.load(local / flavor["pickled_model"], trusted=TRUSTED_TYPES)
