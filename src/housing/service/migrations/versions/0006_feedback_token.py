"""Feedback belongs to the caller: the sha256 of the secret token a prediction was answered with.

``/predict`` and ``/predict/batch`` answer a random ``feedback_token`` and log only its sha256;
``/feedback`` is accepted only with the token of the prediction it labels. Predictions logged
before this revision have no hash, so they can no longer get feedback.

Revision ID: 0006_feedback_token
Revises: 0005_label_source
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_feedback_token"
down_revision = "0005_label_source"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("prediction_log", sa.Column("feedback_token_sha256", sa.String(64)))


def downgrade() -> None:
    with op.batch_alter_table("prediction_log") as batch:
        batch.drop_column("feedback_token_sha256")
