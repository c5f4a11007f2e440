"""Request and response bodies of the API, generated from the feature spec (never restated).

``House`` is built from ``housing.features.FEATURES``: each feature's physical range, unit and
description become the field's bounds and documentation, and ``housing.service.rules`` adds
the cross-field business rules as field validators.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    WithJsonSchema,
    create_model,
    field_validator,
)
from pydantic_core import PydanticCustomError

from housing.features import FEATURES, TARGET, typical_row
from housing.service.rules import RULES, broken_rule, rules_for
from housing.service.tokens import TOKEN_PATTERN, canonical_prediction_id

MAX_BATCH_ROWS = 1000
PREDICTION_ID_PATTERN = r"^[0-9a-f]{32}(-[0-9]{1,4})?$"


def _rule_validator(field: str):
    """A field validator applying the cross-field rules enforced on ``field``."""

    def check(cls: type[BaseModel], value: float, info: ValidationInfo) -> float:
        rule = broken_rule(field, value, info.data)
        if rule is not None:
            raise PydanticCustomError(
                rule.name, "{message}", {"message": rule.message({**info.data, field: value})}
            )
        return value

    check.__name__ = f"check_{field}"
    return field_validator(field)(check)


def _house_model() -> type[BaseModel]:
    fields: dict[str, Any] = {
        f.name: (
            float,
            Field(
                ge=f.min,
                le=f.max,
                title=f.name,
                description=f"{f.description} ({f.unit})",
                examples=[f.typical],
                json_schema_extra={"unit": f.unit, "typical": f.typical},
            ),
        )
        for f in FEATURES
    }
    validators = {f"rules_{f.name}": _rule_validator(f.name) for f in FEATURES if rules_for(f.name)}
    return create_model(
        "House",
        __config__=ConfigDict(
            extra="forbid",
            allow_inf_nan=False,
            strict=True,
            json_schema_extra={"examples": [typical_row()]},
        ),
        __doc__="One census block group: the 8 model inputs, in the feature spec's units.",
        __validators__=validators,
        **fields,
    )


House = _house_model()
"""Validated model input; unknown fields, NaN/Infinity, out-of-range and rule-breaking values
are rejected with the failing field named."""


class FieldError(BaseModel):
    """One reason a request or a batch row was rejected."""

    field: str = Field(examples=["AveBedrms"])
    rule: str = Field(examples=["at_most_ave_rooms"])
    message: str = Field(examples=["AveBedrms (3.0) must not exceed AveRooms (2.0)"])


class ValidationErrorBody(BaseModel):
    """422: every failing field and rule, in plain words."""

    detail: list[FieldError]


class ErrorBody(BaseModel):
    """Any other error: one sentence, never a stack trace."""

    detail: str


class Interval(BaseModel):
    """A conformal prediction interval: the true value falls inside for ``level`` of houses
    (calibrated on the training split, measured on the test split; see GET /performance)."""

    level: float = Field(examples=[0.9])
    low: float = Field(description=f"Lower bound ({TARGET.unit})")
    high: float = Field(description=f"Upper bound ({TARGET.unit})")
    low_dollars: float
    high_dollars: float


class Prediction(BaseModel):
    """A predicted median house value for one block group."""

    prediction_id: str = Field(description="Quote it in POST /feedback with the true value")
    feedback_token: str = Field(
        description="Secret for POST /feedback on this prediction (only its hash is logged)"
    )
    prediction: float = Field(description=f"Median house value ({TARGET.unit})")
    prediction_dollars: float = Field(description="The same value in dollars")
    model_name: str
    model_version: str
    interval: Interval | None = Field(
        None, description="null when the serving version was trained without intervals"
    )


class BatchRequest(BaseModel):
    """Up to ``MAX_BATCH_ROWS`` houses; each row is validated on its own."""

    model_config = ConfigDict(extra="forbid")

    houses: Annotated[
        list[Any],
        Field(min_length=1, max_length=MAX_BATCH_ROWS),
        WithJsonSchema(
            {
                "type": "array",
                "items": {"$ref": "#/components/schemas/House"},
                "minItems": 1,
                "maxItems": MAX_BATCH_ROWS,
            }
        ),
    ]


class BatchItem(BaseModel):
    """The result for one row of a batch: a prediction or the reasons it was rejected."""

    index: int
    prediction_id: str | None = None
    prediction: float | None = None
    prediction_dollars: float | None = None
    interval: Interval | None = None
    errors: list[FieldError] | None = None


class BatchPrediction(BaseModel):
    """Per-row results, in request order."""

    request_id: str
    feedback_token: str = Field(
        description="Secret for POST /feedback on any row of this batch (only its hash is logged)"
    )
    model_name: str
    model_version: str
    predicted: int
    rejected: int
    results: list[BatchItem]


class FeedbackRequest(BaseModel):
    """The observed median house value for an earlier prediction."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, strict=True)

    prediction_id: str = Field(pattern=PREDICTION_ID_PATTERN, max_length=40)
    actual: float = Field(
        ge=TARGET.min, le=TARGET.max, description=f"{TARGET.description} ({TARGET.unit})"
    )
    feedback_token: str | None = Field(
        None,
        pattern=TOKEN_PATTERN,
        description="The prediction's (or its batch's) feedback_token; without it: 403",
    )

    @field_validator("prediction_id")
    @classmethod
    def _canonical(cls, value: str) -> str:
        """``<id>-0``, ``<id>-00`` and ``<id>-000`` are one batch row."""
        return canonical_prediction_id(value)


