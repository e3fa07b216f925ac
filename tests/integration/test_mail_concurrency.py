"""Several senders on one outbox, each claiming in its own transactions: no message goes out twice.

These tests commit for real, so they build their own database instead of the rolled-back one: an
SQLite file, and a fresh PostgreSQL database when MYDATA_TEST_DATABASE_URL is set (where the claim
also skips the rows another sender has locked).
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import os
import secrets
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url

from mydata import mail
from mydata.app import create_app
from mydata.cli import upgrade
from mydata.clock import Clock
from mydata.config import Settings
from mydata.db import get_db
from mydata.models import OutboxMessage
from tests.factories.smtp import SmtpServer
from tests.factories.threads import at_once

POSTGRES_URL = os.environ.get("MYDATA_TEST_DATABASE_URL", "")
MESSAGES = 60
SENDERS = 4


class CountingTransport:
    """Count every send, and take a little time like a real mail server."""

    def __init__(self) -> None:
        self.sent: Counter[str] = Counter()
        self.lock = threading.Lock()

    def send(self, message: mail.Message) -> None:
        time.sleep(0.002)
        with self.lock:
            self.sent[message.id] += 1


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Return the URL of an empty database of its own, dropped afterwards."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'outbox.sqlite'}"
        return
    if not POSTGRES_URL:
        pytest.skip("MYDATA_TEST_DATABASE_URL is not set")
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    name = f"mydata_outbox_{uuid.uuid4().hex[:8]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


def platform(url: str, instance: Path, **overrides: object) -> Flask:
    settings = Settings(
        instance_path=instance,
        sandbox=True,
        database_url=url,
        issuer="http://platform.test",
        master_key=base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode(),
        secret_key=secrets.token_urlsafe(48),
    )
    app = create_app(dataclasses.replace(settings, **overrides))
    upgrade(app)
    return app


def fill(app: Flask, count: int) -> None:
    with get_db(app).unit_of_work() as uow:
        for n in range(count):
            mail.enqueue(uow, to=f"p{n}@example.org", subject="s", body="b", language="en", now=Clock().now())
        uow.commit()


def test_concurrent_senders_send_each_message_exactly_once(database: str, tmp_path: Path) -> None:
    app = platform(database, tmp_path / "instance")
    fill(app, MESSAGES)
    transport = CountingTransport()

    def work(sender: mail.Sender) -> None:
        while sender.send_due().sent:
            pass

    senders = [mail.Sender(get_db(app), transport, Clock(), batch=5) for _ in range(SENDERS)]
    assert at_once(*(functools.partial(work, sender) for sender in senders)) == []
    assert len(transport.sent) == MESSAGES
    assert set(transport.sent.values()) == {1}
    with get_db(app).unit_of_work() as uow:
        statuses = Counter(uow.session.scalars(select(OutboxMessage.status)))
    assert statuses == {"sent": MESSAGES}
    get_db(app).engine.dispose()


def test_the_demo_thread_sends_what_is_queued(tmp_path: Path, smtp_server: SmtpServer) -> None:
    app = platform(f"sqlite:///{tmp_path / 'demo.sqlite'}", tmp_path / "instance", **smtp_server.settings())
    fill(app, 2)
    stop = mail.start_sender_thread(app, Clock(), interval=0.05)
    assert stop is not None
    try:
        deadline = time.monotonic() + 10
        while len(smtp_server.inbox.messages) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
    assert sorted(m["To"] for m in smtp_server.inbox.messages) == ["p0@example.org", "p1@example.org"]
    get_db(app).engine.dispose()


def test_without_an_smtp_host_the_demo_starts_no_sender(tmp_path: Path) -> None:
    app = platform(f"sqlite:///{tmp_path / 'demo.sqlite'}", tmp_path / "instance")
    assert mail.start_sender_thread(app, Clock()) is None
    assert app.test_cli_runner().invoke(args=["mail", "send", "--once"]).exit_code == 2
