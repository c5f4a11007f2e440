"""Prometheus and Alertmanager configuration, checked by their own tools (Debian packages)."""

from __future__ import annotations

import shutil
import subprocess  # nosec B404 - runs promtool/amtool on the project's own files
from pathlib import Path

import pytest
import yaml

from housing.monitoring.promql import (
    dashboard_queries,
    fallback_operands,
    rule_queries,
    selectors,
    with_bool_comparisons,
)

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "monitoring"
DASHBOARD = ROOT / "grafana/dashboards/housing.json"
REQUIRED_ALERTS = {
    "HousingApiDown",
    "HousingErrorRatioHigh",
    "HousingLatencyP95High",
    "HousingDataDrift",
    "HousingLiveRmseDegraded",
    "HousingNoTraffic",
    "HousingIntervalCoverageLow",
    "HousingEstimatedMaeHigh",
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


@pytest.mark.posix  # promtool and amtool are Debian packages
def test_promtool_checks_the_config_and_its_rule_files() -> None:
    result = run(tool("promtool"), "check", "config", "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout and "alert_rules.yml" in result.stdout


@pytest.mark.posix  # promtool and amtool are Debian packages
def test_promtool_checks_the_rules() -> None:
    result = run(tool("promtool"), "check", "rules", "alert_rules.yml")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.posix  # promtool and amtool are Debian packages
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


def test_selectors_and_fallbacks_are_read_out_of_the_expressions() -> None:
    """The integration test queries these alone, so a miss would hide an unread metric."""
    expr = (
        '(sum by (le) (rate(a_total{x=~"(5..|or vector(1))"}[5m] offset 1h)) or vector(0))'
        ' / on() group_left(y) b:ratio * 1e-3 > bool 0 and {job="j"} or on() vector(0)'
    )
    assert selectors(expr) == ['a_total{x=~"(5..|or vector(1))"}', "b:ratio", '{job="j"}']
    assert fallback_operands(expr) == [
        'sum by (le) (rate(a_total{x=~"(5..|or vector(1))"}[5m] offset 1h))',
        expr[: expr.rindex(" or ")],
    ]
    assert selectors("max_over_time(m[5m:1m]) unless sum(n) without (i)") == ["m", "n"]
    assert fallback_operands("m_or_n or vector_x or vector(2)") == ["m_or_n or vector_x"]
    _, alerting = rule_queries(MONITORING / "alert_rules.yml")
    (no_traffic,) = [q.expr for q in alerting if q.source == "alert HousingNoTraffic"]
    assert fallback_operands(no_traffic) == [
        'sum(rate(housing_requests_total{endpoint=~"/predict|/predict/batch"}[15m]))'
    ]


@pytest.mark.posix  # promtool and amtool are Debian packages
def test_bool_forms_of_the_alert_expressions_are_valid_promql(tmp_path: Path) -> None:
    """The integration test sends these to Prometheus (with every selector and fallback
    operand on its own); promtool parses them here first."""
    recording, alerting = rule_queries(MONITORING / "alert_rules.yml")
    rules = [
        {"record": f"check:alert_{i}", "expr": with_bool_comparisons(q.expr)}
        for i, q in enumerate(alerting)
    ]
    assert all(" bool " in r["expr"] for r in rules)
    every = recording + alerting + dashboard_queries(DASHBOARD)
    parts = {p for q in every for p in selectors(q.expr) + fallback_operands(q.expr)}
    assert len(parts) >= 20
    rules += [{"record": f"check:part_{i}", "expr": p} for i, p in enumerate(sorted(parts))]
    path = tmp_path / "bool_rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "check", "rules": rules}]}))
    result = run(tool("promtool"), "check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.posix  # promtool and amtool are Debian packages
def test_amtool_checks_the_alertmanager_config() -> None:
    result = run(tool("amtool"), "check-config", "alertmanager.yml")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.posix  # promtool and amtool are Debian packages
@pytest.mark.parametrize(
    "labels,receiver",
    [
        (["alertname=HousingDataDrift", "severity=warning", "action=retrain"], "housing-retrain"),
        (["alertname=HousingApiDown", "severity=critical"], "housing-page"),
        (["alertname=HousingErrorRatioHigh", "severity=critical"], "housing-page"),
        (["alertname=HousingNoTraffic", "severity=warning"], "housing-oncall"),
        (["alertname=HousingLiveRmseDegraded", "severity=warning"], "housing-oncall"),
        (["alertname=HousingIntervalCoverageLow", "severity=warning"], "housing-oncall"),
        (["alertname=HousingEstimatedMaeHigh", "severity=warning"], "housing-oncall"),
    ],
)
def test_alertmanager_routes_drift_to_the_retrain_webhook(labels: list[str], receiver: str) -> None:
    amtool = tool("amtool")
    result = run(amtool, "config", "routes", "test", "--config.file=alertmanager.yml", *labels)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.split() == [receiver]
