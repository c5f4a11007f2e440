"""The closed loop for real: drifted traffic with a labeller's feedback -> the drift alert (real
Prometheus and Alertmanager) -> Alertmanager's webhook on the API -> a retraining child process
-> the gate on the fixed validation split -> waiting for approval -> an admin approves -> the
API's hot reload; then a retrain on bad labels that the gate refuses. A client sends predictions
the whole time: none may fail.

The world: 8,000 houses are kept out of `housing data` as "production" (never in train or test).
The first champion learns from the rest's training split; an uploaded batch and the feedback
bring production houses in. The configs are the real ones, rendered with loopback addresses,
1 s intervals and HousingDataDrift's ``for`` cut to 2 s (as in test_monitoring_stack.py).
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import mlflow
import numpy as np
import pandas as pd
import pytest
import yaml
from mlflow import MlflowClient

from processes import Server, free_port, tool, wait_until
from housing import data, train
from housing.features import FEATURE_NAMES, TARGET
from housing.monitoring.shifts import coastal_only
from housing.monitoring.simulate import simulate
from housing.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
KEY = "closed-loop-test-key"  # nosec B105 - a throwaway secret for this test's API
LABELLER = "closed-loop-labeller-key"  # nosec B105
DRIFT_ALERT = "HousingDataDrift"
MODEL = "california-housing"
QUICK = {
    "seed": 42,
    "cv_folds": 2,
    "n_neighbors": 10,
    "importance_rows": 100,
    "latency_repeats": 3,
    "candidates": {
        "linear": {"alpha": [1.0]},
        "gradient_boosting": {"max_iter": [40], "learning_rate": [0.2]},
    },
}
"""Quick training settings: two candidates, no search (the pipelines are the real ones)."""
ADMIN = {"X-API-Key": KEY}


class SteadyClient(threading.Thread):
    """Predicts one production house after another for as long as the test runs."""

    def __init__(self, url: str, houses: pd.DataFrame, interval: float = 0.2) -> None:
        super().__init__(daemon=True, name="steady-client")
        self.url, self.interval = url, interval
        self.bodies = [{k: float(v) for k, v in row.items()} for _, row in houses.iterrows()]
        self.statuses: Counter[str] = Counter()
        self.versions: list[str] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=10) as client:
            i = 0
            while not self.stopping.is_set():
                try:
                    answer = client.post("/predict", json=self.bodies[i % len(self.bodies)])
                    self.statuses[str(answer.status_code)] += 1
                    if answer.status_code == 200:
                        self.versions.append(str(answer.json()["model_version"]))
                except httpx.HTTPError as exc:
                    self.statuses[type(exc).__name__] += 1
                i += 1
                self.stopping.wait(self.interval)

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=15)


def render_configs(tmp: Path, api_port: int, am_port: int, token_file: Path) -> tuple[Path, Path]:
    """prometheus.yml (+ rules) and alertmanager.yml from monitoring/, pointed at loopback."""
    rules = yaml.safe_load((ROOT / "monitoring/alert_rules.yml").read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            if rule.get("alert") == DRIFT_ALERT:
                rule["for"] = "2s"
    (tmp / "alert_rules.yml").write_text(yaml.safe_dump(rules, sort_keys=False))
    prometheus = yaml.safe_load((ROOT / "monitoring/prometheus.yml").read_text())
    prometheus["global"].update(scrape_interval="1s", evaluation_interval="1s")
    prometheus["rule_files"] = [str(tmp / "alert_rules.yml")]
    prometheus["alerting"]["alertmanagers"][0]["static_configs"] = [
        {"targets": [f"127.0.0.1:{am_port}"]}
    ]
    (job,) = prometheus["scrape_configs"]
    job.update(scrape_interval="1s", scrape_timeout="1s")
    job["static_configs"][0]["targets"] = [f"127.0.0.1:{api_port}"]
    (tmp / "prometheus.yml").write_text(yaml.safe_dump(prometheus, sort_keys=False))

    alertmanager = yaml.safe_load((ROOT / "monitoring/alertmanager.yml").read_text())
    nowhere = f"http://127.0.0.1:{free_port()}/"  # on-call bridges: not part of this test
    for receiver in alertmanager["receivers"]:
        for hook in receiver["webhook_configs"]:
            if "http_config" in hook:  # the retrain webhook: the real API, the real path
                path = hook["url"].split("://", 1)[1].split("/", 1)[1]
                hook["url"] = f"http://127.0.0.1:{api_port}/{path}"
                hook["http_config"]["authorization"]["credentials_file"] = str(token_file)
            else:
                hook["url"] = nowhere
    (tmp / "alertmanager.yml").write_text(yaml.safe_dump(alertmanager, sort_keys=False))
    return tmp / "prometheus.yml", tmp / "alertmanager.yml"


@pytest.fixture(scope="module")
def world(dataset_available: bool, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Data with 8,000 production houses kept out of train/test, and a first champion (v1)."""
    if not dataset_available:
        pytest.fail("set SCIKIT_LEARN_DATA to the folder holding cal_housing_py3.pkz")
    tmp = tmp_path_factory.mktemp("closed-loop")
    full = data.load_source(None).frame
    production = full.sample(8000, random_state=7)
    source = tmp / "census.csv"
    full.drop(production.index).to_csv(source, index=False)
    params = data.DataParams(test_size=0.25, seed=42, reference_size=2000)
    data.prepare(tmp / "data", params, source)
    params_file = tmp / "params.yaml"
    params_file.write_text(yaml.safe_dump({"data": params.model_dump(), "train": QUICK}))
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    settings = Settings(data_dir=tmp / "data", reports_dir=tmp / "reports", MLFLOW_TRACKING_URI=uri)
    first = train.train(settings, train.TrainParams.model_validate(QUICK))
    assert first.promoted and first.champion["version"] == 1
    production = production.reset_index(drop=True)
    coast = coastal_only(production)
    inland = production.drop(coast.index)
    return {
        "tmp": tmp,
        "uri": uri,
        "params_file": params_file,
        "coast": coast.reset_index(drop=True),
        "upload": inland.iloc[:5000].reset_index(drop=True),
        "noisy": inland.iloc[:5000].reset_index(drop=True),
        "steady": production.sample(300, random_state=1)[list(FEATURE_NAMES)],
    }


