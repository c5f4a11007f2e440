"""/explain rows keep their Shapley values: a ``contributions`` JSON column.

Revision ID: 0010_explanation
Revises: 0009_intervals
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_explanation"
down_revision = "0009_intervals"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("prediction_log", sa.Column("contributions", sa.JSON(none_as_null=True)))


def downgrade() -> None:
    with op.batch_alter_table("prediction_log") as batch:
        batch.drop_column("contributions")
