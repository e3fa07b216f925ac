"""Units of work on SQLite: a writer holds the write lock from its first statement, a reader none."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from mydata.db import Database


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Database]:
    """Return a database on an SQLite file."""
    database = Database(f"sqlite:///{tmp_path / 'lock.sqlite'}")
    with database.engine.begin() as connection:
        connection.execute(text("CREATE TABLE t (n INTEGER)"))
    yield database
    database.engine.dispose()


def another_writer_can_start(database: Database) -> bool:
    """Tell whether another connection could take the write lock right now (without waiting)."""
    path = database.engine.url.database
    assert path is not None
    with sqlite3.connect(path, timeout=0, isolation_level=None) as other:
        try:
            other.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc):
                raise
            return False
        other.execute("ROLLBACK")
        return True


def test_a_unit_of_work_takes_the_write_lock_at_its_first_read(database: Database) -> None:
    with database.unit_of_work() as uow:
        assert uow.session.execute(text("SELECT count(*) FROM t")).scalar_one() == 0
        # Nobody can write in between: its own write later cannot find its snapshot stale.
        assert not another_writer_can_start(database)
    assert another_writer_can_start(database)


def test_a_read_only_unit_of_work_takes_no_lock(database: Database) -> None:
    with database.unit_of_work(read_only=True) as uow:
        assert uow.session.execute(text("SELECT count(*) FROM t")).scalar_one() == 0
        assert another_writer_can_start(database)


def test_the_health_check_takes_no_lock(database: Database) -> None:
    with database.unit_of_work() as uow:
        uow.session.execute(text("INSERT INTO t VALUES (1)"))
        # A load balancer's probe does not wait behind a writer.
        database.ping()
        uow.commit()
