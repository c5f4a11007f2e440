"""Prediction intervals in the log: the level and bounds served with each prediction.

``interval_low`` and ``interval_high`` hold a /predict row's bounds ($100k); a /predict/batch
row keeps ``[low, high]`` per house in ``intervals`` (None for a rejected house), beside its
``predictions``. All NULL when the serving version had no intervals (or for older rows).

Revision ID: 0009_intervals
Revises: 0008_log_retention
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_intervals"
down_revision = "0008_log_retention"
branch_labels = None
depends_on = None

COLUMNS = ("interval_level", "interval_low", "interval_high", "intervals")


def upgrade() -> None:
    op.add_column("prediction_log", sa.Column("interval_level", sa.Float))
    op.add_column("prediction_log", sa.Column("interval_low", sa.Float))
    op.add_column("prediction_log", sa.Column("interval_high", sa.Float))
    op.add_column("prediction_log", sa.Column("intervals", sa.JSON(none_as_null=True)))


def downgrade() -> None:
    with op.batch_alter_table("prediction_log") as batch:
        for name in reversed(COLUMNS):
            batch.drop_column(name)
