"""Service: request rate, latency percentiles, error ratio and live accuracy, refreshed live."""

from __future__ import annotations

import time

import pandas as pd
import streamlit as st

from frontend.api_types import TARGET_DOLLARS, Performance
from frontend.metrics import Scrape, Summary, parse_metrics, per_endpoint, summarize
from frontend.ui import api_errors, client

REFRESH_SECONDS = 5
KEEP = 60  # readings kept for the sparklines: five minutes at one per 5 s


def remember(scrape: Scrape) -> list[Scrape]:
    """This session's readings, oldest first, this one last."""
    readings: list[Scrape] = st.session_state.setdefault("service-scrapes", [])
    if readings and scrape.taken_at - readings[-1].taken_at < 1.0:
        readings.pop()  # a rerun right after the last reading: too short a window for a rate
    readings.append(scrape)
    del readings[:-KEEP]
    return readings


def fmt(value: float | None, pattern: str) -> str:
    return "—" if value is None else pattern.format(value)


def dollars(value: float | None) -> float | None:
    return None if value is None else value * TARGET_DOLLARS


def headline(readings: list[Scrape]) -> tuple[Summary, Summary, str]:
    """The rate over the last interval, and the other figures over the last interval when it
    saw traffic, else since the first request (an idle minute should not blank the page)."""
    total = summarize(readings[-1])
    if len(readings) < 2:
        return total, total, "since the first request"
    window = summarize(readings[-1], readings[-2])
    if window.requests:
        return window, window, f"over the last {window.window_seconds:.0f} s"
    return (
        window,
        total,
        f"since the first request (none in the last {window.window_seconds:.0f} s)",
    )


def sparkline(readings: list[Scrape], figure: str) -> list[float] | None:
    """``figure`` between consecutive readings of this session (None: not enough readings)."""
    values = [getattr(summarize(b, a), figure) for a, b in zip(readings, readings[1:])]
    points = [0.0 if v is None else v for v in values]
    return points if len(points) >= 2 else None


def accuracy(performance: Performance, column) -> None:
    """Live RMSE and MAE from feedback, next to the model's test RMSE."""
    explain = (
        f"Over the newest {performance.count:,} predictions that got feedback (window "
        f"{performance.window:,}); the serving model's test RMSE is "
        f"{fmt(dollars(performance.test_rmse), '${:,.0f}')}."
    )
    rmse, mae = column
    rmse.metric(
        "Live RMSE",
        fmt(dollars(performance.rmse), "${:,.0f}"),
        delta=(
            None
            if performance.rmse_ratio is None
            else f"{performance.rmse_ratio - 1:+.0%} vs test RMSE"
        ),
        delta_color="inverse",
        help=explain,
    )
    mae.metric("Live MAE", fmt(dollars(performance.mae), "${:,.0f}"), help=explain)


def estimates(performance: Performance) -> None:
    """The label-free MAE estimate beside the realized MAE, and the intervals' live coverage,
    with this session's readings of both MAEs over time."""
    a, b, c = st.columns(3)
    a.metric(
        "Estimated MAE (no labels)",
        fmt(dollars(performance.estimated_mae), "${:,.0f}"),
        help=(
            f"Mean σ(x) of the model's difficulty estimate over the newest "
            f"{performance.estimate_rows:,} served inputs (window {performance.estimate_window:,})"
            f"; the test MAE is {fmt(dollars(performance.test_mae), '${:,.0f}')}. It cannot see "
            "concept drift (the same house now worth more): the realized MAE still counts."
        ),
    )
    level = performance.interval_level
    b.metric(
        "Live interval coverage",
        fmt(performance.interval_coverage, "{:.1%}"),
        delta=(
            None
            if performance.interval_coverage is None or level is None
            else f"{performance.interval_coverage - level:+.1%} vs {level:.0%} promised"
        ),
        delta_color="normal",
        help=(
            f"Share of the newest {performance.coverage_count:,} labelled predictions (window "
            f"{performance.coverage_window:,}) whose actual value fell inside their interval."
        ),
    )
    c.metric("Test MAE (offline)", fmt(dollars(performance.test_mae), "${:,.0f}"))
    history: list[dict] = st.session_state.setdefault("service-estimates", [])
    history.append(
        {
            "time": pd.Timestamp.now(tz="UTC"),
            "estimated MAE": dollars(performance.estimated_mae),
            "realized MAE": dollars(performance.mae),
        }
    )
    del history[:-KEEP]
    if len(history) >= 2:
        st.line_chart(pd.DataFrame(history).set_index("time"), height=180)


@st.fragment(run_every=REFRESH_SECONDS)
def figures() -> None:
    """Everything that refreshes: one /metrics scrape and one /performance read."""
    api = client()
    with api_errors():
        scrape = parse_metrics(api.metrics_text(), taken_at=time.time())
        performance = api.performance()
    readings = remember(scrape)
    rate, shown, window = headline(readings)
    st.caption(
        f"Prediction traffic (/predict, /predict/batch, /feedback) {window}; "
        f"refreshes every {REFRESH_SECONDS} s while this page is open."
    )
    a, b, c, d = st.columns(4)
    a.metric(
        "Request rate",
        fmt(rate.rate_per_second, "{:.2f}/s"),
        chart_data=sparkline(readings, "rate_per_second"),
    )
    b.metric("Latency p50", fmt(shown.p50_ms, "{:.1f} ms"))
    c.metric(
        "Latency p95", fmt(shown.p95_ms, "{:.1f} ms"), chart_data=sparkline(readings, "p95_ms")
    )
    d.metric("Latency p99", fmt(shown.p99_ms, "{:.1f} ms"))
    a, b, c, d = st.columns(4)
    a.metric("Error ratio (5xx)", fmt(shown.error_ratio, "{:.2%}"))
    b.metric("Rejected (4xx)", fmt(shown.rejected_ratio, "{:.2%}"))
    accuracy(performance, (c, d))
    estimates(performance)
    if scrape.model_info:
        info = scrape.model_info
        st.caption(
            f"Serving `{info.get('name', '?')}` version **{info.get('version', '?')}** "
            f"({info.get('candidate', '?')})."
        )

    st.subheader("By endpoint, since the API started", anchor=False)
    rows = pd.DataFrame(per_endpoint(scrape))
    st.dataframe(
        rows[rows["requests"] > 0] if not rows.empty else rows,
        hide_index=True,
        column_config={
            c: st.column_config.NumberColumn(format="%.1f") for c in ("p50 ms", "p95 ms", "p99 ms")
        },
    )


st.title("Service health")
figures()
