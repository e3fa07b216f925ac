"""Consent tables: the transparency ledger's entries, stored subtrees, head and signed tree heads.

The ledger (DESIGN §6.3) is an RFC 9162 Merkle tree kept so that an append and a proof each
cost O(log n): every complete aligned subtree ("block", see :mod:`consent.merkle`) is stored once
when the append that completes it happens, and the head row holds the tree size and its right
frontier. Nothing here is ever updated or deleted except the single head row and the queue of leaves
waiting for the sequencer.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, BigInteger, Boolean, CheckConstraint, ForeignKey, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from mydata.db import Base, UTCDateTime


class LedgerEntry(Base):
    """One ledger entry: the exact RFC 8785 canonical JSON bytes that were hashed into leaf ``seq``."""

    __tablename__ = "consent_ledger_entry"

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    leaf_input: Mapped[bytes] = mapped_column(LargeBinary)
    # Copies of two fields of ``leaf_input``, indexed for the citizen's usage history (§6.4: by the
    # keyed-hash subject of version 1 entries, by the case commitments of version 2 entries) and
    # for finding a case's entries; `mydata ledger verify` checks that they agree with the hashed bytes.
    subject: Mapped[str | None] = mapped_column(String(64), index=True)
    consent_id: Mapped[str | None] = mapped_column(String(128), index=True)


class CaseOpening(Base):
    """The private opening of one case's subject commitment (DESIGN §6.3, entry version 2); never published.

    Every version 2 entry of a case (a consent; later a download or a counter use) carries
    ``commitment`` = b64url(SHA-256("mydata-subject-v1" || 0x00 || national ID || 0x00 || salt)). The
    salt, fresh for each case, is what the citizen's history hands out so they can recompute it.
    ``subject_key`` (the keyed hash of the national ID, :meth:`consent.ledger.Ledger.subject_key`)
    finds a citizen's cases for their history; it stays in this table and is never written to the log.
    """

    __tablename__ = "consent_case_opening"

    case_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    subject_key: Mapped[str] = mapped_column(String(64), index=True)
    salt: Mapped[bytes] = mapped_column(LargeBinary)
    commitment: Mapped[str] = mapped_column(String(64))


class LedgerNode(Base):
    """The hash of one complete aligned subtree, stored when the append of its last leaf completed it.

    ``block`` is ``last_seq * 64 + level`` for the subtree ``[last_seq - 2**level + 1, last_seq]``
    (see :func:`consent.ledger.block_key`); level 0 rows are the leaf hashes. One integer key makes
    a proof's O(log n) lookups one exact ``IN`` query on every database, and sorts the rows in
    the order appends create them, so an append writes at the right edge of the index and the
    audit reads them in one ordered pass.
    """

    __tablename__ = "consent_ledger_node"

    block: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[bytes] = mapped_column(LargeBinary)


class LedgerHead(Base):
    """The single row every append locks: tree size, right frontier and the last signed tree head."""

    __tablename__ = "consent_ledger_head"
    __table_args__ = (CheckConstraint("id = 1", name="singleton"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    tree_size: Mapped[int] = mapped_column(BigInteger)
    # The frontier block hashes of the tree (consent.merkle.frontier_blocks), largest first,
    # concatenated: popcount(tree_size) times 32 bytes.
    frontier: Mapped[bytes] = mapped_column(LargeBinary)
    sth_tree_size: Mapped[int | None] = mapped_column(BigInteger)
    sth_timestamp: Mapped[str | None] = mapped_column(String(32))


class LedgerQueued(Base):
    """A leaf waiting for the sequencer (DESIGN §6.3, docs/decisions/0011): queued by the business transaction.

    ``body`` is the entry exactly as it will be hashed except its ``seq``: the RFC 8785 canonical
    JSON of the entry without the ``seq`` member, fixed (time, subject, everything) when the
    business transaction queues it. The sequencer adds the ``seq`` it assigns, writes the entry
    and its subtrees, and deletes the row, in one transaction. Oldest first: ``id`` orders the queue.
    """

    __tablename__ = "consent_ledger_queue"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    body: Mapped[bytes] = mapped_column(LargeBinary)
    subject: Mapped[str | None] = mapped_column(String(64))
    consent_id: Mapped[str | None] = mapped_column(String(128))


class LedgerTreeHead(Base):
    """A signed tree head: the root of the first ``tree_size`` entries, signed by the platform."""

    __tablename__ = "consent_signed_tree_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tree_size: Mapped[int] = mapped_column(BigInteger, index=True)
    root_hash: Mapped[bytes] = mapped_column(LargeBinary)
    # Kept as the exact RFC 3339 text that was signed, so the API serves what the JWS says.
    timestamp: Mapped[str] = mapped_column(String(32))
    jws: Mapped[str] = mapped_column(Text)


class Consent(Base):
    """One request for a citizen's data by a relying party, and what became of it (DESIGN §6.1).

    requested (PAR accepted) -> granted | denied | expired (never answered); granted -> delivered |
    expired | revoked. Datasets and the purpose are kept as the citizen was shown them; the data itself never is.
    """

    __tablename__ = "consent_consent"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    client_id: Mapped[str] = mapped_column(ForeignKey("identity_oauth_client.client_id"), index=True)
    organisation_id: Mapped[str] = mapped_column(String(64), index=True)
    organisation_name: Mapped[str] = mapped_column(String(200))
    service_id: Mapped[str] = mapped_column(String(128), index=True)
    purpose: Mapped[str] = mapped_column(Text)
    retention: Mapped[str] = mapped_column(String(64))
    level: Mapped[str] = mapped_column(String(16))
    datasets_required: Mapped[list[str]] = mapped_column(JSON)
    datasets_optional: Mapped[list[str]] = mapped_column(JSON)
    datasets_granted: Mapped[list[str] | None] = mapped_column(JSON)
    citizen_id: Mapped[str | None] = mapped_column(ForeignKey("identity_citizen.id"), index=True)
    amr: Mapped[list[str] | None] = mapped_column(JSON)
    delivery_attempts: Mapped[int] = mapped_column(Integer, default=0)
    delivery_outcomes: Mapped[dict[str, str] | None] = mapped_column(JSON)
    document_hashes: Mapped[dict[str, str] | None] = mapped_column(JSON)
    receipt: Mapped[str | None] = mapped_column(Text)
    receipt_id: Mapped[str | None] = mapped_column(String(64))
    requested_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    decided_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    window_ends_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    delivered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    expired_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class Document(Base):
    """A document the citizen downloaded (下載文件): its metadata and SHA-256, never its data (DESIGN §6.5).

    ``id`` is also the download's case id in the ledger. The verification code printed on the
    document is kept only as its SHA-256 (``code_sha256``), like a password: the platform shows it
    once, in the document, and finds the record again by its hash.
    """

    __tablename__ = "consent_document"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    citizen_id: Mapped[str] = mapped_column(ForeignKey("identity_citizen.id"), index=True)
    datasets: Mapped[list[str]] = mapped_column(JSON)
    format: Mapped[str] = mapped_column(String(8))
    sha256: Mapped[str] = mapped_column(String(64))
    code_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    issued_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    valid_until: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class CounterUse(Base):
    """A counter verification (臨櫃核驗, DESIGN §6.5): a citizen shows a clerk their data at a desk.

    ``id`` is the case id in the ledger and the ``txn`` the agencies see. The citizen's code and the
    confirmation code are kept only as SHA-256 (``code_sha256``, ``confirmation_sha256``); the
    confirmation code is also kept encrypted (JWE) to a key that only the citizen's page holds
    (``page_key`` is its public half), so that the page can show it and a copy of the database cannot.
    States: ``offered`` (waiting for a clerk) -> ``claimed`` (a clerk entered the code; the citizen
    reads out the confirmation) -> ``shown`` (the clerk may see the data until ``view_until``), or
    ``cancelled`` by the citizen, or ``void`` when the confirmation was not entered in time.
    """

    __tablename__ = "consent_counter_use"
    __table_args__ = (CheckConstraint("status IN ('offered', 'claimed', 'shown', 'cancelled', 'void')", name="status"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    citizen_id: Mapped[str] = mapped_column(ForeignKey("identity_citizen.id"), index=True)
    datasets: Mapped[list[str]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))
    code_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    page_key: Mapped[dict[str, str | list[str]]] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    clerk_id: Mapped[str | None] = mapped_column(ForeignKey("identity_citizen.id"), index=True)
    organisation_id: Mapped[str | None] = mapped_column(String(64), index=True)
    organisation_name_zh: Mapped[str | None] = mapped_column(String(200))
    organisation_name_en: Mapped[str | None] = mapped_column(String(200))
    claimed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    confirmation_sha256: Mapped[str | None] = mapped_column(String(64))
    confirmation_jwe: Mapped[str | None] = mapped_column(Text)
    shown_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    view_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class CounterClerkLock(Base):
    """A clerk's recent wrong entries at the counter, and the lock they earned (5 in 15 minutes: 15 minutes)."""

    __tablename__ = "consent_counter_clerk_lock"

    clerk_id: Mapped[str] = mapped_column(ForeignKey("identity_citizen.id"), primary_key=True)
    recent_failures: Mapped[list[int]] = mapped_column(JSON)
    locked_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class LedgerVerification(Base):
    """The result of one full verification of the ledger (`mydata ledger verify`), for the operator console.

    ``problem`` is None when everything held; otherwise ``failed_at`` names the first bad entry (or
    signed tree head) and ``problem`` what was wrong there.
    """

    __tablename__ = "consent_ledger_verification"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    verified_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)
    tree_size: Mapped[int] = mapped_column(BigInteger)
    ok: Mapped[bool] = mapped_column(Boolean)
    failed_at: Mapped[str | None] = mapped_column(String(200))
    problem: Mapped[str | None] = mapped_column(Text)
