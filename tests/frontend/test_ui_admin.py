"""The Admin page through Streamlit's AppTest against a live API with an API key: upload a batch
(refused with its rows, then stored), start a real retrain, follow it to the gate's decision;
approve a version waiting for approval and see it served."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pandas as pd
import pytest
import yaml
from streamlit.testing.v1 import AppTest

from ui_live import ADMIN_KEY, APP, LINEAR_ONLY, api_env, free_port, start_api, stop, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def admin_api(registry_copy: str, trained_registry: str, tmp_path: Path) -> Iterator[str]:
    """An API with an API key on a private copy of the registry and of the prepared data."""
    with live_admin_api(registry_copy, trained_registry, tmp_path) as url:
        yield url


@contextmanager
def live_admin_api(registry_copy: str, trained_registry: str, tmp_path: Path) -> Iterator[str]:
    """`admin_api`, for a test that changes the registry before the API starts."""
    source = Path(trained_registry.removeprefix("sqlite:///")).parent / "data" / "processed"
    shutil.copytree(source, tmp_path / "data" / "processed")
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"train": LINEAR_ONLY}))
    env = api_env(registry_copy, tmp_path / "data", tmp_path / "log.db") | {
        "HOUSING_API_KEY": ADMIN_KEY,
        "HOUSING_JOBS_DIR": str(tmp_path / "jobs"),
        "HOUSING_PARAMS_FILE": str(params),
    }
    port = free_port()
    process = start_api(env, port, tmp_path / "api.log")
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{url}/ready", process)
        yield url
    finally:
        stop(process)
        wait_for_jobs(tmp_path / "jobs")


def wait_for_jobs(folder: Path, seconds: float = 120.0) -> None:
    """A retrain child outlives the API on purpose (its own session): let it end."""
    deadline = time.monotonic() + seconds
    for record in folder.glob("*.json") if folder.exists() else []:
        pid = json.loads(record.read_text()).get("pid")
        while pid and Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.5)


def admin_page(url: str, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv("HOUSING_API_URL", url)
    at = AppTest.from_file(str(APP), default_timeout=30).run()
    at.switch_page("views/admin.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_upload_retrain_and_follow_the_job(
    admin_api: str, trained_registry: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = admin_page(admin_api, monkeypatch)
    assert any("Enter the API key" in i.value for i in at.info)

    at.text_input(key="admin-api-key").set_value("wrong").run()
    assert not at.exception
    assert any("401" in e.value and "X-API-Key" in e.value for e in at.error)

    at.text_input(key="admin-api-key").set_value(ADMIN_KEY).run()
    assert not at.exception and not at.error
    data_dir = Path(trained_registry.removeprefix("sqlite:///")).parent / "data"
    rows = pd.read_csv(data_dir / "processed" / "train.csv").sample(200, random_state=5)
    bad = rows.copy()
    bad.iloc[1, bad.columns.get_loc("MedInc")] = -3.0
    at.file_uploader(key="admin-upload").set_value(
        ("bad.csv", bad.to_csv(index=False).encode(), "text/csv")
    )
    at.run()
    at.button(key="admin-upload-go").click().run()
    assert not at.exception
    assert any("Nothing was stored" in e.value for e in at.error)
    (errors,) = [d.value for d in at.dataframe if "rule" in d.value.columns]
    assert errors.to_dict("records") == [
        {
            "problem": "line 3: MedInc -3.0 is outside [0, 20] $10,000",
            "column": "MedInc",
            "rule": "range",
        }
    ]

    at.file_uploader(key="admin-upload").set_value(
        ("good.csv", rows.to_csv(index=False).encode(), "text/csv")
    )
    at.run()
    at.button(key="admin-upload-go").click().run()
    assert not at.exception and not at.error
    assert any("Stored: batch" in s.value and "200 rows" in s.value for s in at.success)
    stored = httpx.get(f"{admin_api}/data/batches", headers={"X-API-Key": ADMIN_KEY}).json()
    assert [b["rows"] for b in stored] == [200]

    at.button(key="admin-retrain").click().run()
    assert not at.exception and not at.error
    job_id = at.session_state["admin-job"]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        job = httpx.get(f"{admin_api}/admin/jobs/{job_id}", headers={"X-API-Key": ADMIN_KEY}).json()
        if job["status"] in ("succeeded", "failed"):
            break
        time.sleep(1)
    assert job["status"] == "succeeded", job
    at.run()
    assert not at.exception and not at.error
    metrics = {m.label: m.value for m in at.metric}
    champion = job["result"]["champion"]["version"]
    assert metrics["Champion now"] == f"v{champion}"
    moved = job["result"]["champion_changed"]
    assert metrics["Champion before"] == f"v{job['result']['champion_before']['version']}"
    (candidates,) = [d.value for d in at.dataframe if "cv_rmse" in d.value.columns]
    assert candidates["model"].tolist() == ["linear"]
    text = "\n".join(m.value for m in at.markdown)
    assert ("**Promoted.**" if moved else "**Not promoted.**") in text
    assert job_id in text


def pending_version(uri: str) -> str:
    """A version gated as an alert's retrain leaves it: passed, waiting for approval (the
    champion's own model registered again; the real rules are tested in tests/unit)."""
    from mlflow import MlflowClient

    from housing import registry
    from housing.gate import Verdict

    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    champion = registry.champion(client, "california-housing")
    version = registry.register(
        client, "california-housing", champion.source, champion.run_id, {"candidate": "linear"}
    )
    passing = Verdict((), {"validation": "validation RMSE planted for this test"})
    decision = registry.gate(
        client, "california-housing", version, lambda _: passing, auto_promote=False
    )
    assert decision.pending
    return str(version.version)


def test_an_admin_approves_a_pending_version_on_the_admin_page(
    registry_copy: str, trained_registry: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    waiting = pending_version(registry_copy)
    with live_admin_api(registry_copy, trained_registry, tmp_path) as url:
        assert httpx.get(f"{url}/model").json()["version"] != waiting
        at = admin_page(url, monkeypatch)
        at.text_input(key="admin-api-key").set_value(ADMIN_KEY).run()
        assert not at.exception and not at.error
        text = "\n".join(m.value for m in at.markdown)
        assert f"**v{waiting}** (linear): passes the gate" in text
        assert "waiting for an admin" in text
        at.button(key=f"admin-approve-{waiting}").click().run()
        assert not at.exception and not at.error
        assert any(f"v{waiting} is the champion" in s.value for s in at.success)
        assert httpx.get(f"{url}/model").json()["version"] == waiting
        at.run()
        assert not [b for b in at.button if b.key == f"admin-approve-{waiting}"]
