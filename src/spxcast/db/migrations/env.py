"""Alembic environment: migrations run on the connection handed in by :func:`spxcast.db.upgrade`."""

from alembic import context

from spxcast.db.models import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "spxcast migrations run through spxcast.db.upgrade(engine), which supplies a connection"
    )
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
