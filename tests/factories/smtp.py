"""A local SMTP server (aiosmtpd) that keeps what it receives, for the notification tests."""

from __future__ import annotations

import email
import email.policy
import socket
from collections.abc import Iterator
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on (now)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Inbox:
    """The messages the server accepted, parsed."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, _server: SMTP, _session: Session, envelope: Envelope) -> str:  # aiosmtpd's hook name
        """Keep the message."""
        content = envelope.content if isinstance(envelope.content, bytes) else str(envelope.content).encode()
        parsed = email.message_from_bytes(content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append(parsed)
        return "250 OK"


class SmtpServer:
    """A local SMTP server on a fixed free port that can be stopped and started again."""

    def __init__(self) -> None:
        self.host = "127.0.0.1"
        self.port = free_port()
        self.inbox = Inbox()
        self._controller: Controller | None = None

    def start(self) -> None:
        """Listen (again) on the same port; nothing to do if it already listens."""
        if self._controller is not None:
            return
        self._controller = Controller(self.inbox, hostname=self.host, port=self.port)
        self._controller.start()

    def stop(self) -> None:
        """Stop listening: connections are refused until :meth:`start`."""
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def settings(self) -> dict[str, Any]:
        """Return the platform settings that point the sender here."""
        return {"smtp_host": self.host, "smtp_port": self.port, "smtp_from": "mydata@example.org"}


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """Return a running local SMTP server; it is stopped after the test."""
    server = SmtpServer()
    server.start()
    yield server
    server.stop()


def body(message: EmailMessage) -> str:
    """Return the text body of *message*."""
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())  # type: ignore[attr-defined]
