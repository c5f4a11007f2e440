"""Security: admin key and rate limit on a live server; no default secret in settings, compose,
Kubernetes, Dockerfile or monitoring config; bandit finds nothing of medium or high severity."""

from __future__ import annotations

import importlib
import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic_settings import BaseSettings
from reliability_harness import API_KEY, BIN, ROOT, Service, log_rows, running_service

SECRET_NAME = re.compile(r"(pass(word)?|secret|token|api_?key|credential|private_?key)", re.I)
REQUIRED_REFERENCE = re.compile(r"^\$\{[A-Z0-9_]+:\?[^}]*\}$")
"""Compose's "required, no default" interpolation: ``${NAME:?message}``."""
PLACEHOLDER = re.compile(r"REPLACE_ME|<[^>]+>")
URL_PASSWORD = re.compile(r"://[^/\s:@]+:([^@\s/]+)@")

SETTINGS_MODULES = (
    "housing.settings",
    "housing.service.settings",
    "housing.monitoring.settings",
    "frontend.settings",
)


# --- live server: admin key, rate limit ---------------------------------------------------------

RATE = 15


@pytest.fixture(scope="module")
def limited(
    trained_registry: str, data_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Service]:
    from reliability_harness import service_env

    workdir = tmp_path_factory.mktemp("security")
    env = service_env(
        trained_registry,
        workdir / "log.db",
        data_dir,
        HOUSING_RATE_LIMIT=f"{RATE}/minute",
        HOUSING_RELOAD_INTERVAL_SECONDS="3600",
    )
    with running_service(env, workdir) as service:
        yield service


@pytest.mark.integration
@pytest.mark.slow
def test_admin_endpoint_refuses_a_missing_or_wrong_key_and_accepts_the_right_one(
    limited: Service,
) -> None:
    with limited.client() as client:
        missing = client.post("/admin/reload")
        wrong = client.post("/admin/reload", headers={"X-API-Key": API_KEY + "x"})
        empty = client.post("/admin/reload", headers={"X-API-Key": ""})
        right = client.post("/admin/reload", headers={"X-API-Key": API_KEY})
    for response in (missing, wrong, empty):
        assert response.status_code in (401, 403), response.text
        assert "X-API-Key" in response.json()["detail"]
    assert right.status_code == 200, right.text
    assert right.json()["result"] == "unchanged"


@pytest.mark.integration
@pytest.mark.slow
def test_a_client_over_the_rate_limit_gets_429_logged_and_probes_stay_open(
    limited: Service, houses: list[dict[str, float]]
) -> None:
    with limited.client() as client:
        answers = [client.post("/predict", json=houses[i]) for i in range(RATE + 5)]
        health = client.get("/health")
        ready = client.get("/ready")
    statuses = [a.status_code for a in answers]
    assert statuses[0] == 200 and statuses[-1] == 429, statuses
    first_refusal = statuses.index(429)
    assert set(statuses[first_refusal:]) == {429}, statuses
    assert statuses.count(200) <= RATE
    refused = answers[-1]
    assert "rate limit" in refused.json()["detail"]
    rows = log_rows(limited.database, "id = ?", (refused.headers["X-Request-ID"],))
    assert [row["status"] for row in rows] == [429]
    assert health.status_code == 200 and ready.status_code == 200


# --- no default secrets -------------------------------------------------------------------------


def settings_with_secret_defaults(module_names: tuple[str, ...]) -> list[str]:
    """``module.Class.field`` of every settings field that names a secret and has a default
    (other than None), or whose default URL embeds a password."""
    found = []
    for name in module_names:
        module = importlib.import_module(name)
        for obj in vars(module).values():
            if not (isinstance(obj, type) and issubclass(obj, BaseSettings)):
                continue
            if obj is BaseSettings or obj.__module__ != module.__name__:
                continue
            for field_name, field in obj.model_fields.items():
                default = None if field.default_factory else field.default
                where = f"{name}.{obj.__name__}.{field_name}"
                if field.default_factory is not None and SECRET_NAME.search(field_name):
                    found.append(where)
                elif SECRET_NAME.search(field_name) and default is not None:
                    found.append(where)
                elif isinstance(default, str) and URL_PASSWORD.search(default):
                    found.append(where)
    return found


