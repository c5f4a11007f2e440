"""Who sent each feedback's label: ``anonymous``, ``labeller`` or ``admin``.

Only labels from a labeller key or the admin key may train a model (anonymous feedback is a
monitoring signal): ``housing.retrain`` reads this column. Feedback logged before it existed
was sent without a credential, so it is marked ``anonymous``.

Revision ID: 0005_label_source
Revises: 0004_drift_lease
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_label_source"
down_revision = "0004_drift_lease"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("prediction_log", sa.Column("label_source", sa.String(16)))
    log = sa.table("prediction_log", sa.column("endpoint"), sa.column("label_source"))
    op.execute(log.update().where(log.c.endpoint == "/feedback").values(label_source="anonymous"))


def downgrade() -> None:
    with op.batch_alter_table("prediction_log") as batch:
        batch.drop_column("label_source")
