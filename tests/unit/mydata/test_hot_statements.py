"""Statements a unit of work runs itself: in its transaction, alone (committed at once) or as a read."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import cast

import pytest
from flask import Flask
from sqlalchemy import ARRAY, BigInteger, LargeBinary, String, Table, bindparam, delete, func, insert, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.pool import QueuePool

from consent.models import CaseOpening
from identity.models import SeenJti
from mydata.config import Settings
from mydata.db import Database, _DriverStatement, get_db, init_app, unit_of_work

pytestmark = pytest.mark.db

_JTI = cast(Table, SeenJti.__table__)
INSERT = insert(_JTI)
FIND = select(_JTI.c.key, _JTI.c.expires_at).where(_JTI.c.key == bindparam("key"))
BACKEND = select(func.pg_backend_pid())


_OPENING = cast(Table, CaseOpening.__table__)
INSERT_OPENING = insert(_OPENING).returning(_OPENING.c.salt)
FIND_SALT = select(_OPENING.c.salt).where(_OPENING.c.case_id == bindparam("case_id"))


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    """Return the migrated test database, through an engine of its own (commits are real here)."""
    database = Database(database_url)
    yield database
    with database.engine.begin() as connection:
        connection.execute(delete(_JTI).where(_JTI.c.key.like("hot-statements:%")))
        connection.execute(delete(_OPENING).where(_OPENING.c.case_id.like("hot-statements:%")))
    database.engine.dispose()


def key() -> str:
    """Return a key no other test uses."""
    return f"hot-statements:{secrets.token_hex(8)}"


def stored(database: Database, value: str) -> bool:
    """Tell whether another connection sees the row *value*."""
    with database.engine.connect() as connection:
        return connection.execute(select(_JTI.c.key).where(_JTI.c.key == value)).first() is not None


def test_a_statement_run_alone_is_durable_at_once_and_leaves_nothing_open(database: Database) -> None:
    value = key()
    with database.unit_of_work() as uow:
        assert uow.run_alone(INSERT, {"key": value, "expires_at": 5}).rowcount == 1
        assert stored(database, value)
        assert not uow.pending()


def test_a_statement_run_alone_commits_what_the_unit_of_work_did_before(database: Database) -> None:
    first, second = key(), key()
    with database.unit_of_work() as uow:
        uow.run(INSERT, {"key": first, "expires_at": 5})
        assert uow.pending()
        uow.run_alone(INSERT, {"key": second, "expires_at": 5})
        assert not uow.pending()
    assert stored(database, first)
    assert stored(database, second)


def test_a_statement_run_in_the_unit_of_work_is_rolled_back_unless_committed(database: Database) -> None:
    value = key()
    with database.unit_of_work() as uow:
        uow.run(INSERT, {"key": value, "expires_at": 5})
        assert uow.read(FIND, {"key": value}).first().key == value  # the transaction sees its own write
    assert not stored(database, value)


def test_a_read_gives_rows_by_column_name_and_opens_no_transaction(database: Database) -> None:
    value = key()
    with database.unit_of_work() as uow:
        uow.run_alone(INSERT, {"key": value, "expires_at": 7})
        row = uow.read(FIND, {"key": value}).first()
        assert (row.key, row.expires_at) == (value, 7)
        assert row._asdict() == {"key": value, "expires_at": 7}
        assert uow.read(FIND, {"key": key()}).first() is None
        assert not uow.pending() or database.dialect == "sqlite"  # SQLite reads in a transaction


def test_a_database_error_is_sqlalchemys(database: Database) -> None:
    value = key()
    with database.unit_of_work() as uow:
        uow.run_alone(INSERT, {"key": value, "expires_at": 5})
        with pytest.raises(IntegrityError):
            uow.run_alone(INSERT, {"key": value, "expires_at": 5})


def test_the_orm_works_in_the_transaction_the_statements_began_and_commits_it_all(database: Database) -> None:
    first, second = key(), key()
    with database.unit_of_work() as uow:
        uow.run(INSERT, {"key": first, "expires_at": 5})
        uow.session.add(SeenJti(key=second, expires_at=5))
        uow.session.flush()
        assert uow.read(FIND, {"key": first}).first() is not None
        assert uow.pending()
        uow.commit()
        assert not uow.pending()
    assert stored(database, first)
    assert stored(database, second)


def test_what_the_orm_holds_unflushed_is_committed_with_the_statements(database: Database) -> None:
    first, second, third = key(), key(), key()
    with database.unit_of_work() as uow:
        uow.run(INSERT, {"key": first, "expires_at": 5})
        uow.session.add(SeenJti(key=second, expires_at=5))  # not flushed (adding it began the session's transaction)
        uow.commit()
    with database.unit_of_work() as uow:
        row = SeenJti(key=third, expires_at=5)
        uow.session.add(row)
        uow.commit()
        row.expires_at = 9  # changed after the commit, not flushed: the change begins the session's transaction again
        uow.commit()
    assert stored(database, first)
    assert stored(database, second)
    with database.engine.connect() as connection:
        assert connection.execute(select(_JTI.c.expires_at).where(_JTI.c.key == third)).scalar_one() == 9


def test_what_the_statements_and_the_orm_did_is_rolled_back_together(database: Database) -> None:
    first, second = key(), key()
    with database.unit_of_work() as uow:
        uow.run(INSERT, {"key": first, "expires_at": 5})
        uow.session.add(SeenJti(key=second, expires_at=5))
        uow.session.flush()
    assert not stored(database, first)
    assert not stored(database, second)


def test_a_failed_statement_leaves_the_unit_of_work_to_roll_back(database: Database) -> None:
    value = key()
    with database.unit_of_work() as uow:
        uow.run_alone(INSERT, {"key": value, "expires_at": 5})
        other = key()
        uow.run(INSERT, {"key": other, "expires_at": 5})
        with pytest.raises(IntegrityError):
            uow.run(INSERT, {"key": value, "expires_at": 5})
        uow.rollback()
        assert not uow.pending()
        uow.run_alone(INSERT, {"key": key(), "expires_at": 5})  # usable again
    assert not stored(database, other)


@pytest.fixture
def served(settings: Settings) -> Iterator[Flask]:
    """Return an app whose requests use the database as production does (not the tests' rolled-back session)."""
    app = Flask(__name__)
    database = init_app(app, settings)
    yield app
    database.engine.dispose()


def checked_out(app: Flask) -> int:
    """Return how many of the app's pooled connections are in use."""
    pool = get_db(app).engine.pool
    assert isinstance(pool, QueuePool)
    return pool.checkedout()


def test_a_request_reads_and_writes_alone_on_its_own_connection_without_a_transaction(
    database: Database, served: Flask
) -> None:
    value = key()
    with served.test_request_context("/"):
        uow = unit_of_work()
        assert uow.run_alone(INSERT, {"key": value, "expires_at": 5}).rowcount == 1
        assert stored(database, value)  # durable at once
        assert uow.read(FIND, {"key": value}).first().key == value
        if database.dialect == "sqlite":
            return  # SQLite reads and writes in transactions
        assert not uow.session.in_transaction()  # nothing begun, nothing to roll back
        alone = uow.read(BACKEND).first()[0]
        uow.run(INSERT, {"key": key(), "expires_at": 5})
        # The session's transaction is on the same connection: one connection per request.
        assert uow.run(BACKEND).first()[0] == alone
        assert checked_out(served) == 1
    assert checked_out(served) == 0  # given back when the request ended


def test_bytes_go_in_and_come_back_as_the_same_bytes(database: Database) -> None:
    case, salt = key(), bytes(range(256)) + b"\x00"  # every byte value, and a trailing NUL
    opening = {"case_id": case, "subject_key": "k" * 64, "salt": salt, "commitment": "c" * 43}
    with database.unit_of_work() as uow:
        assert uow.run(INSERT_OPENING, opening).first().salt == salt
        uow.commit()
        found = uow.read(FIND_SALT, {"case_id": case}).first().salt
    assert type(found) is bytes
    assert found == salt
    if database.dialect == "postgresql":  # straight to psycopg, which adapts bytes to bytea itself
        assert _DriverStatement.of(FIND_SALT, {"case_id": case}, database.engine.dialect) is not None
        assert _DriverStatement.of(INSERT_OPENING, opening, database.engine.dialect) is not None


ARRAYS = text(
    "SELECT CAST(:leaves AS bytea[]) AS leaves, CAST(:names AS varchar[]) AS names,"
    " CAST(:numbers AS bigint[]) AS numbers"
).bindparams(
    bindparam("leaves", type_=ARRAY(LargeBinary)),
    bindparam("names", type_=ARRAY(String)),
    bindparam("numbers", type_=ARRAY(BigInteger)),
)


@pytest.mark.parametrize(
    ("leaves", "names", "numbers"),
    [
        ([b'{"a":"\\"}', bytes(range(256)), b""], ["x", None, '"quoted", {braced}', "戶籍"], [0, 2**62, -5]),
        ([], [None, None], (1, 2)),  # empty, only NULLs, a tuple: as SQLAlchemy takes them
    ],
)
def test_arrays_go_in_as_they_are(
    database: Database, leaves: list[bytes], names: list[str], numbers: list[int]
) -> None:
    if database.dialect != "postgresql":
        pytest.skip("arrays are PostgreSQL's")
    params = {"leaves": leaves, "names": names, "numbers": numbers}
    with database.unit_of_work() as uow:
        row = uow.run(ARRAYS, params).first()
    assert (row.leaves, row.names, row.numbers) == (leaves, names, list(numbers))
    assert _DriverStatement.of(ARRAYS, params, database.engine.dialect) is not None
