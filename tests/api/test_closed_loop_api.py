"""The closed loop's endpoints in process: data upload (all or none, per-row errors), batches,
retrain requests, jobs, the alert webhook's authentication. Starting real retrains is left to
tests/integration/test_closed_loop.py (it trains in child processes)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from service_tools import API_KEY, settings_for

from api.main import create_app
from housing import jobs
from housing.data import COLUMNS, TEST_FILE, processed_dir
from housing.features import typical_row

ADMIN = {"X-API-Key": API_KEY}


def houses(rows: int, start: float = 2.0) -> pd.DataFrame:
    frame = pd.DataFrame([typical_row()] * rows)
    frame["MedInc"] = [start + i / 100 for i in range(rows)]
    frame["MedHouseVal"] = 2.5
    return frame.loc[:, list(COLUMNS)]


def csv(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode()


@pytest.fixture
def app_client(
    trained_registry: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[TestClient]:
    """The app on the trained champion, with batches and job records in ``tmp_path``."""
    processed_dir(tmp_path / "data").mkdir(parents=True)
    houses(5, start=9.0).to_csv(processed_dir(tmp_path / "data") / TEST_FILE, index=False)
    monkeypatch.setenv("HOUSING_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("HOUSING_JOBS_DIR", str(tmp_path / "jobs"))
    jobs.get_retrain_settings.cache_clear()
    try:
        with TestClient(create_app(settings_for(trained_registry, tmp_path))) as client:
            yield client
    finally:
        jobs.get_retrain_settings.cache_clear()


def test_upload_stores_a_batch_once_or_refuses_it_whole(app_client: TestClient) -> None:
    good = csv(houses(30))
    created = app_client.post(
        "/data/upload", content=good, headers={**ADMIN, "Content-Type": "text/csv"}
    )
    assert created.status_code == 201, created.text
    batch = created.json()
    assert batch["rows"] == 30 and batch["created"] is True and batch["source"] == "upload.csv"
    again = app_client.post(
        "/data/upload", files={"file": ("same.csv", good, "text/csv")}, headers=ADMIN
    )
    assert again.status_code == 200 and again.json()["id"] == batch["id"]
    assert again.json()["created"] is False

    bad = houses(150).astype(object)
    bad["HouseAge"] = "old"  # 150 broken cells: the first 100 listed, all counted
    refused = app_client.post(
        "/data/upload", files={"file": ("bad.csv", csv(bad), "text/csv")}, headers=ADMIN
    )
    assert refused.status_code == 422
    body = refused.json()
    assert body["error_count"] == 150 and body["rows"] == 150 and len(body["detail"]) == 100
    assert body["detail"][0] == {
        "field": "HouseAge",
        "rule": "type",
        "message": "HouseAge 'old' is not a number",
        "row": 1,
        "line": 2,
    }
    assert body["summary"].startswith("bad.csv: batch rejected, nothing stored")
    listed = app_client.get("/data/batches", headers=ADMIN).json()
    assert [b["id"] for b in listed] == [batch["id"]]


@pytest.mark.parametrize(
    ("kwargs", "status", "words"),
    [
        ({"json": {"MedInc": 1}}, 415, "text/csv or multipart"),
        ({"files": {"other": ("x.csv", b"a", "text/csv")}}, 422, "`file` field"),
        ({"content": b"", "headers": {"Content-Type": "text/csv"}}, 422, "empty file"),
    ],
)
def test_upload_says_what_is_wrong_with_the_request(
    app_client: TestClient, kwargs: dict, status: int, words: str
) -> None:
    headers = {**ADMIN, **kwargs.pop("headers", {})}
    answer = app_client.post("/data/upload", headers=headers, **kwargs)
    assert answer.status_code == status and words in answer.text, answer.text


def test_admin_endpoints_need_the_key(app_client: TestClient) -> None:
    for method, path in [
        ("POST", "/data/upload"),
        ("GET", "/data/batches"),
        ("POST", "/admin/retrain"),
        ("GET", "/admin/jobs"),
        ("GET", "/admin/jobs/20250101T000000Z-00000000"),
        ("POST", "/admin/retrain/alert"),
        ("GET", "/admin/versions/pending"),
        ("POST", "/admin/versions/1/promote"),
    ]:
        answer = app_client.request(method, path, headers={"X-API-Key": "wrong"})
        assert answer.status_code == 401, (path, answer.text)


def test_retrain_requests_are_checked_and_refused_while_one_runs(
    app_client: TestClient, tmp_path: Path
) -> None:
    unknown = app_client.post("/admin/retrain", json={"batches": ["nope"]}, headers=ADMIN)
    assert unknown.status_code == 422 and "unknown batch id(s): nope" in unknown.text
    extra = app_client.post("/admin/retrain", json={"epochs": 3}, headers=ADMIN)
    assert extra.status_code == 422
    held = jobs.try_lock(tmp_path / "jobs", "20250101T000000Z-0000beef")
    try:
        busy = app_client.post("/admin/retrain", headers=ADMIN)
    finally:
        jobs.release(held)
    assert busy.status_code == 409
    assert busy.json()["job_id"] == "20250101T000000Z-0000beef"
    assert jobs.list_jobs(tmp_path / "jobs") == [], "a refused start leaves no record"


def test_jobs_are_listed_and_read_by_id(app_client: TestClient, tmp_path: Path) -> None:
    record = jobs.JobRecord(
        id=jobs.new_job_id(),
        trigger="cli",
        status="succeeded",
        requested_at=jobs.now(),
        result={"promoted": False, "champion_changed": False},
    )
    jobs.write_job(tmp_path / "jobs", record)
    assert app_client.get("/admin/jobs", headers=ADMIN).json()[0]["id"] == record.id
    one = app_client.get(f"/admin/jobs/{record.id}", headers=ADMIN)
    assert one.status_code == 200 and one.json()["result"]["promoted"] is False
    missing = app_client.get("/admin/jobs/20250101T000000Z-00000000", headers=ADMIN)
    assert missing.status_code == 404
    assert app_client.get("/admin/jobs/..%2Fsecrets", headers=ADMIN).status_code in (404, 422)


def test_alert_webhook_takes_a_bearer_token_and_ignores_what_is_not_for_it(
    app_client: TestClient,
) -> None:
    resolved = {
        "version": "4",
        "status": "resolved",
        "alerts": [{"status": "resolved", "labels": {"alertname": "X", "action": "retrain"}}],
    }
    bearer = {"Authorization": f"Bearer {API_KEY}"}
    answer = app_client.post("/admin/retrain/alert", json=resolved, headers=bearer)
    assert answer.status_code == 200 and answer.json()["started"] is False
    assert "no firing alert" in answer.json()["reason"]
    other = {"status": "firing", "alerts": [{"status": "firing", "labels": {"action": "page"}}]}
    assert app_client.post("/admin/retrain/alert", json=other, headers=ADMIN).json() == {
        "started": False,
        "reason": "no firing alert asks for a retrain",
        "job": None,
    }
    wrong = app_client.post(
        "/admin/retrain/alert", json=resolved, headers={"Authorization": "Bearer nope"}
    )
    assert wrong.status_code == 401
    malformed = app_client.post("/admin/retrain/alert", json={"alerts": 3}, headers=bearer)
    assert malformed.status_code == 422
