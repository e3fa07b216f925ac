"""Migrations and models agree, and `mydata db upgrade` is idempotent."""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine

from mydata.cli import alembic_config

pytestmark = pytest.mark.db
CHECKOUT = Path(__file__).resolve().parents[3]


def test_models_and_migrations_agree(database_url: str) -> None:
    for package in ("mydata", "identity", "providers", "consent", "relying_parties"):
        spec = importlib.util.find_spec(f"{package}.models")
        # Only this checkout's models: a shared virtualenv's editable install may point elsewhere.
        if spec is not None and spec.origin and Path(spec.origin).resolve().is_relative_to(CHECKOUT):
            importlib.import_module(f"{package}.models")
    from mydata.db import Base

    engine = create_engine(database_url)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        diff = compare_metadata(context, Base.metadata)
    engine.dispose()
    assert diff == [], f"models differ from migrations: {diff}"


def test_one_head_and_database_is_at_it(database_url: str) -> None:
    script = ScriptDirectory.from_config(alembic_config(database_url))
    engine = create_engine(database_url)
    with engine.connect() as connection:
        current = set(MigrationContext.configure(connection).get_current_heads())
    engine.dispose()
    assert current == set(script.get_heads())
