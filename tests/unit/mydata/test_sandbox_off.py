"""Sandbox mode is off unless asked for, and off it serves no simulator and trusts no plain http (issue 10, item 4)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy.orm import sessionmaker

from mydata.app import create_app
from mydata.config import Settings, load_settings
from mydata.db import get_db
from mydata.errors import MissingSetting
from tests.factories.identity import production_environment

pytestmark = pytest.mark.db


@pytest.fixture
def unconfigured_sandbox_app(tmp_path: Path, database_url: str, db_connection: object) -> Iterator[Flask]:
    """Return the app a deployment gets when it gives its secrets and says nothing about the sandbox."""
    environ = {
        **production_environment(tmp_path),
        "MYDATA_INSTANCE_PATH": str(tmp_path / "instance"),
        "MYDATA_DATABASE_URL": database_url,
        # Never contacted: no route these tests call is rate limited.
        "MYDATA_RATELIMIT_STORAGE_URI": os.environ.get("MYDATA_TEST_REDIS_URL", "redis://127.0.0.1:6379/5"),
        "MYDATA_MASTER_KEY": "A" * 43,
    }
    app = create_app(load_settings(environ))
    # Its sessions share the test's rolled-back transaction, as the `app` fixture's do.
    get_db(app).session_factory = sessionmaker(
        bind=db_connection, join_transaction_mode="create_savepoint", expire_on_commit=False
    )
    yield app
    get_db(app).engine.dispose()


def test_the_sandbox_is_off_by_default(unconfigured_sandbox_app: Flask) -> None:
    app = unconfigured_sandbox_app
    assert app.config["MYDATA_SANDBOX"] is False
    client = app.test_client()
    assert client.get("/healthz").json["sandbox"] is False
    assert "沙盒" not in client.get("/").get_data(as_text=True)  # no sandbox banner


def test_no_simulator_or_sandbox_route_is_served(unconfigured_sandbox_app: Flask) -> None:
    client = unconfigured_sandbox_app.test_client()
    for path in (
        "/sandbox/mobile-id",
        "/sandbox/agencies/sandbox/faults",
        "/sandbox/bank/",
        "/sandbox/school/",
        "/sandbox/outbox",
    ):
        assert client.get(path).status_code == 404, path
    assert client.post("/sandbox/mobile-id/approve", json={"national_id": "A123456789"}).status_code == 404
    assert client.post("/sandbox/card-reader/sign", json={}).status_code == 404
    sandbox_rules = [rule.rule for rule in unconfigured_sandbox_app.url_map.iter_rules() if "sandbox" in rule.rule]
    assert sandbox_rules == []


def test_no_secret_is_generated(tmp_path: Path, database_url: str) -> None:
    instance = tmp_path / "instance"
    with pytest.raises(MissingSetting) as raised:
        create_app(Settings(instance_path=instance, issuer="https://mydata.example", database_url=database_url))
    assert "MYDATA_MASTER_KEY" in raised.value.settings
    assert "MYDATA_SECRET_KEY" in raised.value.settings
    assert not (instance / "master.key").exists()
    assert not (instance / "secret.key").exists()


def test_every_cookie_is_secure(unconfigured_sandbox_app: Flask) -> None:
    # Even though session_cookie_secure is false in config/default.toml.
    assert unconfigured_sandbox_app.config["SESSION_COOKIE_SECURE"] is True
    client = unconfigured_sandbox_app.test_client()
    response = client.get("/?lang=en", base_url="https://mydata.example")
    [language] = [c for c in response.headers.getlist("Set-Cookie") if c.startswith("mydata_lang=")]
    assert "Secure" in language
    login = client.get("/login", base_url="https://mydata.example")
    for cookie in login.headers.getlist("Set-Cookie"):
        assert "Secure" in cookie, cookie
