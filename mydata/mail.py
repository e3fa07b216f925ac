"""The mail outbox: notifications queued with the change that causes them, sent later over SMTP.

A service calls :func:`enqueue` in its own unit of work, so the message is committed with the
business change or not at all, and the user's request never waits for a mail server. A
:class:`Sender` (`mydata mail send`, or a thread of `mydata demo`) claims due messages, sends them
and marks them sent; a failure leaves the message queued with its error, to be tried again after
a growing wait, and gives up after :data:`MAX_ATTEMPTS`.

A message is claimed with a conditional UPDATE that moves its next attempt a lease ahead, so two
senders never claim it at once (PostgreSQL also skips rows another sender has locked). A sender
that dies between the SMTP server's acceptance and the mark leaves a message that is sent again
when the lease ends: the outbox delivers at least once, and exactly once unless a sender crashes.
"""

from __future__ import annotations

import datetime as dt
import logging
import smtplib
import ssl
import threading
import uuid
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Protocol

from flask import Blueprint, Flask, render_template
from flask.typing import ResponseReturnValue
from sqlalchemy import insert, select, update

from mydata.background import start_daemon
from mydata.clock import Clock
from mydata.config import Settings
from mydata.db import Database, UnitOfWork, get_db, is_outage, unit_of_work
from mydata.models import OutboxMessage

log = logging.getLogger(__name__)

QUEUED, SENT, FAILED = "queued", "sent", "failed"
MAX_ATTEMPTS = 10
#: How long a claimed message is reserved for its sender: longer than an SMTP exchange can take.
LEASE = dt.timedelta(minutes=5)
#: Messages claimed in one pass.
BATCH = 20
#: The BCP 47 tag of each platform locale, for the Content-Language header.
LANGUAGE_TAGS = {"zh_Hant_TW": "zh-Hant-TW", "en": "en"}


#: Built once and run by the unit of work's runner, not the ORM's flush: every delivery queues an
#: email (decision 0013).
_ENQUEUE = insert(OutboxMessage)


def enqueue(uow: UnitOfWork, *, to: str, subject: str, body: str, language: str, now: dt.datetime) -> str:
    """Queue a plain-text email in *uow*, to be committed with the caller's change; return its id."""
    message_id = str(uuid.uuid4())
    uow.run(
        _ENQUEUE,
        {
            "id": message_id,
            "recipient": to,
            "subject": subject,
            "body": body,
            "language": language,
            "status": QUEUED,
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        },
    )
    return message_id


def backoff(attempts: int) -> dt.timedelta:
    """Return the wait after the *attempts*-th failed attempt: 1 min, doubling, at most 6 h."""
    return dt.timedelta(seconds=min(60 * 2 ** (attempts - 1), 6 * 3600))


def recent_messages(uow: UnitOfWork, limit: int = 50) -> list[OutboxMessage]:
    """Return the newest messages of the outbox, newest first."""
    return list(uow.session.scalars(select(OutboxMessage).order_by(OutboxMessage.created_at.desc()).limit(limit)))


@dataclass(frozen=True)
class Message:
    """A claimed message, detached from its row."""

    id: str
    to: str
    subject: str
    body: str
    language: str
    attempts: int


class Transport(Protocol):
    """Something that hands a message to a mail server; raises ``OSError`` or ``smtplib.SMTPException``."""

    def send(self, message: Message) -> None:
        """Send *message* or raise why not."""


@dataclass(frozen=True)
class SmtpTransport:
    """Send over SMTP (RFC 5321) with smtplib, optionally upgraded with STARTTLS (RFC 3207)."""

    host: str
    port: int
    sender: str
    starttls: bool = False
    username: str = ""
    password: str = ""
    timeout: float = 10.0

    def send(self, message: Message) -> None:
        """Send one message in its own connection."""
        email = EmailMessage()
        email["From"] = self.sender
        email["To"] = message.to
        email["Subject"] = message.subject
        email["Message-ID"] = make_msgid(idstring=message.id, domain=self.sender.rpartition("@")[2])
        email.set_content(message.body)
        email["Content-Language"] = LANGUAGE_TAGS.get(
            message.language, message.language
        )  # after: set_content clears it
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
            if self.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if self.username:
                smtp.login(self.username, self.password)
            smtp.send_message(email)


def transport_from(settings: Settings) -> SmtpTransport | None:
    """Return the SMTP transport the settings describe, or None when no host is set."""
    if not settings.smtp_host:
        return None
    return SmtpTransport(
        host=settings.smtp_host,
        port=settings.smtp_port,
        sender=settings.smtp_from,
        starttls=settings.smtp_starttls,
        username=settings.smtp_username,
        password=settings.smtp_password,
        timeout=settings.smtp_timeout_seconds,
    )


