"""Database: the declarative base, the engine, one session per request, and the unit of work.

Services own their commits through a :class:`UnitOfWork`: they call ``uow.commit()`` when a change
is complete, and anything not committed is rolled back when the unit of work ends. Schema changes go
through Alembic migrations only (``mydata db upgrade``).

While the database cannot be reached, a request that needs it is answered 503 with ``Retry-After``
(an outage, which a client waits out), not 500 (a bug): see :func:`is_outage`. The log
says so once when the database becomes unreachable and once when it is back.
"""

from __future__ import annotations

import datetime as dt
import functools
import importlib
import importlib.util
import logging
import pkgutil
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar

from flask import Flask, Response, current_app, g, has_request_context, request
from sqlalchemy import ARRAY, JSON, DateTime, Enum, LargeBinary, MetaData, create_engine, event, text
from sqlalchemy.engine import Connection, Dialect, Engine, make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, OperationalError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.sql import ClauseElement, Executable, Insert
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.types import TypeDecorator

from mydata import errors
from mydata.config import Settings

log = logging.getLogger(__name__)

# Constraint names are deterministic, so that migrations can refer to them on every database.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A timezone-aware UTC timestamp on every backend.

    SQLite keeps no zone and hands back naive values; every time here is written in UTC, so the zone
    is put back on read and the rules can compare with the (aware) clock.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        """Store aware times converted to UTC."""
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(dt.UTC)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        """Return an aware UTC time."""
        if value is None:
            return None
        assert isinstance(value, dt.datetime)
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


