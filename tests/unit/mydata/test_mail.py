"""The mail outbox: queued with the business change, sent once over SMTP, retried with backoff."""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select

from mydata import mail
from mydata.clock import FrozenClock
from mydata.config import Settings
from mydata.db import Database, get_db
from mydata.models import OutboxMessage
from tests.factories.smtp import SmtpServer, body

pytestmark = pytest.mark.db


def _enqueue(app: Flask, clock: FrozenClock, *, commit: bool = True, to: str = "wang.xiaoming@example.com") -> str:
    with app.app_context(), get_db().unit_of_work() as uow:
        message_id = mail.enqueue(
            uow, to=to, subject="通知", body="您的資料已交付。", language="zh_Hant_TW", now=clock.now()
        )
        if commit:
            uow.commit()
    return message_id


def _sender(app: Flask, clock: FrozenClock, server: SmtpServer) -> mail.Sender:
    settings: Settings = app.config["MYDATA_SETTINGS"]
    smtp = dataclasses.replace(settings, **server.settings())
    transport = mail.transport_from(smtp)
    assert transport is not None
    return mail.Sender(get_db(app), transport, clock)


def _outbox(app: Flask) -> list[OutboxMessage]:
    with app.app_context(), get_db().unit_of_work() as uow:
        messages = list(uow.session.scalars(select(OutboxMessage).order_by(OutboxMessage.created_at)))
        uow.session.expunge_all()  # keep what was read past the rollback
        return messages


def test_a_message_rolled_back_with_its_change_is_never_sent(app: Flask, clock: FrozenClock) -> None:
    _enqueue(app, clock, commit=False)
    assert _outbox(app) == []


def test_the_sender_delivers_a_queued_message_once(app: Flask, clock: FrozenClock, smtp_server: SmtpServer) -> None:
    _enqueue(app, clock)
    sender = _sender(app, clock, smtp_server)
    assert sender.send_due() == mail.SendReport(sent=1, failed=0)
    assert sender.send_due() == mail.SendReport(sent=0, failed=0)
    [received] = smtp_server.inbox.messages
    assert received["To"] == "wang.xiaoming@example.com"
    assert received["Subject"] == "通知"
    assert received["From"] == "mydata@example.org"
    assert received["Content-Language"] == "zh-Hant-TW"
    assert body(received).strip() == "您的資料已交付。"
    [stored] = _outbox(app)
    assert (stored.status, stored.attempts, stored.sent_at) == ("sent", 1, clock.now())


def test_a_server_down_keeps_the_message_queued_with_its_error_then_retries(
    app: Flask, clock: FrozenClock, smtp_server: SmtpServer
) -> None:
    smtp_server.stop()
    _enqueue(app, clock)
    sender = _sender(app, clock, smtp_server)
    assert sender.send_due() == mail.SendReport(sent=0, failed=1)
    [stored] = _outbox(app)
    assert stored.status == "queued"
    assert stored.attempts == 1
    assert stored.last_error
    assert "refused" in stored.last_error.lower()
    assert stored.next_attempt_at > clock.now()

    smtp_server.start()
    assert sender.send_due() == mail.SendReport(sent=0, failed=0)  # not due yet: backoff
    clock.advance((stored.next_attempt_at - clock.now()).total_seconds())
    assert sender.send_due() == mail.SendReport(sent=1, failed=0)
    clock.advance(3600)
    assert sender.send_due() == mail.SendReport(sent=0, failed=0)
    assert len(smtp_server.inbox.messages) == 1
    [stored] = _outbox(app)
    assert (stored.status, stored.attempts) == ("sent", 2)


def test_backoff_grows_and_gives_up() -> None:
    waits = [mail.backoff(n).total_seconds() for n in range(1, mail.MAX_ATTEMPTS + 1)]
    assert waits == sorted(waits)
    assert waits[0] == 60
    assert waits[-1] <= 6 * 3600


def test_a_message_is_failed_after_the_last_attempt(app: Flask, clock: FrozenClock, smtp_server: SmtpServer) -> None:
    smtp_server.stop()
    _enqueue(app, clock)
    sender = _sender(app, clock, smtp_server)
    for _ in range(mail.MAX_ATTEMPTS):
        assert sender.send_due().failed == 1
        clock.advance(mail.backoff(mail.MAX_ATTEMPTS).total_seconds())
    [stored] = _outbox(app)
    assert stored.status == "failed"
    assert sender.send_due() == mail.SendReport(sent=0, failed=0)


def test_a_message_claimed_by_one_sender_is_not_claimed_by_another(
    app: Flask, clock: FrozenClock, smtp_server: SmtpServer
) -> None:
    for n in range(3):
        _enqueue(app, clock, to=f"person{n}@example.org")
    first, second = _sender(app, clock, smtp_server), _sender(app, clock, smtp_server)
    claimed = first.claim()
    assert len(claimed) == 3
    assert second.claim() == []  # claimed rows are leased to the first sender
    assert second.send_due() == mail.SendReport(sent=0, failed=0)
    assert first.deliver(claimed) == mail.SendReport(sent=3, failed=0)
    clock.advance(mail.LEASE.total_seconds() + 1)
    assert second.send_due() == mail.SendReport(sent=0, failed=0)
    assert sorted(m["To"] for m in smtp_server.inbox.messages) == [f"person{n}@example.org" for n in range(3)]


def test_without_an_smtp_host_there_is_no_transport(settings: Settings) -> None:
    assert mail.transport_from(settings) is None


def test_the_sandbox_outbox_page_lists_queued_messages(app: Flask, clock: FrozenClock) -> None:
    _enqueue(app, clock)
    page = app.test_client().get("/sandbox/outbox")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "wang.xiaoming@example.com" in text
    assert "您的資料已交付。" in text


@pytest.mark.parametrize(
    ("changes", "setting"),
    [
        ({"smtp_host": "smtp.example.org"}, "MYDATA_SMTP_FROM"),
        ({"smtp_from": "not an address"}, "MYDATA_SMTP_FROM"),
        ({"smtp_port": 0}, "MYDATA_SMTP_PORT"),
        ({"smtp_timeout_seconds": 0}, "MYDATA_SMTP_TIMEOUT_SECONDS"),
        ({"smtp_username": "mydata"}, "MYDATA_SMTP_PASSWORD"),
    ],
)
def test_smtp_settings_are_validated(settings: Settings, changes: dict[str, object], setting: str) -> None:
    from mydata.errors import ConfigError

    with pytest.raises(ConfigError) as refused:
        settings.replace(**changes)
    assert refused.value.setting == setting


def test_a_database_outage_is_one_line_in_the_sender_loop_not_a_traceback_per_pass(
    settings: Settings, clock: FrozenClock, smtp_server: SmtpServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    database = Database(f"sqlite:///{tmp_path / 'not-yet' / 'outbox.sqlite'}")  # SQLite cannot open it
    transport = mail.transport_from(dataclasses.replace(settings, **smtp_server.settings()))
    assert transport is not None
    sender = mail.Sender(database, transport, clock)
    for _ in range(3):
        mail.run_sender(sender, interval=0, stop=threading.Event(), once=True)
    database.engine.dispose()
    assert len([r for r in caplog.records if "database unreachable" in r.getMessage()]) == 1
    assert [r.getMessage() for r in caplog.records if r.exc_info] == []
