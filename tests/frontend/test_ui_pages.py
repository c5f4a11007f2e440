"""Every page through Streamlit's AppTest against a live API (real uvicorn, champion, SQLite log),
and against no API at all: a plain message, never an exception, until the API is back."""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from ui_live import ADMIN_KEY, APP, READ_KEY, LiveApi, ReturningApi, api_env

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PAGES = {
    "views/predict.py": "Predict a house value",
    "views/history.py": "Prediction history",
    "views/drift.py": "Data drift",
    "views/models.py": "Models",
    "views/service.py": "Service health",
    "views/admin.py": "Admin",
}
"""Every page of the app and its title."""


READ = {"X-API-Key": READ_KEY}


def open_page(page: str) -> AppTest:
    """The app, run once, switched to ``page`` and run again (the Admin page with the API key
    typed in: without one it asks for it and calls no API)."""
    at = AppTest.from_file(str(APP), default_timeout=30).run()
    if page != "views/predict.py":
        at.switch_page(page).run()
    if page == "views/admin.py":
        at.text_input(key="admin-api-key").set_value(ADMIN_KEY).run()
    if page in ("views/history.py", "views/drift.py"):  # the log's pages ask for a read key
        at.text_input(key="read-key-input").set_value(READ_KEY).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def text_of(at: AppTest) -> str:
    """All visible text of the page, for assertions on what a user reads."""
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption]
    parts += (
        [e.value for e in at.error] + [i.value for i in at.info] + [w.value for w in at.warning]
    )
    parts += [f"{m.label}: {m.value}" for m in at.metric] + [t.value for t in at.title]
    return "\n".join(str(p) for p in parts)


def digest(text: str) -> str:
    """A short fingerprint of a large text, so a mismatch prints two hashes, not a diff."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def table_with(at: AppTest, column: str) -> pd.DataFrame:
    """The page's table that has ``column``."""
    for frame in at.dataframe:
        if column in frame.value.columns:
            return frame.value
    raise AssertionError(f"no table with a {column!r} column")


@pytest.fixture
def live(live_api: LiveApi, monkeypatch: pytest.MonkeyPatch) -> LiveApi:
    monkeypatch.setenv("HOUSING_API_URL", live_api.url)
    return live_api


def test_predict_form_is_built_from_the_schema_and_shows_the_prediction(live: LiveApi) -> None:
    schema = httpx.get(f"{live.url}/schema").json()["features"]
    at = open_page("views/predict.py")
    inputs = {n.key: n for n in at.number_input}
    for spec in schema:
        field = inputs[f"feature-{spec['name']}"]
        assert field.value == pytest.approx(spec["typical"])
        assert spec["unit"] in field.label
    at.number_input(key="feature-MedInc").set_value(8.0)
    at.button[0].click()  # the form's submit button
    at.run()
    assert not at.exception and not at.error
    house = {spec["name"]: spec["typical"] for spec in schema} | {"MedInc": 8.0}
    expected = httpx.post(f"{live.url}/predict", json=house).json()
    metric = at.metric[0]
    assert metric.value == f"${expected['prediction_dollars']:,.0f}"
    assert f"version **{expected['model_version']}**" in text_of(at)
    interval = expected["interval"]
    low, high = (round(interval[k] / 1000) * 1000 for k in ("low_dollars", "high_dollars"))
    sentence = (
        f"**${round(expected['prediction_dollars'] / 100) * 100:,.0f} — 90% between "
        f"${low:,.0f} and ${high:,.0f}**"
    )
    assert sentence in [m.value for m in at.markdown]
    explained = httpx.post(f"{live.url}/explain", json=house).json()
    assert f"base ${explained['base_value_dollars']:,.0f} → " in text_of(at)
    assert len(at.get("vega_lite_chart")) == 3  # the range, the waterfall, the first what-if curve
    at.selectbox(key="whatif-feature").set_value("Latitude").run()
    assert not at.exception and "refused by the API's rules" in text_of(at)


