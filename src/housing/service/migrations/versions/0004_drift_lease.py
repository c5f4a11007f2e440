"""One drift check per interval for every API process sharing the log.

A single-row ``drift_lease`` table: a process computes drift only after it moved the row's
``claimed_at`` forward with one conditional UPDATE, which the database makes atomic (SQLite and
PostgreSQL alike), so `--workers N` and N replicas on one PostgreSQL log run one Evidently
check per interval between them, not N.

Revision ID: 0004_drift_lease
Revises: 0003_feedback_once
Create Date: 2026-12-01
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from housing.service.log import UTCDateTime

revision = "0004_drift_lease"
down_revision = "0003_feedback_once"
branch_labels = None
depends_on = None


def upgrade() -> None:
    lease = op.create_table(
        "drift_lease",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("holder", sa.String(200), nullable=False),
        sa.Column("claimed_at", UTCDateTime(), nullable=False),
    )
    never = datetime(1970, 1, 1, tzinfo=UTC)
    op.bulk_insert(lease, [{"id": 1, "holder": "", "claimed_at": never}])


def downgrade() -> None:
    op.drop_table("drift_lease")
