"""The monitoring stack for real: the API (uvicorn, real champion), Prometheus and Alertmanager
(Debian packages) on loopback, real traffic from `housing simulate` / `housing evaluate`.

Proves: every PromQL expression of the Grafana dashboard and of the alert rules returns a
finite value from the live Prometheus (alert conditions in their ``bool`` form, so a quiet alert
still shows its series exist), and so does every selector they read and the left side of every
``or vector(0)`` fallback, bar the justified ``FALLBACK_ONLY``; the drift and accuracy gauges
Prometheus scraped equal GET /drift and GET /performance; every rule evaluates without error;
held-out traffic raises no drift, income-shifted traffic does; the HousingDataDrift alert fires
and Alertmanager delivers it to the retrain webhook with the bearer token.

The test copies of the configs differ from the real ones only where a test must be fast or
local, all done by ``render_*`` below: 1 s scrape/evaluation intervals and a 1 s scrape timeout
(5 s in the real one); loopback targets for the API and Alertmanager; ``rule_files`` pointing at
the rendered rules copy; HousingDataDrift's ``for`` cut from 10m to 2s (the other rules keep
theirs: they must stay quiet); Alertmanager's webhook URLs pointed at a local receiver and its
bearer-token ``credentials_file`` at a temporary file.
"""

from __future__ import annotations

import json
import math
import os
import subprocess  # nosec B404 - starts the project's own servers and CLI
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
import yaml

from processes import Server, free_port, tool, wait_until
from housing import data
from housing.monitoring.promql import (
    dashboard_queries,
    fallback_operands,
    rule_queries,
    selectors,
    with_bool_comparisons,
)
from housing.monitoring.simulate import traffic_pool
from housing.monitoring.traffic import houses

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
DRIFT_ALERT = "HousingDataDrift"
TOKEN = "test-retrain-token"  # nosec B105 - a throwaway secret for the local webhook
FALLBACK_ONLY = {
    'housing_requests_total{endpoint!="/metrics",status=~"5.."}': (
        "5xx answers: no client input makes a healthy API fail, so the traffic has none (the "
        "test asserts it); the error-ratio expressions read them through `or vector(0)`"
    ),
}
"""Selectors the test traffic cannot satisfy, and why. They (and fallback operands reading only
them) must match nothing, so this list cannot go stale; every other one must match a series."""


