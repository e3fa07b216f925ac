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
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from werkzeug.test import TestResponse

from identity.services import grant_role
from mydata.clock import FrozenClock
from mydata.config import Settings
from mydata.db import get_db
from mydata.limits import limiter
from tests.factories.identity import LoginAs, eid_nonce, make_citizen, make_nhi_card, post_form
from tests.factories.identity import text as page_text
from tests.factories.live import LivePlatform, ShiftedClock, serve_platform
from tests.factories.oauth import pkce_pair
from tests.factories.proxy import TcpProxy
from tests.integration.test_delivery_third_party import SERVICE, ThirdPartyBank
from tests.unit.relying_parties.conftest import BANK, catalogue, make_organisation  # noqa: F401 (a fixture)

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


def test_the_oauth_and_delivery_apis_answer_503_in_an_outage_and_deliver_once_after(
    database_behind_proxy: tuple[LivePlatform, TcpProxy],
) -> None:
    live, proxy = database_behind_proxy
    bank = ThirdPartyBank(live, ShiftedClock())
    delivery = bank.consented("A123456789")
    verifier, challenge = pkce_pair()

    proxy.close()
    pushed = bank.push([{"type": "mydata_delivery", "service": SERVICE}], verifier, challenge)
    collected = bank.deliver(delivery.access_token)
    for answer in (pushed, collected):
        assert answer.status_code == 503, answer.text
        assert answer.json()["error"] == "temporarily_unavailable"
        assert int(answer.headers["Retry-After"]) > 0

    proxy.open()
    # Nothing was delivered during the outage: the package is delivered now, once.
    assert bank.deliver(delivery.access_token).status_code == 200
    assert bank.deliver(delivery.access_token).json()["error"] == "already_delivered"


