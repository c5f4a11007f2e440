"""One accepted feedback per prediction, enforced by the database.

A unique ``feedback_key`` (``feedback_for`` of accepted feedback, NULL on every other row)
makes two concurrent POST /feedback for one prediction commit one 200 at most. A log written
before this may hold such doubles already: the newest keeps the key (as the readers count it),
the older ones stay as they were logged.

Revision ID: 0003_feedback_once
Revises: 0002_drift
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_feedback_once"
down_revision = "0002_drift"
branch_labels = None
depends_on = None

INDEX = "ux_prediction_log_feedback_key"


def _accepted(table: sa.TableClause) -> sa.ColumnElement[bool]:
    return sa.and_(
        table.c.endpoint == "/feedback",
        table.c.status == 200,
        table.c.feedback_for.is_not(None),
    )


def upgrade() -> None:
    op.add_column("prediction_log", sa.Column("feedback_key", sa.String(48)))
    log = sa.table(
        "prediction_log",
        *(sa.column(name) for name in ("id", "created_at", "endpoint", "status")),
        sa.column("feedback_for"),
        sa.column("feedback_key"),
    )
    newer = log.alias("newer")
    superseded = sa.exists().where(
        _accepted(newer),
        newer.c.feedback_for == log.c.feedback_for,
        sa.or_(
            newer.c.created_at > log.c.created_at,
            sa.and_(newer.c.created_at == log.c.created_at, newer.c.id > log.c.id),
        ),
    )
    op.execute(
        log.update().where(_accepted(log), ~superseded).values(feedback_key=log.c.feedback_for)
    )
    op.create_index(INDEX, "prediction_log", ["feedback_key"], unique=True)


def downgrade() -> None:
    op.drop_index(INDEX, "prediction_log")
    with op.batch_alter_table("prediction_log") as batch:
        batch.drop_column("feedback_key")
