"""Under the predicted value: why the model gives it (a waterfall) and what-if curves.

Both come from the API (POST /explain, POST /explain/what-if), for the house just predicted.
"""

from __future__ import annotations

import streamlit as st

from frontend import explain_charts
from frontend.api_types import Explanation, FeatureSpec, WhatIf
from frontend.ui import api_errors, client


@st.cache_data(ttl=30, show_spinner=False)
def load_explanation(api_url: str, house: tuple[tuple[str, float], ...]) -> Explanation:
    """The explanation of one house (cached briefly: changing the what-if input reruns the page)."""
    return client().explain(dict(house))


@st.cache_data(ttl=30, show_spinner=False)
def load_what_if(api_url: str, house: tuple[tuple[str, float], ...], feature: str) -> WhatIf:
    return client().what_if(dict(house), feature)


def show(house: dict[str, float], schema: list[FeatureSpec]) -> None:
    """The waterfall, then the what-if panel, for ``house``."""
    key = tuple(house.items())
    api_url = client().base_url
    st.subheader("Why this value", anchor=False)
    with api_errors(stop=False, where="explain"):
        explanation = load_explanation(api_url, key)
        steps = len(explanation.contributions) + 2  # with the base and the prediction
        st.altair_chart(
            explanation_chart(explanation), key="explain-waterfall", height=32 * steps + 90
        )
        st.caption(explain_charts.waterfall_caption(explanation))
        st.caption(
            f"{explanation.method}, against a fixed sample of model version "
            f"{explanation.model_version}'s training data: the contributions add up to the value."
        )
    st.subheader("What if…", anchor=False)
    units = {spec.name: spec.unit for spec in schema}
    feature = st.selectbox(
        "Change one input, keep the rest",
        [spec.name for spec in schema],
        key="whatif-feature",
        help="The value is predicted across the input's whole allowed range; values the API "
        "would refuse (for example a location outside California) are gaps in the curve.",
    )
    with api_errors(stop=False, where="what-if"):
        curve = load_what_if(api_url, key, feature)
        st.altair_chart(explain_charts.what_if(curve, units.get(feature, "")), key="whatif-chart")
        if curve.refused:
            rules = sorted({p.refused.rule for p in curve.points if p.refused is not None})
            st.caption(
                f"{curve.refused} of {len(curve.points)} values refused by the API's rules "
                f"({', '.join(rules)}): shown as gaps, marked in orange."
            )


def explanation_chart(explanation: Explanation):
    return explain_charts.waterfall(explanation)
