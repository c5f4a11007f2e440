"""The UI in a real browser: Debian's Chromium driven by Playwright, against `housing ui` (a real
`streamlit run`) talking to the live API. Saves a screenshot of every page, Admin included."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pandas as pd
import pytest
from ui_live import ADMIN_KEY, HOUSING, READ_KEY, ROOT, LiveApi, free_port, stop, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.browser, pytest.mark.slow]

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = ROOT / "test-artifacts" / "screenshots"
TIMEOUT_MS = 30_000
DONE = (
    "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"
    " && document.querySelectorAll('[data-testid=\"stSkeleton\"]').length === 0"
)


@pytest.fixture(scope="module")
def chromium() -> Path:
    """Debian's Chromium, installed by scripts/system-deps.sh when missing."""
    if not CHROMIUM.exists():
        subprocess.run([str(ROOT / "scripts" / "system-deps.sh")], check=True)  # nosec B603
    assert CHROMIUM.exists(), "scripts/system-deps.sh did not install chromium"
    return CHROMIUM


@pytest.fixture(scope="module")
def ui_url(live_api: LiveApi, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`housing ui` on a free loopback port, pointed at the live API."""
    port = free_port()
    log = tmp_path_factory.mktemp("ui") / "ui.log"
    env = {**os.environ, "HOUSING_API_URL": live_api.url, "HOUSING_READ_KEY": READ_KEY}
    with log.open("w") as out:
        process = subprocess.Popen(  # nosec B603
            [str(HOUSING), "ui", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{url}/_stcore/health", process)
        yield url
    finally:
        stop(process)


@pytest.fixture(scope="module")
def page(chromium: Path, ui_url: str):
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(chromium),
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        tab = browser.new_page(viewport={"width": 1400, "height": 1100})
        tab.goto(ui_url)
        yield tab
        browser.close()


def settle(page, title: str) -> None:
    """Wait until the page titled ``title`` has run and drawn everything."""
    page.get_by_role("heading", name=title).wait_for(timeout=TIMEOUT_MS)
    page.wait_for_function(DONE, timeout=TIMEOUT_MS)


def shoot(page, name: str) -> Path:
    """Screenshot of the whole app (its main area scrolls, so the viewport is made tall)."""
    path = SHOTS / f"{name}.png"
    height = page.evaluate(
        "() => Math.max(...[...document.querySelectorAll('[data-testid=\"stMain\"], body')]"
        ".map(e => e.scrollHeight))"
    )
    page.set_viewport_size({"width": 1400, "height": max(900, min(int(height) + 40, 4000))})
    page.wait_for_timeout(400)  # charts re-lay out to the new size
    page.screenshot(path=str(path))
    page.set_viewport_size({"width": 1400, "height": 1100})
    return path


def tables_drawn(page) -> None:
    """Wait until every table on the page has drawn its grid: the grid's script loads lazily,
    after the status widget is gone, so without this a screenshot may catch a grey box."""
    tables = page.get_by_test_id("stDataFrame")
    for i in range(tables.count()):
        tables.nth(i).get_by_test_id("data-grid-canvas").wait_for(timeout=TIMEOUT_MS)
    page.wait_for_timeout(200)  # the first frame of the canvas


def field(page, name: str):
    """The number input whose label starts with the feature ``name``."""
    return page.get_by_role("spinbutton", name=name)


def go(page, path: str, title: str) -> None:
    page.locator(f'[data-testid="stSidebarNav"] a[href$="/{path}"]').first.click()
    settle(page, title)


def test_predict_in_the_browser(page, live_api: LiveApi) -> None:
    settle(page, "Predict a house value")
    page.locator('[data-testid="stDeckGlJsonChart"]').wait_for(timeout=TIMEOUT_MS)
    shoot(page, "1-predict-form")

    field(page, "MedInc").fill("8")
    page.get_by_test_id("stBaseButton-primaryFormSubmit").click()
    result = page.get_by_test_id("stMetricValue").first
    result.wait_for(timeout=TIMEOUT_MS)
    page.wait_for_function(DONE, timeout=TIMEOUT_MS)

    schema = httpx.get(f"{live_api.url}/schema").json()["features"]
    house = {f["name"]: f["typical"] for f in schema} | {"MedInc": 8.0}
    expected = httpx.post(f"{live_api.url}/predict", json=house).json()
    assert result.inner_text() == f"${expected['prediction_dollars']:,.0f}"
    body = page.locator("body").inner_text()
    assert f"version {expected['model_version']}" in body
    high = round(expected["interval"]["high_dollars"] / 1000) * 1000
    assert "90% between $" in body and f"and ${high:,.0f}" in body
    page.locator('[data-testid="stVegaLiteChart"]').first.wait_for(timeout=TIMEOUT_MS)
    shoot(page, "2-predict-result")


def pick(page, option: str, attempts: int = 3) -> None:
    """Choose ``option`` in the page's select box (a rerun that lands while the list is open
    closes it, so the list is reopened until the option can be clicked)."""
    for attempt in range(attempts):
        page.wait_for_function(DONE, timeout=TIMEOUT_MS)
        page.get_by_test_id("stSelectbox").click()
        choice = page.get_by_role("option", name=option)
        try:
            choice.wait_for(timeout=5_000)
            choice.click()
            return
        except Exception:  # noqa: BLE001 - the list closed under us: open it again
            if attempt == attempts - 1:
                raise


def test_the_waterfall_and_a_what_if_curve_in_the_browser(page, live_api: LiveApi) -> None:
    """After a prediction: the waterfall says how the value is made; a what-if input is picked
    and its curve drawn (Longitude: west into the Pacific, east into Arizona, refused)."""
    settle(page, "Predict a house value")
    field(page, "MedInc").fill("8")
    page.get_by_test_id("stBaseButton-primaryFormSubmit").click()
    page.get_by_role("heading", name="Why this value").wait_for(timeout=TIMEOUT_MS)

    schema = httpx.get(f"{live_api.url}/schema").json()["features"]
    house = {f["name"]: f["typical"] for f in schema} | {"MedInc": 8.0}
    explained = httpx.post(f"{live_api.url}/explain", json=house).json()
    words = f"base ${explained['base_value_dollars']:,.0f} → "
    page.get_by_text(words, exact=False).wait_for(timeout=TIMEOUT_MS)
    page.wait_for_function(DONE, timeout=TIMEOUT_MS)
    assert f"→ ${explained['prediction_dollars']:,.0f}" in page.locator("body").inner_text()
    charts = page.get_by_test_id("stVegaLiteChart")
    charts.first.locator("canvas, svg").first.wait_for(timeout=TIMEOUT_MS)
    assert charts.count() == 3  # the range, the waterfall and the curve of the first input

    pick(page, "Longitude")
    page.wait_for_function(DONE, timeout=TIMEOUT_MS)
    curve = httpx.post(
        f"{live_api.url}/explain/what-if", json={"house": house, "feature": "Longitude"}
    ).json()
    caption = f"{curve['refused']} of {len(curve['points'])} values refused"
    page.get_by_text(caption).wait_for(timeout=TIMEOUT_MS)
    assert page.get_by_test_id("stVegaLiteChart").count() == 3  # range, waterfall, curve
    shoot(page, "2b-predict-explanation")


def test_a_refused_value_is_explained_under_its_field(page, live_api: LiveApi) -> None:
    settle(page, "Predict a house value")
    field(page, "AveRooms").fill("4")
    field(page, "AveBedrms").fill("9")
    page.get_by_test_id("stBaseButton-primaryFormSubmit").click()
    alert = page.get_by_test_id("stAlertContentError").filter(has_text="must not exceed")
    alert.first.wait_for(timeout=TIMEOUT_MS)

    schema = httpx.get(f"{live_api.url}/schema").json()["features"]
    house = {f["name"]: f["typical"] for f in schema} | {"AveRooms": 4.0, "AveBedrms": 9.0}
    detail = httpx.post(f"{live_api.url}/predict", json=house).json()["detail"]
    message = next(d["message"] for d in detail if d["field"] == "AveBedrms")
    assert alert.first.get_by_text(message, exact=True).is_visible()

    # Next to its field: right below the AveBedrms box, in the same column.
    box = field(page, "AveBedrms").bounding_box()
    under = alert.first.bounding_box()
    assert 0 <= under["y"] - (box["y"] + box["height"]) < 40
    assert abs(under["x"] - box["x"]) < 40
    shoot(page, "3-predict-validation-error")
    field(page, "AveBedrms").fill("1.05")  # leave the form valid for the next test


def test_batch_upload_in_the_browser(page, live_api: LiveApi, tmp_path: Path) -> None:
    settle(page, "Predict a house value")
    page.get_by_role("tab", name="CSV file").click()
    houses = pd.read_csv(live_api.data_dir / "processed" / "test.csv").head(25)
    houses.loc[2, "Latitude"] = 60.0  # refused: the others are still predicted
    csv = tmp_path / "houses.csv"
    houses.to_csv(csv, index=False)
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(csv))
    page.get_by_text("24 predicted, 1 refused").wait_for(timeout=TIMEOUT_MS)
    page.get_by_role("button", name="Download predictions (CSV)").wait_for(timeout=TIMEOUT_MS)
    page.wait_for_function(DONE, timeout=TIMEOUT_MS)
    tables_drawn(page)
    shoot(page, "4-predict-batch")


@pytest.mark.parametrize(
    ("path", "title", "shot", "drawn"),
    [
        ("history", "Prediction history", "5-history", "stVegaLiteChart"),
        ("drift", "Data drift", "6-drift", "stVegaLiteChart"),
        ("models", "Models", "8-models", "stVegaLiteChart"),
        ("service", "Service health", "9-service", "stMetricValue"),
    ],
)
def test_every_page_renders_in_the_browser(
    page, path: str, title: str, shot: str, drawn: str
) -> None:
    go(page, path, title)
    page.get_by_test_id(drawn).first.wait_for(timeout=TIMEOUT_MS)
    assert not page.get_by_test_id("stAlertContentError").count()
    assert not page.get_by_test_id("stException").count()
    tables_drawn(page)
    shoot(page, shot)
    if path == "drift":
        page.get_by_text("Show Evidently's full report").click()
        frame = page.frame_locator('[data-testid="stIFrame"]')
        frame.locator("body").wait_for(timeout=TIMEOUT_MS)
        page.wait_for_function(DONE, timeout=TIMEOUT_MS)
        page.wait_for_timeout(1500)  # Evidently draws its widgets with script
        shoot(page, "7-drift-report")


def test_admin_page_in_the_browser(page) -> None:
    # Only looks: uploading or retraining would change the shared registry (test_ui_admin does
    # that on a copy).
    go(page, "admin", "Admin")
    page.get_by_text("Enter the API key").wait_for(timeout=TIMEOUT_MS)
    key = page.get_by_label("API key", exact=True)
    key.fill(ADMIN_KEY)
    key.press("Enter")
    page.get_by_text("No retraining job yet.").wait_for(timeout=TIMEOUT_MS)
    page.wait_for_function(DONE, timeout=TIMEOUT_MS)
    assert page.get_by_role("heading", name="Upload labelled data").is_visible()
    assert page.get_by_role("button", name="Start retraining").is_visible()
    assert not page.get_by_test_id("stAlertContentError").count()
    assert not page.get_by_test_id("stException").count()
    key.blur()  # no focus ring in the screenshot
    shoot(page, "10-admin")
