"""Drift results in the prediction-log database (tables made by migration 0002_drift).

One ``drift_runs`` row per computed result (summary and per-feature verdicts as JSON), and the
Evidently HTML of the latest few runs, gzip-compressed, in ``drift_reports``. The single row of
``drift_lease`` (migration 0004) says which API process may run the next check.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from housing.monitoring.drift import DriftResult
from housing.service.log import UTCDateTime, metadata

RUNS_KEPT = 10_000
"""Drift runs kept (a week at one a minute); older ones are deleted after each new run."""

drift_runs = sa.Table(
    "drift_runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("computed_at", UTCDateTime(), nullable=False, index=True),
    sa.Column("share", sa.Float, nullable=False),
    sa.Column("detected", sa.Boolean, nullable=False),
    sa.Column("drift_share", sa.Float, nullable=False),
    sa.Column("reference_rows", sa.Integer, nullable=False),
    sa.Column("current_rows", sa.Integer, nullable=False),
    sa.Column("features", sa.JSON, nullable=False),
)

drift_reports = sa.Table(
    "drift_reports",
    metadata,
    sa.Column(
        "run_id",
        sa.Integer,
        sa.ForeignKey("drift_runs.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("html_gzip", sa.LargeBinary, nullable=False),
)

drift_lease = sa.Table(
    "drift_lease",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("holder", sa.String(200), nullable=False),
    sa.Column("claimed_at", UTCDateTime(), nullable=False),
)
LEASE_ID = 1


def claim_drift_check(engine: Engine, holder: str, now: datetime, seconds: float) -> bool:
    """Take the right to run the next drift check, unless another process took it within the
    last ``seconds``: one conditional UPDATE of the lease row, atomic in the database, so of
    processes sharing the log exactly one wins each interval. A holder that dies mid-check
    holds nothing once ``seconds`` have passed."""
    statement = (
        drift_lease.update()
        .where(
            drift_lease.c.id == LEASE_ID,
            drift_lease.c.claimed_at <= now - timedelta(seconds=seconds),
        )
        .values(holder=holder[:200], claimed_at=now)
    )
    with engine.begin() as connection:
        return connection.execute(statement).rowcount == 1


def lease_holder(engine: Engine) -> tuple[str, datetime]:
    """Who claimed the latest drift check, and when."""
    query = sa.select(drift_lease.c.holder, drift_lease.c.claimed_at).where(
        drift_lease.c.id == LEASE_ID
    )
    with engine.connect() as connection:
        row = connection.execute(query).one()
    return row.holder, row.claimed_at


@dataclass(frozen=True)
class StoredRun:
    """A drift result as stored: its id and time plus the ``DriftResult.as_dict`` summary."""

    id: int
    computed_at: datetime
    summary: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "computed_at": self.computed_at.isoformat(), **self.summary}


def save_run(engine: Engine, result: DriftResult, computed_at: datetime, reports_kept: int) -> int:
    """Insert a run (and its HTML when present), prune old ones; return the run id."""
    summary = result.as_dict()
    with engine.begin() as connection:
        run_id = connection.execute(
            drift_runs.insert().values(
                computed_at=computed_at,
                share=result.share,
                detected=result.detected,
                drift_share=result.drift_share,
                reference_rows=result.reference_rows,
                current_rows=result.current_rows,
                features=summary["features"],
            )
        ).inserted_primary_key[0]
        if result.html is not None:
            payload = gzip.compress(result.html.encode("utf-8"), compresslevel=6)
            connection.execute(drift_reports.insert().values(run_id=run_id, html_gzip=payload))
        _prune(connection, drift_reports, drift_reports.c.run_id, reports_kept)
        _prune(connection, drift_runs, drift_runs.c.id, RUNS_KEPT)
    return int(run_id)


def _prune(connection: sa.Connection, table: sa.Table, key: sa.Column, kept: int) -> None:
    newest = sa.select(key).order_by(key.desc()).limit(kept).scalar_subquery()
    cutoff = sa.select(sa.func.min(key)).where(key.in_(newest)).scalar_subquery()
    if table is drift_runs:  # reports of deleted runs go too (SQLite ignores ON DELETE)
        connection.execute(drift_reports.delete().where(drift_reports.c.run_id < cutoff))
    connection.execute(table.delete().where(key < cutoff))


def _stored(row: Any) -> StoredRun:
    drifted = [f["feature"] for f in row.features if f["drifted"]]
    summary = {
        "share": row.share,
        "detected": bool(row.detected),
        "drift_share": row.drift_share,
        "drifted_features": drifted,
        "reference_rows": row.reference_rows,
        "current_rows": row.current_rows,
        "features": row.features,
    }
    return StoredRun(row.id, row.computed_at, summary)


def latest_run(engine: Engine) -> StoredRun | None:
    """The newest stored drift result, if any."""
    query = sa.select(drift_runs).order_by(drift_runs.c.id.desc()).limit(1)
    with engine.connect() as connection:
        row = connection.execute(query).first()
    return _stored(row) if row is not None else None


def run_history(engine: Engine, limit: int) -> list[StoredRun]:
    """The newest ``limit`` drift results, newest first."""
    query = sa.select(drift_runs).order_by(drift_runs.c.id.desc()).limit(limit)
    with engine.connect() as connection:
        return [_stored(row) for row in connection.execute(query)]


def latest_report(engine: Engine) -> tuple[int, str] | None:
    """(run id, Evidently HTML) of the newest run that kept its report."""
    query = sa.select(drift_reports).order_by(drift_reports.c.run_id.desc()).limit(1)
    with engine.connect() as connection:
        row = connection.execute(query).first()
    if row is None:
        return None
    return int(row.run_id), gzip.decompress(row.html_gzip).decode("utf-8")
