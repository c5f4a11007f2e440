"""Every page through Streamlit's AppTest against a live API (real uvicorn, champion, SQLite log),
and against no API at all: a plain message, never an exception."""

from __future__ import annotations

import time

import httpx
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from ui_live import APP, LiveApi, api_env, free_port, start_api, stop, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PAGES = [
    "views/predict.py",
    "views/history.py",
    "views/drift.py",
    "views/models.py",
    "views/service.py",
]


def open_page(page: str) -> AppTest:
    """The app, run once, switched to ``page`` and run again."""
    at = AppTest.from_file(str(APP), default_timeout=30).run()
    if page != "views/predict.py":
        at.switch_page(page).run()
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
    assert at.get("download_button")


def test_csv_without_the_feature_columns_is_refused_plainly(live: LiveApi) -> None:
    at = open_page("views/predict.py")
    at.file_uploader(key="batch-file").set_value(("x.csv", b"a,b\n1,2\n", "text/csv"))
    at.run()
    assert not at.exception
    assert any("lacks the column(s) MedInc" in e.value for e in at.error)


def test_history_lists_the_logged_requests_with_filters(live: LiveApi) -> None:
    logged = httpx.get(f"{live.url}/predictions", params={"limit": 500}).json()["items"]
    at = open_page("views/history.py")
    table = table_with(at, "outcome")
    assert len(table) == len(logged)
    assert table["id"].tolist() == [r["id"] for r in logged]  # newest first, as the API says
    assert len(at.get("vega_lite_chart")) == 3
    rejected = [r for r in logged if r["status"] == 422]
    at.selectbox(key="history-status").set_value("422 invalid input").run()
    table = table_with(at, "outcome")
    assert len(table) == len(rejected) >= 3
    assert set(table["outcome"]) == {"rejected"}


def test_drift_page_shows_the_latest_result_and_the_report(live: LiveApi) -> None:
    drift = httpx.get(f"{live.url}/drift").json()
    at = open_page("views/drift.py")
    assert at.metric[0].value == f"{drift['share']:.0%}"
    table = table_with(at, "feature")
    assert table["feature"].tolist() == [f["feature"] for f in drift["features"]]
    assert len(at.get("vega_lite_chart")) == 2  # per feature, and share over time
    assert not at.get("iframe")  # the multi-MB report waits until asked for
    at.toggle(key="drift-show-report").set_value(True).run()
    report = httpx.get(f"{live.url}/drift/report").text
    iframes = at.get("iframe")
    assert len(iframes) == 1 and iframes[0].proto.srcdoc == report


def test_models_page_names_champion_and_compares_candidates(live: LiveApi) -> None:
    models = httpx.get(f"{live.url}/models").json()
    at = open_page("views/models.py")
    assert at.metric[0].value == f"version {models['champion']['version']}"
    table = table_with(at, "candidate")
    expected = sorted(c["candidate"] for run in models["runs"] for c in run["candidates"])
    assert sorted(table["candidate"]) == expected
    assert table["rmse"].notna().all() and table["fit_seconds"].notna().all()


def test_service_page_reports_rates_latency_errors_and_live_rmse(live: LiveApi) -> None:
    performance = httpx.get(f"{live.url}/performance").json()
    at = open_page("views/service.py")
    values = {m.label: m.value for m in at.metric}
    assert "since the first request" in text_of(at)
    assert float(values["Request rate"].removesuffix("/s")) > 0
    assert values["Latency p50"].endswith(" ms")
    assert values["Rejected (4xx)"] != "0.00%"  # the seeded 422s
    assert values["Live RMSE"] == f"${performance['rmse'] * 100_000:,.0f}"
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


@pytest.mark.parametrize("page", PAGES)
def test_every_page_says_plainly_when_the_api_is_down(
    page: str, down_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOUSING_API_URL", down_url)
    at = open_page(page)
    assert any("not available" in e.value for e in at.error), text_of(at)
    assert not at.exception


def test_a_page_recovers_by_itself_when_the_api_comes_back(
    live_api: LiveApi, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    monkeypatch.setenv("HOUSING_API_URL", url)
    at = open_page("views/models.py")
    assert any("not available" in e.value for e in at.error)
    assert "API down" in at.sidebar.caption[0].value

    env = api_env(live_api.tracking_uri, live_api.data_dir, tmp_path / "log.db")
    process = start_api(env, port, tmp_path / "api.log")
    try:
        wait_for(f"{url}/ready", process)
        at.button(key="retry-page").click().run()  # what "Try again" does: run the page again
        assert not at.error and not at.exception
        assert at.metric[0].value.startswith("version ")
        assert "API up" in at.sidebar.caption[0].value
    finally:
        stop(process)
