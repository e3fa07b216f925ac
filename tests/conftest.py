"""Shared fixtures: settings, a migrated database per backend, the app, and rolled-back sessions.

Database tests (marked ``db``) run on SQLite and, when ``MYDATA_TEST_DATABASE_URL`` is set, on
PostgreSQL too; the backend is part of every test id (``[sqlite]``, ``[postgresql]``). Other tests
that need an app run on SQLite only. Schemas are built with Alembic, never ``create_all``.
"""

from __future__ import annotations

import base64
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session, sessionmaker

from mydata.app import create_app
from mydata.cli import alembic_config
from mydata.clock import FrozenClock
from mydata.config import Settings
from mydata.db import get_db

# Fixtures of the feature packages' test data (login_as, sandbox_eid, ...), usable by every test.
pytest_plugins = ["tests.factories.identity", "tests.factories.smtp"]

POSTGRES_URL = os.environ.get("MYDATA_TEST_DATABASE_URL", "")
BACKENDS = ["sqlite", "postgresql"] if POSTGRES_URL else ["sqlite"]
MASTER_KEY = base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize ``backend``: every backend for ``db`` tests, SQLite for the rest."""
    if "backend" in metafunc.fixturenames:
        backends = BACKENDS if metafunc.definition.get_closest_marker("db") else ["sqlite"]
        metafunc.parametrize("backend", backends, scope="session")


def migrate(url: str) -> None:
    """Build the schema at *url* from the Alembic migrations."""
    from alembic import command

    engine = create_engine(url)
    with engine.begin() as connection:
        config = alembic_config(url)
        config.attributes["connection"] = connection
        command.upgrade(config, "heads")
    engine.dispose()


def reset_postgres(url: str) -> None:
    """Empty the PostgreSQL test database."""
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture(scope="session")
def database_url(backend: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """Return the URL of a freshly migrated database of *backend*, shared by the session."""
    if backend == "postgresql":
        reset_postgres(POSTGRES_URL)
        migrate(POSTGRES_URL)
        return POSTGRES_URL
    url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.sqlite'}"
    migrate(url)
    return url


@pytest.fixture
def clock() -> FrozenClock:
    """Return the app's controllable clock."""
    return FrozenClock()


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    """Return sandbox settings for a test instance."""
    return Settings(
        instance_path=tmp_path / "instance",
        sandbox=True,
        issuer="http://localhost",
        database_url=database_url,
        master_key=MASTER_KEY,
        secret_key=secrets.token_urlsafe(48),
    )


@pytest.fixture
def app(settings: Settings, clock: FrozenClock, db_connection: object) -> Iterator[Flask]:
    """Return an application whose sessions share the test's rolled-back transaction."""
    application = create_app(settings, clock_=clock)
    application.config.update(TESTING=True)
    database = get_db(application)
    database.session_factory = sessionmaker(
        bind=db_connection, join_transaction_mode="create_savepoint", expire_on_commit=False
    )
    # No app context stays pushed: each test request gets its own, as in production, so that
    # nothing kept on `g` (the request session, the locale) leaks from one request to the next.
    yield application
    database.engine.dispose()


@pytest.fixture
def db_connection(database_url: str) -> Iterator[object]:
    """Open a connection inside a transaction that is rolled back after the test."""
    engine = create_engine(database_url)
    if engine.dialect.name == "sqlite":
        from mydata.db import _configure_sqlite

        _configure_sqlite(engine)
    connection = engine.connect()
    transaction = connection.begin()
    yield connection
    transaction.rollback()
    connection.close()
    engine.dispose()


@pytest.fixture
def db_session(app: Flask) -> Iterator[Session]:
    """Return a session in the test's rolled-back transaction."""
    session = get_db(app).session_factory()
    yield session
    session.close()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """Return a test client of the app."""
    return app.test_client()


def pytest_report_header(config: pytest.Config) -> str:
    """Say which databases the database tests run on."""
    where = "sqlite" + (f", postgresql ({POSTGRES_URL.rsplit('@', 1)[-1]})" if POSTGRES_URL else "")
    return f"database tests run on: {where}"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Count the passed tests of each database backend (the [sqlite] / [postgresql] test ids)."""
    passed = terminalreporter.stats.get("passed", [])
    counts = {backend: sum(f"[{backend}" in report.nodeid for report in passed) for backend in BACKENDS}
    terminalreporter.write_line(
        "database tests passed: " + ", ".join(f"{count} on {backend}" for backend, count in counts.items())
    )