@pytest.fixture(scope="module")
def stack(world: dict) -> Iterator[dict]:
    """The API, Prometheus and Alertmanager on free loopback ports."""
    tmp = world["tmp"]
    api_port, prom_port, am_port = free_port(), free_port(), free_port()
    token_file = tmp / "api_key"
    token_file.write_text(KEY)
    token_file.chmod(0o600)
    env = {
        **os.environ,
        "HOUSING_API_KEY": KEY,
        "HOUSING_LABELLER_KEYS": LABELLER,
        "HOUSING_DATABASE_URL": f"sqlite:///{tmp / 'predictions.db'}",
        "MLFLOW_TRACKING_URI": world["uri"],
        "HOUSING_DATA_DIR": str(tmp / "data"),
        "HOUSING_PARAMS_FILE": str(world["params_file"]),
        "HOUSING_REPORTS_DIR": str(tmp / "reports"),
        "HOUSING_JOBS_DIR": str(tmp / "jobs"),
        "HOUSING_RETRAIN_COOLDOWN_SECONDS": "600",
        "HOUSING_RATE_LIMIT": "",
        "HOUSING_RELOAD_INTERVAL_SECONDS": "30",  # the job's own reload must do it, not polling
        "HOUSING_DRIFT_INTERVAL_SECONDS": "1",
        "HOUSING_DRIFT_MIN_ROWS": "200",
        "HOUSING_DRIFT_WINDOW_ROWS": "300",
        "HOUSING_LOG_LEVEL": "WARNING",
    }
    prometheus_yml, alertmanager_yml = render_configs(tmp, api_port, am_port, token_file)
    servers: list[Server] = []
    try:
        servers.append(
            Server(
                [str(BIN / "housing"), "serve", "--host", "127.0.0.1", "--port", str(api_port)],
                tmp / "api.log",
                env,
            )
        )
        servers.append(
            Server(
                [
                    tool("prometheus-alertmanager"),
                    f"--config.file={alertmanager_yml}",
                    f"--storage.path={tmp / 'alertmanager'}",
                    f"--web.listen-address=127.0.0.1:{am_port}",
                    "--cluster.listen-address=",
                ],
                tmp / "alertmanager.log",
            )
        )
        servers.append(
            Server(
                [
                    tool("prometheus"),
                    f"--config.file={prometheus_yml}",
                    f"--storage.tsdb.path={tmp / 'tsdb'}",
                    f"--web.listen-address=127.0.0.1:{prom_port}",
                ],
                tmp / "prometheus.log",
            )
        )
        api, prom = f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{prom_port}"
        wait_until(lambda: httpx.get(f"{api}/ready").status_code == 200, 120, "API ready")
        wait_until(lambda: httpx.get(f"{prom}/-/ready").status_code == 200, 30, "Prometheus")
        wait_until(
            lambda: httpx.get(f"http://127.0.0.1:{am_port}/-/ready").status_code == 200,
            30,
            "Alertmanager",
        )
        yield {"api": api, "prometheus": prom, "servers": servers, "tmp": tmp}
    finally:
        for server in reversed(servers):
            server.stop()
        # A retrain child outlives the API on purpose (its own session): wait for it here.
        for record in (tmp / "jobs").glob("*.json") if (tmp / "jobs").exists() else []:
            pid = json.loads(record.read_text()).get("pid")
            deadline = time.monotonic() + 120
            while pid and time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
                time.sleep(0.5)


