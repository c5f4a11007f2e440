"""Drift: the latest Evidently result, per-feature scores, drift share over time, the report."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from frontend import charts
from frontend.ui import api_errors, client, read_key

st.title("Data drift")
api = client()
key = read_key()  # the history and the report need one (the latest result does not)
with api_errors():
    latest = api.drift()

if latest.share is None:
    st.info(
        f"No drift result yet — {latest.detail}. The API compares the newest logged inputs with "
        f"the training reference once {latest.min_rows or 'enough'} are logged "
        f"({latest.logged_inputs:,} so far); `housing simulate` sends realistic traffic.",
        icon=":material/hourglass_empty:",
    )
    st.stop()

a, b, c, d = st.columns(4)
a.metric("Drift share", f"{latest.share:.0%}", help="Share of the features whose test flags drift")
b.metric("Dataset drift", "yes" if latest.detected else "no")
c.metric("Recent inputs compared", f"{latest.current_rows or 0:,}")
d.metric("Reference rows", f"{latest.reference_rows or 0:,}")
when = f"{latest.computed_at:%Y-%m-%d %H:%M:%S} UTC" if latest.computed_at else "recently"
st.caption(
    f"Computed {when}. Dataset drift is declared when at least {latest.drift_share:.0%} of the "
    f"features drift. Check status: {latest.status} — {latest.detail}."
)
if latest.detected:
    drifted = ", ".join(f.feature for f in latest.features if f.drifted)
    st.warning(f"The served inputs have drifted from the training data: {drifted}.")

features = pd.DataFrame([f.model_dump() for f in latest.features])
history = []
if key is not None:
    with api_errors(stop=False, where="history"):
        history = api.drift_history(key)
left, right = st.columns(2)
with left:
    st.altair_chart(charts.feature_drift(features), key="drift-features")
with right:
    if key is None:
        st.info("Enter a read key to see drift over time and Evidently's report.")
    elif len(history) >= 2:
        frame = pd.DataFrame([h.model_dump() for h in history])
        st.altair_chart(charts.drift_over_time(frame, latest.drift_share), key="drift-history")
    else:
        st.info("Drift share over time appears once there are two results.")
st.dataframe(
    features,
    hide_index=True,
    column_config={
        "score": st.column_config.NumberColumn("score", format="%.2e"),
        "threshold": st.column_config.NumberColumn("threshold", format="%.0e"),
    },
)

st.subheader("Evidently report", anchor=False)
# The report is several MB of HTML and script: drawn when asked for, so the page stays fast.
if key is not None and st.toggle("Show Evidently's full report", key="drift-show-report"):
    with api_errors(stop=False, where="report"), st.spinner("Loading the report…"):
        report = api.drift_report(key)
        if report is None:
            st.info("The API has no HTML report for this result yet.")
        else:
            # Our own API's Evidently output, not user input: it may run in the iframe.
            st.iframe(report, height=900)
