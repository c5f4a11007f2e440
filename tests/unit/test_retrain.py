"""Retraining: jobs one at a time in child processes, the alert cool-down, the extra data (feedback
from a real prediction log, uploaded batches) kept off the test split, and a real retrain whose
MLflow run records the data it used."""

from __future__ import annotations

import json
import os
import shutil
import subprocess  # nosec B404 - children that hold the retrain lock
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from housing import batches, jobs, registry, retrain
from housing.data import COLUMNS, TEST_FILE, load_split, processed_dir
from housing.features import FEATURE_NAMES, TARGET
from housing.settings import Settings
from housing.train import TrainParams

T0 = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)

CHILD = """
import os, sys, time
from pathlib import Path
from housing import jobs

mode = os.environ["TEST_MODE"]

def work(record):
    time.sleep(float(os.environ.get("TEST_SLEEP", "0")))
    if mode == "crash":
        os._exit(3)
    return {"champion_changed": mode == "moved", "pid": os.getpid()}

jobs.execute(Path(os.environ["HOUSING_JOBS_DIR"]), sys.argv[sys.argv.index("--job") + 1], work)
"""
"""The runner's child in these tests: the real ``jobs.execute`` around a trivial piece of work
(the real `housing retrain` child runs in tests/integration/test_closed_loop.py)."""


def record(trigger: str, minutes_ago: float, status: str = "succeeded") -> jobs.JobRecord:
    return jobs.JobRecord(
        id=jobs.new_job_id(T0 - timedelta(minutes=minutes_ago)),
        trigger=trigger,
        status=status,
        requested_at=T0 - timedelta(minutes=minutes_ago),
    )


# --- cool-down and alerts ------------------------------------------------------------------


def test_cooldown_counts_from_the_last_alert_started_job_only() -> None:
    assert jobs.cooldown_left([], T0, 600) == 0
    assert jobs.cooldown_left([record("api", 1), record("cli", 2)], T0, 600) == 0
    assert jobs.cooldown_left([record("alert", 30), record("alert", 4)], T0, 600) == 360
    assert jobs.cooldown_left([record("alert", 4, status="failed")], T0, 600) == 360
    assert jobs.cooldown_left([record("alert", 11)], T0, 600) == 0
    assert jobs.cooldown_left([record("alert", 0)], T0, 0) == 0


def alertmanager_payload(status: str = "firing", action: str = "retrain") -> dict:
    """What Alertmanager 0.25 posts to a webhook (trimmed to the fields it always sends)."""
    alert = {
        "status": status,
        "labels": {"alertname": "HousingDataDrift", "severity": "warning", "action": action},
        "annotations": {"summary": "Input data drift detected"},
        "startsAt": "2025-01-01T12:00:00Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "fingerprint": "c0ffee",
    }
    return {"version": "4", "status": status, "receiver": "housing-retrain", "alerts": [alert]}


def test_only_firing_alerts_labelled_for_retraining_count() -> None:
    assert len(jobs.retrain_alerts(alertmanager_payload())) == 1
    assert jobs.retrain_alerts(alertmanager_payload(status="resolved")) == []
    assert jobs.retrain_alerts(alertmanager_payload(action="page")) == []
    assert jobs.retrain_alerts({"alerts": "nonsense"}) == []
    assert jobs.retrain_alerts({}) == []


def test_job_ids_cannot_name_other_files(tmp_path: Path) -> None:
    for bad in ("../../etc/passwd", "x.json", "20250101T120000Z-zzzzzzzz", ""):
        with pytest.raises(ValueError, match="not a job id"):
            jobs.job_path(tmp_path, bad)
    assert jobs.read_job(tmp_path, jobs.new_job_id()) is None


# --- one at a time ---------------------------------------------------------------------------


HOLDER = """
import sys, time
from pathlib import Path
from housing import jobs

fd = jobs.handed_over_lock(Path(sys.argv[1]), sys.argv[2])
print("held" if fd is not None else "refused", flush=True)
time.sleep(float(sys.argv[3]))
"""
"""A child taking the lock handed over to it, holding it for a while."""