def csv_bytes(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode()


def admin_get(stack: dict, path: str):
    answer = httpx.get(f"{stack['api']}{path}", headers=ADMIN, timeout=10)
    assert answer.status_code == 200, (path, answer.status_code, answer.text)
    return answer.json()


def finished(stack: dict, job_id: str) -> dict | None:
    job = admin_get(stack, f"/admin/jobs/{job_id}")
    return job if job["status"] in ("succeeded", "failed") else None


def alert_state(stack: dict) -> str | None:
    alerts = httpx.get(f"{stack['prometheus']}/api/v1/alerts", timeout=10).json()["data"]
    states = [a["state"] for a in alerts["alerts"] if a["labels"]["alertname"] == DRIFT_ALERT]
    return states[0] if states else None


def test_drift_alert_retrains_promotes_and_the_gate_refuses_bad_labels(
    world: dict, stack: dict
) -> None:
    api = stack["api"]
    steady = SteadyClient(api, world["steady"])
    steady.start()
    try:
        # 1. Labelled data arrives: a file with one bad row is refused whole, naming the row.
        bad = world["upload"].iloc[:20].copy()
        bad.loc[6, "Latitude"] = 48.0
        refused = httpx.post(
            f"{api}/data/upload",
            content=csv_bytes(bad),
            headers={**ADMIN, "Content-Type": "text/csv"},
            timeout=30,
        )
        assert refused.status_code == 422, refused.text
        assert [(e["row"], e["line"], e["field"], e["rule"]) for e in refused.json()["detail"]] == [
            (7, 8, "Latitude", "range")
        ]
        assert admin_get(stack, "/data/batches") == []
        no_key = httpx.post(f"{api}/data/upload", content=csv_bytes(bad), timeout=10)
        assert no_key.status_code == 401
        stored = httpx.post(
            f"{api}/data/upload",
            files={"file": ("inland.csv", csv_bytes(world["upload"]), "text/csv")},
            headers=ADMIN,
            timeout=60,
        )
        assert stored.status_code == 201, stored.text
        good_batch = stored.json()
        assert good_batch["rows"] == len(world["upload"]) and good_batch["source"] == "inland.csv"

        # 2. The world drifts: only coastal houses come in, and a labeller sends their values.
        labeller = {"X-Labeller-Key": LABELLER}
        with httpx.Client(base_url=api, timeout=30, headers=labeller) as client:
            drifted = simulate(
                client,
                world["coast"],
                drift="coastal",
                rate=1.6,  # up to 8 requests of 50 houses, with time to send every feedback
                duration=5.0,
                batch=50,
                feedback_share=1.0,
                seed=0,
            )
        # Bounded in time, so a loaded machine may send fewer; enough to fill the drift window.
        assert drifted.failed == 0 and drifted.refused == 0
        assert 300 <= drifted.predicted <= 400 and drifted.feedback == drifted.predicted

        # 3. Monitoring sees it; Prometheus fires; Alertmanager calls the API's webhook.
        wait_until(lambda: httpx.get(f"{api}/drift", timeout=10).json()["detected"], 60, "drift")
        wait_until(lambda: alert_state(stack) == "firing", 60, f"{DRIFT_ALERT} firing")
        started = wait_until(
            lambda: [j for j in admin_get(stack, "/admin/jobs") if j["trigger"] == "alert"],
            60,
            "a retrain started by the alert",
        )
        (alert_job,) = started
        assert alert_job["alert"]["alertname"] == DRIFT_ALERT
        assert alert_job["alert"]["fingerprint"], "the payload came from Alertmanager"

        # A flapping alert cannot start a storm: the same notification again is cooled down.
        again = httpx.post(
            f"{api}/admin/retrain/alert",
            json={"status": "firing", "alerts": [{"status": "firing", **alert_job["alert"]}]},
            headers={"Authorization": f"Bearer {KEY}"},
            timeout=10,
        )
        assert again.status_code == 200 and again.json()["started"] is False, again.text
        assert "cooling down" in again.json()["reason"]
        wrong = httpx.post(
            f"{api}/admin/retrain/alert",
            json={"status": "firing", "alerts": []},
            headers={"Authorization": "Bearer nope"},
            timeout=10,
        )
        assert wrong.status_code == 401

        # 4. The retrain (production data in) passes the gate on the validation split, but an
        #    alert's retrain waits for an admin: approved, this API reloads it at once (polling
        #    is set to 30 s).
        done = wait_until(lambda: finished(stack, alert_job["id"]), 150, "the alert's retrain")
        assert done["status"] == "succeeded", done["error"]
        result = done["result"]
        assert result["promoted"] is False and result["champion_changed"] is False, result
        assert result["gate"] == result["gate"] | {"refused_by": [], "pending_approval": True}
        assert result["champion_before"]["version"] == result["champion"]["version"] == 1
        assert result["registered"]["version"] == 2
        validation = result["gate"]["checks"]["validation"]
        assert validation["mse_gain_lower"] > 0
        assert httpx.get(f"{api}/model", timeout=10).json()["version"] == "1"
        (pending,) = admin_get(stack, "/admin/versions/pending")
        assert pending["version"] == "2" and "waiting for an admin" in pending["gate_reason"]
        approve = httpx.post(f"{api}/admin/versions/2/promote", timeout=30)
        assert approve.status_code == 401
        approve = httpx.post(f"{api}/admin/versions/2/promote", headers=ADMIN, timeout=60)
        assert approve.status_code == 200, approve.text
        approved = approve.json()
        assert approved["replaced"] == "1" and approved["gate"] == "approved"
        assert approved["job_id"] == alert_job["id"]
        assert approved["reload"] == approved["reload"] | {"result": "loaded", "version": "2"}
        assert admin_get(stack, "/admin/versions/pending") == []
        assert {c["model"] for c in result["candidates"]} == {"linear", "gradient_boosting"}
        assert all(c["rmse"] > 0 and c["r2"] > 0 for c in result["candidates"])
        used = result["data"]
        assert [b["id"] for b in used["batches"]] == [good_batch["id"]]
        assert 0 < used["feedback_rows"] <= drifted.feedback
        assert used["feedback_used"]["labeller"] == used["feedback_rows"]
        assert used["feedback_refused"] == {"anonymous": 0}
        assert used["extra_rows"] == used["batch_rows"] + used["feedback_rows"]
        assert used["batch_rows"] == len(world["upload"]) and used["held_out_dropped"] == 0
        serving = wait_until(
            lambda: (m := httpx.get(f"{api}/model", timeout=10).json())["version"] == "2" and m,
            15,
            "the API serving v2",
        )
        assert serving["version"] == "2"

        # 5. Bad labels arrive (real houses, shuffled values): the retrain is refused.
        noisy = world["noisy"].copy()
        noisy[TARGET.name] = np.random.default_rng(3).permutation(noisy[TARGET.name].to_numpy())
        stored = httpx.post(
            f"{api}/data/upload",
            content=csv_bytes(noisy),
            headers={**ADMIN, "Content-Type": "text/csv", "X-Filename": "shuffled.csv"},
            timeout=60,
        )
        assert stored.status_code == 201, stored.text
        job = httpx.post(f"{api}/admin/retrain", json={}, headers=ADMIN, timeout=30)
        assert job.status_code == 202, job.text
        busy = httpx.post(f"{api}/admin/retrain", json={}, headers=ADMIN, timeout=30)
        assert busy.status_code == 409 and busy.json()["job_id"] == job.json()["id"]
        refused_job = wait_until(lambda: finished(stack, job.json()["id"]), 150, "retrain 2")
        assert refused_job["status"] == "succeeded", refused_job["error"]
        outcome = refused_job["result"]
        assert outcome["promoted"] is False and outcome["champion_changed"] is False
        assert outcome["registered"]["version"] == 3 and outcome["champion"]["version"] == 2
        assert "validation" in outcome["gate"]["refused_by"], outcome["reason"]
        assert len(outcome["data"]["batches"]) == 2
        time.sleep(2)  # a few more predictions after the refused retrain
        assert httpx.get(f"{api}/model", timeout=10).json()["version"] == "2"
    finally:
        steady.stop()

    # 6. Zero failed requests throughout, and the served version moved from 1 to 2 once.
    assert set(steady.statuses) == {"200"}, steady.statuses
    assert steady.statuses["200"] >= 50
    switches = [v for i, v in enumerate(steady.versions) if i == 0 or v != steady.versions[i - 1]]
    assert switches == ["1", "2"], switches
    for server in stack["servers"]:
        assert server.alive(), server.output()

    # 7. The champion traces back to its data in MLflow.
    client = MlflowClient(tracking_uri=world["uri"], registry_uri=world["uri"])
    version = client.get_model_version(MODEL, "2")
    run = client.get_run(version.tags["parent_run_id"])
    assert run.data.tags["housing.trigger"] == "alert"
    assert run.data.tags["housing.job_id"] == alert_job["id"]
    assert run.data.tags[f"housing.batch.{good_batch['id']}"] == good_batch["sha256"]
    assert run.data.params["feedback_rows"] == str(used["feedback_rows"])
    feedback = pd.read_csv(
        mlflow.artifacts.download_artifacts(
            f"{run.info.artifact_uri}/data/feedback.csv",
            dst_path=str(stack["tmp"] / "artifacts"),
            tracking_uri=world["uri"],
        )
    )
    assert len(feedback) == used["feedback_rows"]
