"""Request and response bodies of POST /explain and POST /explain/what-if.

/explain takes the very ``House`` of /predict (same fields, ranges, rules and 422s); the
what-if request wraps one, with the input to vary and the range to vary it over.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from housing.explain import BACKGROUND_ROWS, PLAYERS
from housing.features import BY_NAME, FEATURE_NAMES, TARGET
from housing.service.schemas import House
from housing.whatif import DEFAULT_POINTS, MAX_POINTS

FeatureName = Literal[FEATURE_NAMES]  # type: ignore[valid-type]


class Contribution(BaseModel):
    """One player's Shapley value: how far its inputs move this prediction from the base."""

    feature: str = Field(description=f"One of {', '.join(PLAYERS)}", examples=["MedInc"])
    inputs: list[str] = Field(description="The raw inputs this player sets")
    value: float | None = Field(description="The house's value of a one-input player, else null")
    values: dict[str, float] = Field(description="The house's value of each of ``inputs``")
    contribution: float = Field(description=f"Shapley value ({TARGET.unit})")
    contribution_dollars: float


class Explanation(BaseModel):
    """``base_value + sum(contribution) == prediction`` (the value /predict gives this house)."""

    explanation_id: str
    prediction: float = Field(description=f"Median house value ({TARGET.unit})")
    prediction_dollars: float
    base_value: float = Field(
        description=f"Mean prediction over the version's {BACKGROUND_ROWS}-row background"
    )
    base_value_dollars: float
    contributions: list[Contribution] = Field(description="Largest |contribution| first")
    model_name: str
    model_version: str
    method: str
    background_rows: int


class WhatIfRequest(BaseModel):
    """A house, the input to vary, and over what range (default: the feature spec's)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, strict=True)

    house: House  # type: ignore[valid-type]
    feature: FeatureName = Field(description="The raw input to vary (Latitude and Longitude "
                                 "each move alone, the other held)")  # fmt: skip
    points: int = Field(DEFAULT_POINTS, ge=2, le=MAX_POINTS)
    low: float | None = Field(None, description="Start of the range (default: the spec's min)")
    high: float | None = Field(None, description="End of the range (default: the spec's max)")

    @field_validator("low", "high")
    @classmethod
    def _within_spec(cls, value: float | None, info: ValidationInfo) -> float | None:
        feature = info.data.get("feature")
        if value is None or feature is None:
            return value
        spec = BY_NAME[feature]
        if not spec.min <= value <= spec.max:
            message = f"{value!r} is outside {feature}'s range {spec.min:g} to {spec.max:g}"
            raise PydanticCustomError("range", "{message}", {"message": message})
        low = info.data.get("low")
        if info.field_name == "high" and low is not None and not value > low:
            message = f"high ({value!r}) must exceed low ({low!r})"
            raise PydanticCustomError("order", "{message}", {"message": message})
        return value


class Refusal(BaseModel):
    """Why a point of the curve was not predicted: the business rule its house breaks."""

    rule: str = Field(examples=["inside_california"])
    field: str = Field(examples=["Longitude"])
    message: str


class WhatIfPoint(BaseModel):
    """A predicted value at ``value``, or the refusal."""

    value: float
    prediction: float | None = None
    prediction_dollars: float | None = None
    refused: Refusal | None = None


class WhatIf(BaseModel):
    """The curve: ``points`` values of ``feature`` from ``low`` to ``high``, the rest held."""

    feature: str
    player: str = Field(description="The explanation's player this input belongs to")
    current_value: float
    current_prediction: float
    low: float
    high: float
    points: list[WhatIfPoint]
    refused: int
    model_name: str
    model_version: str
