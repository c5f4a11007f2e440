"""Training runs side by side, read from MLflow, for GET /models (the UI's Models page).

Reads the tags and metrics that ``housing train`` writes (see the contracts): parent runs tagged
``housing.role=training``, one child per candidate tagged ``housing.role=candidate`` and
``housing.candidate=<name>``, and the registered versions with their aliases.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from housing.service.schemas import CandidateResult, ModelsOverview, TrainingRun, VersionRef

PARENT_RUN_TAG = "mlflow.parentRunId"


def _metric(run: Any, key: str) -> float | None:
    value = run.data.metrics.get(key)
    return None if value is None else float(value)


def _started(run: Any) -> datetime | None:
    start = run.info.start_time
    return None if start is None else datetime.fromtimestamp(start / 1000, UTC)


def _ref(version: Any | None) -> VersionRef | None:
    if version is None:
        return None
    return VersionRef(
        version=str(version.version), run_id=version.run_id, candidate=version.tags.get("candidate")
    )


def training_overview(
    client: Any, experiment_name: str, model_name: str, limit: int = 20
) -> ModelsOverview:
    """The newest ``limit`` training runs with their candidates, and the aliased versions."""
    from mlflow.exceptions import MlflowException

    try:
        versions = list(client.search_model_versions(f"name = '{model_name}'"))
        aliases = dict(client.get_registered_model(model_name).aliases)
    except MlflowException:
        versions, aliases = [], {}
    by_version = {str(v.version): v for v in versions}
    by_run: dict[str, list[Any]] = defaultdict(list)
    for version in versions:
        if version.run_id:
            by_run[version.run_id].append(version)
    aliases_of: dict[str, list[str]] = defaultdict(list)
    for alias, version in aliases.items():
        aliases_of[str(version)].append(alias)

    runs: list[TrainingRun] = []
    experiment = client.get_experiment_by_name(experiment_name)
    if experiment is not None:
        ids = [experiment.experiment_id]
        parents = client.search_runs(
            ids,
            filter_string="tags.`housing.role` = 'training'",
            order_by=["attributes.start_time DESC"],
            max_results=limit,
        )
        children: dict[str, list[Any]] = defaultdict(list)
        if parents:
            for child in client.search_runs(
                ids, filter_string="tags.`housing.role` = 'candidate'", max_results=limit * 10
            ):
                children[child.data.tags.get(PARENT_RUN_TAG, "")].append(child)
        for parent in parents:
            candidates = []
            for child in sorted(children[parent.info.run_id], key=lambda r: r.info.run_name or ""):
                registered = sorted(by_run.get(child.info.run_id, []), key=lambda v: int(v.version))
                version = str(registered[-1].version) if registered else None
                candidates.append(
                    CandidateResult(
                        candidate=child.data.tags.get("housing.candidate"),
                        run_id=child.info.run_id,
                        test_rmse=_metric(child, "test_rmse"),
                        test_mae=_metric(child, "test_mae"),
                        test_r2=_metric(child, "test_r2"),
                        fit_seconds=_metric(child, "fit_seconds"),
                        cv_rmse=_metric(child, "cv_rmse"),
                        registered_version=version,
                        aliases=sorted(a for v in registered for a in aliases_of[str(v.version)]),
                    )
                )
            runs.append(
                TrainingRun(
                    run_id=parent.info.run_id,
                    run_name=parent.info.run_name,
                    started_at=_started(parent),
                    status=parent.info.status,
                    candidates=candidates,
                )
            )
    return ModelsOverview(
        model_name=model_name,
        champion=_ref(by_version.get(str(aliases.get("champion")))),
        previous=_ref(by_version.get(str(aliases.get("previous")))),
        runs=runs,
    )