def compose_secret_defaults(compose: dict[str, Any]) -> list[str]:
    """``service.VARIABLE`` of every secret-named variable that is not ``${NAME:?...}``."""
    found = []
    for service_name, service in (compose.get("services") or {}).items():
        environment = service.get("environment") or {}
        if isinstance(environment, list):
            environment = dict(
                item.split("=", 1) if "=" in item else (item, None) for item in environment
            )
        for variable, value in environment.items():
            if not SECRET_NAME.search(variable):
                continue
            if value is None or not REQUIRED_REFERENCE.match(str(value)):
                found.append(f"{service_name}.{variable}={value!r}")
    return found


def k8s_secret_values(documents: list[dict[str, Any]]) -> list[str]:
    """Secret values written into manifests: a Secret that is not a placeholder, a ConfigMap
    key that names a secret, or a container env var that names one with a literal value."""
    found = []
    for doc in documents:
        kind, name = doc.get("kind"), doc.get("metadata", {}).get("name")
        if kind == "Secret":
            for key, value in {**doc.get("stringData", {}), **doc.get("data", {})}.items():
                if not PLACEHOLDER.search(str(value)):
                    found.append(f"Secret/{name}.{key}")
        if kind == "ConfigMap":
            for key, value in (doc.get("data") or {}).items():
                if SECRET_NAME.search(key) or URL_PASSWORD.search(str(value)):
                    found.append(f"ConfigMap/{name}.{key}")
        for container in _containers(doc):
            for env in container.get("env") or []:
                if SECRET_NAME.search(env["name"]) and "value" in env:
                    found.append(f"{kind}/{name}.{container['name']}.{env['name']}")
    return found


def _containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    spec = doc.get("spec", {})
    pod = spec.get("template", {}).get("spec", spec.get("jobTemplate", {}).get("spec", {}))
    if "template" in pod:  # CronJob
        pod = pod["template"].get("spec", {})
    return [*(pod.get("containers") or []), *(pod.get("initContainers") or [])]


def dockerfile_secret_values(text: str) -> list[str]:
    """``ENV``/``ARG`` lines giving a secret-named variable a value."""
    found = []
    for line in text.replace("\\\n", " ").splitlines():
        words = line.split()
        if not words or words[0].upper() not in ("ENV", "ARG"):
            continue
        for assignment in words[1:]:
            variable, _, value = assignment.partition("=")
            if SECRET_NAME.search(variable) and value:
                found.append(" ".join(words))
    return found


def config_literal_secrets(documents: list[Any]) -> list[str]:
    """Secret-named keys holding literal strings anywhere in YAML config (Grafana provisioning,
    Prometheus, Alertmanager); ``*_file`` keys and ``${...}`` references are allowed."""
    found: list[str] = []

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                where = f"{path}.{key}"
                secret_named = SECRET_NAME.search(str(key)) and not str(key).endswith("_file")
                if secret_named and isinstance(value, str) and not value.startswith("$"):
                    found.append(where)
                walk(value, where)
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{path}[{i}]")
        elif isinstance(node, str) and URL_PASSWORD.search(node):
            found.append(path)

    for i, document in enumerate(documents):
        walk(document, f"doc{i}")
    return found


def _yaml_documents(paths: list[Path]) -> list[Any]:
    documents = []
    for path in paths:
        documents.extend(d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d)
    return documents


def test_settings_objects_have_no_default_secret() -> None:
    assert settings_with_secret_defaults(SETTINGS_MODULES) == []
    from housing.service.settings import ServiceSettings

    assert "api_key" in ServiceSettings.model_fields  # the scan saw the service's secret


def test_compose_requires_every_secret_with_no_default() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    assert compose_secret_defaults(compose) == []


