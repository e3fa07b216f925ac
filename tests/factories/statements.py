"""Counting the statements a piece of code runs, whether SQLAlchemy or the driver (PostgreSQL) runs them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event

from mydata.db import UnitOfWork, _DriverStatement


@contextmanager
def recorded_statements(uow: UnitOfWork, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Record the statements run meanwhile on *uow*'s connection, in order.

    Statements run by the driver directly (decision 0012) pass SQLAlchemy's events by, so they are
    recorded where the unit of work hands them to psycopg.
    """
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    run_by_driver = _DriverStatement.execute

    def execute(self: _DriverStatement, connection: Any, params: dict[str, Any]) -> Any:
        statements.append(self.sql)
        return run_by_driver(self, connection, params)

    monkeypatch.setattr(_DriverStatement, "execute", execute)
    connection = uow.session.connection()
    event.listen(connection, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(connection, "before_cursor_execute", record)
        monkeypatch.undo()
