"""Locust load profile for the prediction API: predict, batch, feedback and health, mixed.

Run (against a running API; houses come from the prepared test split, ``HOUSING_DATA_DIR``):

    locust -f tests/load/locustfile.py --headless -u 50 -r 25 -t 2m --stop-timeout 10 \
        --host http://127.0.0.1:8000 --json-file var/load/stats

`make reliability` (scripts/reliability.py) starts a server, runs this, and checks the log.

Every response must be a 2xx with the ids the API promises, else Locust counts a failure.
``--stop-timeout`` lets each user finish its request when the time is up, so every request the
API saw is in Locust's statistics (rows in the log == requests sent). ``--ids-file`` writes the
id of every acknowledged prediction/feedback (one per line) for checking against the log.
"""

from __future__ import annotations

import random
import threading
from pathlib import Path
from typing import Any

from locust import FastHttpUser, between, events, task

from housing.features import FEATURE_NAMES, TARGET

HOUSES: list[tuple[dict[str, float], float]] = []
"""(house, its true MedHouseVal) pairs from the held-out split, loaded once per process."""

ACKNOWLEDGED: list[str] = []
_ack_lock = threading.Lock()


@events.init_command_line_parser.add_listener
def _options(parser: Any) -> None:
    parser.add_argument("--batch-size", type=int, default=20, help="Houses per /predict/batch.")
    parser.add_argument("--think-min", type=float, default=0.05, help="Min seconds between tasks.")
    parser.add_argument("--think-max", type=float, default=0.25, help="Max seconds between tasks.")
    parser.add_argument("--ids-file", default="", help="Write acknowledged ids here at the end.")
    parser.add_argument("--seed", type=int, default=42, help="Seed of the house sampling.")


@events.init.add_listener
def _load_houses(environment: Any, **_: Any) -> None:
    """Real, valid houses (the prepared test split) with their observed values for feedback."""
    from housing.data import load_split
    from housing.settings import get_settings

    _, test = load_split(get_settings().data_dir)
    features = test[list(FEATURE_NAMES)].to_dict("records")
    HOUSES[:] = list(zip(features, test[TARGET.name].tolist(), strict=True))
    random.seed(environment.parsed_options.seed)


@events.quitting.add_listener
def _write_ids(environment: Any, **_: Any) -> None:
    path = environment.parsed_options.ids_file
    if path:
        Path(path).write_text("".join(f"{i}\n" for i in ACKNOWLEDGED), encoding="utf-8")


def _acknowledge(ident: str) -> None:
    with _ack_lock:
        ACKNOWLEDGED.append(ident)


class HousingUser(FastHttpUser):
    """A client of the API: mostly single predictions, some batches, feedback, health checks."""

    def wait_time(self) -> float:
        options = self.environment.parsed_options
        return between(options.think_min, options.think_max)(self)

    def on_start(self) -> None:
        self.awaiting_feedback: list[tuple[str, str, float]] = []
        """(prediction id, feedback token, true value) of predictions this user has not given
        feedback on."""

    @task(6)
    def predict(self) -> None:
        house, actual = random.choice(HOUSES)
        with self.client.post("/predict", json=house, catch_response=True) as response:
            body = _json(response)
            ident = body.get("prediction_id") if response.status_code == 200 else None
            if not ident or ident != response.headers.get("X-Request-ID"):
                response.failure(f"{response.status_code}: {response.text[:200]}")
                return
            _acknowledge(ident)
            self.awaiting_feedback.append((ident, body["feedback_token"], actual))

    @task(1)
    def predict_batch(self) -> None:
        size = self.environment.parsed_options.batch_size
        houses = [house for house, _ in random.sample(HOUSES, size)]
        with self.client.post(
            "/predict/batch", json={"houses": houses}, catch_response=True
        ) as response:
            body = _json(response)
            if response.status_code != 200 or body.get("predicted") != size:
                response.failure(f"{response.status_code}: {response.text[:200]}")
                return
            _acknowledge(body["request_id"])

    @task(2)
    def feedback(self) -> None:
        if not self.awaiting_feedback:
            self.predict()
            return
        pending = self.awaiting_feedback
        ident, token, actual = pending.pop(random.randrange(len(pending)))
        payload = {"prediction_id": ident, "actual": actual, "feedback_token": token}
        with self.client.post("/feedback", json=payload, catch_response=True) as response:
            body = _json(response)
            if response.status_code != 200 or body.get("prediction_id") != ident:
                response.failure(f"{response.status_code}: {response.text[:200]}")
                return
            _acknowledge(body["feedback_id"])

    @task(1)
    def health(self) -> None:
        self.client.get("/health")


def _json(response: Any) -> dict[str, Any]:
    try:
        body = response.json()
    except Exception:  # not JSON: the caller reports the status and text
        return {}
    return body if isinstance(body, dict) else {}
