"""The prediction log writes whatever JSON a client sent and reads every row back (real SQLite):
one hostile body must neither fail the commit it shares with other rows nor break the reads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from housing.service import log as prediction_log

NESTED = json.loads("[" * 400 + "]" * 400)
HOSTILE_INPUTS = {
    "huge-integer": {"Population": 10**30, "Extra": -(10**400)},
    "lone-surrogate": {"MedInc": "\ud800", "\udc00": 1},
    "deeply-nested": {"MedInc": NESTED},
    "bare-integer": 5,
    "bare-float": -1.5,
    "bare-string": "5",
}


@pytest.fixture
def engine(tmp_path: Path):
    engine = prediction_log.create_log_engine(f"sqlite:///{tmp_path / 'log.db'}")
    prediction_log.migrate(engine)
    yield engine
    engine.dispose()


def test_hostile_inputs_share_a_commit_with_a_valid_row_and_read_back(engine) -> None:
    valid = prediction_log.new_row("/predict", status=200, inputs={"MedInc": 3.5}, latency_ms=1.0)
    rows = [valid] + [
        prediction_log.new_row("/predict", status=422, inputs=value, latency_ms=1.0, error="x")
        for value in HOSTILE_INPUTS.values()
    ]
    prediction_log.write_rows(engine, rows)

    stored = {row["id"]: row["inputs"] for row in prediction_log.page(engine, limit=100)}
    assert len(stored) == len(rows)
    assert stored[valid["id"]] == {"MedInc": 3.5}
    by_name = dict(zip(HOSTILE_INPUTS, (stored[row["id"]] for row in rows[1:]), strict=True))
    assert by_name["huge-integer"]["Population"] == pytest.approx(1e30)
    assert by_name["huge-integer"]["Extra"] == str(-(10**400))
    assert by_name["lone-surrogate"] == {"MedInc": "?", "?": 1}
    depth, node = 0, by_name["deeply-nested"]["MedInc"]
    while isinstance(node, list) and node:
        depth, node = depth + 1, node[0]
    assert node == "<nested too deeply to log>" and depth < 400
    assert by_name["bare-integer"] == 5 and by_name["bare-float"] == -1.5
    assert by_name["bare-string"] == "5"


def test_ordinary_inputs_are_logged_exactly(engine) -> None:
    inputs = {"MedInc": 3.5, "note": "Ünïcødé 🏠", "nested": [[1, 2], {"a": None}], "big": 2**62}
    row = prediction_log.new_row("/predict", status=422, inputs=inputs, latency_ms=1.0)
    prediction_log.write_rows(engine, [row])
    assert prediction_log.page(engine, limit=1)[0]["inputs"] == inputs
