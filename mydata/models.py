"""Kernel tables: the key store's encrypted keys and named secrets, and the mail outbox."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from mydata.db import Base, UTCDateTime


class StoredKey(Base):
    """A platform signing key pair; the private half is AES-GCM encrypted under the master key."""

    __tablename__ = "mydata_key"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    alg: Mapped[str] = mapped_column(String(16))
    use: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(16), index=True)  # active | retired
    public_jwk: Mapped[dict[str, str]] = mapped_column(JSON)
    private_key_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    retired_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class StoredSecret(Base):
    """A named symmetric secret (ledger pseudonyms, pairwise subjects), encrypted at rest."""

    __tablename__ = "mydata_secret"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class OutboxMessage(Base):
    """An email waiting in the outbox (or sent): written with the change that causes it (:mod:`mydata.mail`)."""

    __tablename__ = "mydata_outbox"
    # The sender's query: queued messages whose next attempt is due, oldest first.
    __table_args__ = (Index("ix_mydata_outbox_due", "status", "next_attempt_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    recipient: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    language: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))  # queued | sent | failed
    attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class Decision(Base):
    """An operator's decision (審核紀錄): who decided what about which thing, when and why (issue 13).

    Written in the same transaction as the change it records (:func:`mydata.decisions.record`), by
    every path that decides: the operator console, the operator API and the command line.
    """

    __tablename__ = "mydata_decision"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    decided_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)
    actor: Mapped[str] = mapped_column(String(128))
    subject_type: Mapped[str] = mapped_column(String(32), index=True)
    subject_id: Mapped[str] = mapped_column(String(128), index=True)
    action: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str | None] = mapped_column(Text)
