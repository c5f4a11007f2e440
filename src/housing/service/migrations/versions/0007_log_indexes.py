"""Indexes for the filters GET /predictions offers and for the labelled reads, then ANALYZE.

Without them a page filtered by a rare or absent status, or by endpoint, walks the
``created_at`` index backwards over the whole table (seconds at millions of rows, and a
long read holds the SQLite WAL). ``ANALYZE`` is part of the change: without statistics
SQLite's planner picks these indexes for queries they slow down by orders of magnitude.
Building them reads the whole table once (seconds per million rows, on the first start).

Revision ID: 0007_log_indexes
Revises: 0006_feedback_token
Create Date: 2026-12-04
"""

from __future__ import annotations

from alembic import op

revision = "0007_log_indexes"
down_revision = "0006_feedback_token"
branch_labels = None
depends_on = None

INDEXES = {
    "ix_prediction_log_status_created_at": ["status", "created_at"],
    "ix_prediction_log_endpoint_created_at": ["endpoint", "created_at"],
    "ix_prediction_log_endpoint_status_created_at": ["endpoint", "status", "created_at"],
}


def upgrade() -> None:
    for name, columns in INDEXES.items():
        op.create_index(name, "prediction_log", columns)
    op.execute("ANALYZE prediction_log")


def downgrade() -> None:
    for name in INDEXES:
        op.drop_index(name, "prediction_log")