@pytest.mark.parametrize(
    ("field", "value", "other"),
    [("AveBedrms", 9.0, {"AveRooms": 4.0}), ("MedInc", -1.0, {})],
)
def test_validation_errors_appear_under_their_field_in_the_apis_words(
    live: LiveApi, field: str, value: float, other: dict[str, float]
) -> None:
    schema = httpx.get(f"{live.url}/schema").json()["features"]
    house = {spec["name"]: spec["typical"] for spec in schema} | other | {field: value}
    answer = httpx.post(f"{live.url}/predict", json=house)
    assert answer.status_code == 422
    messages = [d["message"] for d in answer.json()["detail"] if d["field"] == field]
    assert messages

    at = open_page("views/predict.py")
    for name, v in (other | {field: value}).items():
        at.number_input(key=f"feature-{name}").set_value(v)
    at.button[0].click()
    at.run()
    assert not at.exception
    shown = [e.value for e in at.error]
    assert messages[0] in shown
    # Under the field: the error follows that field's input in the form's column.
    column = next(c for c in at.columns if any(n.key == f"feature-{field}" for n in c.number_input))
    children = list(column)
    position = next(
        i for i, c in enumerate(children) if getattr(c, "key", None) == f"feature-{field}"
    )
    assert children[position + 1].value == messages[0]
    assert not at.metric  # no prediction shown for refused input


def test_csv_upload_gives_a_prediction_or_a_reason_per_row(live: LiveApi) -> None:
    test = pd.read_csv(live.data_dir / "processed" / "test.csv").head(30)
    test.loc[3, "MedInc"] = 500.0  # out of range: refused, the others still predicted
    at = open_page("views/predict.py")
    at.file_uploader(key="batch-file").set_value(
        ("houses.csv", test.to_csv(index=False).encode(), "text/csv")
    )
    at.run()
    assert not at.exception and not at.error
    table = table_with(at, "predicted_value")
    assert len(table) == 30
    assert table["error"].notna().tolist() == [i == 3 for i in range(30)]
    assert "MedInc" in table.loc[3, "error"]
    features = test.drop(columns=["MedHouseVal"]).drop(index=3)
    direct = httpx.post(f"{live.url}/predict/batch", json={"houses": features.to_dict("records")})
    expected = [r["prediction_dollars"] for r in direct.json()["results"]]
    assert table["predicted_value"].drop(index=3).tolist() == pytest.approx(expected)
    for column, key in (("interval_low", "low_dollars"), ("interval_high", "high_dollars")):
        bounds = [r["interval"][key] for r in direct.json()["results"]]
        assert table[column].drop(index=3).tolist() == pytest.approx(bounds)
        assert math.isnan(table.loc[3, column])
    assert at.get("download_button")


def test_csv_with_infinite_or_unreadable_cells_names_them_per_row(live: LiveApi) -> None:
    # JSON cannot carry inf, so those rows are refused by the page; NaN is a blank (the API
    # names it), text is the API's to refuse; every other row is still predicted.
    test = pd.read_csv(live.data_dir / "processed" / "test.csv").head(8)
    features = test.drop(columns=["MedHouseVal"])
    csv = features.astype(object)
    csv.loc[1, "MedInc"], csv.loc[2, "HouseAge"] = "inf", "-inf"
    csv.loc[3, "AveRooms"], csv.loc[4, "Population"] = "nan", "lots"
    at = open_page("views/predict.py")
    at.file_uploader(key="batch-file").set_value(
        ("houses.csv", csv.to_csv(index=False).encode(), "text/csv")
    )
    at.run()
    assert not at.exception and not at.error
    assert any("4 predicted, 4 refused" in s.value for s in at.success)
    table = table_with(at, "predicted_value")
    assert table.loc[1, "error"] == "MedInc must be a finite number, not inf"
    assert table.loc[2, "error"] == "HouseAge must be a finite number, not -inf"
    assert "AveRooms" in table.loc[3, "error"] and "Population" in table.loc[4, "error"]
    assert table["error"].notna().tolist() == [False, True, True, True, True, False, False, False]
    kept = features.drop(index=[1, 2, 3, 4])
    direct = httpx.post(f"{live.url}/predict/batch", json={"houses": kept.to_dict("records")})
    expected = [r["prediction_dollars"] for r in direct.json()["results"]]
    assert table["predicted_value"].drop(index=[1, 2, 3, 4]).tolist() == pytest.approx(expected)

    none_sendable = csv.head(3).assign(MedInc="inf")
    at.file_uploader(key="batch-file").set_value(
        ("worse.csv", none_sendable.to_csv(index=False).encode(), "text/csv")
    )
    at.run()
    assert not at.exception and not at.error and not at.success
    assert [w.value for w in at.warning] == [
        "0 predicted, 3 refused. The `error` column says why, row by row."
    ]


