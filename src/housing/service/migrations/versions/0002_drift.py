"""Drift results of the monitoring job and their Evidently HTML reports.

Revision ID: 0002_drift
Revises: 0001_prediction_log
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from housing.service.log import UTCDateTime

revision = "0002_drift"
down_revision = "0001_prediction_log"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "drift_runs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("computed_at", UTCDateTime(), nullable=False),
        sa.Column("share", sa.Float, nullable=False),
        sa.Column("detected", sa.Boolean, nullable=False),
        sa.Column("drift_share", sa.Float, nullable=False),
        sa.Column("reference_rows", sa.Integer, nullable=False),
        sa.Column("current_rows", sa.Integer, nullable=False),
        sa.Column("features", sa.JSON, nullable=False),
    )
    op.create_index("ix_drift_runs_computed_at", "drift_runs", ["computed_at"])
    op.create_table(
        "drift_reports",
        sa.Column(
            "run_id",
            sa.Integer,
            sa.ForeignKey("drift_runs.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("html_gzip", sa.LargeBinary, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("drift_reports")
    op.drop_index("ix_drift_runs_computed_at", "drift_runs")
    op.drop_table("drift_runs")