class Base(DeclarativeBase):
    """Declarative base of every model of every package."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


#: Packages whose ``models`` modules (at any depth) hold tables; imported dynamically so that the
#: kernel does not depend on the feature packages (DESIGN §2).
MODEL_PACKAGES = ("mydata", "identity", "providers", "consent", "relying_parties")


def import_models() -> None:
    """Import every ``models`` module of every package, so that all tables are in the metadata."""
    for name in MODEL_PACKAGES:
        package = importlib.import_module(name)
        if (package_path := getattr(package, "__path__", None)) is None:
            continue
        if importlib.util.find_spec(f"{name}.models") is not None:
            importlib.import_module(f"{name}.models")
        for module in pkgutil.walk_packages(package_path, prefix=f"{name}."):
            if module.name.endswith(".models"):
                importlib.import_module(module.name)


def database_url(settings: Settings) -> str:
    """Return the configured URL, or the embedded SQLite file in the instance folder."""
    if settings.database_url:
        return settings.database_url
    return f"sqlite:///{Path(settings.instance_path) / 'mydata.sqlite'}"


#: Seconds to wait for PostgreSQL to accept a new connection (unless the URL sets ``connect_timeout``):
#: a server that does not answer, behind a network partition, is an outage answered 503 after that
#: wait, not requests that hang for the operating system's TCP timeout (minutes).
CONNECT_TIMEOUT_SECONDS = 5


def make_engine(url: str, echo: bool = False) -> Engine:
    """Create an engine; SQLite gets foreign keys, WAL and explicit transactions."""
    if url.startswith("sqlite"):
        engine = create_engine(url, echo=echo, connect_args={"timeout": 30})
        _configure_sqlite(engine)
        return engine
    connect_args = {} if "connect_timeout" in make_url(url).query else {"connect_timeout": CONNECT_TIMEOUT_SECONDS}
    engine = create_engine(url, echo=echo, pool_size=10, max_overflow=20, connect_args=connect_args)
    _ping_idle_connections(engine)
    return engine


#: A pooled connection idle for longer than this is pinged before use (see _ping_idle_connections).
IDLE_PING_SECONDS = 10.0


def _ping_idle_connections(engine: Engine) -> None:
    """Check a pooled connection before use when it has been idle a while, not before every use.

    SQLAlchemy's ``pool_pre_ping`` costs a round trip at every checkout, which is every request.
    A connection in steady use has just proved itself; one idle for more than
    :data:`IDLE_PING_SECONDS` (when the database may have restarted or failed over) is pinged, and
    a dead one is replaced before the request sees it (SQLAlchemy's pessimistic disconnect recipe).
    A connection lost while in use fails that request, and SQLAlchemy then renews the whole pool.
    """

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < IDLE_PING_SECONDS:
            return
        try:
            alive = engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:  # any driver error here means the connection is gone
            raise DisconnectionError("the pooled connection did not answer a ping") from exc
        if not alive:
            raise DisconnectionError("the pooled connection did not answer a ping")


#: Execution option that says whether a connection's next transaction only reads (True) or may
#: write (False); see :func:`_configure_sqlite`.
READ_ONLY = "mydata_read_only"
#: Methods that only read (RFC 9110 §9.2.1): their requests' transactions are read-only unless declared.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _configure_sqlite(engine: Engine) -> None:
    # pysqlite's own transaction handling defers BEGIN and breaks SAVEPOINT; SQLAlchemy's
    # documented recipe hands transaction control back to SQLAlchemy.
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        if engine.url.database not in (None, "", ":memory:"):
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()

    # SQLite has one writer. A deferred BEGIN takes the write lock at the first write; if another
    # writer committed after this transaction's first read, its snapshot is stale and that write
    # fails at once with "database is locked" (SQLITE_BUSY_SNAPSHOT: the busy timeout cannot help).
    # So a transaction that may write takes the write lock as it begins (BEGIN IMMEDIATE, which
    # waits up to the busy timeout); one that only reads begins deferred: in WAL mode a reader
    # takes no lock and waits for nobody (https://www.sqlite.org/lang_transaction.html).
    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN" if _reads_only(connection) else "BEGIN IMMEDIATE")


def _reads_only(connection: Connection) -> bool:
    """Tell whether a transaction beginning on *connection* only reads.

    Declared on the connection (:func:`read_only_connection`, ``UnitOfWork(read_only=...)``), or else
    by the request it serves: a GET only reads unless its view declares otherwise (a page that reads,
    or a sandbox agency asking for the platform's keys during a delivery, never waits for a writer).
    Anything else (a POST, a command, a background thread) may write.
    """
    declared = connection.get_execution_options().get(READ_ONLY)
    if declared is not None:
        return bool(declared)
    return has_request_context() and request.method in SAFE_METHODS


def read_only_connection(connection: Connection) -> Connection:
    """Mark *connection*'s next transaction as one that only reads (on SQLite: no write lock)."""
    return connection.execution_options(**{READ_ONLY: True})


class UnitOfWork:
    """One business transaction: commit explicitly, anything left uncommitted is rolled back.

    On SQLite a unit of work that may write holds the database's write lock from its first
    statement, so that a read followed by a write cannot fail; *read_only* declares which it is
    (default: see :func:`_reads_only`). PostgreSQL ignores the declaration: no extra statement.
    Do not open a unit of work of its own while another one of the same thread holds the write
    lock: on SQLite it would wait for that one to end.
    """

    def __init__(self, session: Session, *, read_only: bool | None = None) -> None:
        self.session = session
        if read_only is not None and not session.in_transaction() and session.get_bind().dialect.name == "sqlite":
            # Begins the transaction now (no round trip: SQLite is in-process), with the declaration.
            session.connection(execution_options={READ_ONLY: read_only})

    def __enter__(self) -> UnitOfWork:
        return self

    @property
    def dialect(self) -> str:
        """Return ``sqlite`` or ``postgresql``, without beginning a transaction."""
        return self.session.get_bind().dialect.name

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.rollback()

    def commit(self) -> None:
        """Make every change of this unit of work durable."""
        own = self._own_driver()
        if own is None:  # the session has a transaction (any change the ORM holds begins one)
            self.session.commit()  # flushes what the ORM holds, then commits (the driver's statements too)
            return
        connection, driver = own
        if driver.info.transaction_status != _IDLE:  # statements run by the driver alone (see run)
            with _driver_errors(connection, "COMMIT"):
                driver.commit()

    def pending(self) -> bool:
        """Tell whether a transaction is open that this unit of work has not committed yet."""
        own = self._own_driver()
        if own is not None:
            return bool(own[1].info.transaction_status != _IDLE)
        if not self.session.in_transaction():
            return False
        connection = self.session.connection()
        if connection.dialect.name != "postgresql":
            return True
        driver = connection.connection.driver_connection
        return driver is not None and driver.info.transaction_status != _IDLE

    # Statements on the hot path are built once, at import, with bind parameters. On PostgreSQL they
    # run through psycopg directly (compiled once by SQLAlchemy, see _DriverStatement), and with no
    # transaction when they need none; elsewhere through SQLAlchemy Core. Decision 0012.

    def run(self, statement: Executable, params: dict[str, Any] | None = None) -> Rows:
        """Run *statement* in this unit of work's transaction (committed by :meth:`commit`)."""
        params = params or {}
        own = self._own_driver()
        if own is not None:
            prepared = _DriverStatement.of(statement, params, own[0].dialect)
            if prepared is not None:
                # The driver begins the transaction itself; if the session joins later (the ORM, a
                # statement that needs SQLAlchemy), it works in the same one and commits it all.
                return prepared.execute(own[0], params)
        return _execute(self.session.connection(), statement, params)

    def read(self, statement: Executable, params: dict[str, Any] | None = None) -> Rows:
        """Run a statement that only reads, outside any transaction when none is open (PostgreSQL).

        One statement reads one consistent snapshot on its own (PostgreSQL's READ COMMITTED gives
        each statement its own snapshot even inside a transaction), so a read that begins a request
        needs no BEGIN and no ROLLBACK round trip. Inside a transaction it reads in it, and sees
        what the transaction wrote.
        """
        return self._alone(statement, params or {}, commit=False)

    def run_alone(self, statement: Executable, params: dict[str, Any] | None = None) -> Rows:
        """Run *statement* and make it durable at once, with everything this unit of work did before.

        When nothing is pending (PostgreSQL, no transaction open) the statement is its own
        transaction (autocommit: one round trip instead of BEGIN, the statement and COMMIT);
        otherwise it runs in the open transaction, which is then committed.
        """
        return self._alone(statement, params or {}, commit=True)

    def _alone(self, statement: Executable, params: dict[str, Any], *, commit: bool) -> Rows:
        own = self._own_driver()
        prepared = None if own is None else _DriverStatement.of(statement, params, own[0].dialect)
        if own is not None and prepared is not None:
            connection, driver = own
            run = functools.partial(prepared.execute, connection, params)
        else:
            connection = self.session.connection()
            driver = connection.connection.driver_connection
            run = functools.partial(_execute, connection, statement, params)
        if connection.dialect.name != "postgresql" or driver is None or driver.info.transaction_status != _IDLE:
            rows = run()  # in the open transaction, then committed with it
            if commit:
                self.commit()
            return rows
        driver.autocommit = True
        try:
            return run()
        finally:
            if not driver.closed:  # a connection lost during the statement is renewed by the pool
                driver.autocommit = False

    def _own_driver(self) -> tuple[Connection, Any] | None:
        """Return the session's own connection and its psycopg connection, while the session has no transaction.

        That is on PostgreSQL, for a session bound to a connection of its own (see
        :meth:`Database.open_session`: requests, units of work of their own). Until the session
        needs a transaction itself (the ORM, a statement that needs SQLAlchemy's conversions), the
        unit of work's statements run on the driver, which begins and ends the transaction: the
        session's bookkeeping (beginning one, committing or rolling it back) costs several times
        what a statement costs in Python. Once the session has begun, it works in the same
        transaction (the driver's, on the same connection), and its commit commits all of it.
        """
        bind = self.session.bind
        if (
            not isinstance(bind, Connection)
            or bind.invalidated
            or self.session.in_transaction()
            or bind.in_transaction()
        ):
            return None
        driver = bind.connection.driver_connection
        return None if driver is None else (bind, driver)

    def rollback(self) -> None:
        """Discard every change not yet committed."""
        own = self._own_driver()
        if own is not None and own[1].info.transaction_status != _IDLE and not own[1].closed:
            with _driver_errors(own[0], "ROLLBACK"):
                own[1].rollback()
        self.session.rollback()


class Rows:
    """What a statement run by a unit of work returned: its rows (columns by name) and its row count."""

    __slots__ = ("rowcount", "rows")

    def __init__(self, rows: Sequence[Any], rowcount: int) -> None:
        self.rows = rows
        self.rowcount = rowcount

    def first(self) -> Any:
        """Return the first row, or None."""
        return self.rows[0] if self.rows else None

    def all(self) -> Sequence[Any]:
        """Return every row."""
        return self.rows

    def __bool__(self) -> bool:
        return bool(self.rows)


def _execute(connection: Connection, statement: Executable, params: dict[str, Any]) -> Rows:
    """Run *statement* through the driver when it can be (PostgreSQL), else through SQLAlchemy Core."""
    if connection.dialect.name == "postgresql":
        prepared = _DriverStatement.of(statement, params, connection.dialect)
        if prepared is not None:
            return prepared.execute(connection, params)
    result = connection.execute(statement, params)
    return Rows(result.all() if result.returns_rows else (), result.rowcount)


class _DriverStatement:
    """A Core statement compiled once for PostgreSQL and run with psycopg, without SQLAlchemy's execution.

    SQLAlchemy Core costs about 45 µs of CPU per statement here, and psycopg alone about 15: on the
    hot path, that is most of what a request spends on its statements. The statement is still
    written with the models' tables and compiled by SQLAlchemy (same SQL, same casts); what is left
    out is its per-execution work, which these statements do not need: only statements whose
    parameters and columns need no conversion (strings, integers, bytes, one-dimensional arrays of
    those, JSON, which psycopg converts itself, and aware times: psycopg gives them in the
    connection's time zone, where UTCDateTime would move them to UTC, the same instant) are run
    this way, and errors are raised as SQLAlchemy's, with a lost connection invalidated, as
    SQLAlchemy does.
    """

    #: (id of the statement, parameter names of an insert) -> (the statement, kept so that its id
    #: stays its own, and what it compiled to: None when it needs SQLAlchemy).
    _compiled: ClassVar[dict[tuple[int, tuple[str, ...]], tuple[Executable, _DriverStatement | None]]] = {}
    _lock = threading.Lock()

    def __init__(
        self,
        sql: str,
        defaults: dict[str, Any],
        json_params: frozenset[str],
        array_params: frozenset[str],
        json: Any,
        row_factory: Any,
    ) -> None:
        self.sql = sql
        self.defaults = defaults
        self.json_params = json_params
        self.array_params = array_params
        self.json = json
        self.row_factory = row_factory  # rows are named tuples: columns by name, like SQLAlchemy's rows

    @classmethod
    def of(cls, statement: Executable, params: dict[str, Any], dialect: Dialect) -> _DriverStatement | None:
        """Return *statement* compiled for the driver, or None if it needs SQLAlchemy's conversions."""
        key = (id(statement), tuple(params) if isinstance(statement, Insert) else ())
        found = cls._compiled.get(key)
        if found is not None and found[0] is statement:
            return found[1]
        compiled = cls._compile(statement, params, dialect)
        with cls._lock:
            if len(cls._compiled) > _MAX_DRIVER_STATEMENTS:  # statements built per call: do not grow forever
                cls._compiled.clear()
            cls._compiled[key] = (statement, compiled)
        return compiled

    @classmethod
    def _compile(cls, statement: Executable, params: dict[str, Any], dialect: Dialect) -> _DriverStatement | None:
        if not isinstance(statement, ClauseElement):
            return None
        column_keys = list(params) if isinstance(statement, Insert) else None
        compiled = statement.compile(dialect=dialect, column_keys=column_keys)
        if not isinstance(compiled, SQLCompiler) or compiled.insert_prefetch or compiled.update_prefetch:
            return None  # Python-side defaults: SQLAlchemy computes them
        json_params, array_params = set(), set()
        sql = compiled.string
        for name, bind in compiled.binds.items():
            if bind.expanding or callable(bind.callable):
                return None
            kind = bind.type
            if isinstance(kind, JSON):
                json_params.add(name)
            elif isinstance(kind, LargeBinary):
                continue  # SQLAlchemy only wraps bytes in psycopg.Binary; psycopg adapts bytes to bytea itself
            elif isinstance(kind, ARRAY) and _plain_array(kind, dialect) and f"%({name})s" in sql:
                # psycopg adapts a list itself; in binary format, since its text format quotes and
                # escapes every element in Python (about 15 times slower for a batch of ledger leaves).
                sql = sql.replace(f"%({name})s", f"%({name})b")
                array_params.add(name)
            elif not isinstance(kind, UTCDateTime) and kind.dialect_impl(dialect).bind_processor(dialect) is not None:
                return None
        for column in getattr(statement, "exported_columns", ()):
            kind = column.type
            if isinstance(kind, (JSON, UTCDateTime, LargeBinary)):
                continue  # psycopg loads JSON itself; times come back aware (in UTC); bytea comes back as bytes
            if kind.dialect_impl(dialect).result_processor(dialect, None) is not None:
                return None
        # psycopg is the driver of every PostgreSQL URL here (postgresql+psycopg).
        from psycopg.rows import namedtuple_row
        from psycopg.types.json import Json

        defaults = {name: value for name, value in compiled.params.items() if value is not None}
        return cls(sql, defaults, frozenset(json_params), frozenset(array_params), Json, namedtuple_row)

    def execute(self, connection: Connection, params: dict[str, Any]) -> Rows:
        """Run the statement on *connection*'s psycopg connection; raise SQLAlchemy's errors."""
        values = {**self.defaults, **params} if self.defaults else dict(params)
        for name in self.json_params & values.keys():
            if values[name] is not None:
                values[name] = self.json(values[name])
        for name in self.array_params & values.keys():
            if values[name] is not None and type(values[name]) is not list:
                values[name] = list(values[name])  # psycopg adapts lists only (SQLAlchemy takes any sequence)
        driver = connection.connection.driver_connection
        assert driver is not None
        with _driver_errors(connection, self.sql, values):
            cursor = driver.cursor(row_factory=self.row_factory)
            cursor.execute(self.sql, values)
            # The result's status, not cursor.description, which builds a Column object per column.
            result = cursor.pgresult
            rows = cursor.fetchall() if result is not None and result.status == _TUPLES_OK else ()
        return Rows(rows, cursor.rowcount)


@contextmanager
def _driver_errors(connection: Connection, sql: str, values: dict[str, Any] | None = None) -> Iterator[None]:
    """Raise the driver's errors as SQLAlchemy's, invalidating a lost connection as SQLAlchemy does."""
    dialect = connection.dialect
    try:
        yield
    except dialect.loaded_dbapi.Error as error:
        lost = dialect.is_disconnect(error, connection.connection.driver_connection, None)
        if lost:
            connection.invalidate(error)
        raise DBAPIError.instance(
            sql, values, error, dialect.loaded_dbapi.Error, connection_invalidated=lost, dialect=dialect
        ) from error


def _plain_array(kind: ARRAY[Any], dialect: Dialect) -> bool:
    """Tell whether psycopg adapts a list for a one-dimensional array of *kind* as SQLAlchemy would."""
    item = kind.item_type
    if kind.dimensions not in (None, 1) or isinstance(item, (ARRAY, JSON, UTCDateTime, Enum)):
        return False
    return isinstance(item, LargeBinary) or item.dialect_impl(dialect).bind_processor(dialect) is None


#: Distinct statements kept compiled for the driver (the hot path has about twenty).
_MAX_DRIVER_STATEMENTS = 256


#: libpq's PGRES_TUPLES_OK: the statement returned rows (psycopg's ``pq.ExecStatus.TUPLES_OK``).
_TUPLES_OK = 2


#: libpq's PQTRANS_IDLE: the connection is not in a transaction (psycopg's ``info.transaction_status``).
_IDLE = 0


#: PostgreSQL errors of a server that cannot serve: class 08 (connection exception), and the server
#: shutting down or starting up (57P01 admin_shutdown, 57P02 crash_shutdown, 57P03 cannot_connect_now;
#: https://www.postgresql.org/docs/current/errcodes-appendix.html).
_UNAVAILABLE_SQLSTATES = ("57P01", "57P02", "57P03")


def is_outage(error: BaseException) -> bool:
    """Tell whether *error* says that the database cannot be reached: an outage, not a bug.

    A connection refused or lost (SQLAlchemy marks a lost one ``connection_invalidated``; psycopg
    gives no SQLSTATE to an error of the client's end of the connection), a PostgreSQL server
    shutting down or starting up, an SQLite file that cannot be opened. Anything else stays a bug or
    a conflict, even an ``OperationalError``: a deadlock (40P01), a statement timeout (57014), a
    missing table, a busy SQLite database.
    """
    if not isinstance(error, DBAPIError):
        return False
    if error.connection_invalidated:
        return True
    if not isinstance(error, OperationalError):
        return False
    original = error.orig
    if isinstance(original, sqlite3.Error):
        # Extended result codes keep the primary code in their low byte (https://sqlite.org/rescode.html).
        return original.sqlite_errorcode & 0xFF == sqlite3.SQLITE_CANTOPEN
    sqlstate = getattr(original, "sqlstate", None)
    return sqlstate is None or sqlstate.startswith("08") or sqlstate in _UNAVAILABLE_SQLSTATES


class Database:
    """The engine and session factory of one application, kept in ``app.extensions``.

    It also knows whether the database was last found reachable, to log each change once: a request
    that finds it unreachable calls :meth:`note_unreachable`; any new connection made (the pool makes
    new ones once the old were lost) or answered ping calls :meth:`note_reachable`.
    """

    def __init__(self, url: str, echo: bool = False) -> None:
        self.url = url
        self.engine = make_engine(url, echo=echo)
        self.session_factory: sessionmaker[Session] = sessionmaker(bind=self.engine, expire_on_commit=False)
        self.reachable = True
        self._reachability = threading.Lock()
        event.listen(self.engine, "connect", lambda _connection, _record: self.note_reachable())

    def note_unreachable(self, error: BaseException) -> None:
        """Log, once until it is back, that the database cannot be reached (one line, no traceback)."""
        with self._reachability:
            if not self.reachable:
                return
            self.reachable = False
        cause = getattr(error, "orig", None) or error
        reason = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
        log.error("database unreachable (%s): requests that need it are answered 503 until it is back", reason)

    def note_reachable(self) -> None:
        """Log, once, that the database answers again after :meth:`note_unreachable`."""
        if self.reachable:  # the usual case: no lock taken
            return
        with self._reachability:
            if self.reachable:
                return
            self.reachable = True
        log.warning("database reachable again: requests are served")

    @property
    def dialect(self) -> str:
        """Return ``sqlite`` or ``postgresql``."""
        return self.engine.dialect.name

    def ping(self) -> None:
        """Run a trivial query; raise if the database does not answer."""
        with self.engine.connect() as connection:
            read_only_connection(connection).execute(text("SELECT 1"))
        self.note_reachable()

    def open_session(self) -> tuple[Session, Connection | None]:
        """Return a new session and, on PostgreSQL, the connection of its own that it is bound to.

        The caller closes both (a request when it ends, a unit of work of its own when it ends).
        See :meth:`UnitOfWork._own_driver` for what the connection of its own saves. A session
        factory bound elsewhere (the tests bind it to a transaction they roll back) is left as it
        is: no connection of its own.
        """
        if self.dialect != "postgresql" or self.session_factory.kw.get("bind") is not self.engine:
            return self.session_factory(), None
        connection = self.engine.connect()
        return self.session_factory(bind=connection), connection

    @contextmanager
    def unit_of_work(self, *, read_only: bool | None = None) -> Iterator[UnitOfWork]:
        """Open a session of its own (for CLI commands and background work) as a unit of work."""
        session, connection = self.open_session()
        try:
            with UnitOfWork(session, read_only=read_only) as uow:
                yield uow
        finally:
            session.close()
            if connection is not None:
                connection.close()


def init_app(app: Flask, settings: Settings) -> Database:
    """Create the application's database and close the request session after each request."""
    database = Database(database_url(settings), echo=settings.database_echo)
    app.extensions["mydata.db"] = database
    app.register_error_handler(DBAPIError, _answer_database_error)

    @app.teardown_appcontext
    def _close_session(_exc: BaseException | None) -> None:
        session = g.pop("mydata_session", None)
        connection = g.pop("mydata_connection", None)
        if session is None:
            return
        try:
            UnitOfWork(session).rollback()
        except DBAPIError as error:
            # The connection was lost after the view had answered: the server ends the transaction
            # itself, and the answer stands (a 500 here would turn a served request into a failure).
            if not is_outage(error):
                raise
            database.note_unreachable(error)
        finally:
            session.close()
            if connection is not None:
                connection.close()

    return database


def _answer_database_error(error: DBAPIError) -> Response:
    """Answer 503 with Retry-After while the database cannot be reached; any other database error is a bug (500)."""
    if not is_outage(error):
        return errors.handle_unexpected(error)
    get_db().note_unreachable(error)
    return errors.handle_domain_error(errors.DatabaseUnavailable())


def get_db(app: Flask | None = None) -> Database:
    """Return the database of the current (or given) application."""
    return (app or current_app).extensions["mydata.db"]  # type: ignore[no-any-return]


def session() -> Session:
    """Return the session of the current request, opening it on first use.

    On PostgreSQL the session is bound to a connection of the request's own, taken from the pool
    now and given back when the request ends: the session begins its transactions on it, and a
    statement that needs no transaction runs on it directly (:meth:`UnitOfWork.read`,
    :meth:`UnitOfWork.run_alone`), on the same connection, without the session's bookkeeping.
    """
    if "mydata_session" not in g:
        g.mydata_session, g.mydata_connection = get_db().open_session()
    return g.mydata_session  # type: ignore[no-any-return]


def unit_of_work(*, read_only: bool | None = None) -> UnitOfWork:
    """Return a unit of work over the current request's session (see :class:`UnitOfWork` for *read_only*)."""
    return UnitOfWork(session(), read_only=read_only)
