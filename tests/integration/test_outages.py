"""Outages of the platform's parts: the database and the rate-limit store, cut off through a TCP proxy.

The shared PostgreSQL and Redis are never stopped: a :class:`~tests.factories.proxy.TcpProxy` stands
between the platform and each of them, and closing it drops every connection and refuses new ones.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.factories.live import LivePlatform, serve_platform
from tests.factories.proxy import TcpProxy

POSTGRES_URL = os.environ.get("MYDATA_TEST_DATABASE_URL", "")
REDIS_URL = os.environ.get("MYDATA_TEST_REDIS_URL", "")


# -- the database -----------------------------------------------------------------------------------


@pytest.fixture
def database_behind_proxy(tmp_path: Path) -> Iterator[tuple[LivePlatform, TcpProxy]]:
    """Serve the sandbox platform on a PostgreSQL database of its own, reached through a proxy."""
    if not POSTGRES_URL:
        pytest.skip("MYDATA_TEST_DATABASE_URL is not set (CI sets it): the proxy stands before PostgreSQL")
    name = f"mydata_outage_{secrets.token_hex(4)}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    try:
        with TcpProxy.to(url, 5432) as proxy, serve_platform(tmp_path, database_url=proxy.url(url)) as live:
            yield live, proxy
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def lines(caplog: pytest.LogCaptureFixture, logger: str, words: str) -> list[str]:
    """Return the messages of *logger* (or its children) that contain *words*."""
    return [
        record.getMessage()
        for record in caplog.records
        if record.name.startswith(logger) and words in record.getMessage()
    ]


def test_a_database_outage_is_answered_503_with_retry_after_and_logged_once(
    database_behind_proxy: tuple[LivePlatform, TcpProxy], caplog: pytest.LogCaptureFixture
) -> None:
    live, proxy = database_behind_proxy
    http = requests.Session()
    api, page = f"{live.base}/ledger/entries?start=0&end=0", f"{live.base}/verify/ABCD-EFGH-JKMN"
    html = {"Accept": "text/html"}
    # Both read the database: the ledger is empty, and no document has this code.
    assert "the ledger has 0 entries" in http.get(api, timeout=30).json()["error_description"]
    assert http.get(page, headers=html, timeout=30).status_code == 404
    caplog.clear()

    proxy.close()
    for _ in range(3):
        answer = http.get(api, timeout=30)
        assert answer.status_code == 503, answer.text
        assert answer.json()["error"] == "temporarily_unavailable"
        assert "database" in answer.json()["error_description"]
        assert int(answer.headers["Retry-After"]) > 0
    english = http.get(f"{page}?lang=en", headers=html, timeout=30)
    assert english.status_code == 503
    assert int(english.headers["Retry-After"]) > 0
    assert english.headers["Content-Type"].startswith("text/html")
    assert "MyData is briefly unavailable" in english.text
    assert "503 temporarily_unavailable" in english.text
    chinese = http.get(f"{page}?lang=zh_Hant_TW", headers=html, timeout=30)
    assert chinese.status_code == 503
    assert "MyData 暫時無法使用" in chinese.text
    assert http.get(f"{live.base}/healthz", timeout=30).json()["database"] == "unavailable"

    # One line says the database is unreachable; no request logs a traceback.
    assert len(lines(caplog, "mydata", "database unreachable")) == 1
    assert [r.getMessage() for r in caplog.records if r.exc_info] == []

    proxy.open()
    assert "the ledger has 0 entries" in http.get(api, timeout=30).json()["error_description"]
    assert http.get(page, headers=html, timeout=30).status_code == 404
    assert http.get(f"{live.base}/healthz", timeout=30).status_code == 200
    assert len(lines(caplog, "mydata", "database reachable again")) == 1
    assert len(lines(caplog, "mydata", "database unreachable")) == 1
