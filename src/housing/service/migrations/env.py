"""Alembic environment for the prediction log (run programmatically by ``log.migrate``)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

import housing.monitoring.store  # noqa: F401  (registers the drift tables on ``metadata``)
import housing.service.retention  # noqa: F401  (and the retention tables)
from housing.service.log import metadata

config = context.config


def run_migrations() -> None:
    """Migrate on the connection ``log.migrate`` passes, or on a new one from the URL."""
    connection = config.attributes.get("connection")
    if context.is_offline_mode():
        context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=metadata)
        with context.begin_transaction():
            context.run_migrations()
        return
    if connection is None:
        engine = sa.create_engine(config.get_main_option("sqlalchemy.url"))
        with engine.begin() as new_connection:
            _run(new_connection)
        return
    _run(connection)


def _run(connection: sa.Connection) -> None:
    # render_as_batch: SQLite alters tables by copying them; Alembic's batch mode does that.
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


run_migrations()
