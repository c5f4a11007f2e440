"""Retention of the prediction log: the archive's index and the purge lease.

``log_archive`` has one row per UTC day written to Parquet (path, rows, bytes, SHA-256):
a day is archived once, and its rows are deleted only after that row is committed.
``log_retention_lease`` is a single row, claimed like ``drift_lease``: of the processes
sharing the log, one purges at a time (the holder renews it after every batch), and it
records the latest completed purge.

Revision ID: 0008_log_retention
Revises: 0007_log_indexes
Create Date: 2026-12-04
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from housing.service.log import UTCDateTime

revision = "0008_log_retention"
down_revision = "0007_log_indexes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "log_archive",
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("path", sa.String(500), nullable=False),
        sa.Column("rows", sa.BigInteger, nullable=False),
        sa.Column("bytes", sa.BigInteger, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("archived_at", UTCDateTime(), nullable=False),
    )
    lease = op.create_table(
        "log_retention_lease",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("holder", sa.String(200), nullable=False),
        sa.Column("claimed_at", UTCDateTime(), nullable=False),
        sa.Column("purged_at", UTCDateTime()),
        sa.Column("purged_rows", sa.BigInteger),
    )
    never = datetime(1970, 1, 1, tzinfo=UTC)
    op.bulk_insert(lease, [{"id": 1, "holder": "", "claimed_at": never}])


def downgrade() -> None:
    op.drop_table("log_retention_lease")
    op.drop_table("log_archive")