def test_csv_without_the_feature_columns_is_refused_plainly(live: LiveApi) -> None:
    at = open_page("views/predict.py")
    at.file_uploader(key="batch-file").set_value(("x.csv", b"a,b\n1,2\n", "text/csv"))
    at.run()
    assert not at.exception
    assert any("lacks the column(s) MedInc" in e.value for e in at.error)


def test_history_lists_the_logged_requests_with_filters(live: LiveApi) -> None:
    logged = httpx.get(f"{live.url}/predictions", params={"limit": 500}, headers=READ).json()
    logged = logged["items"]
    at = open_page("views/history.py")
    table = table_with(at, "outcome")
    assert len(table) == len(logged)
    assert table["id"].tolist() == [r["id"] for r in logged]  # newest first, as the API says
    charts = at.get("vega_lite_chart")
    assert len(charts) == 4  # requests, values, distribution, and the intervals' band
    assert "Predictions and their intervals" in charts[3].proto.spec
    rejected = [r for r in logged if r["status"] == 422]
    at.selectbox(key="history-status").set_value("422 invalid input").run()
    table = table_with(at, "outcome")
    assert len(table) == len(rejected) >= 3
    assert set(table["outcome"]) == {"rejected"}


def test_the_log_pages_ask_for_a_read_key_once_per_session(live: LiveApi) -> None:
    at = AppTest.from_file(str(APP), default_timeout=30).run()
    at.switch_page("views/history.py").run()
    assert "The prediction log is private" in text_of(at) and not at.dataframe
    at.switch_page("views/drift.py").run()
    assert "Enter a read key" in text_of(at) and not at.get("iframe")
    assert at.metric  # the latest result's summary is public
    at.text_input(key="read-key-input").set_value("not-the-key").run()
    assert any("401" in e.value for e in at.error), text_of(at)
    at.text_input(key="read-key-input").set_value(READ_KEY).run()
    assert not at.error and len(at.get("vega_lite_chart")) == 2
    at.switch_page("views/history.py").run()  # typed once: the other page has it too
    assert not at.exception and table_with(at, "outcome") is not None


def test_drift_page_shows_the_latest_result_and_the_report(live: LiveApi) -> None:
    drift = httpx.get(f"{live.url}/drift").json()
    at = open_page("views/drift.py")
    assert at.metric[0].value == f"{drift['share']:.0%}"
    table = table_with(at, "feature")
    assert table["feature"].tolist() == [f["feature"] for f in drift["features"]]
    assert len(at.get("vega_lite_chart")) == 2  # per feature, and share over time
    assert not at.get("iframe")  # the multi-MB report waits until asked for
    # The drift job may store a newer report while the page loads (earlier tests log more
    # inputs): the page must show the one served just before or just after it ran. Compared by
    # digest, because pytest's diff of two multi-MB strings takes longer than the test timeout.
    before = digest(httpx.get(f"{live.url}/drift/report", headers=READ).text)
    at.toggle(key="drift-show-report").set_value(True).run()
    after = digest(httpx.get(f"{live.url}/drift/report", headers=READ).text)
    iframes = at.get("iframe")
    assert len(iframes) == 1
    assert digest(iframes[0].proto.srcdoc) in {before, after}


def test_models_page_names_champion_and_compares_candidates(live: LiveApi) -> None:
    models = httpx.get(f"{live.url}/models").json()
    assert models["previous"] is None  # one training run so far
    at = open_page("views/models.py")
    metrics = {m.label: m.value for m in at.metric}
    assert metrics == {
        "`champion`": f"version {models['champion']['version']}",
        "`previous`": "none",
    }
    table = table_with(at, "candidate")
    expected = sorted(c["candidate"] for run in models["runs"] for c in run["candidates"])
    assert sorted(table["candidate"]) == expected
    for column in ("rmse", "mae", "r2", "fit_seconds"):
        assert table[column].notna().all(), column
    assert models["champion_importances"]  # charted beside the candidates
    assert len(at.get("vega_lite_chart")) == 2
    assert "Permutation importance on the test split" in text_of(at)


