"""Page-load benchmark of the Streamlit UI against a local API holding 10,000 logged predictions.

    python scripts/bench_ui.py                    # API on the champion in $MLFLOW_TRACKING_URI
    python scripts/bench_ui.py --api-url URL      # an API already running (seeded or not)

Without --api-url it starts `housing serve` on a free loopback port with a fresh temporary log
(MLFLOW_TRACKING_URI and HOUSING_DATA_DIR as in the environment: run `make train` first), logs
--rows single predictions drawn from the held-out split plus feedback and rejected requests,
waits for a drift result, then measures every page two ways:

- AppTest: the page's script run in-process (every API call, parsing, chart building), with
  Streamlit's caches cleared first, so each run is a cold load;
- browser: `housing ui` (real `streamlit run`) in Debian's Chromium through Playwright, from
  navigation until the page's script finished and its elements are drawn.

Prints a table and a final JSON line with the medians in milliseconds.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import secrets
import socket
import statistics

# Starts our own console scripts with fixed argument lists, never a shell.
import subprocess  # nosec B404
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "frontend" / "app.py"
HOUSING = Path(sys.executable).with_name("housing")
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
PAGES = {  # file (AppTest) -> URL path (browser) and the title the page shows when loaded
    "views/predict.py": ("", "Predict a house value"),
    "views/history.py": ("history", "Prediction history"),
    "views/drift.py": ("drift", "Data drift"),
    "views/models.py": ("models", "Models"),
    "views/service.py": ("service", "Service health"),
}
HISTORY_ALL = "history, all 10,000 rows"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def process(command: list[str], env: dict[str, str], ready: str, log: Path) -> Iterator[None]:
    """Run ``command`` until the block ends; wait until ``ready`` answers 200."""
    with log.open("w") as out:
        proc = subprocess.Popen(  # nosec B603
            command, env=env, stdout=out, stderr=subprocess.STDOUT
        )
        try:
            deadline = time.monotonic() + 90
            while True:
                if proc.poll() is not None:
                    raise SystemExit(f"{command[1]} exited: see {log}\n{log.read_text()[-2000:]}")
                try:
                    if httpx.get(ready, timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit(f"{ready} not ready after 90 s: see {log}")
                time.sleep(0.3)
            yield
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


def seed(url: str, data_dir: Path, rows: int, feedback: int, rejected: int) -> None:
    """``rows`` single predictions (held-out houses), feedback for some, some refused."""
    test = pd.read_csv(data_dir / "processed" / "test.csv")
    houses = test.drop(columns=["MedHouseVal"]).to_dict("records")
    actual = test["MedHouseVal"].tolist()
    # Sampling traffic, not security.
    rng = random.Random(7)  # nosec B311
    picks = [rng.randrange(len(houses)) for _ in range(rows)]

    def one(i: int) -> None:
        with_feedback = i < feedback
        answer = http.post("/predict", json=houses[picks[i]]).raise_for_status().json()
        if with_feedback:
            body = {
                "prediction_id": answer["prediction_id"],
                "actual": actual[picks[i]],
                "feedback_token": answer["feedback_token"],
            }
            http.post("/feedback", json=body).raise_for_status()

    bad = {**houses[0], "AveBedrms": 50.0}
    with httpx.Client(base_url=url, timeout=30) as http, ThreadPoolExecutor(8) as pool:
        started = time.perf_counter()
        list(pool.map(one, range(rows)))
        list(pool.map(lambda _: http.post("/predict", json=bad), range(rejected)))
        print(
            f"seeded {rows} predictions ({feedback} with feedback, {rejected} refused) "
            f"in {time.perf_counter() - started:.1f} s",
            file=sys.stderr,
        )


def wait_for_drift(url: str, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while httpx.get(f"{url}/drift", timeout=10).json().get("share") is None:
        if time.monotonic() > deadline:
            raise SystemExit("no drift result after 2 minutes")
        time.sleep(1)


def read_key() -> str:
    """The key the UI reads the log with: HOUSING_READ_KEY (for an API given by --api-url),
    else one made for this run (the API this script starts gets it as HOUSING_READ_KEYS)."""
    if not os.environ.get("HOUSING_READ_KEY"):
        os.environ["HOUSING_READ_KEY"] = secrets.token_urlsafe(16)
    return os.environ["HOUSING_READ_KEY"]


def apptest_loads(api_url: str, repeat: int) -> dict[str, list[float]]:
    """Seconds per cold page run through AppTest (caches cleared before every run)."""
    from streamlit.testing.v1 import AppTest

    os.environ["HOUSING_API_URL"] = api_url
    for name in ("streamlit", "streamlit.runtime.caching"):
        logging.getLogger(name).setLevel(logging.ERROR)
    times: dict[str, list[float]] = {page: [] for page in [*PAGES, HISTORY_ALL]}
    AppTest.from_file(str(APP), default_timeout=60).run()  # warm-up: imports
    for _ in range(repeat):
        for page in PAGES:
            at = AppTest.from_file(str(APP), default_timeout=60).run()
            at.switch_page(page)
            times[page].append(cold_run(at))
        # The History page asked for all 10,000 rows instead of the newest 2,000.
        at = AppTest.from_file(str(APP), default_timeout=60).run()
        at.switch_page("views/history.py").run()
        at.number_input(key="history-limit").set_value(10_000)
        at.selectbox(key="history-period").set_value("Everything")
        times[HISTORY_ALL].append(cold_run(at))
    return times


def cold_run(at) -> float:
    """Seconds one AppTest run takes with Streamlit's caches empty."""
    import streamlit as st

    st.cache_data.clear()
    started = time.perf_counter()
    at.run()
    elapsed = time.perf_counter() - started
    if at.exception:
        raise SystemExit(f"the page raised: {at.exception[0].value}")
    return elapsed