def hold_in_child(jobs_dir: Path, job_id: str, seconds: float) -> subprocess.Popen:
    return subprocess.Popen(  # nosec B603 - our own interpreter on a fixed script
        [sys.executable, "-c", HOLDER, str(jobs_dir), job_id, str(seconds)],
        env={**os.environ, jobs.HANDOFF_ENV: job_id},
        stdout=subprocess.PIPE,
        text=True,
    )


def test_the_lock_is_exclusive(tmp_path: Path) -> None:
    fd = jobs.try_lock(tmp_path, "first")
    assert fd is not None and jobs.lock_owner(tmp_path) == "first"
    assert jobs.is_locked(tmp_path)
    assert jobs.try_lock(tmp_path, "second") is None
    assert jobs.reserve(tmp_path, "second") is None
    assert jobs.lock_owner(tmp_path) == "first", "a refused taker does not claim it"
    jobs.release(fd)
    assert not jobs.is_locked(tmp_path)
    again = jobs.try_lock(tmp_path, "third")
    assert again is not None and jobs.lock_owner(tmp_path) == "third"
    jobs.release(again)


def test_the_lock_passes_to_a_child_through_the_gate(tmp_path: Path) -> None:
    gate = jobs.reserve(tmp_path, "job")
    assert gate is not None and jobs.lock_owner(tmp_path) == "job"
    assert not jobs.is_locked(tmp_path), "the gate alone, until the child takes the lock"
    assert jobs.try_lock(tmp_path, "intruder") is None, "the gate keeps others out meanwhile"
    child = hold_in_child(tmp_path, "job", 1.5)
    try:
        assert child.stdout.readline().strip() == "held"
        jobs.release(gate)
        assert jobs.try_lock(tmp_path, "intruder") is None, "the child holds it now"
        assert jobs.reserve(tmp_path, "intruder") is None
    finally:
        child.wait(timeout=30)
    assert not jobs.is_locked(tmp_path), "it died with the child"
    again = jobs.try_lock(tmp_path, "next")
    assert again is not None
    jobs.release(again)