def test_service_page_reports_rates_latency_errors_and_live_rmse(live: LiveApi) -> None:
    performance = httpx.get(f"{live.url}/performance").json()
    at = open_page("views/service.py")
    values = {m.label: m.value for m in at.metric}
    assert "since the first request" in text_of(at)
    assert float(values["Request rate"].removesuffix("/s")) > 0
    assert values["Latency p50"].endswith(" ms")
    assert values["Rejected (4xx)"] != "0.00%"  # the seeded 422s
    assert values["Live RMSE"] == f"${performance['rmse'] * 100_000:,.0f}"
    estimated = values["Estimated MAE (no labels)"]
    assert estimated.startswith("$") and estimated != "$0"
    assert values["Test MAE (offline)"] == f"${performance['test_mae'] * 100_000:,.0f}"
    coverage = performance["interval_coverage"]
    assert values["Live interval coverage"] == ("—" if coverage is None else f"{coverage:.1%}")
    assert "/predict" in set(table_with(at, "endpoint")["endpoint"])

    house = httpx.get(f"{live.url}/schema").json()["features"]
    for _ in range(5):
        httpx.post(f"{live.url}/predict", json={f["name"]: f["typical"] for f in house})
    time.sleep(1.1)
    at.run()  # a second reading: figures over the interval between the two
    values = {m.label: m.value for m in at.metric}
    assert "over the last" in text_of(at)
    assert float(values["Request rate"].removesuffix("/s")) > 0
    assert not at.exception


@pytest.fixture(scope="module")
def returning_api(
    two_run_registry: str, live_api: LiveApi, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ReturningApi]:
    """An API that tests start and stop, on `two_run_registry` (champion v2, previous v1)."""
    root: Path = tmp_path_factory.mktemp("returning-api")
    env = api_env(two_run_registry, live_api.data_dir, root / "log.db")
    api = ReturningApi(env | {"HOUSING_API_KEY": ADMIN_KEY}, root / "api.log")
    try:
        yield api
    finally:
        api.stop()


AFTER_RECOVERY = {
    "views/predict.py": "Describe the census block group",
    "views/history.py": "No logged request matches these filters",
    "views/drift.py": "No drift result yet",
    "views/models.py": "Registered model",
    "views/service.py": "version **2**",
    "views/admin.py": "No retraining job yet.",
}
"""What each page shows once the (fresh, empty-log) API answers again."""


def test_every_page_says_plainly_when_the_api_is_down_and_recovers_when_it_is_back(
    returning_api: ReturningApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    returning_api.stop()  # down, whatever an earlier test left
    monkeypatch.setenv("HOUSING_API_URL", returning_api.url)
    pages = {page: open_page(page) for page in PAGES}
    for page, at in pages.items():
        assert any("not available" in e.value for e in at.error), (page, text_of(at))
        assert "API down" in at.sidebar.caption[0].value, page

    returning_api.start()
    for page, at in pages.items():
        at.button(key="retry-page").click().run()  # what "Try again" does: run the page again
        assert not at.exception, (page, [e.value for e in at.exception])
        assert not at.error, (page, text_of(at))
        assert [t.value for t in at.title] == [PAGES[page]], page
        assert AFTER_RECOVERY[page] in text_of(at), (page, text_of(at))
        assert "API up" in at.sidebar.caption[0].value, page


def test_models_page_shows_champion_previous_and_every_run(
    returning_api: ReturningApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    returning_api.start()
    monkeypatch.setenv("HOUSING_API_URL", returning_api.url)
    models = httpx.get(f"{returning_api.url}/models").json()
    assert [len(run["candidates"]) for run in models["runs"]] == [1, 3]  # newest run first
    at = open_page("views/models.py")
    assert not at.error
    metrics = {m.label: m.value for m in at.metric}
    assert metrics == {"`champion`": "version 2", "`previous`": "version 1"}
    by_version = {c["registered_version"]: c for run in models["runs"] for c in run["candidates"]}
    captions = [c.value for c in at.caption]
    for version in ("2", "1"):
        c = by_version[version]
        line = f"{c['candidate']} · test RMSE {c['test_rmse']:.3f} · R² {c['test_r2']:.3f}"
        assert line in captions, (line, captions)

    table = table_with(at, "candidate")
    expected = pd.DataFrame(
        [
            {
                "run": run["run_name"],
                "candidate": c["candidate"],
                "rmse": c["test_rmse"],
                "mae": c["test_mae"],
                "r2": c["test_r2"],
                "version": c["registered_version"],
                "aliases": ", ".join(c["aliases"]),
            }
            for run in models["runs"]
            for c in run["candidates"]
        ]
    )
    assert table["run"].nunique() == 2
    pd.testing.assert_frame_equal(table[expected.columns].reset_index(drop=True), expected)
    aliased = table.set_index("version")["aliases"]
    assert aliased["2"] == "champion" and aliased["1"] == "previous"
    assert table[["mae", "r2"]].notna().all().all()
