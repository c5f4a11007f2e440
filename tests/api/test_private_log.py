"""The log is private: its rows, drift history and Evidently report need a read or admin key;
the docs can be switched off; /metrics can move to a port of its own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from service_tools import API_KEY, settings_for

from api.main import create_app
from housing.features import typical_row

READ_KEYS = ("reader-one", "reader-two")
PRIVATE = ("/predictions", "/drift/history", "/drift/report")


@pytest.fixture(scope="module")
def private(
    trained_registry: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    folder = tmp_path_factory.mktemp("private")
    settings = settings_for(trained_registry, folder, read_keys=",".join(READ_KEYS))
    with TestClient(create_app(settings)) as client:
        client.post("/predict", json=typical_row())
        yield client


@pytest.mark.parametrize("path", PRIVATE)
@pytest.mark.parametrize("key", [None, "", "wrong", READ_KEYS[0] + "x"])
def test_the_logs_contents_need_a_read_key(private: TestClient, path: str, key: str | None) -> None:
    headers = {"X-API-Key": key} if key is not None else {}
    response = private.get(path, headers=headers)
    assert response.status_code == 401, response.text
    assert "X-API-Key" in response.json()["detail"]
    assert "MedInc" not in response.text


@pytest.mark.parametrize("path", PRIVATE)
@pytest.mark.parametrize("key", [*READ_KEYS, API_KEY])
def test_a_read_key_or_the_admin_key_reads_it(private: TestClient, path: str, key: str) -> None:
    response = private.get(path, headers={"X-API-Key": key})
    assert response.status_code in (200, 404), response.text  # the report: none computed yet
    if path == "/predictions":
        assert response.json()["items"][0]["inputs"] == typical_row()


def test_what_stays_public(private: TestClient) -> None:
    for path in ("/health", "/ready", "/schema", "/model", "/drift", "/performance", "/metrics"):
        assert private.get(path).status_code == 200, path
    assert private.get("/docs").status_code == 200


def test_without_any_key_configured_the_log_refuses_everyone(
    trained_registry: str, tmp_path: Path
) -> None:
    settings = settings_for(trained_registry, tmp_path, api_key=None)
    with TestClient(create_app(settings)) as client:
        for path in PRIVATE:
            response = client.get(path, headers={"X-API-Key": ""})
            assert response.status_code == 403, (path, response.text)
            assert "HOUSING_READ_KEYS" in response.json()["detail"]


def test_docs_and_schema_can_be_switched_off(trained_registry: str, tmp_path: Path) -> None:
    settings = settings_for(trained_registry, tmp_path, docs=False)
    with TestClient(create_app(settings)) as client:
        for path in ("/docs", "/redoc", "/openapi.json"):
            assert client.get(path).status_code == 404, path
        assert client.get("/health").status_code == 200


def test_metrics_leave_the_api_port_when_given_their_own(
    trained_registry: str, tmp_path: Path
) -> None:
    """The metrics server itself is `housing serve`'s (tests/reliability/test_server_limits)."""
    settings = settings_for(trained_registry, tmp_path, metrics_port=9999)
    with TestClient(create_app(settings)) as client:
        assert client.get("/metrics").status_code == 404
        assert "/metrics" not in client.get("/openapi.json").json()["paths"]