DONE = (
    "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"
    " && document.querySelectorAll('[data-testid=\"stSkeleton\"]').length === 0"
)
"""The page's script has finished (no "Running" widget) and nothing waits to be drawn."""


def browser_loads(ui_url: str, repeat: int) -> dict[str, dict[str, list[float]]]:
    """Seconds until a page is loaded and drawn: opened by URL, and reached by its sidebar link."""
    from playwright.sync_api import sync_playwright

    opened: dict[str, list[float]] = {page: [] for page in PAGES}
    clicked: dict[str, list[float]] = {page: [] for page in PAGES}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(ui_url)  # warm-up: the JS bundle in the browser cache
        page.get_by_role("heading", name=PAGES["views/predict.py"][1]).wait_for(timeout=60_000)
        for _ in range(repeat):
            for name, (path, title) in PAGES.items():
                started = time.perf_counter()
                page.goto(f"{ui_url}/{path}")
                page.get_by_role("heading", name=title).wait_for(timeout=60_000)
                page.wait_for_function(DONE, timeout=60_000)
                opened[name].append(time.perf_counter() - started)
            for name, (path, title) in [*list(PAGES.items())[1:], *list(PAGES.items())[:1]]:
                link = page.locator(f'[data-testid="stSidebarNav"] a[href$="/{path}"]').first
                started = time.perf_counter()
                link.click()
                page.get_by_role("heading", name=title).wait_for(timeout=60_000)
                page.wait_for_function(DONE, timeout=60_000)
                clicked[name].append(time.perf_counter() - started)
            opened.setdefault(HISTORY_ALL, []).append(history_all(page, ui_url))
        browser.close()
    return {"browser_open_ms": opened, "browser_click_ms": clicked}


def history_all(page, ui_url: str) -> float:
    """Seconds for the History page to show the newest 10,000 requests instead of 2,000."""
    page.goto(f"{ui_url}/history")
    page.get_by_role("heading", name="Prediction history").wait_for(timeout=60_000)
    page.wait_for_function(DONE, timeout=60_000)
    limit = page.get_by_label("Newest requests, at most")
    limit.fill("10000")
    started = time.perf_counter()
    limit.press("Enter")
    requests = page.get_by_test_id("stMetricValue").first
    requests.filter(has_text="10,000").wait_for(timeout=60_000)
    page.wait_for_function(DONE, timeout=60_000)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--api-url", help="Measure against this running API (no seeding).")
    parser.add_argument("--rows", type=int, default=10_000, help="Predictions to log first.")
    parser.add_argument("--repeat", type=int, default=3, help="Loads per page and method.")
    parser.add_argument("--no-browser", action="store_true", help="AppTest figures only.")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-ui-") as tmp:
        work = Path(tmp)
        if args.api_url:
            results = measure(args.api_url, args, work)
        else:
            port = free_port()
            api_url = f"http://127.0.0.1:{port}"
            data_dir = Path(os.environ.get("HOUSING_DATA_DIR", ROOT / "data")).resolve()
            env = {
                **os.environ,
                "HOUSING_DATABASE_URL": f"sqlite:///{work / 'log.db'}",
                "HOUSING_DATA_DIR": str(data_dir),
                "HOUSING_RATE_LIMIT": "off",
                "HOUSING_DRIFT_INTERVAL_SECONDS": "2",
                "HOUSING_READ_KEYS": read_key(),
            }
            command = [str(HOUSING), "serve", "--port", str(port)]
            with process(command, env, f"{api_url}/ready", work / "api.log"):
                seed(api_url, data_dir, args.rows, feedback=min(500, args.rows), rejected=100)
                wait_for_drift(api_url)
                results = measure(api_url, args, work)
    report(results)


def measure(api_url: str, args: argparse.Namespace, work: Path) -> dict[str, dict[str, float]]:
    read = {"X-API-Key": read_key()}
    logged = httpx.get(f"{api_url}/predictions", params={"limit": 1}, headers=read)
    logged = len(logged.raise_for_status().json()["items"])
    if not logged:
        print("warning: the API has logged nothing: pages will be nearly empty", file=sys.stderr)
    results = {"apptest_ms": summarise(apptest_loads(api_url, args.repeat))}
    if not args.no_browser:
        port = free_port()
        ui_url = f"http://127.0.0.1:{port}"
        env = {**os.environ, "HOUSING_API_URL": api_url}
        command = [str(HOUSING), "ui", "--port", str(port)]
        with process(command, env, f"{ui_url}/_stcore/health", work / "ui.log"):
            for method, times in browser_loads(ui_url, args.repeat).items():
                results[method] = summarise(times)
    return results


def label(page: str) -> str:
    return Path(page).stem if page.endswith(".py") else page


def summarise(times: dict[str, list[float]]) -> dict[str, float]:
    return {page: round(1000 * statistics.median(t), 1) for page, t in times.items()}


def report(results: dict[str, dict[str, float]]) -> None:
    methods = list(results)
    print(f"{'page':<26}" + "".join(f"{m:>18}" for m in methods))
    for page in [*PAGES, HISTORY_ALL]:
        cells = [results[m].get(page) for m in methods]
        print(f"{label(page):<26}" + "".join(f"{'—' if c is None else c:>18}" for c in cells))
    line = {m: {label(p): v for p, v in r.items()} for m, r in results.items()}
    line["max_ms"] = max(v for r in results.values() for v in r.values())
    print(json.dumps(line))


if __name__ == "__main__":
    main()
