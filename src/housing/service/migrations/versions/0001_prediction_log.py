"""The prediction log and the readiness heartbeat.

Revision ID: 0001_prediction_log
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from housing.service.log import UTCDateTime

revision = "0001_prediction_log"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "prediction_log",
        sa.Column("id", sa.String(48), primary_key=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("endpoint", sa.String(32), nullable=False),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("latency_ms", sa.Float, nullable=False),
        sa.Column("inputs", sa.JSON(none_as_null=True)),
        sa.Column("raw_body", sa.Text),
        sa.Column("prediction", sa.Float),
        sa.Column("predictions", sa.JSON(none_as_null=True)),
        sa.Column("model_name", sa.String(200)),
        sa.Column("model_version", sa.String(32)),
        sa.Column("error", sa.JSON(none_as_null=True)),
        sa.Column("feedback_for", sa.String(48)),
        sa.Column("actual", sa.Float),
        sa.Column("predicted_at", UTCDateTime()),
    )
    op.create_index("ix_prediction_log_created_at", "prediction_log", ["created_at"])
    op.create_index("ix_prediction_log_feedback_for", "prediction_log", ["feedback_for"])
    heartbeat = op.create_table(
        "service_heartbeat",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("beat_at", UTCDateTime()),
    )
    op.bulk_insert(heartbeat, [{"id": 1, "beat_at": None}])


def downgrade() -> None:
    op.drop_table("service_heartbeat")
    op.drop_index("ix_prediction_log_feedback_for", "prediction_log")
    op.drop_index("ix_prediction_log_created_at", "prediction_log")
    op.drop_table("prediction_log")
