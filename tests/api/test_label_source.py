"""Who labelled a feedback: a labeller key or the admin key marks it trusted, no key anonymous,
a wrong key is 401; the log records the source and retraining reads it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from service_tools import API_KEY, feedback_row, settings_for

from api.main import create_app
from housing.features import typical_row
from housing.service import log as prediction_log

LABELLERS = "first-labeller-key,second-labeller-key"


@pytest.fixture(scope="module")
def client(trained_registry: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    folder: Path = tmp_path_factory.mktemp("labels")
    settings = settings_for(trained_registry, folder, labeller_keys=LABELLERS)
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def feedback(client: TestClient, headers: dict[str, str]):
    answered = client.post("/predict", json=typical_row()).json()
    prediction, token = answered["prediction_id"], answered["feedback_token"]
    body = {"prediction_id": prediction, "actual": 2.0, "feedback_token": token}
    return (prediction, token), client.post("/feedback", json=body, headers=headers)


@pytest.mark.parametrize(
    ("headers", "source"),
    [
        ({}, "anonymous"),
        ({"X-Labeller-Key": "second-labeller-key"}, "labeller"),
        ({"X-Labeller-Key": API_KEY}, "admin"),
    ],
)
def test_the_log_records_who_labelled_each_feedback(
    client: TestClient, headers: dict[str, str], source: str
) -> None:
    (prediction, _), answer = feedback(client, headers)
    assert answer.status_code == 200, answer.text
    engine = client.app.state.runtime.engine
    row = next(
        r
        for r in prediction_log.page(engine, limit=20, endpoint="/feedback")
        if r["id"] == answer.headers["X-Request-ID"]
    )
    assert row["label_source"] == source
    labelled = prediction_log.labelled_inputs(engine, 100).set_index("prediction_id")
    assert labelled.loc[prediction, "label_source"] == source


@pytest.mark.parametrize("key", ["not-a-key", "first-labeller-key,second-labeller-key"])
def test_a_wrong_labeller_key_is_refused_and_records_nothing(client: TestClient, key: str) -> None:
    (prediction, token), answer = feedback(client, {"X-Labeller-Key": key})
    assert answer.status_code == 401 and "X-Labeller-Key" in answer.json()["detail"]
    engine = client.app.state.runtime.engine
    assert not prediction_log.feedback_exists(engine, prediction)
    body = {"prediction_id": prediction, "actual": 2.0, "feedback_token": token}
    again = client.post("/feedback", json=body)
    assert again.status_code == 200, "the same feedback without a key is anonymous, accepted"


def test_migration_0005_marks_earlier_feedback_anonymous(tmp_path: Path) -> None:
    from alembic import command

    engine = prediction_log.create_log_engine(f"sqlite:///{tmp_path / 'log.db'}")
    config = prediction_log.alembic_config(engine)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0004_drift_lease")
    earlier = feedback_row("f" * 32, 1.5)
    prediction = prediction_log.new_row("/predict", status=200, latency_ms=1.0, prediction=2.0)
    present = {c["name"] for c in sa.inspect(engine).get_columns("prediction_log")}
    before = [c for c in prediction_log.prediction_log.columns if c.name in present]
    assert "label_source" not in present  # the table as revision 0004 left it
    old_table = sa.table("prediction_log", *(sa.column(c.name, c.type) for c in before))
    with engine.begin() as connection:
        for row in (earlier, prediction):
            connection.execute(old_table.insert().values({c.name: row[c.name] for c in before}))
    prediction_log.migrate(engine)
    logged = {row["id"]: row["label_source"] for row in prediction_log.page(engine, limit=10)}
    assert logged == {earlier["id"]: "anonymous", prediction["id"]: None}
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0004_drift_lease")
    columns = {column["name"] for column in sa.inspect(engine).get_columns("prediction_log")}
    assert "label_source" not in columns and "feedback_key" in columns
    engine.dispose()
