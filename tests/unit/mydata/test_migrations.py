"""Migrations and models agree, and `mydata db upgrade` is idempotent."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine

from mydata.cli import alembic_config

pytestmark = pytest.mark.db


def test_models_and_migrations_agree(database_url: str) -> None:
    from mydata.db import Base, import_models

    import_models()

    engine = create_engine(database_url)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        diff = compare_metadata(context, Base.metadata)
    engine.dispose()
    assert diff == [], f"models differ from migrations: {diff}"


def test_database_is_at_every_head(database_url: str) -> None:
    script = ScriptDirectory.from_config(alembic_config(database_url))
    engine = create_engine(database_url)
    with engine.connect() as connection:
        current = set(MigrationContext.configure(connection).get_current_heads())
    engine.dispose()
    # A branch another one depends on (relying_parties_0001 depends on providers_0001) is applied
    # but no longer recorded as a head of the database: count what the recorded heads include.
    applied = {revision.revision for revision in script.iterate_revisions(tuple(current), "base")}
    assert set(script.get_heads()) <= applied
    assert not list(script.iterate_revisions("heads", tuple(current)))
