"""deployment/k8s: valid against the Kubernetes schema (offline) and consistent with each other."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from delivery_tools import ROOT

K8S = ROOT / "deployment" / "k8s"
# The oldest Kubernetes minor the manifests are meant for; strict rejects unknown fields.
KUBERNETES_VERSION = "1.30"


def manifests() -> dict[str, dict[str, Any]]:
    """`kind/name` -> resource, for every manifest (not the kustomization)."""
    found = {}
    for path in sorted(K8S.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") != "Kustomization":
                found[f"{doc['kind']}/{doc['metadata']['name']}"] = doc
    return found


RESOURCES = manifests()


def container(kind_name: str) -> dict[str, Any]:
    return RESOURCES[kind_name]["spec"]["template"]["spec"]["containers"][0]


@pytest.mark.parametrize("kind_name", sorted(RESOURCES))
def test_manifest_matches_the_kubernetes_schema(kind_name: str) -> None:
    kubernetes_validate.validate(RESOURCES[kind_name], KUBERNETES_VERSION, strict=True)


def test_the_schema_check_catches_a_misspelt_field() -> None:
    broken = copy.deepcopy(RESOURCES["Deployment/housing-api"])
    probe = broken["spec"]["template"]["spec"]["containers"][0]
    probe["readinesProbe"] = probe.pop("readinessProbe")
    with pytest.raises(kubernetes_validate.ValidationError, match="readinesProbe"):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_the_expected_resources_exist() -> None:
    expected = {
        "Deployment/housing-api",
        "Service/housing-api",
        "HorizontalPodAutoscaler/housing-api",
        "ConfigMap/housing-config",
        "Secret/housing-secrets",
        "Deployment/housing-ui",
        "Service/housing-ui",
    }
    assert expected <= set(RESOURCES)


def test_api_probes_resources_and_graceful_termination() -> None:
    api = container("Deployment/housing-api")
    assert api["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert api["livenessProbe"]["httpGet"]["path"] == "/health"
    assert {"requests", "limits"} <= set(api["resources"])
    pre_stop = api["lifecycle"]["preStop"]["exec"]["command"]
    grace = RESOURCES["Deployment/housing-api"]["spec"]["template"]["spec"][
        "terminationGracePeriodSeconds"
    ]
    assert pre_stop[0] == "sleep" and int(pre_stop[1]) < grace
    assert api["args"] == ["api"]


def test_api_pods_prepare_the_data_the_drift_check_and_retraining_read() -> None:
    """`housing data` in an init container writes /app/data, which the api container mounts."""
    spec = RESOURCES["Deployment/housing-api"]["spec"]["template"]["spec"]
    (init,) = spec["initContainers"]
    assert (
        init["args"] == ["housing", "data"]
        and init["image"] == container("Deployment/housing-api")["image"]
    )

    def mounted(c: dict[str, Any]) -> dict[str, str]:
        return {m["mountPath"]: m["name"] for m in c["volumeMounts"]}

    assert mounted(init)["/app/data"] == mounted(container("Deployment/housing-api"))["/app/data"]
    assert "/app/scikit_learn_data" in mounted(init)  # SCIKIT_LEARN_DATA in the image
    assert {v["name"] for v in spec["volumes"]} >= set(mounted(init).values())


def test_services_and_autoscaler_point_at_their_deployments() -> None:
    for name in ("housing-api", "housing-ui"):
        labels = RESOURCES[f"Deployment/{name}"]["spec"]["template"]["metadata"]["labels"]
        selector = RESOURCES[f"Service/{name}"]["spec"]["selector"]
        assert selector.items() <= labels.items(), name
        port = RESOURCES[f"Service/{name}"]["spec"]["ports"][0]["targetPort"]
        assert port in {p["name"] for p in container(f"Deployment/{name}")["ports"]}
    target = RESOURCES["HorizontalPodAutoscaler/housing-api"]["spec"]["scaleTargetRef"]
    assert f"{target['kind']}/{target['name']}" == "Deployment/housing-api"


def test_config_and_secret_references_resolve() -> None:
    api = container("Deployment/housing-api")
    refs = {next(iter(ref)): ref[next(iter(ref))]["name"] for ref in api["envFrom"]}
    assert f"ConfigMap/{refs['configMapRef']}" in RESOURCES
    assert f"Secret/{refs['secretRef']}" in RESOURCES
    assert "HOUSING_DATABASE_URL" in RESOURCES["Secret/housing-secrets"]["stringData"]


def test_the_secret_is_only_an_example() -> None:
    values = RESOURCES["Secret/housing-secrets"]["stringData"].values()
    assert all("REPLACE_ME" in value for value in values)
    assert RESOURCES["Secret/housing-secrets"]["stringData"]["HOUSING_DATABASE_URL"].startswith(
        "postgresql"
    ), "several api replicas share one log DB: PostgreSQL"


def test_kustomization_lists_every_manifest_but_the_secret_example() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    listed = set(kustomization["resources"])
    on_disk = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == on_disk - {"secret.example.yaml"}
    assert all((K8S / Path(name)).exists() for name in listed)
