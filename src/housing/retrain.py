"""Retraining: the training split plus labelled production data, through the same training stage.

The extra rows are the feedback the service logged (each prediction's inputs with the true value
a client reported) and the uploaded batches. They join the *training* split only: candidates are
still scored on the fixed held-out test split and ``housing.registry``'s gate decides, so a
retrain on bad labels cannot replace a better champion. Rows that reproduce a held-out house are
dropped first. The MLflow parent run records every batch's sha256, the feedback rows themselves
and the DVC snapshot of the batch folder, so each registered version traces back to its data.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from housing import batches as batch_store
from housing.data import COLUMNS
from housing.evaluation import frame_hash
from housing.features import TARGET
from housing.settings import Settings
from housing.train import ExtraData, TrainParams, champion_summary

log = logging.getLogger(__name__)

FINGERPRINT: tuple[str, ...] = ("Latitude", "Longitude", "Population", TARGET.name)
"""What identifies a held-out house in extra data: place, population and true value (no two
block groups of the dataset share all four). A shifted copy (incomes up, houses older: what
`housing simulate` sends) keeps them, and training on it would leak the test labels."""
MAX_BATCH_TAGS = 200
"""Batches beyond this many are recorded in ``data/lineage.json`` only (not one tag each)."""


@dataclass(frozen=True)
class RetrainRequest:
    """What one retrain uses: which batches (None = all) and whether to add the feedback."""

    batch_ids: Sequence[str] | None = None
    feedback: bool = True
    trigger: str = "cli"
    job_id: str | None = None


@dataclass
class Gathered:
    """The extra training rows and where each came from."""

    frame: pd.DataFrame
    batches: list[batch_store.Batch] = field(default_factory=list)
    batch_rows: int = 0
    feedback_rows: int = 0
    feedback: pd.DataFrame | None = None
    feedback_note: str | None = None
    held_out_dropped: int = 0
    feedback_invalid: int = 0


def feedback_frame(database_url: str, limit: int) -> tuple[pd.DataFrame, str | None]:
    """Labelled inputs from the prediction log (``COLUMNS`` + ``prediction_id``), newest first,
    and a note when there is no log to read (a SQLite file that does not exist yet)."""
    from sqlalchemy import inspect
    from sqlalchemy.engine import make_url

    from housing.service import log as prediction_log
    from housing.service.retention import with_archived_labels

    url = make_url(database_url)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        if not Path(url.database).is_file():
            return _no_feedback(), f"no prediction log at {url.database}"
    engine = prediction_log.create_log_engine(database_url)
    try:
        if not inspect(engine).has_table(prediction_log.prediction_log.name):
            return _no_feedback(), f"the prediction log at {url.database} has no table yet"
        live = prediction_log.labelled_inputs(engine, limit)
        return with_archived_labels(live, limit), None  # rows purged by retention, too
    finally:
        engine.dispose()


def _no_feedback() -> pd.DataFrame:
    return pd.DataFrame(columns=[*COLUMNS, "prediction_id"]).astype({c: float for c in COLUMNS})


def drop_held_out(extra: pd.DataFrame, test: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """``extra`` without rows whose ``FINGERPRINT`` matches a held-out test row."""
    keys = test.loc[:, list(FINGERPRINT)].drop_duplicates()
    marked = extra.merge(keys, on=list(FINGERPRINT), how="left", indicator=True)
    keep = (marked["_merge"] == "left_only").to_numpy()
    return extra.loc[keep].reset_index(drop=True), int((~keep).sum())


def gather(
    settings: Settings,
    request: RetrainRequest,
    test: pd.DataFrame,
    *,
    database_url: str,
    feedback_limit: int,
) -> Gathered:
    """Read the chosen batches (hashes checked) and the feedback; drop held-out copies."""
    chosen = batch_store.select(settings.data_dir, request.batch_ids)
    uploaded = batch_store.load_batches(settings.data_dir, chosen)
    feedback, note = (
        feedback_frame(database_url, feedback_limit) if request.feedback else (None, "not asked")
    )
    invalid = 0
    if feedback is not None:
        # The API validated every input and label; a row that fails now (the spec moved) is left
        # out, and counted, rather than failing the whole retrain.
        valid = batch_store.valid_rows(feedback)
        invalid = int((~valid).sum())
        feedback = feedback.loc[valid].reset_index(drop=True)
    parts = {"batches": uploaded, "feedback": feedback}
    kept: dict[str, pd.DataFrame] = {}
    dropped = 0
    for name, frame in parts.items():
        if frame is None:
            continue
        kept[name], count = drop_held_out(frame, test)
        dropped += count
        if count:
            log.warning("%s: dropped %d rows that reproduce held-out test houses", name, count)
    frames = [kept[name].loc[:, list(COLUMNS)] for name in kept]
    return Gathered(
        frame=pd.concat(frames, ignore_index=True) if frames else _no_feedback()[list(COLUMNS)],
        batches=chosen,
        batch_rows=len(kept.get("batches", [])),
        feedback_rows=len(kept["feedback"]) if "feedback" in kept else 0,
        feedback=kept.get("feedback"),
        feedback_note=note,
        held_out_dropped=dropped,
        feedback_invalid=invalid,
    )


def lineage(
    gathered: Gathered, request: RetrainRequest, dvc: dict[str, Any] | None
) -> dict[str, Any]:
    """What the retrain trained on, beyond the training split (the job result's ``data``)."""
    feedback = gathered.feedback
    return {
        "batches": [
            {"id": b.id, "sha256": b.sha256, "rows": b.rows, "source": b.source}
            for b in gathered.batches
        ],
        "batch_rows": gathered.batch_rows,
        "feedback_rows": gathered.feedback_rows,
        "feedback_hash": (
            frame_hash(feedback.loc[:, list(COLUMNS)]) if gathered.feedback_rows else None
        ),
        "feedback_note": gathered.feedback_note,
        "held_out_dropped": gathered.held_out_dropped,
        "feedback_invalid": gathered.feedback_invalid,
        "extra_rows": len(gathered.frame),
        "dvc": dvc,
        "trigger": request.trigger,
        "job_id": request.job_id,
    }


def extra_data(gathered: Gathered, data: dict[str, Any]) -> ExtraData:
    """The extra rows with what MLflow records about them on the retrain's parent run."""
    params = {
        "extra_rows": data["extra_rows"],
        "feedback_rows": data["feedback_rows"],
        "batch_rows": data["batch_rows"],
        "batch_count": len(data["batches"]),
        "held_out_dropped": data["held_out_dropped"],
        "feedback_hash": data["feedback_hash"] or "none",
    }
    tags = {"housing.trigger": data["trigger"], "housing.retrain": "true"}
    if data["job_id"]:
        tags["housing.job_id"] = data["job_id"]
    if data["dvc"]:
        tags["housing.batches_dvc_md5"] = data["dvc"]["md5"]
    for batch in data["batches"][:MAX_BATCH_TAGS]:
        tags[f"housing.batch.{batch['id']}"] = batch["sha256"]
    texts = {"data/lineage.json": json.dumps(data, indent=2, sort_keys=True)}
    if gathered.feedback is not None and len(gathered.feedback):
        texts["data/feedback.csv"] = gathered.feedback.to_csv(index=False, lineterminator="\n")
    return ExtraData(gathered.frame, params, tags, texts)


def retrain(
    settings: Settings,
    params: TrainParams,
    request: RetrainRequest,
    *,
    database_url: str,
    feedback_limit: int = 100_000,
    dvc: bool = True,
) -> dict[str, Any]:
    """Gather the extra data, snapshot the batches with DVC, train, gate; the job's result."""
    from mlflow import MlflowClient

    from housing import registry
    from housing import train as stage
    from housing.data import load_split

    started = time.perf_counter()
    _, test = load_split(settings.data_dir)
    gathered = gather(
        settings, request, test, database_url=database_url, feedback_limit=feedback_limit
    )
    snapshot = batch_store.snapshot(settings.data_dir) if dvc and gathered.batches else None
    data = lineage(gathered, request, snapshot)
    uri = settings.mlflow_tracking_uri
    before = registry.champion(
        MlflowClient(tracking_uri=uri, registry_uri=uri), settings.model_name
    )
    result = stage.train(settings, params, extra=extra_data(gathered, data))
    summary = result.summary()
    summary["champion_before"] = None if before is None else champion_summary(before)
    summary["champion_changed"] = before is None or int(before.version) != int(
        summary["champion"]["version"]
    )
    summary["data"] = data
    summary["seconds"] = round(time.perf_counter() - started, 2)
    return summary
