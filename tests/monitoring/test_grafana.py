"""Grafana cannot be installed here: its provisioning and dashboard JSON are checked structurally
(the integration test runs every dashboard query against a real Prometheus)."""

from __future__ import annotations

import json
import shutil
import subprocess  # nosec B404 - runs promtool on generated files
from pathlib import Path

import pytest
import yaml

from housing.monitoring.promql import dashboard_queries, iter_panels

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
REQUIRED_METRICS = (
    "housing_requests_total",
    "housing_request_latency_seconds_bucket",
    "housing_prediction_value_bucket",
    "housing_model_info",
    "housing_drift_share",
    "housing_feature_drift_score",
    "housing_live_rmse",
    "housing_live_mae",
    "housing_live_interval_coverage",
    "housing_estimated_mae",
    "housing_interval_width_bucket",
)


@pytest.fixture(scope="module")
def datasource_uid() -> str:
    doc = yaml.safe_load((GRAFANA / "provisioning/datasources/prometheus.yml").read_text())
    (source,) = doc["datasources"]
    assert doc["apiVersion"] == 1 and source["type"] == "prometheus" and source["uid"]
    return source["uid"]


def test_dashboard_provider_points_where_compose_mounts_the_json() -> None:
    doc = yaml.safe_load((GRAFANA / "provisioning/dashboards/dashboards.yml").read_text())
    (provider,) = doc["providers"]
    assert provider["type"] == "file"
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    mounts = compose["services"]["grafana"]["volumes"]
    assert f"./grafana/dashboards:{provider['options']['path']}:ro" in mounts
    assert DASHBOARDS, "no dashboard JSON in grafana/dashboards"


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_structure(path: Path, datasource_uid: str) -> None:
    dashboard = json.loads(path.read_text())
    assert isinstance(dashboard["schemaVersion"], int) and 36 <= dashboard["schemaVersion"] <= 41
    assert dashboard["uid"] and dashboard["title"]
    panels = list(iter_panels(dashboard["panels"]))
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), "duplicate panel ids"
    cells: set[tuple[int, int]] = set()
    for panel in panels:
        pos = panel["gridPos"]
        assert 0 <= pos["x"] and pos["x"] + pos["w"] <= 24 and pos["h"] > 0, panel["title"]
        area = {
            (x, y)
            for x in range(pos["x"], pos["x"] + pos["w"])
            for y in range(pos["y"], pos["y"] + pos["h"])
        }
        assert not cells & area, f"panel {panel['title']!r} overlaps another"
        cells |= area
        if panel["type"] == "row":
            continue
        assert panel["title"] and panel.get("description"), panel["id"]
        assert panel["datasource"]["uid"] == datasource_uid, panel["title"]
        targets = panel.get("targets", [])
        assert targets, f"panel {panel['title']!r} has no targets"
        ref_ids = [t["refId"] for t in targets]
        assert len(ref_ids) == len(set(ref_ids)), panel["title"]
        for target in targets:
            assert target["datasource"]["uid"] == datasource_uid, panel["title"]
            assert target["expr"].strip(), panel["title"]


@pytest.mark.posix  # promtool (a Debian package)
@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_queries_parse_and_cover_the_issue(path: Path, tmp_path: Path) -> None:
    queries = dashboard_queries(path)
    text = " ".join(q.expr for q in queries)
    for metric in REQUIRED_METRICS:
        assert metric in text, f"no panel shows {metric}"
    for quantile in ("0.5", "0.95", "0.99"):
        assert f"histogram_quantile({quantile}," in text
    rules = [{"record": f"check:panel_{i}", "expr": q.expr} for i, q in enumerate(queries)]
    rules_file = tmp_path / "dashboard_rules.yml"
    rules_file.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool not found: run scripts/system-deps.sh (make system-deps)")
    result = subprocess.run(  # nosec B603 - fixed tool, generated file
        [promtool, "check", "rules", str(rules_file)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
