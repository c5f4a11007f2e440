"""Models: every training run's candidates side by side, and which versions serve."""

from __future__ import annotations

import streamlit as st

from frontend import charts, explain_charts
from frontend.api_types import ModelsOverview
from frontend.ui import api_errors, client

RUNS_CHARTED = 5


@st.cache_data(ttl=15, show_spinner=False)
def load(api_url: str) -> ModelsOverview:
    """Runs and aliases (the API reads MLflow); a few seconds of cache keeps reruns fast."""
    return client().models()


st.title("Models")
api = client()
with api_errors():
    overview = load(api.base_url)

rows = overview.candidate_frame()
a, b = st.columns(2)
for column, alias, ref in (
    (a, "champion", overview.champion),
    (b, "previous", overview.previous),
):
    if ref is None:
        column.metric(f"`{alias}`", "none")
        continue
    column.metric(f"`{alias}`", f"version {ref.version}", help=f"run {ref.run_id}")
    match = rows[rows["version"] == ref.version] if not rows.empty else rows
    if not match.empty:
        row = match.iloc[0]
        column.caption(f"{row['candidate']} · test RMSE {row['rmse']:.3f} · R² {row['r2']:.3f}")
    elif ref.candidate:
        column.caption(ref.candidate)
st.caption(f"Registered model `{overview.model_name}`.")

if rows.empty:
    st.info("No training run in MLflow yet: run `housing train`.")
    st.stop()

st.subheader("Candidates of each training run", anchor=False)
recent_runs = rows["run"].drop_duplicates().head(RUNS_CHARTED)
metrics_col, importance_col = st.columns([3, 2], gap="large")
metrics_col.altair_chart(
    charts.model_metrics(rows[rows["run"].isin(recent_runs)]), key="models-metrics"
)
with importance_col:
    if overview.champion_importances:
        st.altair_chart(
            explain_charts.importances(overview.champion_importances), key="models-importance"
        )
        st.caption(
            "Permutation importance on the test split, computed when the champion was trained: "
            "how much worse it predicts when one input is shuffled."
        )
    else:
        st.caption("The champion's run logged no importances.")
if rows["run"].nunique() > RUNS_CHARTED:
    st.caption(f"The chart shows the {RUNS_CHARTED} newest runs; the table lists them all.")
st.dataframe(
    rows,
    hide_index=True,
    column_config={
        "started": st.column_config.DatetimeColumn("started (UTC)", format="YYYY-MM-DD HH:mm"),
        "rmse": st.column_config.NumberColumn("RMSE", format="%.3f"),
        "mae": st.column_config.NumberColumn("MAE", format="%.3f"),
        "r2": st.column_config.NumberColumn("R²", format="%.3f"),
        "fit_seconds": st.column_config.NumberColumn("fit time (s)", format="%.2f"),
        "cv_rmse": st.column_config.NumberColumn("CV RMSE", format="%.3f"),
    },
)
st.caption(
    "RMSE and MAE in units of $100,000 on the held-out test split (lower is better); "
    "R² higher is better."
)
