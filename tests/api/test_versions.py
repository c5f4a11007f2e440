"""Approving a version through the real app: a pending version (an alert's retrain that passed
the gate) is listed, promoted by POST /admin/versions/{v}/promote with the admin key, and
served at once; unknown versions are 404 and a missing key 401."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from service_tools import API_KEY, MODEL, client_for, register_candidate, settings_for

from api.main import create_app
from housing import registry
from housing.gate import Verdict

ADMIN = {"X-API-Key": API_KEY}


def pending_version(uri: str) -> str:
    """Register the linear candidate and gate it as an alert's retrain does: passing, waiting."""
    client = client_for(uri)
    version = register_candidate(uri, "linear", promote=False)
    passing = Verdict((), {"validation": "planted verdict for this test"})
    decision = registry.gate(
        client,
        MODEL,
        client.get_model_version(MODEL, version),
        lambda _: passing,
        auto_promote=False,
    )
    assert decision.pending and not decision.promoted
    return version


def test_an_admin_approves_a_pending_version_and_it_is_served(
    registry_copy: str, tmp_path: Path
) -> None:
    version = pending_version(registry_copy)
    with TestClient(create_app(settings_for(registry_copy, tmp_path))) as client:
        before = client.get("/model").json()["version"]
        assert before != version
        (waiting,) = client.get("/admin/versions/pending", headers=ADMIN).json()
        assert waiting["version"] == version and waiting["candidate"] == "linear"
        assert "POST /admin/versions" in waiting["gate_reason"]

        assert client.post(f"/admin/versions/{version}/promote").status_code == 401
        assert client.get("/admin/versions/pending").status_code == 401
        unknown = client.post("/admin/versions/99/promote", headers=ADMIN)
        assert unknown.status_code == 404 and "no version 99" in unknown.json()["detail"]
        assert client.post("/admin/versions/0/promote", headers=ADMIN).status_code == 422

        answer = client.post(f"/admin/versions/{version}/promote", headers=ADMIN)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["version"] == version and body["replaced"] == before
        assert body["gate"] == "approved" and "planted verdict" in body["gate_reason"]
        assert body["job_id"] is None, "registered by `housing train`, not a retraining job"
        assert body["reload"] == {
            "result": "loaded",
            "version": version,
            "detail": body["reload"]["detail"],
        }
        assert client.get("/model").json()["version"] == version
        assert client.get("/admin/versions/pending", headers=ADMIN).json() == []
    assert str(registry.champion(client_for(registry_copy), MODEL).version) == version
