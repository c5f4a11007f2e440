"""History: the prediction log from GET /predictions, filtered, charted and downloadable."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import streamlit as st

from frontend import charts, intervals
from frontend.log_frames import requests_frame, values_frame
from frontend.ui import api_errors, client, read_key

PERIODS: dict[str, timedelta | None] = {
    "Last hour": timedelta(hours=1),
    "Last 24 hours": timedelta(days=1),
    "Last 7 days": timedelta(days=7),
    "Last 30 days": timedelta(days=30),
    "Everything": None,
}
STATUSES: dict[str, int | None] = {
    "any": None,
    "200 accepted": 200,
    "422 invalid input": 422,
    "413 body too large": 413,
    "429 rate-limited": 429,
    "500 failed": 500,
    "503 unavailable": 503,
}
ENDPOINTS = ["any", "/predict", "/predict/batch", "/feedback"]


@st.cache_data(ttl=5, show_spinner=False)
def load(
    api_url: str,
    key: str,
    since: datetime | None,
    status: int | None,
    endpoint: str | None,
    limit: int,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Requests and predicted values matching the filters (cached a few seconds for reruns;
    the key is part of the cache's key, so a wrong one never reads what a right one loaded)."""
    records = client().predictions(
        key=key, limit=limit, since=since, status=status, endpoint=endpoint
    )
    return requests_frame(records), values_frame(records)


st.title("Prediction history")
api = client()
key = read_key()
if key is None:
    st.info("The prediction log is private: enter a read key to see it.")
    st.stop()
c1, c2, c3, c4 = st.columns([2, 2, 2, 2])
period = c1.selectbox("Time range", list(PERIODS), index=1, key="history-period")
status = c2.selectbox("Status", list(STATUSES), key="history-status")
endpoint = c3.selectbox("Endpoint", ENDPOINTS, key="history-endpoint")
limit = c4.number_input(
    "Newest requests, at most",
    min_value=100,
    max_value=api.settings.ui_history_rows,
    value=min(2000, api.settings.ui_history_rows),
    step=500,
    key="history-limit",
)
span = PERIODS[period]
# Rounded down to the minute so reruns within a minute hit the cache.
since = (datetime.now(UTC) - span).replace(second=0, microsecond=0) if span else None

with api_errors():
    requests, values = load(
        api.base_url,
        key,
        since,
        STATUSES[status],
        None if endpoint == "any" else endpoint,
        int(limit),
    )

if requests.empty:
    st.info("No logged request matches these filters. Make a prediction on the Predict page.")
    st.stop()

a, b, c, d = st.columns(4)
a.metric("Requests", f"{len(requests):,}")
b.metric("Rejected or failed", f"{int((requests['outcome'] != 'accepted').sum()):,}")
c.metric("Predicted values", f"{len(values):,}")
d.metric("Median prediction", f"${values['value'].median():,.0f}" if len(values) else "—")
if len(requests) >= limit:
    st.caption(f"Showing the newest {len(requests):,} requests; raise the limit to see more.")

left, right = st.columns(2)
with left:
    st.altair_chart(
        charts.requests_over_time(charts.requests_per_bucket(requests, "created_at", "outcome")),
        key="history-requests",
    )
with right:
    if values.empty:
        st.info("No predicted value among these requests.")
    else:
        st.altair_chart(
            charts.predictions_over_time(charts.per_bucket(values, "created_at", "value")),
            key="history-values",
        )
if not values.empty:
    st.altair_chart(charts.distribution(charts.histogram(values["value"])), key="history-hist")
if values["low"].notna().any():
    st.altair_chart(intervals.band_over_time(values), key="history-intervals")

st.dataframe(
    requests,
    hide_index=True,
    column_config={
        "created_at": st.column_config.DatetimeColumn("time (UTC)", format="YYYY-MM-DD HH:mm:ss"),
        "prediction_dollars": st.column_config.NumberColumn("prediction", format="dollar"),
        "actual_dollars": st.column_config.NumberColumn("actual (feedback)", format="dollar"),
        "latency_ms": st.column_config.NumberColumn("latency (ms)", format="%.1f"),
    },
)
st.download_button(
    "Download these requests (CSV)",
    requests.to_csv(index=False).encode(),
    file_name="prediction-history.csv",
    mime="text/csv",
    icon=":material/download:",
    key="history-download",
)
