"""Errors of the database: an outage is 503 with Retry-After and one log line, a bug stays 500.

The outage here is an SQLite file that cannot be opened; tests/integration/test_outages.py cuts
PostgreSQL off through a proxy.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from flask import Blueprint, Flask
from flask.testing import FlaskClient
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from mydata.db import CONNECT_TIMEOUT_SECONDS, Database, get_db, is_outage, session
from tests.factories.proxy import TcpProxy

POSTGRES_URL = os.environ.get("MYDATA_TEST_DATABASE_URL", "")


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Return the folder of the app's database file, which does not exist yet (SQLite cannot open it)."""
    return tmp_path / "not-yet"


@pytest.fixture
def outage_app(app: Flask, folder: Path) -> Iterator[Flask]:
    """Return the app on a database file in a missing folder, with a page and an API that read it."""
    database = Database(f"sqlite:///{folder / 'outage.sqlite'}")
    app.extensions["mydata.db"] = database
    bp = Blueprint("reads", __name__)

    @bp.get("/api/v1/reads")
    def reads_json() -> dict[str, int]:
        return {"one": session().execute(text("SELECT 1")).scalar_one()}

    @bp.get("/reads")
    def reads_page() -> str:
        return str(session().execute(text("SELECT 1")).scalar_one())

    @bp.get("/api/v1/bug")
    def bug() -> str:
        return str(session().execute(text("SELECT n FROM no_such_table")).scalar_one())

    app.register_blueprint(bp)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    yield app
    database.engine.dispose()


def messages(caplog: pytest.LogCaptureFixture, words: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name.startswith("mydata") and words in r.getMessage()]


def test_an_unreachable_database_is_503_with_retry_after_on_apis_and_pages(
    outage_app: Flask, client: FlaskClient, folder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    for _ in range(3):
        api = client.get("/api/v1/reads")
        assert api.status_code == 503
        assert api.json["error"] == "temporarily_unavailable"
        assert api.json["error_description"].startswith("The platform cannot reach its database")
        assert int(api.headers["Retry-After"]) > 0
    chinese = client.get("/reads", headers={"Accept": "text/html"})
    assert chinese.status_code == 503
    assert int(chinese.headers["Retry-After"]) > 0
    assert "MyData 暫時無法使用" in chinese.get_data(as_text=True)
    english = client.get("/reads?lang=en", headers={"Accept": "text/html"}).get_data(as_text=True)
    assert "MyData is briefly unavailable" in english
    assert "Your data is safe" in english
    assert client.get("/healthz").status_code == 503

    # One line, without a traceback, for all these requests.
    assert len(messages(caplog, "database unreachable")) == 1
    assert "unable to open database file" in messages(caplog, "database unreachable")[0]
    assert [r.getMessage() for r in caplog.records if r.exc_info] == []
    assert not get_db(outage_app).reachable

    folder.mkdir()  # the database can be opened again
    assert client.get("/api/v1/reads").json == {"one": 1}
    assert get_db(outage_app).reachable
    assert len(messages(caplog, "database reachable again")) == 1
    assert client.get("/healthz").status_code == 200
    assert len(messages(caplog, "database reachable again")) == 1


def test_a_database_error_that_is_not_an_outage_stays_a_500(
    outage_app: Flask, client: FlaskClient, folder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder.mkdir()
    # An OperationalError too, but of a query (a missing table), not of the connection: a bug.
    response = client.get("/api/v1/bug")
    assert response.status_code == 500
    assert response.json["error"] == "server_error"
    assert "Retry-After" not in response.headers
    assert "no_such_table" not in response.get_data(as_text=True)
    assert [r for r in caplog.records if r.exc_info and "no such table" in str(r.exc_info[1])]
    assert get_db(outage_app).reachable
    assert messages(caplog, "database unreachable") == []


def test_a_postgresql_statement_timeout_is_not_an_outage() -> None:
    if not POSTGRES_URL:
        pytest.skip("MYDATA_TEST_DATABASE_URL is not set (CI sets it)")
    database = Database(POSTGRES_URL)
    try:
        with database.engine.connect() as connection:
            connection.execute(text("SET statement_timeout = 1"))
            with pytest.raises(DBAPIError) as raised:
                connection.execute(text("SELECT pg_sleep(1)"))
        # psycopg's QueryCanceled (57014) is an OperationalError, of the query and not of the connection.
        assert type(raised.value.orig).__name__ == "QueryCanceled"
        assert not is_outage(raised.value)
    finally:
        database.engine.dispose()


def test_a_refused_postgresql_connection_is_an_outage() -> None:
    if not POSTGRES_URL:
        pytest.skip("MYDATA_TEST_DATABASE_URL is not set (CI sets it)")
    proxy = TcpProxy.to(POSTGRES_URL, 5432).open()
    proxy.close()  # nothing listens on its port any more
    database = Database(make_url(POSTGRES_URL).set(port=proxy.port).render_as_string(hide_password=False))
    try:
        with pytest.raises(DBAPIError) as raised:
            database.ping()
        assert is_outage(raised.value)
    finally:
        database.engine.dispose()


def test_a_postgresql_server_that_never_answers_is_an_outage_not_a_hung_request() -> None:
    if not POSTGRES_URL:
        pytest.skip("MYDATA_TEST_DATABASE_URL is not set (CI sets it)")
    # The kernel completes the TCP handshake for a listening socket nobody accepts from, as for a
    # server behind a network partition: only the connect timeout ends the wait.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = make_url(POSTGRES_URL).set(port=silent.getsockname()[1]).render_as_string(hide_password=False)
        database = Database(url)
        pool = ThreadPoolExecutor(1)
        try:
            # Without a connect timeout the operating system's would apply (minutes): the wait here
            # only keeps a failure of this test from hanging the suite.
            error = pool.submit(database.ping).exception(timeout=4 * CONNECT_TIMEOUT_SECONDS)
            assert isinstance(error, DBAPIError)
            assert "timeout expired" in str(error.orig)  # the connect timeout ended the wait
            assert is_outage(error)
        finally:
            pool.shutdown(wait=False)  # closing the socket below ends a ping still waiting
            database.engine.dispose()


def test_the_api_document_tells_integrators_about_the_outage_answer(client: FlaskClient) -> None:
    description = client.get("/openapi.json").json["info"]["description"]
    assert "503 `temporarily_unavailable` with `Retry-After`" in description