def test_a_connection_lost_after_the_view_keeps_its_answer_and_logs_no_traceback(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The fault bench found it: the database cut after a view had answered, the request's session
    failed to roll back at teardown, and the answer became a 500 with a traceback."""
    if not POSTGRES_URL:
        pytest.skip("MYDATA_TEST_DATABASE_URL is not set (CI sets it): the proxy stands before PostgreSQL")
    with TcpProxy.to(POSTGRES_URL, 5432) as proxy:
        settings = Settings(
            instance_path=tmp_path,
            sandbox=True,
            database_url=proxy.url(POSTGRES_URL),
            master_key="m" * 43,
            secret_key=secrets.token_urlsafe(48),
        )
        from mydata.app import create_app
        from mydata.db import session

        app = create_app(settings)

        @app.get("/_test/read-then-lose-the-database")
        def read_then_lose_the_database() -> str:
            answer = session().execute(text("SELECT 'read'")).scalar_one()
            proxy.close()  # the connection drops with the request's transaction still open
            return str(answer)

        caplog.clear()
        answer = app.test_client().get("/_test/read-then-lose-the-database")
        assert answer.status_code == 200
        assert answer.text == "read"
        assert [r.getMessage() for r in caplog.records if r.exc_info] == []
        assert len(lines(caplog, "mydata", "database unreachable")) == 1
        get_db(app).engine.dispose()


# -- the rate-limit store ---------------------------------------------------------------------------


@pytest.fixture
def redis_proxy() -> Iterator[TcpProxy]:
    """Open a proxy to the test Redis."""
    if not REDIS_URL:
        pytest.skip("MYDATA_TEST_REDIS_URL is not set (CI sets it): the rate-limit store is Redis")
    with TcpProxy.to(REDIS_URL, 6379) as proxy:
        yield proxy


@pytest.fixture
def settings(settings: Settings, redis_proxy: TcpProxy) -> Settings:
    """Return the test settings with the rate limits kept in Redis, through the proxy."""
    return settings.replace(ratelimit_storage_uri=redis_proxy.url(REDIS_URL))


@pytest.fixture
def limited_app(eid_app: Flask) -> Flask:
    """Return the app with at most 3 failed logins per minute and address, and no counts left in Redis."""
    eid_app.config["IDENTITY_LOGIN_RATE"] = "3 per minute"
    limiter.reset()  # counts left by an earlier run in the same Redis database
    return eid_app


def eid_login(app: Flask, pin: str = "123456") -> int:
    """Log in with 王小明's eID card and *pin* from a new browser (the same address); return the status."""
    client = app.test_client()
    nonce = eid_nonce(client)
    data = {"national_id": "A123456789", "pin": pin, "nonce": nonce}
    return post_form(client, "/login/eid", data).status_code


def rate_limits(client: FlaskClient) -> str:
    """Return what /healthz says of the rate limits."""
    health = client.get("/healthz")
    assert health.status_code == 200
    return str(health.json["rate_limits"])


@pytest.mark.db
def test_logins_keep_working_with_per_process_limits_while_the_rate_limit_store_is_down(
    limited_app: Flask, client: FlaskClient, redis_proxy: TcpProxy, caplog: pytest.LogCaptureFixture
) -> None:
    assert eid_login(limited_app) == 303
    assert rate_limits(client) == "ok"
    caplog.clear()

    redis_proxy.close()
    assert eid_login(limited_app) == 303  # not 500
    assert rate_limits(client) == "degraded"
    # The limits still hold, counted in this process: 3 failed logins, then 429 even for the right PIN.
    assert [eid_login(limited_app, pin="654321") for _ in range(3)] == [401, 401, 401]
    assert eid_login(limited_app) == 429
    assert len(lines(caplog, "mydata", "rate-limit store unreachable")) == 1
    assert [r.getMessage() for r in caplog.records if r.exc_info] == []

    redis_proxy.open()
    assert rate_limits(client) == "ok"
    assert len(lines(caplog, "mydata", "rate-limit store reachable again")) == 1
    assert len(lines(caplog, "mydata", "rate-limit store unreachable")) == 1


@pytest.mark.db
def test_the_nhi_card_lock_holds_while_the_rate_limit_store_is_down(
    app: Flask, client: FlaskClient, redis_proxy: TcpProxy
) -> None:
    # The lock that protects a card's password lives in the database, not in the rate-limit store.
    with app.app_context(), get_db().unit_of_work() as uow:
        card = make_nhi_card(uow, make_citizen(uow, "A123456789"))
    redis_proxy.close()

    def log_in(password: str) -> TestResponse:
        return post_form(client, "/login/nhi", {"card_number": card, "password": password}, "en")

    assert [log_in("wrong").status_code for _ in range(4)] == [401] * 4
    fifth = log_in("wrong")
    assert fifth.status_code == 429
    assert "This card is locked" in page_text(fifth)
    locked = log_in("Sandbox-2026")  # the right password, but the card is locked
    assert locked.status_code == 429
    assert "This card is locked" in page_text(locked)
    assert rate_limits(client) == "degraded"


@pytest.mark.db
@pytest.mark.usefixtures("catalogue")
def test_the_counter_lock_holds_while_the_rate_limit_store_is_down(
    app: Flask, client: FlaskClient, clock: FrozenClock, login_as: LoginAs, redis_proxy: TcpProxy
) -> None:
    # The lock that protects citizens' counter codes from guessing lives in the database too (decision 0008).
    with app.app_context(), get_db().unit_of_work() as uow:
        make_organisation(uow)
        clerk = make_citizen(uow, "E224680132", clock.now())
        grant_role(uow, clerk.id, "counter", BANK, clock.now())
        uow.commit()
    login_as("E224680132", "eid")
    redis_proxy.close()

    def enter(code: str) -> TestResponse:
        return post_form(client, "/counter", {"code": code}, "en")

    assert [enter("ZZZZ-ZZZZ").status_code for _ in range(4)] == [400] * 4
    fifth = enter("ZZZZ-ZZZZ")
    assert fifth.status_code == 429
    assert "locked until" in page_text(fifth)
    assert enter("ABCD-EFGH").status_code == 429  # any code, while the lock lasts
    assert rate_limits(client) == "degraded"
