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


GROUPING = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})
"""Keywords whose ``( … )`` that follows holds label names, not expressions."""
KEYWORDS = GROUPING | {"and", "or", "unless", "bool", "offset", "atan2", "inf", "nan"}
IDENTIFIER = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
IDENTIFIER_CHAR = re.compile(r"[A-Za-z0-9_:]")
NUMBER = re.compile(r"[0-9.][0-9A-Za-z.]*")
CONSTANT_VECTOR = re.compile(r"(?:on\s*\(\s*\)\s*)?vector\s*\(\s*[-+]?[0-9.eE]+\s*\)")


def _code(expr: str) -> Iterator[tuple[int, str]]:
    """(index, char) of ``expr`` outside string literals (quotes left out too)."""
    quote: str | None = None
    escaped = False
    for i, char in enumerate(expr):
        if quote:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == quote:
                quote = None
            continue
        if char in "\"'`":
            quote = char
            continue
        yield i, char


def _closing(expr: str, start: int, opening: str, closing: str) -> int:
    """Index just past the ``closing`` that matches the ``opening`` at ``start``."""
    depth = 0
    for i, char in _code(expr):
        if i < start:
            continue
        depth += (char == opening) - (char == closing)
        if depth == 0:
            return i + 1
    raise ValueError(f"unbalanced {opening}{closing} in {expr!r}")


def selectors(expr: str) -> list[str]:
    """The instant vector selectors (``metric{matchers}``) of ``expr``, first seen first.

    Querying each on its own shows which series an expression really reads: a function of
    nothing (``rate`` of an absent metric, ``or vector(0)``) can still return a sample.
    Function and aggregation names, keywords, grouping labels, ranges and numbers are skipped.
    """
    code = dict(_code(expr))
    found: list[str] = []
    i = 0
    while i < len(expr):
        char = code.get(i)
        if char is None or char.isspace():  # inside a string literal, or blank
            i += 1
        elif char == "[":
            i = _closing(expr, i, "[", "]")
        elif char == "{":  # a selector without a metric name
            end = _closing(expr, i, "{", "}")
            found.append(expr[i:end])
            i = end
        elif (name := IDENTIFIER.match(expr, i)) is None:
            number = NUMBER.match(expr, i)
            i = number.end() if number else i + 1
        else:
            i = name.end()
            j = i + len(expr[i:]) - len(expr[i:].lstrip())
            follower = IDENTIFIER.match(expr, j)
            word = name.group().lower()
            if word in GROUPING and expr.startswith("(", j):
                i = _closing(expr, j, "(", ")")
            elif word in KEYWORDS or expr.startswith("(", j):
                pass  # a keyword, or a function / aggregation call
            elif follower is not None and follower.group().lower() in ("by", "without"):
                pass  # an aggregation written ``sum by (…) (…)``
            elif expr.startswith("{", j):
                i = _closing(expr, j, "{", "}")
                found.append(name.group() + expr[j:i])
            else:
                found.append(name.group())
    return list(dict.fromkeys(found))


def fallback_operands(expr: str) -> list[str]:
    """The left operand of every ``… or vector(<number>)`` fallback in ``expr``.

    The fallback answers whatever its left side reads, so only the left side alone shows
    whether the series behind it exist. ``or`` binds loosest, so the operand runs from the
    enclosing ``(`` (or the start) to the ``or``.
    """
    operands: list[str] = []
    opened: list[int] = []
    braces = 0
    for i, char in _code(expr):
        if char in "{[":
            braces += 1
        elif char in "}]":
            braces -= 1
        elif braces:
            continue
        elif char == "(":
            opened.append(i)
        elif char == ")":
            opened.pop()
        elif (
            expr.startswith("or", i)
            and not IDENTIFIER_CHAR.match(expr[i - 1 : i] if i else " ")
            and expr[i + 2 : i + 3].isspace()
            and CONSTANT_VECTOR.match(expr[i + 2 :].lstrip())
        ):
            start = opened[-1] + 1 if opened else 0
            operands.append(expr[start:i].strip())
    return operands
