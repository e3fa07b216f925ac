"""Alembic environment: one migration tree for every package's models (DESIGN §2)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from mydata.db import Base, UTCDateTime, import_models

import_models()
config = context.config
target_metadata = Base.metadata


def _url() -> str:
    url = config.attributes.get("url")
    if url:
        return str(url)
    # Run through the plain `alembic` command: read the same settings the platform reads.
    from mydata.config import load_settings
    from mydata.db import database_url

    return database_url(load_settings())


def run_migrations_offline() -> None:
    """Emit SQL for the migrations without a database."""
    url = _url()
    context.configure(
        url=url, target_metadata=target_metadata, literal_binds=True, render_as_batch=url.startswith("sqlite")
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run the migrations on the connection given by `mydata db upgrade`, or a new one."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = create_engine(_url())
    with engine.begin() as new_connection:
        _run(new_connection)


def render_item(type_: str, obj: object, autogen_context: object) -> str | bool:
    """Write UTCDateTime columns as the plain timezone-aware DateTime they store."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def _run(connection: object) -> None:
    context.configure(
        connection=connection,  # type: ignore[arg-type]
        target_metadata=target_metadata,
        render_item=render_item,
        render_as_batch=connection.dialect.name == "sqlite",  # type: ignore[attr-defined]
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