def test_only_the_child_named_in_the_hand_over_takes_a_free_lock(
    tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.delenv(jobs.HANDOFF_ENV, raising=False)
    assert jobs.handed_over_lock(tmp_path, "job") is None, "no hand-over for this process"
    monkeypatch.setenv(jobs.HANDOFF_ENV, "job")
    monkeypatch.setattr(jobs, "HANDOFF_WAIT", 0.2)
    held = jobs.try_lock(tmp_path, "other")
    try:
        assert jobs.handed_over_lock(tmp_path, "job") is None, "held by another retrain"
    finally:
        jobs.release(held)
    fd = jobs.handed_over_lock(tmp_path, "job")
    assert fd is not None
    jobs.release(fd)


def test_execute_keeps_the_record_current(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv(jobs.HANDOFF_ENV, raising=False)
    seen = []

    def work(job: jobs.JobRecord) -> dict:
        seen.append((job.status, job.trigger, job.batches, job.feedback))
        assert jobs.try_lock(tmp_path, "intruder") is None, "held while working"
        return {"champion_changed": False}

    done = jobs.execute(tmp_path, None, work, batches=["b1"], feedback=False)
    assert seen == [("running", "cli", ["b1"], False)]
    assert done.status == "succeeded" and done.result == {"champion_changed": False}
    assert jobs.read_job(tmp_path, done.id) == done and done.finished_at >= done.started_at

    def broken(job: jobs.JobRecord) -> dict:
        raise RuntimeError("no data")

    with pytest.raises(RuntimeError):
        jobs.execute(tmp_path, None, broken)
    (failed,) = [j for j in jobs.list_jobs(tmp_path) if j.status == "failed"]
    assert failed.error == "no data"

    fd = jobs.try_lock(tmp_path, "someone")
    try:
        with pytest.raises(jobs.JobBusyError, match="someone"):
            jobs.execute(tmp_path, None, work)
    finally:
        jobs.release(fd)


def runner(tmp_path: Path, mode: str, sleep: float = 0.0, **settings) -> tuple:
    reloads: list[int] = []
    config = jobs.RetrainSettings(jobs_dir=tmp_path / "jobs", **settings)
    env = {
        "TEST_MODE": mode,
        "TEST_SLEEP": str(sleep),
        "HOUSING_JOBS_DIR": str(config.jobs_dir),
    }
    command = [sys.executable, "-c", CHILD]
    return jobs.JobRunner(config, env, lambda: reloads.append(1), command), reloads


def test_runner_runs_one_job_at_a_time_and_reloads_when_the_champion_moved(
    tmp_path: Path,
) -> None:
    run, reloads = runner(tmp_path, "moved", sleep=2.0)
    job = run.start("api", batches=["b"], feedback=False)
    assert job.status == "queued"
    with pytest.raises(jobs.JobBusyError) as busy:
        run.start("api")
    assert busy.value.job_id == job.id
    assert jobs.try_lock(run.jobs_dir, "cli") is None, "nor from the CLI, starting or running"
    run.join(30)
    done = jobs.read_job(run.jobs_dir, job.id)
    assert done.status == "succeeded" and done.result["champion_changed"] is True
    assert done.batches == ["b"] and done.feedback is False
    assert done.pid == done.result["pid"] != os.getpid(), "it ran in a child process"
    assert reloads == [1]
    second = run.start("api")
    run.join(30)
    assert jobs.read_job(run.jobs_dir, second.id).status == "succeeded"
    assert [j.id for j in jobs.list_jobs(run.jobs_dir)] == [second.id, job.id]


def test_a_child_that_dies_leaves_a_failed_record(tmp_path: Path) -> None:
    run, reloads = runner(tmp_path, "crash")
    job = run.start("api")
    run.join(30)
    failed = jobs.read_job(run.jobs_dir, job.id)
    assert failed.status == "failed" and "exited with code 3" in failed.error
    assert reloads == []


def test_a_child_that_hangs_is_killed(tmp_path: Path) -> None:
    run, _ = runner(tmp_path, "stay", sleep=60, retrain_timeout_seconds=1.0)
    job = run.start("api")
    started = time.monotonic()
    run.join(30)
    assert time.monotonic() - started < 15
    failed = jobs.read_job(run.jobs_dir, job.id)
    assert failed.status == "failed" and "timed out after 1 s" in failed.error
    assert not jobs.is_locked(run.jobs_dir), "the lock died with the child"
    fd = jobs.try_lock(run.jobs_dir, "next")
    assert fd is not None, "and the gate was released"
    jobs.release(fd)


def test_a_flapping_alert_starts_one_retrain_per_cooldown(tmp_path: Path) -> None:
    run, _ = runner(tmp_path, "stay", sleep=1.0, retrain_cooldown_seconds=3600)
    first = run.start_for_alert(alertmanager_payload())
    assert first.started and first.job.trigger == "alert"
    assert first.job.alert["alertname"] == "HousingDataDrift"
    while_running = run.start_for_alert(alertmanager_payload())
    assert not while_running.started and "cooling down" in while_running.reason
    run.join(30)
    for _ in range(5):  # the alert flaps: resolved, firing, firing...
        assert not run.start_for_alert(alertmanager_payload("resolved")).started
        again = run.start_for_alert(alertmanager_payload())
        assert not again.started and "cooling down" in again.reason
    assert len(jobs.list_jobs(run.jobs_dir)) == 1

    run.settings = run.settings.model_copy(update={"retrain_cooldown_seconds": 0})
    later = run.start_for_alert(alertmanager_payload())
    assert later.started
    busy = run.start_for_alert(alertmanager_payload())
    assert not busy.started and later.job.id in busy.reason
    run.join(30)


# --- the extra data --------------------------------------------------------------------------


def house(frame: pd.DataFrame, i: int) -> dict:
    return {name: float(frame[name].iloc[i]) for name in FEATURE_NAMES}


def prediction_log_with_feedback(
    path: Path, pool: pd.DataFrame, test: pd.DataFrame, source: str | None = "labeller"
) -> str:
    """A real prediction log: single and batch predictions, feedback on some of them (labelled
    by ``source``; None: a row logged before sources were recorded)."""
    from housing.service import log as prediction_log

    url = f"sqlite:///{path}"
    engine = prediction_log.create_log_engine(url)
    prediction_log.migrate(engine)
    rows = []
    single = prediction_log.new_row(
        prediction_log.PREDICT,
        "a" * 32,
        status=200,
        inputs=house(pool, 0),
        prediction=2.0,
        latency_ms=1.0,
    )
    batch = prediction_log.new_row(
        prediction_log.BATCH,
        "b" * 32,
        status=200,
        latency_ms=1.0,
        inputs=[house(pool, 1), house(pool, 2), house(test, 0)],
        predictions=[1.0, 1.5, 2.5],
    )
    unlabelled = prediction_log.new_row(
        prediction_log.PREDICT,
        "c" * 32,
        status=200,
        inputs=house(pool, 3),
        prediction=1.0,
        latency_ms=1.0,
    )
    rows += [single, batch, unlabelled]
    for prediction_id, actual in [
        ("a" * 32, pool[TARGET.name].iloc[0]),
        ("b" * 32 + "-1", pool[TARGET.name].iloc[2]),
        ("b" * 32 + "-0", pool[TARGET.name].iloc[1]),
        ("b" * 32 + "-1", 4.99),  # feedback twice: the newest counts (in the label range)
        ("b" * 32 + "-2", test[TARGET.name].iloc[0]),  # a held-out house: never trained on
    ]:
        rows.append(
            prediction_log.new_row(
                prediction_log.FEEDBACK,
                status=200,
                latency_ms=1.0,
                feedback_for=prediction_id,
                actual=float(actual),
                created_at=datetime.now(UTC) + timedelta(milliseconds=len(rows)),
                label_source=source,
            )
        )
    prediction_log.write_rows(engine, rows)
    engine.dispose()
    return url


@pytest.fixture
def small_split(tmp_path: Path) -> Path:
    """A data folder with the real train/test files of a few hundred rows."""
    from housing import data

    pool = data.load_source(None).frame.sample(600, random_state=3).reset_index(drop=True)
    folder = tmp_path / "data"
    processed_dir(folder).mkdir(parents=True)
    pool.iloc[:400].to_csv(processed_dir(folder) / "train.csv", index=False)
    pool.iloc[400:500].to_csv(processed_dir(folder) / TEST_FILE, index=False)
    pool.iloc[500:].to_csv(folder / "unseen.csv", index=False)
    return folder


def test_gather_reads_feedback_and_batches_and_drops_held_out_houses(
    small_split: Path, tmp_path: Path
) -> None:
    _, test = load_split(small_split)
    unseen = pd.read_csv(small_split / "unseen.csv")
    url = prediction_log_with_feedback(tmp_path / "log.db", unseen, test)
    batch, _ = batches.store_batch(
        small_split, unseen.iloc[10:40].to_csv(index=False).encode(), "b"
    )
    settings = Settings(data_dir=small_split)
    shifted = test.iloc[5:8].assign(MedInc=lambda f: f["MedInc"] * 1.3)  # a shifted held-out copy
    sneaky, _ = batches.store_batch(small_split, shifted.to_csv(index=False).encode(), "s")

    got = retrain.gather(
        settings, retrain.RetrainRequest(), test, database_url=url, feedback_limit=100
    )
    assert got.batch_rows == 30 and [b.id for b in got.batches] == [batch.id, sneaky.id]
    assert got.feedback_rows == 3 and got.held_out_dropped == 3 + 1
    feedback = got.feedback.set_index("prediction_id")
    assert feedback.loc["a" * 32, TARGET.name] == unseen[TARGET.name].iloc[0]
    assert feedback.loc["b" * 32 + "-1", TARGET.name] == 4.99
    assert feedback.loc["b" * 32 + "-0", "MedInc"] == unseen["MedInc"].iloc[1]
    assert len(got.frame) == 33 and list(got.frame.columns) == list(COLUMNS)
    assert not retrain.near_held_out(got.frame, test).any(), "no held-out house in the extra data"
    assert got.feedback_used == {"anonymous": 0, "labeller": 3, "admin": 0}
    assert got.feedback_refused == {"anonymous": 0}

    only = retrain.gather(
        settings,
        retrain.RetrainRequest(batch_ids=[batch.id], feedback=False),
        test,
        database_url=url,
        feedback_limit=100,
    )
    assert only.batch_rows == 30 and only.feedback_rows == 0 and only.feedback is None
    missing = retrain.gather(
        settings,
        retrain.RetrainRequest(batch_ids=[]),
        test,
        database_url=f"sqlite:///{tmp_path / 'none.db'}",
        feedback_limit=100,
    )
    assert missing.feedback_rows == 0 and "no prediction log" in missing.feedback_note
    assert not (tmp_path / "none.db").exists(), "looking for feedback creates no log"


def test_held_out_houses_are_recognised_even_shifted_and_nothing_else(small_split: Path) -> None:
    from housing import data
    from housing.monitoring.shifts import older, richer

    train, test = load_split(small_split)
    copies = pd.concat([test.iloc[:3], richer(test.iloc[3:6]), older(test.iloc[6:9])])
    extra = pd.concat([train.iloc[:50], copies], ignore_index=True)
    kept, dropped = retrain.drop_held_out(extra, test)
    assert dropped == 9 and len(kept) == 50
    pd.testing.assert_frame_equal(kept, train.iloc[:50].reset_index(drop=True))
    # No false alarm on the real data: a block group is near no other one elsewhere.
    full = data.load_source(None).frame
    everything, held_out = full.iloc[:15000], full.iloc[15000:]
    assert retrain.drop_held_out(everything, held_out)[1] == 0


def test_the_issue_attack_nudged_held_out_rows_are_dropped_and_new_houses_kept(
    trained_registry: str,
) -> None:
    from housing.data import load_splits

    splits = load_splits(Path(trained_registry.removeprefix("sqlite:///")).parent / "data")
    held_out = pd.concat([splits.validation, splits.test], ignore_index=True)
    nudged = splits.test.assign(Population=splits.test["Population"] + 0.5)
    near = retrain.near_held_out(nudged, held_out)
    assert near.all() and len(near) == 4128
    moved = splits.validation.assign(AveOccup=splits.validation["AveOccup"] * 1.005)
    assert retrain.near_held_out(moved, held_out).all()
    # Genuinely other houses: the fitting rows (many share coordinates with a held-out row).
    shares_place = splits.train.merge(
        held_out[["Latitude", "Longitude"]].drop_duplicates(), on=["Latitude", "Longitude"]
    )
    assert len(shares_place) > 1000
    assert not retrain.near_held_out(splits.train, held_out).any()
    # A copy altered beyond the tolerance is a different house as far as the features tell.
    bigger = splits.test.assign(Population=splits.test["Population"] * 1.2 + 2)
    assert not retrain.near_held_out(bigger, held_out).any()


def test_only_trusted_feedback_trains_unless_anonymous_is_allowed(
    small_split: Path, tmp_path: Path
) -> None:
    _, test = load_split(small_split)
    unseen = pd.read_csv(small_split / "unseen.csv")
    settings = Settings(data_dir=small_split)
    for source in ("anonymous", None):  # None: logged before sources were recorded
        url = prediction_log_with_feedback(tmp_path / f"{source}.db", unseen, test, source)
        got = retrain.gather(
            settings, retrain.RetrainRequest(), test, database_url=url, feedback_limit=100
        )
        assert got.feedback_rows == 0 and len(got.frame) == 0
        assert got.feedback_refused == {"anonymous": 3} and got.held_out_dropped == 1
        assert got.feedback_used == {"anonymous": 0, "labeller": 0, "admin": 0}
        allowed = retrain.gather(
            settings,
            retrain.RetrainRequest(anonymous_feedback=True),
            test,
            database_url=url,
            feedback_limit=100,
        )
        assert allowed.feedback_rows == 3 and allowed.feedback_refused == {}
        assert allowed.feedback_used == {"anonymous": 3, "labeller": 0, "admin": 0}
    url = prediction_log_with_feedback(tmp_path / "admin.db", unseen, test, "admin")
    got = retrain.gather(
        settings, retrain.RetrainRequest(), test, database_url=url, feedback_limit=9
    )
    assert got.feedback_used == {"anonymous": 0, "labeller": 0, "admin": 3}
    assert got.feedback_refused == {"anonymous": 0}


@pytest.mark.slow
def test_a_retrain_on_bad_labels_is_refused_and_records_its_data(
    registry_copy: str,
    trained_registry: str,
    project_without_git: Path,
    tmp_path: Path,
    quick_train_params: dict,
) -> None:
    """In a copy of the project without .git (a source archive): DVC pins the batches there too."""
    source = Path(trained_registry.removeprefix("sqlite:///")).parent / "data"
    shutil.copytree(processed_dir(source), processed_dir(project_without_git / "data"))
    settings = Settings(
        data_dir=project_without_git / "data",
        reports_dir=tmp_path / "reports",
        MLFLOW_TRACKING_URI=registry_copy,
    )
    train, test = load_split(settings.data_dir)
    test_bytes = (processed_dir(settings.data_dir) / TEST_FILE).read_bytes()
    client = MlflowClient(tracking_uri=registry_copy, registry_uri=registry_copy)
    before = registry.champion(client, settings.model_name)
    # Real houses with their labels shuffled: valid by every rule, and wrong.
    noisy = train.sample(8000, random_state=1).reset_index(drop=True)
    noisy[TARGET.name] = np.random.default_rng(1).permutation(noisy[TARGET.name].to_numpy())
    batch, _ = batches.store_batch(settings.data_dir, noisy.to_csv(index=False).encode(), "bad")
    params = dict(quick_train_params)
    params["candidates"] = {k: params["candidates"][k] for k in ("linear", "gradient_boosting")}

    result = retrain.retrain(
        settings,
        TrainParams.model_validate(params),
        retrain.RetrainRequest(trigger="api", job_id="20250101T000000Z-0badf00d"),
        database_url=f"sqlite:///{tmp_path / 'no-log.db'}",
    )

    assert result["promoted"] is False and result["champion_changed"] is False
    assert (
        result["champion"]["version"] == result["champion_before"]["version"] == int(before.version)
    )
    assert "validation" in result["gate"]["refused_by"], result["reason"]
    assert result["gate"]["pending_approval"] is False
    assert registry.champion(client, settings.model_name).version == before.version
    assert (processed_dir(settings.data_dir) / TEST_FILE).read_bytes() == test_bytes
    data = result["data"]
    assert data["batches"] == [
        {"id": batch.id, "sha256": batch.sha256, "rows": 8000, "source": "bad"}
    ]
    assert data["extra_rows"] == data["batch_rows"] == 8000 - data["held_out_dropped"]
    assert data["dvc"]["scm"] == "none" and data["dvc"]["md5"].endswith(".dir"), data["dvc"]
    assert data["feedback_rows"] == 0

    # The registered (refused) version traces back to its run and its data.
    version = client.get_model_version(settings.model_name, str(result["registered"]["version"]))
    run = client.get_run(version.tags["parent_run_id"])
    assert run.info.run_id == result["run_id"] and run.info.run_name.startswith("retrain-")
    assert run.data.tags[f"housing.batch.{batch.id}"] == batch.sha256
    assert run.data.tags["housing.trigger"] == "api"
    assert run.data.tags["housing.batches_dvc_md5"] == data["dvc"]["md5"]
    assert run.data.tags["housing.job_id"] == "20250101T000000Z-0badf00d"
    assert run.data.params["extra_rows"] == str(data["extra_rows"])
    assert run.data.params["train_rows"] == str(len(train) + data["extra_rows"])
    assert version.tags["train_data_hash"] == run.data.params["train_data_hash"]
    assert version.tags["train_data_hash"] != before.tags.get("train_data_hash")
    lineage = json.loads(mlflow.artifacts.load_text(f"{run.info.artifact_uri}/data/lineage.json"))
    assert lineage == data