@dataclass(frozen=True)
class SendReport:
    """What one pass of the sender did."""

    sent: int
    failed: int


class Sender:
    """Send the outbox's due messages: claim, send outside any transaction, record the outcome."""

    def __init__(self, database: Database, transport: Transport, clock: Clock, batch: int = BATCH) -> None:
        self.database = database
        self.transport = transport
        self.clock = clock
        self.batch = batch

    def send_due(self) -> SendReport:
        """Send the messages that are due now; return how many went out and how many failed."""
        return self.deliver(self.claim())

    def claim(self) -> list[Message]:
        """Reserve due messages for this sender (for :data:`LEASE`) and return them."""
        now = self.clock.now()
        due = (OutboxMessage.status == QUEUED) & (OutboxMessage.next_attempt_at <= now)
        with self.database.unit_of_work(read_only=False) as uow:
            candidates = uow.session.scalars(
                select(OutboxMessage.id)
                .where(due)
                .order_by(OutboxMessage.next_attempt_at)
                .limit(self.batch)
                .with_for_update(skip_locked=True)  # PostgreSQL; SQLite has one writer anyway
            ).all()
            claimed = []
            for message_id in candidates:
                # Conditional: another sender that claimed it first has moved its next attempt.
                taken = uow.session.execute(
                    update(OutboxMessage)
                    .where(OutboxMessage.id == message_id, due)
                    .values(attempts=OutboxMessage.attempts + 1, next_attempt_at=now + LEASE)
                )
                if taken.rowcount == 1:  # type: ignore[attr-defined]
                    claimed.append(message_id)
            rows = uow.session.scalars(
                select(OutboxMessage).where(OutboxMessage.id.in_(claimed)).execution_options(populate_existing=True)
            ).all()
            messages = [Message(r.id, r.recipient, r.subject, r.body, r.language, r.attempts) for r in rows]
            uow.commit()
        return messages

    def deliver(self, messages: list[Message]) -> SendReport:
        """Send claimed messages one by one and record each outcome."""
        sent = failed = 0
        for message in messages:
            try:
                self.transport.send(message)
            except (OSError, smtplib.SMTPException) as exc:
                failed += 1
                self._record_failure(message, f"{type(exc).__name__}: {exc}")
            else:
                sent += 1
                self._record(message, status=SENT, sent_at=self.clock.now(), last_error=None)
        return SendReport(sent=sent, failed=failed)

    def _record_failure(self, message: Message, error: str) -> None:
        log.warning("mail:outbox:failed message %s attempt %d: %s", message.id, message.attempts, error)
        if message.attempts >= MAX_ATTEMPTS:
            self._record(message, status=FAILED, last_error=error[:500])
        else:
            retry_at = self.clock.now() + backoff(message.attempts)
            self._record(message, status=QUEUED, last_error=error[:500], next_attempt_at=retry_at)

    def _record(self, message: Message, **values: object) -> None:
        with self.database.unit_of_work(read_only=False) as uow:
            # Only this claim's outcome: a sender whose lease ran out does not overwrite a later one.
            uow.session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == message.id, OutboxMessage.attempts == message.attempts)
                .values(**values)
            )
            uow.commit()


def run_sender(sender: Sender, *, interval: float, stop: threading.Event, once: bool = False) -> None:
    """Send due messages every *interval* seconds until *stop* is set (or once)."""
    while not stop.is_set():
        try:
            report = sender.send_due()
        except Exception as exc:  # a database hiccup must not end the loop: log it and try again
            if is_outage(exc):
                sender.database.note_unreachable(exc)  # one line until it is back, not one per pass
            else:
                log.exception("mail:outbox:pass failed")
        else:
            if report.sent or report.failed:
                log.info("mail:outbox:pass sent %d, failed %d", report.sent, report.failed)
        if once:
            return
        stop.wait(interval)


def start_sender_thread(app: Flask, clock: Clock, interval: float = 2.0) -> threading.Event | None:
    """Run the sender in a daemon thread (for `mydata demo`); return the event that stops it.

    Without an SMTP host nothing is started: the messages stay in the outbox.
    """
    transport = transport_from(app.config["MYDATA_SETTINGS"])
    if transport is None:
        return None
    return start_daemon("mail-sender", run_sender, Sender(get_db(app), transport, clock), interval=interval)


sandbox_bp = Blueprint("mail_sandbox", __name__)


@sandbox_bp.get("/sandbox/outbox")
def sandbox_outbox() -> ResponseReturnValue:
    """List the newest messages of the outbox (sandbox only): recipient, subject, body, status."""
    with unit_of_work() as uow:
        return render_template("sandbox/outbox.html", messages=recent_messages(uow))


def init_app(app: Flask) -> None:
    """Show the outbox in the sandbox."""
    if app.config["MYDATA_SANDBOX"]:
        app.register_blueprint(sandbox_bp)
