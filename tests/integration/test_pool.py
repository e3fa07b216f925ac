"""Pooled PostgreSQL connections: a connection idle a while is checked before use, a busy one is not."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from mydata import db
from tests.factories.ticks import Ticks

POSTGRES_URL = os.environ.get("MYDATA_TEST_DATABASE_URL", "")


@pytest.fixture
def ticks(monkeypatch: pytest.MonkeyPatch) -> Ticks:
    ticks = Ticks()
    monkeypatch.setattr(db.time, "monotonic", ticks)
    return ticks


@pytest.fixture
def engine() -> Iterator[Engine]:
    if not POSTGRES_URL:
        pytest.skip("MYDATA_TEST_DATABASE_URL is not set (CI sets it)")
    engine = db.make_engine(POSTGRES_URL)
    yield engine
    engine.dispose()


def backend_pid(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(text("SELECT pg_backend_pid()")).scalar_one())


def kill(pid: int) -> None:
    """End a server process, as a database restart or a failover would."""
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        assert connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar_one()
    admin.dispose()


def test_a_connection_idle_for_a_while_is_checked_and_replaced_when_dead(engine: Engine, ticks: Ticks) -> None:
    first = backend_pid(engine)
    kill(first)
    ticks.now += db.IDLE_PING_SECONDS
    assert backend_pid(engine) != first  # the dead connection was found and replaced: no error


def test_a_connection_in_steady_use_is_not_pinged(engine: Engine, ticks: Ticks) -> None:
    pings: list[object] = []
    original = engine.dialect.do_ping

    def counted(connection: object) -> bool:
        pings.append(connection)
        return original(connection)

    engine.dialect.do_ping = counted  # type: ignore[method-assign]
    pid = backend_pid(engine)
    ticks.now += db.IDLE_PING_SECONDS - 1
    assert backend_pid(engine) == pid
    assert pings == []
    # Which is why a connection lost while in steady use fails its next request once...
    kill(pid)
    with pytest.raises(OperationalError):
        backend_pid(engine)
    # ...after which SQLAlchemy renews the pool.
    assert backend_pid(engine) != pid
