"""The PromQL the monitoring config runs: read from the dashboards and the rule files.

Tests (and anyone checking a live stack) evaluate every expression the Grafana dashboards and
the alert rules use, so a renamed metric or a typo cannot hide until an incident.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

GRAFANA_VARIABLES: dict[str, str] = {
    "$__rate_interval": "1m",
    "$__interval": "15s",
    "$__range": "1h",
}
"""Grafana's built-in variables, replaced by typical values so Prometheus can run the query."""

COMPARISONS = ("==", "!=", ">=", "<=", ">", "<")


@dataclass(frozen=True)
class Query:
    """One expression and where it comes from (dashboard panel or rule)."""

    source: str
    expr: str


def iter_panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every panel of a dashboard, rows' nested panels included."""
    for panel in panels:
        yield panel
        yield from iter_panels(panel.get("panels", []))


def grafana_expr(expr: str) -> str:
    """A dashboard expression with Grafana's variables replaced by concrete values."""
    for name, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(name, value)
    if "$" in expr:
        raise ValueError(f"unknown Grafana variable in {expr!r}")
    return expr


def dashboard_queries(path: Path) -> list[Query]:
    """Every target expression of a dashboard JSON file, ready to send to Prometheus."""
    dashboard = json.loads(Path(path).read_text(encoding="utf-8"))
    return [
        Query(
            f"{Path(path).name}: panel {panel['id']} {panel['title']!r} {t['refId']}",
            grafana_expr(t["expr"]),
        )
        for panel in iter_panels(dashboard["panels"])
        for t in panel.get("targets", [])
    ]


def rule_queries(path: Path) -> tuple[list[Query], list[Query]]:
    """The (recording, alerting) rule expressions of a Prometheus rule file."""
    document = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    recording: list[Query] = []
    alerting: list[Query] = []
    for group in document["groups"]:
        for rule in group["rules"]:
            if "record" in rule:
                recording.append(Query(f"record {rule['record']}", rule["expr"]))
            else:
                alerting.append(Query(f"alert {rule['alert']}", rule["expr"]))
    return recording, alerting


def with_bool_comparisons(expr: str) -> str:
    """``expr`` with ``bool`` after every comparison, so it returns 0/1 instead of filtering.

    An alert expression returns nothing while its condition is false; with ``bool`` it returns
    a sample for every series it compares, which proves the series exist and the expression is
    wired to real data. Label matchers (``{...}``), strings and ranges are left alone. Written
    by hand because no maintained Python PromQL parser exists.
    """
    out: list[str] = []
    depth = 0
    quote: str | None = None
    i = 0
    while i < len(expr):
        char = expr[i]
        if quote:
            out.append(char)
            if char == "\\":
                out.append(expr[i + 1])
                i += 1
            elif char == quote:
                quote = None
            i += 1
            continue
        if char in "\"'`":
            quote = char
        elif char in "{[":
            depth += 1
        elif char in "}]":
            depth -= 1
        elif depth == 0:
            op = next((c for c in COMPARISONS if expr.startswith(c, i)), None)
            if op:
                out.append(op)
                i += len(op)
                if not re.match(r"\s*bool\b", expr[i:]):
                    out.append(" bool")
                continue
        out.append(char)
        i += 1
    return "".join(out)
