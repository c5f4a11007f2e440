"""Admin: upload labelled data, start a retrain, follow it, see whether the champion changed.

Every call carries the API key the user typed; it lives in this browser session's state only
(never in a file, a URL or the server's settings).
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from frontend.errors import ApiValidationError
from frontend.ui import api_errors, client

FOLLOW_SECONDS = 2
JOB_KEY = "admin-job"
FINAL = ("succeeded", "failed")


def upload_section(key: str) -> None:
    """A CSV of labelled houses becomes a data batch, or comes back with its errors per row."""
    st.subheader("Upload labelled data", anchor=False)
    file = st.file_uploader(
        "CSV with the 8 features and MedHouseVal (all rows are stored, or none)",
        type=["csv"],
        key="admin-upload",
    )
    if file is None or not st.button("Store as a data batch", key="admin-upload-go"):
        return
    batch = None
    try:
        with api_errors(stop=False):
            batch = client().admin_upload(key, file.name, file.getvalue())
    except ApiValidationError as exc:
        st.error(f"**Nothing was stored** — {exc.message}", icon=":material/block:")
        rows = [{"problem": e.message, "column": e.field, "rule": e.rule} for e in exc.errors]
        st.dataframe(pd.DataFrame(rows), hide_index=True, key="admin-upload-errors")
        return
    if batch is None:
        return
    verb = "Stored" if batch.get("created", True) else "Already stored"
    st.success(
        f"{verb}: batch `{batch['id']}`, {batch['rows']:,} rows, sha256 `{batch['sha256'][:12]}`",
        icon=":material/inventory_2:",
    )


def retrain_section(key: str, batches: list[dict[str, Any]]) -> None:
    """Choose the data and start a retraining job (one runs at a time)."""
    st.subheader("Retrain", anchor=False)
    if batches:
        st.dataframe(
            pd.DataFrame(batches)[["id", "rows", "source", "created_at", "sha256"]],
            hide_index=True,
            key="admin-batches",
        )
    else:
        st.caption("No data batches yet: the retrain uses the training split and feedback.")
    ids = [b["id"] for b in batches]
    chosen = st.multiselect("Batches to train on", ids, default=ids, key="admin-chosen")
    feedback = st.checkbox(
        "Add the predictions that got feedback", value=True, key="admin-feedback"
    )
    if not st.button("Start retraining", key="admin-retrain", type="primary"):
        return
    with api_errors(stop=False):
        job_id, running = client().admin_retrain(key, chosen if batches else None, feedback)
        if running:
            st.warning(f"A retrain is running already: following job `{job_id}`.")
        st.session_state[JOB_KEY] = job_id


def show_result(result: dict[str, Any]) -> None:
    """The gate's decision, the candidates' metrics and the data the job used."""
    before, after = result.get("champion_before"), result["champion"]
    a, b, c = st.columns(3)
    a.metric("Champion before", f"v{before['version']}" if before else "none")
    b.metric(
        "Champion now",
        f"v{after['version']}",
        delta="changed" if result["champion_changed"] else "unchanged",
        delta_color="normal" if result["champion_changed"] else "off",
    )
    c.metric("Champion test RMSE", f"{after['rmse']:.4f}")
    waiting = (result.get("gate") or {}).get("pending_approval")
    verdict = "**Promoted.** " if result["promoted"] else "**Not promoted.** "
    st.write(("**Waiting for approval.** " if waiting else verdict) + result["reason"])
    st.dataframe(
        pd.DataFrame(result["candidates"])[["model", "rmse", "mae", "r2", "cv_rmse"]],
        hide_index=True,
        key="admin-candidates",
        column_config={
            name: st.column_config.NumberColumn(label, format="%.4f")
            for name, label in [
                ("rmse", "test RMSE"),
                ("mae", "test MAE"),
                ("r2", "test R²"),
                ("cv_rmse", "CV RMSE"),
            ]
        },
    )
    data = result["data"]
    st.caption(
        f"Trained on the training split + {data['feedback_rows']:,} feedback rows + "
        f"{data['batch_rows']:,} rows from {len(data['batches'])} batch(es); "
        f"{data['held_out_dropped']} rows dropped as near copies of held-out houses, "
        f"{sum((data.get('feedback_refused') or {}).values()):,} untrusted feedback rows left "
        "out. "
        f"MLflow run `{result.get('run_id')}`."
    )


def approval_section(key: str, pending: list[dict[str, Any]]) -> None:
    """Versions an alert-started retrain registered: served only once an admin approves."""
    if not pending:
        return
    st.subheader("Waiting for approval", anchor=False)
    for version in pending:
        st.write(f"**v{version['version']}** ({version['candidate']}): {version['gate_reason']}")
        if st.button(
            f"Approve and serve v{version['version']}",
            key=f"admin-approve-{version['version']}",
            type="primary",
        ):
            with api_errors(stop=False):
                done = client().admin_promote(key, version["version"])
                st.success(
                    f"v{done['version']} is the champion (was v{done['replaced']}); "
                    f"reload: {done['reload']['result']}",
                    icon=":material/verified:",
                )


def show_job(job: dict[str, Any]) -> None:
    st.write(f"Job `{job['id']}` ({job['trigger']}): **{job['status']}**")
    if job["status"] == "failed":
        st.error(f"**The retrain failed** — {job['error']}", icon=":material/error:")
    elif job["status"] == "succeeded":
        show_result(job["result"])
    else:
        st.caption(f"Training in the background; this refreshes every {FOLLOW_SECONDS} s.")


@st.fragment(run_every=FOLLOW_SECONDS)
def follow(key: str, job_id: str) -> None:
    """Poll a running job; when it ends, rerun the page to show the outcome once."""
    with api_errors(stop=False):
        job = client().admin_job(key, job_id)
        show_job(job)
        if job["status"] in FINAL:
            st.rerun()


st.title("Admin")
api_key = st.text_input(
    "API key",
    type="password",
    key="admin-api-key",
    help="The API's HOUSING_API_KEY. Kept in this browser session only.",
)
if not api_key:
    st.info("Enter the API key to upload data and start retraining.")
    st.stop()

with api_errors():  # a wrong key stops the page here with the API's words
    stored = client().admin_batches(api_key)
with api_errors():
    waiting = client().admin_pending(api_key)
approval_section(api_key, waiting)
upload_section(api_key)
retrain_section(api_key, stored)

job_id = st.session_state.get(JOB_KEY)
if job_id:
    st.subheader("Job", anchor=False)
    with api_errors():
        current = client().admin_job(api_key, job_id)
    if current["status"] in FINAL:
        show_job(current)
    else:
        follow(api_key, job_id)

st.subheader("Recent jobs", anchor=False)
with api_errors():
    recent = client().admin_jobs(api_key)
if recent:
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "job": j["id"],
                    "trigger": j["trigger"],
                    "status": j["status"],
                    "champion moved": (j.get("result") or {}).get("champion_changed"),
                    "requested (UTC)": j["requested_at"],
                }
                for j in recent
            ]
        ),
        hide_index=True,
        key="admin-jobs",
    )
else:
    st.caption("No retraining job yet.")
