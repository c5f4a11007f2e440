"""Business rules across features, and plain-word descriptions of every validation failure.

Ranges come from ``housing.features``; the rules here relate features to each other (a block
group has at least one household, its bedrooms are among its rooms, it lies in California).
Each rule is enforced by the validator of the *last* feature it involves (spec order), so a
failing field is named in the error's ``loc`` and a rule is skipped when an earlier feature it
needs already failed its own check (no cascade of errors from one bad value).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from housing.features import BY_NAME, FEATURE_NAMES
from housing.geo import in_california

TOLERANCE = 1e-9
"""Relative slack for rules on implied counts: census ratios round-trip through floats."""


@dataclass(frozen=True)
class Rule:
    """A cross-field business rule: ``check`` gets the validated features it involves."""

    name: str
    fields: tuple[str, ...]
    description: str
    check: Callable[[Mapping[str, float]], bool]
    message: Callable[[Mapping[str, float]], str]

    @property
    def field(self) -> str:
        """The feature whose validator enforces the rule (the last involved in spec order)."""
        return max(self.fields, key=FEATURE_NAMES.index)


def _households(v: Mapping[str, float]) -> float:
    return v["Population"] / v["AveOccup"]


RULES: tuple[Rule, ...] = (
    Rule(
        "at_most_ave_rooms",
        ("AveRooms", "AveBedrms"),
        "bedrooms are rooms: AveBedrms must not exceed AveRooms",
        lambda v: v["AveBedrms"] <= v["AveRooms"],
        lambda v: f"AveBedrms ({v['AveBedrms']!r}) must not exceed AveRooms ({v['AveRooms']!r})",
    ),
    Rule(
        "at_least_one_household",
        ("Population", "AveOccup"),
        "the implied number of households (Population / AveOccup) must be at least 1",
        lambda v: _households(v) >= 1 - TOLERANCE,
        lambda v: (
            f"Population ({v['Population']!r}) / AveOccup ({v['AveOccup']!r}) implies "
            f"{_households(v):.3g} households; a block group has at least 1"
        ),
    ),
    Rule(
        "at_least_one_bedroom",
        ("AveBedrms", "Population", "AveOccup"),
        "the implied number of bedrooms (AveBedrms x households) must be at least 1",
        lambda v: v["AveBedrms"] * _households(v) >= 1 - TOLERANCE,
        lambda v: (
            f"AveBedrms ({v['AveBedrms']!r}) x {_households(v):.3g} households implies "
            f"{v['AveBedrms'] * _households(v):.3g} bedrooms; a block group has at least 1"
        ),
    ),
    Rule(
        "inside_california",
        ("Latitude", "Longitude"),
        "the point (Latitude, Longitude) must lie inside California's outline",
        lambda v: in_california(v["Latitude"], v["Longitude"]),
        lambda v: (
            f"the point Latitude {v['Latitude']!r}, Longitude {v['Longitude']!r} lies outside "
            "California"
        ),
    ),
)
BY_RULE: dict[str, Rule] = {rule.name: rule for rule in RULES}
_BY_FIELD: dict[str, tuple[Rule, ...]] = {
    name: tuple(rule for rule in RULES if rule.field == name) for name in FEATURE_NAMES
}


def rules_for(field: str) -> tuple[Rule, ...]:
    """The rules enforced when ``field`` is validated."""
    return _BY_FIELD.get(field, ())


def broken_rule(field: str, value: float, earlier: Mapping[str, Any]) -> Rule | None:
    """The first rule of ``field`` that ``value`` breaks, given the earlier valid features."""
    values = {**earlier, field: value}
    for rule in rules_for(field):
        if all(name in values for name in rule.fields) and not rule.check(values):
            return rule
    return None


def house_problems(row: Mapping[str, float]) -> list[tuple[str, str]]:
    """(field, rule) pairs a complete, in-range house breaks (for data checks and tests)."""
    return [(rule.field, rule.name) for rule in RULES if not rule.check(row)]


# --- Plain words for pydantic's error types -------------------------------------------------

_RULE_NAMES = {
    "missing": "required",
    "extra_forbidden": "unknown_field",
    "greater_than_equal": "min",
    "greater_than": "min",
    "less_than_equal": "max",
    "less_than": "max",
    "finite_number": "finite",
    "float_type": "number",
    "float_parsing": "number",
    "int_type": "integer",
    "int_parsing": "integer",
    "string_type": "text",
    "model_type": "object",
    "model_attributes_type": "object",
    "dict_type": "object",
    "list_type": "list",
    "too_short": "min_items",
    "too_long": "max_items",
    "json_invalid": "json",
    "string_pattern_mismatch": "pattern",
    "datetime_parsing": "datetime",
    "datetime_from_date_parsing": "datetime",
}

_LOCATION_PREFIXES = ("body", "query", "path", "header")


def field_name(loc: Iterable[Any]) -> str:
    """``("body", "houses", 3, "MedInc")`` -> ``houses[3].MedInc``; the body itself is "body"."""
    parts = list(loc)
    if parts and parts[0] in _LOCATION_PREFIXES:
        parts = parts[1:] if len(parts) > 1 else parts
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "body"


def _unit(field: str) -> str:
    feature = BY_NAME.get(field)
    return f" {feature.unit}" if feature else ""


def describe(error: Mapping[str, Any]) -> dict[str, Any]:
    """One pydantic/FastAPI error as ``{"field", "rule", "message"}`` in plain words."""
    kind = str(error.get("type", "value_error"))
    field = field_name(error.get("loc", ()))
    ctx = error.get("ctx") or {}
    value = error.get("input")
    rule = BY_RULE.get(kind)
    if rule is not None:
        return {"field": field, "rule": kind, "message": str(error.get("msg", kind))}
    name = _RULE_NAMES.get(kind, kind)
    bare = field.rsplit(".", 1)[-1]
    if name == "min":
        bound = ctx.get("ge", ctx.get("gt"))
        message = f"{field} ({value!r}) must be at least {bound!r}{_unit(bare)}"
    elif name == "max":
        bound = ctx.get("le", ctx.get("lt"))
        message = f"{field} ({value!r}) must be at most {bound!r}{_unit(bare)}"
    elif name == "required":
        message = f"{field} is required"
    elif name == "unknown_field":
        message = f"unknown field {bare!r} (expected: {', '.join(FEATURE_NAMES)})"
    elif name == "finite":
        message = f"{field} must be a finite number, not NaN or Infinity"
    elif name == "object":
        message = f"{field} must be a JSON object with the features {', '.join(FEATURE_NAMES)}"
    elif name == "number":
        message = f"{field} must be a number, not {value!r}"[:300]
    elif name == "json":
        position = parts[-1] if (parts := list(error.get("loc", ()))) else "?"
        field = "body"
        message = f"the body is not valid JSON ({ctx.get('error', 'decode error')} at {position})"
    else:
        message = f"{field}: {error.get('msg', kind)}"
    return {"field": field, "rule": name, "message": message}