def test_kubernetes_manifests_hold_no_secret_value() -> None:
    manifests = sorted((ROOT / "deployment" / "k8s").glob("*.yaml"))
    assert manifests
    assert k8s_secret_values(_yaml_documents(manifests)) == []


def test_dockerfile_bakes_in_no_secret() -> None:
    assert dockerfile_secret_values((ROOT / "Dockerfile").read_text(encoding="utf-8")) == []


def test_monitoring_configuration_holds_no_literal_secret() -> None:
    paths = sorted((ROOT / "grafana" / "provisioning").rglob("*.y*ml"))
    paths += sorted((ROOT / "monitoring").glob("*.y*ml"))
    assert paths
    assert config_literal_secrets(_yaml_documents(paths)) == []


def test_the_secret_scanners_catch_what_they_look_for(tmp_path: Path) -> None:
    """Each scanner flags a planted default secret (so an empty result above means something)."""
    bad_compose = {
        "services": {
            "a": {"environment": {"DB_PASSWORD": "hunter2", "OK": "1"}},
            "b": {"environment": ["API_KEY=${API_KEY:-changeme}", "X=1"]},
            "c": {"environment": {"HOUSING_API_KEY": "${HOUSING_API_KEY:?set it}"}},
        }
    }
    assert compose_secret_defaults(bad_compose) == [
        "a.DB_PASSWORD='hunter2'",
        "b.API_KEY='${API_KEY:-changeme}'",
    ]
    bad_k8s = [
        {"kind": "Secret", "metadata": {"name": "s"}, "stringData": {"API_KEY": "abc123"}},
        {"kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"GRAFANA_PASSWORD": "x"}},
        {
            "kind": "Deployment",
            "metadata": {"name": "d"},
            "spec": {
                "template": {
                    "spec": {
                        "containers": [{"name": "api", "env": [{"name": "TOKEN", "value": "t"}]}]
                    }
                }
            },
        },
    ]
    assert k8s_secret_values(bad_k8s) == [
        "Secret/s.API_KEY",
        "ConfigMap/c.GRAFANA_PASSWORD",
        "Deployment/d.api.TOKEN",
    ]
    assert dockerfile_secret_values("FROM x\nENV A=1 \\\n    API_KEY=abc\nARG TOKEN\n") == [
        "ENV A=1 API_KEY=abc"
    ]
    assert config_literal_secrets([{"basic_auth": {"password": "p", "password_file": "/f"}}]) == [
        "doc0.basic_auth.password"
    ]
    module = tmp_path / "planted_settings.py"
    module.write_text(
        "from pydantic_settings import BaseSettings\n"
        "class S(BaseSettings):\n"
        "    api_key: str = 'dev-key'\n"
        "    database_url: str = 'postgresql://u:pw@db/x'\n"
        "    grafana_password: str | None = None\n",
        encoding="utf-8",
    )
    import sys

    sys.path.insert(0, str(tmp_path))
    try:
        assert settings_with_secret_defaults(("planted_settings",)) == [
            "planted_settings.S.api_key",
            "planted_settings.S.database_url",
        ]
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("planted_settings", None)


# --- bandit ---------------------------------------------------------------------------------------


def test_bandit_reports_no_medium_or_high_severity_issue() -> None:
    completed = subprocess.run(  # noqa: S603 (our venv's bandit, fixed arguments)
        [
            str(BIN / "bandit"),
            "-c",
            "pyproject.toml",
            "-r",
            "src",
            "api",
            "frontend",
            "-f",
            "json",
            "-q",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    report = json.loads(completed.stdout)
    scanned = report["metrics"]["_totals"]["loc"]
    assert scanned > 1000, "bandit scanned (almost) nothing"
    assert report["errors"] == [], report["errors"]
    serious = [
        f"{r['filename']}:{r['line_number']} {r['test_id']} {r['issue_severity']} {r['issue_text']}"
        for r in report["results"]
        if r["issue_severity"] in ("MEDIUM", "HIGH")
    ]
    assert serious == []