class Feedback(BaseModel):
    """Recorded feedback, with the prediction it labels."""

    feedback_id: str
    prediction_id: str
    prediction: float
    actual: float
    model_version: str | None


class FeatureSpec(BaseModel):
    """A feature as the UI needs it to build a form."""

    name: str
    unit: str
    description: str
    min: float
    max: float
    typical: float


class RuleSpec(BaseModel):
    """A cross-field business rule."""

    name: str
    field: str
    fields: list[str]
    description: str


class SchemaInfo(BaseModel):
    """The feature spec and rules that validate every request."""

    features: list[FeatureSpec]
    target: FeatureSpec
    rules: list[RuleSpec]
    max_batch_rows: int


def schema_info() -> SchemaInfo:
    """The spec as served by GET /schema."""
    return SchemaInfo(
        features=[FeatureSpec(**f.as_dict()) for f in FEATURES],
        target=FeatureSpec(**TARGET.as_dict()),
        rules=[
            RuleSpec(name=r.name, field=r.field, fields=list(r.fields), description=r.description)
            for r in RULES
        ],
        max_batch_rows=MAX_BATCH_ROWS,
    )


class ModelInfo(BaseModel):
    """The model currently serving."""

    name: str
    version: str
    alias: str
    run_id: str | None
    candidate: str | None
    metrics: dict[str, float]
    trained_at: str | None
    loaded_at: datetime
    features: list[str]


class VersionRef(BaseModel):
    """A registered model version."""

    version: str
    run_id: str | None
    candidate: str | None


class CandidateResult(BaseModel):
    """One candidate of a training run, with its test metrics."""

    candidate: str | None
    run_id: str
    test_rmse: float | None
    test_mae: float | None
    test_r2: float | None
    fit_seconds: float | None
    cv_rmse: float | None
    registered_version: str | None
    aliases: list[str]


class TrainingRun(BaseModel):
    """A `housing train` run: its candidates side by side."""

    run_id: str
    run_name: str | None
    started_at: datetime | None
    status: str
    candidates: list[CandidateResult]


class FeatureImportance(BaseModel):
    """Permutation importance of one raw input on the test split (training computes it)."""

    feature: str
    importance_mean: float = Field(description="Rise in test RMSE when the input is shuffled")
    importance_std: float


class ModelsOverview(BaseModel):
    """Training runs, newest first, and which versions hold ``champion`` and ``previous``."""

    model_name: str
    champion: VersionRef | None
    previous: VersionRef | None
    runs: list[TrainingRun]
    champion_importances: list[FeatureImportance] | None = Field(
        None, description="The champion's global importances, largest first (null: none logged)"
    )


class LogRecord(BaseModel):
    """One logged request to /predict, /predict/batch, /feedback or /explain."""

    id: str
    created_at: datetime
    endpoint: str
    status: int
    latency_ms: float
    inputs: Any | None
    raw_body: str | None
    prediction: float | None
    predictions: list[float | None] | None
    model_name: str | None
    model_version: str | None
    error: Any | None
    feedback_for: str | None
    actual: float | None
    contributions: dict[str, float] | None = None
    """/explain rows: the base value and each player's Shapley value."""
    interval_level: float | None = None
    interval_low: float | None = None
    interval_high: float | None = None
    intervals: list[list[float] | None] | None = Field(
        None, description="A batch's [low, high] per row (null for a rejected row)"
    )


class LogPage(BaseModel):
    """A page of the prediction log, newest first."""

    items: list[LogRecord]
    limit: int
    offset: int
    next_offset: int | None
    next_cursor: str | None = None
    """Pass as ``cursor`` for the next page (a seek, whatever the depth; offsets are capped)."""


class Health(BaseModel):
    """Liveness."""

    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    """Readiness: a model is loaded and the log accepts writes."""

    ready: bool
    model_version: str | None
    model_error: str | None
    database: str


class ReloadResult(BaseModel):
    """What POST /admin/reload did."""

    result: Literal["loaded", "unchanged", "failed", "no_champion"]
    version: str | None = Field(description="The version serving after the reload")
    detail: str
