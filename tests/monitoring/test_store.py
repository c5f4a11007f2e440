"""Drift results in a real SQLite log: migration up and down, round trip, pruning, the lease
that gives each interval's check to one process."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from alembic import command

from housing.features import FEATURE_NAMES
from housing.monitoring import store
from housing.monitoring.drift import DriftResult, FeatureDrift
from housing.service import log


def result(share: float, html: str | None = None) -> DriftResult:
    drifted = round(share * len(FEATURE_NAMES))
    features = tuple(
        FeatureDrift(name, 1e-9 if i < drifted else 0.5, "ks", 1e-6, i < drifted)
        for i, name in enumerate(FEATURE_NAMES)
    )
    return DriftResult(share, share >= 0.1, 0.1, features, 5000, 800, html=html)


def engine_at(tmp_path: Path) -> sa.Engine:
    engine = log.create_log_engine(f"sqlite:///{tmp_path / 'log.db'}")
    log.migrate(engine)
    return engine


def test_migration_adds_and_removes_the_drift_tables(tmp_path: Path) -> None:
    engine = engine_at(tmp_path)
    drift = {"drift_runs", "drift_reports", "drift_lease"}
    assert drift <= set(sa.inspect(engine).get_table_names())
    config = log.alembic_config(engine)
    command.downgrade(config, "0003_feedback_once")
    assert "drift_lease" not in sa.inspect(engine).get_table_names()
    command.downgrade(config, "0001_prediction_log")
    tables = set(sa.inspect(engine).get_table_names())
    assert "prediction_log" in tables and not drift & tables
    log.migrate(engine)
    assert drift <= set(sa.inspect(engine).get_table_names())
    assert store.lease_holder(engine) == ("", datetime(1970, 1, 1, tzinfo=UTC))


def test_round_trip_and_pruning(tmp_path: Path) -> None:
    engine = engine_at(tmp_path)
    assert store.latest_run(engine) is None and store.latest_report(engine) is None
    start = datetime(2024, 5, 1, tzinfo=UTC)
    ids = [
        store.save_run(engine, result(i / 8, html=f"<html>{i}</html>"), start + timedelta(i), 2)
        for i in range(4)
    ]
    latest = store.latest_run(engine)
    assert latest is not None and latest.id == ids[-1]
    assert latest.computed_at == start + timedelta(3)
    assert latest.summary["drifted_features"] == ["MedInc", "HouseAge", "AveRooms"]
    assert latest.summary["features"][0] == {
        "feature": "MedInc",
        "score": 1e-9,
        "method": "ks",
        "threshold": 1e-6,
        "drifted": True,
    }
    assert store.latest_report(engine) == (ids[-1], "<html>3</html>")
    with engine.connect() as connection:
        kept = connection.execute(sa.select(store.drift_reports.c.run_id)).scalars().all()
    assert sorted(kept) == ids[-2:], "only the newest reports are kept"
    history = store.run_history(engine, 10)
    assert [run.id for run in history] == ids[::-1]
    assert [run.summary["detected"] for run in history] == [True, True, True, False]


def test_old_runs_and_their_reports_go(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(store, "RUNS_KEPT", 3)
    engine = engine_at(tmp_path)
    now = datetime.now(UTC)
    ids = [store.save_run(engine, result(0.0, html="<html/>"), now, 10) for _ in range(5)]
    assert [run.id for run in store.run_history(engine, 10)] == ids[:1:-1]
    with engine.connect() as connection:
        reports = connection.execute(sa.select(store.drift_reports.c.run_id)).scalars().all()
    assert sorted(reports) == ids[2:]


def test_the_lease_goes_to_one_claimer_per_interval(tmp_path: Path) -> None:
    engine = engine_at(tmp_path)
    now = datetime(2026, 12, 1, 12, tzinfo=UTC)
    assert store.claim_drift_check(engine, "a", now, 60)
    assert store.lease_holder(engine) == ("a", now)
    assert not store.claim_drift_check(engine, "b", now + timedelta(seconds=59), 60)
    assert not store.claim_drift_check(engine, "a", now + timedelta(seconds=59), 60)
    assert store.lease_holder(engine) == ("a", now), "a refused claim changes nothing"
    later = now + timedelta(seconds=60)
    assert store.claim_drift_check(engine, "b", later, 60)
    assert store.lease_holder(engine) == ("b", later)


def test_of_claimers_racing_for_the_lease_exactly_one_wins(tmp_path: Path) -> None:
    """Separate engines (as separate processes have) claiming the same instant, many times."""
    path = tmp_path / "log.db"
    log.migrate(log.create_log_engine(f"sqlite:///{path}"))
    engines = [log.create_log_engine(f"sqlite:///{path}") for _ in range(8)]
    start = datetime(2026, 12, 1, tzinfo=UTC)
    with ThreadPoolExecutor(len(engines)) as pool:
        for round_ in range(20):
            now = start + timedelta(minutes=round_)
            claims = pool.map(
                lambda i: store.claim_drift_check(engines[i], f"p{i}", now, 30), range(8)
            )
            won = [i for i, claimed in enumerate(claims) if claimed]
            assert len(won) == 1, f"round {round_}: {won} claimed"
            assert store.lease_holder(engines[0]) == (f"p{won[0]}", now)
