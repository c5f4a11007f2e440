"""Bounded storage: what any logged request stores is a few kB, whatever its body; a page of
GET /predictions is capped in rows and bytes. Measured on the log's real SQLite file."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from service_tools import API_KEY, settings_for

from api.main import create_app
from housing.features import typical_row
from housing.service.bounds import MAX_STORED_BYTES

READ = {"X-API-Key": API_KEY}
MB = 1_048_576


@pytest.fixture(scope="module")
def bounded(
    trained_registry: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    folder = tmp_path_factory.mktemp("bounded")
    settings = settings_for(
        trained_registry, folder, max_body_bytes=2 * MB, predictions_max_bytes=65_536
    )
    with TestClient(create_app(settings)) as client:
        client.app.state.database = folder / "predictions.db"
        yield client


def database(client: TestClient) -> Path:
    return client.app.state.database


def stored_bytes(client: TestClient, request_id: str) -> int:
    """What the row of ``request_id`` holds in its variable-size columns, in bytes."""
    with sqlite3.connect(database(client)) as connection:
        row = connection.execute(
            "SELECT length(CAST(inputs AS BLOB)), length(CAST(raw_body AS BLOB)),"
            " length(CAST(error AS BLOB)), length(CAST(predictions AS BLOB))"
            " FROM prediction_log WHERE id = ?",
            (request_id,),
        ).fetchone()
    assert row is not None, request_id
    return sum(size or 0 for size in row)


def file_bytes(client: TestClient) -> int:
    """The log's size on disk: the database and its write-ahead log."""
    path = database(client)
    return sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())


HUGE_BODIES = {
    "a long string": {**typical_row(), "MedInc": "x" * MB},
    "many unknown fields": {**typical_row(), **{f"f{i:06d}": i for i in range(60_000)}},
    "a long list": [typical_row()] * 5_000,
    "a long non-ascii string": {**typical_row(), "MedInc": "é" * (MB // 2)},
}


@pytest.mark.parametrize("name", list(HUGE_BODIES))
def test_a_rejected_1_mb_body_stores_at_most_a_few_kb(bounded: TestClient, name: str) -> None:
    """Each of these was stored whole (1 MB a row: the log grew 326 MB in 4.6 s)."""
    content = json.dumps(HUGE_BODIES[name], ensure_ascii=False).encode()
    assert 500_000 < len(content) < 2 * MB
    response = bounded.post(
        "/predict", content=content, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert stored_bytes(bounded, response.headers["X-Request-ID"]) <= 3 * MAX_STORED_BYTES


def test_twenty_rejected_megabytes_grow_the_file_by_kilobytes(bounded: TestClient) -> None:
    content = json.dumps({**typical_row(), "MedInc": "x" * MB}).encode()
    headers = {"content-type": "application/json"}
    bounded.post("/predict", content=content, headers=headers)  # pages allocated once
    before = file_bytes(bounded)
    for _ in range(20):
        assert bounded.post("/predict", content=content, headers=headers).status_code == 422
    grown = file_bytes(bounded) - before
    assert grown < MB, grown  # 20 MB sent; whole pages per commit in the WAL included


def test_a_batch_of_1000_rejected_rows_stores_a_bounded_summary(bounded: TestClient) -> None:
    """Answered 200 with 1,000 errors: the row kept all 1,000 rows' junk and errors (1 MB)."""
    junk = {**typical_row(), "MedInc": "y" * 900, "extra": "z" * 100}
    response = bounded.post("/predict/batch", json={"houses": [junk] * 1000})
    assert response.status_code == 200 and response.json()["rejected"] == 1000
    assert len(response.json()["results"]) == 1000  # the client still gets every row's reasons
    request_id = response.headers["X-Request-ID"]
    # 1,000 nulls in inputs and in predictions (10 kB), the summary (2 kB); it was 1 MB
    assert stored_bytes(bounded, request_id) <= 16 * 1024
    with sqlite3.connect(database(bounded)) as connection:
        error, inputs = connection.execute(
            "SELECT error, inputs FROM prediction_log WHERE id = ?", (request_id,)
        ).fetchone()
    error = json.loads(error)
    assert error[0]["index"] == 0 and error[-1]["rule"] == "truncated"
    assert error[-1]["message"].endswith("more not logged")
    assert json.loads(inputs) == [None] * 1000


def test_a_batch_keeps_the_houses_it_predicted_and_drops_the_rejected(bounded: TestClient) -> None:
    houses = [typical_row(), {**typical_row(), "MedInc": "w" * 100_000}, typical_row()]
    response = bounded.post("/predict/batch", json={"houses": houses})
    assert response.json()["predicted"] == 2
    with sqlite3.connect(database(bounded)) as connection:
        (inputs,) = connection.execute(
            "SELECT inputs FROM prediction_log WHERE id = ?", (response.headers["X-Request-ID"],)
        ).fetchone()
    assert json.loads(inputs) == [typical_row(), None, typical_row()]


def test_a_page_of_the_log_is_capped_in_bytes_and_continues(bounded: TestClient) -> None:
    """A 200-house batch's row is ~35 kB (1,000 houses: ~170 kB; 500 such rows were one 85 MB
    answer): with a 64 kB cap a page holds one or two, and ``next_offset`` goes on from there."""
    batch = {"houses": [typical_row()] * 200}
    ids = [bounded.post("/predict/batch", json=batch).headers["X-Request-ID"] for _ in range(4)]
    first = bounded.get(
        "/predictions", params={"limit": 500, "endpoint": "/predict/batch"}, headers=READ
    )
    assert first.status_code == 200
    assert len(first.content) <= 65_536
    page = first.json()
    seen = [item["id"] for item in page["items"]]
    assert 1 <= len(seen) <= 2 and seen[0] == ids[-1]
    offset = page["next_offset"]
    assert offset == len(seen)
    while offset is not None:
        page = bounded.get(
            "/predictions",
            params={"limit": 500, "offset": offset, "endpoint": "/predict/batch"},
            headers=READ,
        ).json()
        seen += [item["id"] for item in page["items"]]
        offset = page["next_offset"]
    assert seen[:4] == ids[::-1]


def test_a_page_of_small_rows_is_capped_by_rows(bounded: TestClient) -> None:
    for _ in range(3):
        bounded.post("/predict", json=typical_row())
    page = bounded.get("/predictions", params={"limit": 2}, headers=READ).json()
    assert len(page["items"]) == 2 and page["next_offset"] == 2
    assert bounded.get("/predictions", params={"limit": 501}, headers=READ).status_code == 422


def test_the_ui_reads_every_row_through_pages_cut_short(bounded: TestClient) -> None:
    """The UI's client went on at fixed 500-row offsets: pages cut by bytes would skip rows."""
    from frontend.client import ApiClient
    from frontend.settings import UISettings

    from housing.service import log as prediction_log

    for _ in range(3):
        bounded.post("/predict/batch", json={"houses": [typical_row()] * 200})
    api = ApiClient(UISettings(api_url="http://testserver"))
    api._http = bounded  # the same client, on the app in this process
    records = api.predictions(key=API_KEY, limit=500, endpoint="/predict/batch")
    engine = bounded.app.state.runtime.engine
    stored = prediction_log.page(engine, limit=500, endpoint="/predict/batch")
    assert len(stored) >= 3
    assert [r.id for r in records] == [row["id"] for row in stored]