class Webhook(BaseHTTPRequestHandler):
    """Records what Alertmanager posts (the stand-in for the retrain endpoint and on-call)."""

    received: list[tuple[str, str | None, dict]] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        Webhook.received.append((self.path, self.headers.get("Authorization"), body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args) -> None:  # keep pytest's output clean
        pass


def render_rules(path: Path) -> Path:
    rules = yaml.safe_load((ROOT / "monitoring/alert_rules.yml").read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            if rule.get("alert") == DRIFT_ALERT:
                rule["for"] = "2s"
    path.write_text(yaml.safe_dump(rules, sort_keys=False))
    return path


def render_prometheus(path: Path, api_port: int, am_port: int, rules: Path) -> Path:
    config = yaml.safe_load((ROOT / "monitoring/prometheus.yml").read_text())
    config["global"].update(scrape_interval="1s", evaluation_interval="1s")
    config["rule_files"] = [str(rules)]
    config["alerting"]["alertmanagers"][0]["static_configs"] = [
        {"targets": [f"127.0.0.1:{am_port}"]}
    ]
    (job,) = config["scrape_configs"]
    job.update(scrape_interval="1s", scrape_timeout="1s")
    job["static_configs"][0]["targets"] = [f"127.0.0.1:{api_port}"]
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def render_alertmanager(path: Path, hook_port: int, token_file: Path) -> Path:
    config = yaml.safe_load((ROOT / "monitoring/alertmanager.yml").read_text())
    for receiver in config["receivers"]:
        for hook in receiver["webhook_configs"]:
            hook["url"] = f"http://127.0.0.1:{hook_port}/{receiver['name']}"
            if "http_config" in hook:
                hook["http_config"]["authorization"]["credentials_file"] = str(token_file)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def stack(trained_registry: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """API + Prometheus + Alertmanager + webhook receiver, all on free loopback ports."""
    tmp = tmp_path_factory.mktemp("monitoring-stack")
    data.prepare(tmp / "data", data.load_params(ROOT / "params.yaml"))
    api_port, prom_port, am_port = free_port(), free_port(), free_port()
    hook = ThreadingHTTPServer(("127.0.0.1", 0), Webhook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    token_file = tmp / "api_key"
    token_file.write_text(TOKEN)
    env = {
        **os.environ,
        "HOUSING_DATABASE_URL": f"sqlite:///{tmp / 'predictions.db'}",
        "MLFLOW_TRACKING_URI": trained_registry,
        "HOUSING_DATA_DIR": str(tmp / "data"),
        "HOUSING_REPORTS_DIR": str(tmp / "reports"),
        "HOUSING_RATE_LIMIT": "",
        "HOUSING_DRIFT_INTERVAL_SECONDS": "1",
        "HOUSING_LOG_LEVEL": "WARNING",
    }
    servers: list[Server] = []
    try:
        api = Server(
            [str(BIN / "housing"), "serve", "--host", "127.0.0.1", "--port", str(api_port)],
            tmp / "api.log",
            env,
        )
        servers.append(api)
        rules = render_rules(tmp / "alert_rules.yml")
        prometheus_yml = render_prometheus(tmp / "prometheus.yml", api_port, am_port, rules)
        alertmanager_yml = render_alertmanager(
            tmp / "alertmanager.yml", hook.server_address[1], token_file
        )
        servers.append(
            Server(
                [
                    tool("prometheus-alertmanager"),
                    f"--config.file={alertmanager_yml}",
                    f"--storage.path={tmp / 'alertmanager'}",
                    f"--web.listen-address=127.0.0.1:{am_port}",
                    "--cluster.listen-address=",
                ],
                tmp / "alertmanager.log",
            )
        )
        servers.append(
            Server(
                [
                    tool("prometheus"),
                    f"--config.file={prometheus_yml}",
                    f"--storage.tsdb.path={tmp / 'tsdb'}",
                    f"--web.listen-address=127.0.0.1:{prom_port}",
                ],
                tmp / "prometheus.log",
            )
        )
        api_url, prom_url = f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{prom_port}"
        for server in servers:
            assert server.alive(), server.output()
        wait_until(lambda: httpx.get(f"{api_url}/ready").status_code == 200, 120, "API ready")
        wait_until(lambda: httpx.get(f"{prom_url}/-/ready").status_code == 200, 30, "Prometheus")
        wait_until(
            lambda: httpx.get(f"http://127.0.0.1:{am_port}/-/ready").status_code == 200,
            30,
            "Alertmanager",
        )
        yield {"api": api_url, "prometheus": prom_url, "env": env, "tmp": tmp, "servers": servers}
    finally:
        for server in reversed(servers):
            server.stop()
        hook.shutdown()


def housing(stack: dict, *args: str) -> dict:
    """Run a `housing` command against the stack; return its one-line JSON output."""
    result = subprocess.run(  # nosec B603 - the venv's own CLI
        [str(BIN / "housing"), *args, "--url", stack["api"], "--json"],
        env=stack["env"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    (line,) = result.stdout.strip().splitlines()
    return json.loads(line)


def query(stack: dict, expr: str) -> list[dict]:
    answer = httpx.get(f"{stack['prometheus']}/api/v1/query", params={"query": expr}, timeout=10)
    body = answer.json()
    assert answer.status_code == 200 and body["status"] == "success", (expr, body)
    return body["data"]["result"]


def finite(samples: list[dict]) -> bool:
    """Whether a query answered at least one real number (NaN and ±Inf are no data)."""
    return any(math.isfinite(float(sample["value"][1])) for sample in samples)


def scalar(stack: dict, expr: str) -> float:
    (sample,) = query(stack, expr)
    return float(sample["value"][1])


def scraped_and_reported(stack: dict) -> tuple[dict, dict]:
    """The drift and accuracy gauges as Prometheus holds them, and as the API reports them."""
    drift = httpx.get(f"{stack['api']}/drift", timeout=10).json()
    performance = httpx.get(f"{stack['api']}/performance", timeout=10).json()
    reported = {
        "housing_drift_share": drift["share"],
        "housing_live_rmse": performance["rmse"],
        "housing_live_mae": performance["mae"],
        "housing_model_test_rmse": performance["test_rmse"],
        "housing_estimated_mae": performance["estimated_mae"],
        "housing_live_interval_coverage": performance["interval_coverage"],
        "housing_model_test_mae": performance["test_mae"],
    }
    return {name: scalar(stack, name) for name in reported}, reported


def alert_state(stack: dict, name: str) -> str | None:
    alerts = httpx.get(f"{stack['prometheus']}/api/v1/alerts", timeout=10).json()
    states = [a["state"] for a in alerts["data"]["alerts"] if a["labels"]["alertname"] == name]
    return states[0] if states else None


def drift_after(stack: dict, run_id: int | None) -> dict | None:
    body = httpx.get(f"{stack['api']}/drift", timeout=10).json()
    return body if body["run_id"] is not None and body["run_id"] != run_id else None


def test_monitoring_stack_end_to_end(stack: dict) -> None:
    api = stack["api"]
    # 1. Ordinary traffic: held-out houses, single and batched, with feedback; some bad input.
    single = housing(
        stack, "simulate", "--drift", "none", "--rate", "20", "--duration", "5", "--feedback", "1"
    )
    assert single["failed"] == 0 and single["predicted"] == single["requests"] == 100
    assert single["seconds"] <= 5 + 1.0, "bounded in time as well as in count"
    batched = housing(
        stack,
        "simulate",
        "--drift",
        "none",
        "--rate",
        "4",
        "--duration",
        "5",
        "--batch",
        "50",
        "--feedback",
        "0.1",
        "--seed",
        "1",
    )
    assert batched["failed"] == 0 and batched["predicted"] == 1000
    for value in (-1.0, 99.0):
        bad = httpx.post(f"{api}/predict", json={"MedInc": value}, timeout=10)
        assert bad.status_code == 422
    report = housing(stack, "evaluate", "--limit", "40")
    assert report["predicted"] == 40 and report["feedback_sent"] == 40
    assert report["accuracy"]["rmse"] > 0 and report["latency_ms"]["p99"] > 0
    history = (stack["tmp"] / "reports/evaluations.jsonl").read_text().splitlines()
    assert json.loads(history[-1]) == report

    # 2. It does not cry wolf: the live drift check on held-out traffic finds nothing.
    calm = wait_until(lambda: drift_after(stack, None), 60, "a first drift result")
    calm = wait_until(
        lambda: (b := drift_after(stack, None)) and b["current_rows"] == 1000 and b,
        30,
        "a drift result over a full window",
    )
    assert calm["detected"] is False and calm["share"] == 0, calm
    wait_until(lambda: query(stack, "housing_drift_detected == 0"), 20, "drift gauge at 0")
    assert alert_state(stack, DRIFT_ALERT) is None

    # 3. It does not sleep: incomes up 30% fill the window; the alert fires and is delivered.
    shifted = housing(
        stack,
        "simulate",
        "--drift",
        "income",
        "--rate",
        "4",
        "--duration",
        "5",
        "--batch",
        "50",
        "--feedback",
        "0.1",
        "--seed",
        "2",
    )
    assert shifted["predicted"] == 1000
    alarmed = wait_until(lambda: drift_after(stack, calm["run_id"]), 60, "a new drift result")
    alarmed = wait_until(
        lambda: (b := httpx.get(f"{api}/drift", timeout=10).json())["detected"] and b,
        30,
        "drift detected",
    )
    assert "MedInc" in alarmed["drifted_features"]
    wait_until(lambda: alert_state(stack, DRIFT_ALERT) == "firing", 60, "HousingDataDrift firing")
    delivered = wait_until(
        lambda: [r for r in Webhook.received if r[0] == "/housing-retrain"],
        30,
        "the drift alert at the retrain webhook",
    )
    path, authorization, body = delivered[0]
    assert authorization == f"Bearer {TOKEN}"
    assert body["status"] == "firing" and body["commonLabels"]["alertname"] == DRIFT_ALERT
    assert not [
        r
        for r in Webhook.received
        if r[2]["commonLabels"].get("alertname") == DRIFT_ALERT and r[0] != "/housing-retrain"
    ], "the drift alert must only go to retraining"

    # The drift and accuracy gauges Prometheus scraped are the API's numbers, not placeholders.
    for _ in range(40):  # Prometheus scrapes every second
        scraped, reported = scraped_and_reported(stack)
        if scraped == pytest.approx(reported, rel=1e-12):
            break
        time.sleep(0.5)
    assert scraped == pytest.approx(reported, rel=1e-12), "Prometheus vs. /drift, /performance"
    assert all(map(math.isfinite, scraped.values())), scraped

    # 4. Every expression the dashboard and the rules use answers a finite value from the live
    # stack (a NaN gauge is a sample, but no data), and so does every selector they read and the
    # left side of each `or vector(0)` (the fallback answers whatever its left side reads).
    # Fresh /predict traffic first: the panels rate() over the last minute only.
    before = scalar(stack, 'sum(housing_requests_total{endpoint="/predict"})')
    for house in houses(traffic_pool(stack["tmp"] / "data", "income").head(20)):
        assert httpx.post(f"{api}/predict", json=house, timeout=10).status_code == 200
    wait_until(
        lambda: scalar(stack, 'sum(housing_requests_total{endpoint="/predict"})') >= before + 20,
        20,
        "the fresh /predict traffic scraped",
    )
    recording, alerting = rule_queries(ROOT / "monitoring/alert_rules.yml")
    dashboard = dashboard_queries(ROOT / "grafana/dashboards/housing.json")
    expressions = dashboard + recording
    expressions += [
        q.__class__(q.source + " (bool)", with_bool_comparisons(q.expr)) for q in alerting
    ]
    no_data = [q.source for q in expressions if not finite(query(stack, q.expr))]
    assert not no_data, f"no finite value for: {no_data}"
    parts: dict[str, str] = {}  # selector or fallback operand -> the first query using it
    for q in dashboard + recording + alerting:
        for part in selectors(q.expr) + fallback_operands(q.expr):
            parts.setdefault(part, q.source)
    assert FALLBACK_ONLY.keys() <= parts.keys(), "FALLBACK_ONLY lists a selector nothing reads"
    unsatisfiable = {p for p in parts if set(selectors(p)) <= FALLBACK_ONLY.keys()}
    unread = [
        f"{parts[p]}: {p}" for p in parts.keys() - unsatisfiable if not finite(query(stack, p))
    ]
    assert not unread, f"no finite series behind: {unread}"
    stale = [p for p in unsatisfiable if query(stack, p)]
    assert not stale, f"the traffic now produces {stale}: drop them from FALLBACK_ONLY"
    assert query(stack, next(q.expr for q in alerting if q.source == f"alert {DRIFT_ALERT}"))
    rules = httpx.get(f"{stack['prometheus']}/api/v1/rules", timeout=10).json()["data"]["groups"]
    unhealthy = [
        (r["name"], r.get("lastError")) for g in rules for r in g["rules"] if r["health"] != "ok"
    ]
    assert not unhealthy and sum(len(g["rules"]) for g in rules) == len(recording) + len(alerting)

    # Live accuracy reached Prometheus too, and the API still answered everything.
    (rmse,) = query(stack, "housing_live_rmse")
    assert float(rmse["value"][1]) > 0
    assert not query(stack, 'housing_requests_total{status=~"5.."}')
    for server in stack["servers"]:
        assert server.alive(), server.output()
