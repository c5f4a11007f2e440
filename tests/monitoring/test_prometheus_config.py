"""Prometheus and Alertmanager configuration, checked by their own tools (Debian packages)."""

from __future__ import annotations

import shutil
import subprocess  # nosec B404 - runs promtool/amtool on the project's own files
from pathlib import Path

import pytest
import yaml

from housing.monitoring.promql import rule_queries, with_bool_comparisons

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "monitoring"
REQUIRED_ALERTS = {
    "HousingApiDown",
    "HousingErrorRatioHigh",
    "HousingLatencyP95High",
    "HousingDataDrift",
    "HousingLiveRmseDegraded",
    "HousingNoTraffic",
}


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} not found: run scripts/system-deps.sh (make system-deps)")
    return path


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # nosec B603 - fixed tool, project files
        args, cwd=MONITORING, capture_output=True, text=True, timeout=60, check=False
    )


def test_promtool_checks_the_config_and_its_rule_files() -> None:
    result = run(tool("promtool"), "check", "config", "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout and "alert_rules.yml" in result.stdout


def test_promtool_checks_the_rules() -> None:
    result = run(tool("promtool"), "check", "rules", "alert_rules.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_pass_and_cover_every_alert_both_ways() -> None:
    result = run(tool("promtool"), "test", "rules", "alert_rules_test.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    _, alerting = rule_queries(MONITORING / "alert_rules.yml")
    alerts = {q.source.removeprefix("alert ") for q in alerting}
    assert REQUIRED_ALERTS <= alerts
    fired: set[str] = set()
    quiet: set[str] = set()
    for case in yaml.safe_load((MONITORING / "alert_rules_test.yml").read_text())["tests"]:
        for check in case.get("alert_rule_test", []):
            (fired if check["exp_alerts"] else quiet).add(check["alertname"])
    assert fired == alerts, f"never shown firing: {alerts - fired}"
    assert quiet == alerts, f"never shown quiet: {alerts - quiet}"


def test_bool_forms_of_the_alert_expressions_are_valid_promql(tmp_path: Path) -> None:
    """The integration test sends these to Prometheus; promtool parses them here first."""
    _, alerting = rule_queries(MONITORING / "alert_rules.yml")
    rules = [
        {"record": f"check:alert_{i}", "expr": with_bool_comparisons(q.expr)}
        for i, q in enumerate(alerting)
    ]
    assert all(" bool " in r["expr"] for r in rules)
    path = tmp_path / "bool_rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "check", "rules": rules}]}))
    result = run(tool("promtool"), "check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


def test_amtool_checks_the_alertmanager_config() -> None:
    result = run(tool("amtool"), "check-config", "alertmanager.yml")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    "labels,receiver",
    [
        (["alertname=HousingDataDrift", "severity=warning", "action=retrain"], "housing-retrain"),
        (["alertname=HousingApiDown", "severity=critical"], "housing-page"),
        (["alertname=HousingErrorRatioHigh", "severity=critical"], "housing-page"),
        (["alertname=HousingNoTraffic", "severity=warning"], "housing-oncall"),
        (["alertname=HousingLiveRmseDegraded", "severity=warning"], "housing-oncall"),
    ],
)
def test_alertmanager_routes_drift_to_the_retrain_webhook(labels: list[str], receiver: str) -> None:
    amtool = tool("amtool")
    result = run(amtool, "config", "routes", "test", "--config.file=alertmanager.yml", *labels)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.split() == [receiver]
