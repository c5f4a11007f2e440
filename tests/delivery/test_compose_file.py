"""docker-compose.yml: valid against the Compose specification and wired as the README says."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from delivery_tools import ROOT, run, tool

COMPOSE = ROOT / "docker-compose.yml"
SERVICES = {"mlflow", "trainer", "api", "ui", "prometheus", "alertmanager", "grafana"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def check_compose_schema(path: Path) -> Any:
    return run(tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(path))


def test_compose_file_matches_the_compose_specification() -> None:
    result = check_compose_schema(COMPOSE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_catches_a_broken_compose_file(tmp_path: Path) -> None:
    broken = tmp_path / "docker-compose.yml"
    text = COMPOSE.read_text().replace(
        "    restart: unless-stopped", "    restart_policy: always", 1
    )
    assert text != COMPOSE.read_text()
    broken.write_text(text)
    result = check_compose_schema(broken)
    assert result.returncode != 0
    assert "restart_policy" in result.stdout


def test_every_service_of_the_stack_is_there(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == SERVICES


def test_the_api_starts_after_a_successful_training_and_is_health_checked(
    compose: dict[str, Any],
) -> None:
    api = compose["services"]["api"]
    assert api["depends_on"]["trainer"]["condition"] == "service_completed_successfully"
    assert api["healthcheck"]["test"][0] in ("CMD", "CMD-SHELL")
    assert compose["services"]["trainer"]["restart"] == "no"
    assert compose["services"]["trainer"]["command"] == ["trainer"]


def named_volume_targets(service: dict[str, Any], compose: dict[str, Any]) -> dict[str, str]:
    """Container path -> named volume, for the short-syntax volumes of ``service``."""
    targets = {}
    for entry in service.get("volumes", []):
        source, target = entry.split(":")[:2]
        if source in compose["volumes"]:
            targets[target] = source
    return targets


def test_state_lives_on_named_volumes(compose: dict[str, Any]) -> None:
    services = compose["services"]
    mlflow = named_volume_targets(services["mlflow"], compose)
    command = services["mlflow"]["command"]
    store = command[command.index("--backend-store-uri") + 1]
    artifacts = command[command.index("--artifacts-destination") + 1]
    assert "--serve-artifacts" in command
    assert any(store.startswith(f"sqlite:///{target}/") for target in mlflow), store
    assert artifacts in mlflow, "the artifacts directory is its own named volume"
    api = named_volume_targets(services["api"], compose)
    database = services["api"]["environment"]["HOUSING_DATABASE_URL"]
    assert any(database.startswith(f"sqlite:///{target}/") for target in api), database


def test_bind_mounted_files_exist(compose: dict[str, Any]) -> None:
    """Prometheus, Alertmanager and Grafana mount the monitoring files from the repository."""
    mounts = [
        entry.split(":")[0]
        for service in compose["services"].values()
        for entry in service.get("volumes", [])
        if entry.startswith("./")
    ]
    assert len(mounts) >= 5
    missing = [source for source in mounts if not (ROOT / source).exists()]
    assert not missing, f"mounted but missing from the repository: {missing}"
    prometheus = " ".join(compose["services"]["prometheus"]["volumes"])
    assert "alert_rules.yml" in prometheus


@pytest.mark.parametrize(
    ("service", "variable", "secret"),
    [
        ("grafana", "GF_SECURITY_ADMIN_PASSWORD", "GRAFANA_ADMIN_PASSWORD"),
        ("api", "HOUSING_API_KEY", "HOUSING_API_KEY"),
    ],
)
def test_secrets_are_required_with_no_default(
    compose: dict[str, Any], service: str, variable: str, secret: str
) -> None:
    value = compose["services"][service]["environment"][variable]
    assert value.startswith(f"${{{secret}:?"), value


def test_alertmanager_gets_the_api_key_file_its_config_names(compose: dict[str, Any]) -> None:
    config = yaml.safe_load((ROOT / "monitoring" / "alertmanager.yml").read_text())
    files = {
        webhook["http_config"]["authorization"]["credentials_file"]
        for receiver in config["receivers"]
        for webhook in receiver.get("webhook_configs", [])
        if "http_config" in webhook
    }
    targets = {s["target"] for s in compose["services"]["alertmanager"].get("secrets", [])}
    assert files and files <= targets
    assert compose["secrets"]["housing_api_key"]["environment"] == "HOUSING_API_KEY"


def test_services_reach_each_other_by_service_name(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in ("trainer", "api"):
        assert services[name]["environment"]["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    assert services["ui"]["environment"]["HOUSING_API_URL"] == "http://api:8000"
    allowed = services["mlflow"]["environment"]["MLFLOW_SERVER_ALLOWED_HOSTS"].split(",")
    assert "mlflow:*" in allowed, "MLflow 3 refuses the Host header mlflow:5000 otherwise"


def test_the_offline_dataset_can_be_mounted(compose: dict[str, Any]) -> None:
    volumes = compose["services"]["trainer"]["volumes"]
    assert any(v.startswith("${SCIKIT_LEARN_DATA_DIR:-") for v in volumes), volumes


@pytest.mark.parametrize(
    ("service", "variable", "default"),
    [
        ("prometheus", "PROMETHEUS_IMAGE", "prom/prometheus:v2.53.4"),
        ("alertmanager", "ALERTMANAGER_IMAGE", "prom/alertmanager:v0.27.0"),
        ("grafana", "GRAFANA_IMAGE", "grafana/grafana:11.2.0"),
    ],
)
def test_third_party_images_are_overridable_and_pinned_by_default(
    compose: dict[str, Any], service: str, variable: str, default: str
) -> None:
    """A mirror or an offline build (../shared/docker/offline-images.sh) sets the variable."""
    assert compose["services"][service]["image"] == f"${{{variable}:-{default}}}"


def test_the_project_image_takes_its_base_image_as_a_build_arg(compose: dict[str, Any]) -> None:
    build = compose["x-housing-image"]["build"]
    assert build["args"] == {"BASE_IMAGE": "${BASE_IMAGE:-python:3.11-slim}"}
    dockerfile = (ROOT / build["dockerfile"]).read_text()
    assert "ARG BASE_IMAGE=python:3.11-slim" in dockerfile


def test_host_ports_and_their_address_come_from_variables(compose: dict[str, Any]) -> None:
    """So a busy port or a second stack (make test-docker) never clashes; 127.0.0.1 keeps the
    ports off the network."""
    for name, service in compose["services"].items():
        for mapping in service.get("ports", []):
            assert mapping.startswith("${HOUSING_BIND_ADDRESS:-0.0.0.0}:${"), (name, mapping)
