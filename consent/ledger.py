"""The transparency ledger (透明紀錄, DESIGN §6.3): an append-only RFC 9162 Merkle tree log.

Every consent transition, delivery, download and verification appends one entry: RFC 8785
canonical JSON naming what happened, in which case, about whom (a per-case subject commitment,
never the ID number), for whom and with what outcome. Entries are the leaves of a Merkle tree
built exactly as RFC 9162 §2.1 builds a Certificate Transparency log, and the platform signs its
root (a *signed tree head*), so anyone holding an earlier signed head can check that the log only
ever grew.

Storage keeps an append and a proof at O(log n): each append stores the hashes of the complete
aligned subtrees it finishes (:meth:`consent.merkle.CompactRange.append`) and updates the head
row's frontier; proofs and roots are assembled from those stored subtrees with one query
(:func:`consent.merkle.range_hash`). The tree is never rebuilt and the entries are never read
back, except by the full audit (:mod:`consent.audit`), which recomputes everything.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import jwt
from flask import current_app
from sqlalchemy import ARRAY, BigInteger, LargeBinary, String, bindparam, delete, insert, select, text, update
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Connection

from consent import merkle
from consent.interfaces import (
    LedgerEventInvalid,
    LedgerQueryInvalid,
    LedgerUnavailable,
    LedgerVerificationFailed,
    NoSignedTreeHead,
)
from consent.models import CaseOpening, LedgerEntry, LedgerHead, LedgerNode, LedgerQueued, LedgerTreeHead
from mydata import canonical_json
from mydata.clock import Clock, clock
from mydata.db import UnitOfWork
from mydata.keys import KeyStore, key_store

T = TypeVar("T")

ENTRY_VERSION = 2
"""Version of the entry format that appends write; a future format gets a new number, old entries keep theirs.

Version 1 entries (until issue 10) carry the citizen's keyed hash as ``subject``, the same in every
case; version 2 entries carry a per-case subject commitment (:func:`subject_commitment`).
"""
ENTRY_VERSIONS = frozenset({1, 2})
"""The entry versions a log may hold."""

EVENT_TYPES = frozenset(
    {
        "consent.requested",
        "consent.granted",
        "consent.denied",
        "consent.revoked",
        "consent.expired",
        "delivery.completed",
        "delivery.failed",
        "download.completed",
        "download.failed",
        "counter.verified",
        "document.verified",
    }
)
"""The events the ledger records (DESIGN §6.3). A closed list: a typo would stay in the log forever."""

MAX_ENTRIES_PER_REQUEST = 1000
STH_TYP = "mydata-sth+json"
"""JWS ``typ`` of a signed tree head (RFC 8725 §3.11: explicit typing, so no other token passes as one)."""

SIGNING_ALG = "ES256"
BLOCK_LEVELS = 64
"""Subtree levels a stored key makes room for per leaf (a tree of 2**63 leaves has 64)."""
SUBJECT_KEY_NAME = "ledger"
"""The key-store secret of the subject keys (:meth:`Ledger.subject_key`)."""
COMMITMENT_SCHEME = "mydata-subject-v1"
"""The domain-separation prefix of a subject commitment (DESIGN §6.3)."""
SALT_BYTES = 32
"""A fresh 256-bit salt for each case."""
_HEAD_ID = 1
INLINE = "inline"
SEQUENCER = "sequencer"
SEQUENCING_MODES = (INLINE, SEQUENCER)
"""Setting ``ledger_sequencing``: integrate each append in its own transaction, or leave it to the sequencer."""
SEQUENCER_BATCH = 2000
"""Leaves one sequencer transaction integrates at most."""
INLINE_BATCH = 1000
"""Leaves an inline append integrates per step (its own and any queued before it)."""
MAX_MERGE_DELAY_SECONDS = 1
"""The ledger's promise: a queued entry is integrated and under a signed tree head within this time."""

# Identifiers only: ASCII, no spaces. A name (姓名) or free text cannot pass.
_IDENTIFIER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@/+=-]{0,127}")
_OUTCOME = re.compile(r"[a-z][a-z0-9_]{0,63}")
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
# A Republic of China national ID (國民身分證統一編號) or resident certificate number (居留證統一證號):
# one letter, then 1/2 (citizens), 8/9 (new format) or A-D (old format), then eight digits.
_NATIONAL_ID = re.compile(r"[A-Z][1289A-D][0-9]{8}")


# --- Values --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LedgerEvent:
    """What happened, as a platform service reports it; the ledger adds seq, time and the subject commitment.

    ``subject_national_id`` is turned into the case's subject commitment and never stored; an event
    about a citizen must name its case (``consent_id``: a consent, download or counter-use id),
    since the commitment belongs to the case. ``subject_from_case`` instead carries the commitment
    the case already has, for an event the platform records with no citizen at hand (the sweeper's
    expiry of a granted consent). Every other field is an identifier: the ledger refuses anything
    that could be a name, an ID number or a data value.
    """

    event: str
    actor: str
    subject_national_id: str | None = field(default=None, repr=False)
    service: str | None = None
    datasets: tuple[str, ...] = ()
    outcome: str = "ok"
    consent_id: str | None = None
    document_hashes: Mapping[str, str] = field(default_factory=dict)
    subject_from_case: bool = False

    def __post_init__(self) -> None:
        if self.event not in EVENT_TYPES:
            raise LedgerEventInvalid(f"unknown ledger event {self.event!r}: add it to EVENT_TYPES first")
        _check_identifier("actor", self.actor)
        for name, value in (("service", self.service), ("consent_id", self.consent_id)):
            if value is not None:
                _check_identifier(name, value)
        if not isinstance(self.outcome, str) or not _OUTCOME.fullmatch(self.outcome):
            raise LedgerEventInvalid(f"outcome must be a snake_case code, not {self.outcome!r}")
        datasets = tuple(self.datasets)
        if len(set(datasets)) != len(datasets):
            raise LedgerEventInvalid("datasets must not repeat")
        for dataset in datasets:
            _check_identifier("datasets", dataset)
        for name, digest in self.document_hashes.items():
            _check_identifier("document_hashes", name)
            if not isinstance(digest, str) or not _SHA256_HEX.fullmatch(digest):
                raise LedgerEventInvalid(f"document hash of {name!r} must be a lowercase hex SHA-256")
        if self.subject_national_id is not None:
            object.__setattr__(self, "subject_national_id", normalise_national_id(self.subject_national_id))
            if self.consent_id is None:
                raise LedgerEventInvalid("an event about a citizen must name its case (consent_id)")
            if self.subject_from_case:
                raise LedgerEventInvalid("give the subject's national ID or take the case's commitment, not both")
        if self.subject_from_case and self.consent_id is None:
            raise LedgerEventInvalid("an event that takes its case's commitment must name its case (consent_id)")
        # Sets, really: sorted so that the same event always gives the same entry.
        object.__setattr__(self, "datasets", tuple(sorted(datasets)))
        object.__setattr__(self, "document_hashes", dict(sorted(self.document_hashes.items())))

    def entry(self, seq: int, time: str, subject: str | None) -> dict[str, Any]:
        """Return the entry as the ledger hashes it (before RFC 8785 canonicalisation)."""
        return {
            "version": ENTRY_VERSION,
            "seq": seq,
            "time": time,
            "event": self.event,
            "subject": subject,
            "actor": self.actor,
            "service": self.service,
            "datasets": list(self.datasets),
            "outcome": self.outcome,
            "consent_id": self.consent_id,
            "document_hashes": dict(self.document_hashes),
        }


def _check_identifier(name: str, value: object) -> None:
    if not isinstance(value, str) or not _IDENTIFIER.fullmatch(value):
        raise LedgerEventInvalid(f"{name} must be an identifier (ASCII letters, digits and ._:@/+=-), not {value!r}")
    if _NATIONAL_ID.search(value):
        raise LedgerEventInvalid(f"{name} looks like a national ID number: the ledger never records one")


def normalise_national_id(national_id: str) -> str:
    """Return a national ID in the one form its subject key and commitments are made from (upper case, no spaces)."""
    normalised = national_id.strip().upper()
    if not _NATIONAL_ID.fullmatch(normalised):
        raise LedgerEventInvalid("the subject is not a national ID or resident certificate number")
    return normalised


def subject_commitment(national_id: str, salt: bytes) -> str:
    """Return the subject commitment of a case (DESIGN §6.3), unpadded base64url.

    ``b64url(SHA-256("mydata-subject-v1" || 0x00 || national_id || 0x00 || salt))``, the national ID
    in ASCII as :func:`normalise_national_id` writes it and the salt as its 32 raw bytes. It hides
    the ID (the 256-bit salt is never published) and binds it: no other ID opens it.
    """
    message = b"\x00".join((COMMITMENT_SCHEME.encode(), normalise_national_id(national_id).encode("ascii"), salt))
    return base64.urlsafe_b64encode(hashlib.sha256(message).digest()).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class SubjectOpening:
    """What opens a version 2 entry's subject commitment, with the citizen's own national ID."""

    salt: bytes
    scheme: str = COMMITMENT_SCHEME


@dataclass(frozen=True)
class TreeHeadPolicy:
    """How often the ledger signs its tree head unasked (settings ``ledger_sth_every_entries`` and ``_seconds``)."""

    every_entries: int = 1000
    every_seconds: int = 300


@dataclass(frozen=True)
class TreeHead:
    """The size and root of the tree (RFC 9162 §2.1.1 MTH), unsigned."""

    tree_size: int
    root_hash: bytes


@dataclass(frozen=True)
class SignedTreeHead:
    """A tree head signed by the platform: a compact JWS over ``{tree_size, root_hash, timestamp}``."""

    tree_size: int
    root_hash: bytes
    timestamp: str
    jws: str

    def payload(self) -> dict[str, Any]:
        """Return the fields the JWS signs, as they appear in it."""
        return {"tree_size": self.tree_size, "root_hash": b64(self.root_hash), "timestamp": self.timestamp}


@dataclass(frozen=True)
class QueuedEntry:
    """An entry as queued for the sequencer: everything fixed but its ``seq``.

    ``body`` is the RFC 8785 canonical JSON of the entry without its ``seq`` member; its SHA-256
    (:attr:`entry_hash`) and ``time`` are what a receipt promises (a signed promise of inclusion,
    like a Certificate Transparency SCT): the integrated entry is ``body`` with the seq added.
    """

    body: bytes
    time: str
    queue_id: int | None = None
    seq: int | None = None
    """The seq it was given, when it was integrated in the same transaction (inline sequencing)."""

    @property
    def entry_hash(self) -> bytes:
        """Return SHA-256 of the entry without its seq: what a promise of inclusion names."""
        return hashlib.sha256(self.body).digest()


@dataclass(frozen=True)
class AppendedEntry:
    """The result of an append: the entry's leaf index and exactly what was hashed."""

    seq: int
    leaf_input: bytes
    leaf_hash: bytes
    signed_tree_head: SignedTreeHead | None = None
    """The tree head this append (its batch) signed, when the policy made one due."""
    queue_id: int | None = None
    queued: QueuedEntry | None = None
    """The entry as it was queued (not for raw appends)."""


@dataclass(frozen=True)
class _Leaf:
    """A leaf about to be written: its exact bytes, its index columns and the queue row it came from."""

    leaf_input: bytes
    subject: str | None
    consent_id: str | None
    queue_id: int | None = None


@dataclass(frozen=True)
class Batch:
    """What one integration did: the entries it gave seqs to, in order, and the tree head it signed."""

    entries: tuple[AppendedEntry, ...]
    signed_tree_head: SignedTreeHead | None


@dataclass(frozen=True)
class StoredEntry:
    """An entry as stored: its leaf index and canonical bytes."""

    seq: int
    leaf_input: bytes

    @property
    def entry(self) -> dict[str, Any]:
        """Return the entry's fields."""
        value = json.loads(self.leaf_input)
        assert isinstance(value, dict)
        return value


@dataclass(frozen=True)
class InclusionProof:
    """An audit path (RFC 9162 §2.1.3) for entry ``seq`` in the tree of ``tree_size`` entries."""

    seq: int
    tree_size: int
    leaf_hash: bytes
    audit_path: tuple[bytes, ...]


@dataclass(frozen=True)
class ConsistencyProof:
    """A consistency proof (RFC 9162 §2.1.4) from the tree of ``first`` entries to that of ``second``."""

    first: int
    second: int
    consistency_path: tuple[bytes, ...]


@dataclass(frozen=True)
class StoredHead:
    """The head row: tree size, frontier, and the size and time of the newest signed tree head."""

    tree_size: int
    frontier: merkle.CompactRange
    sth_tree_size: int | None
    sth_timestamp: str | None


# --- Encoding ------------------------------------------------------------------------------------


def b64(data: bytes) -> str:
    """Encode bytes as standard base64 (RFC 4648 §4), the encoding of every hash in the ledger API."""
    return base64.b64encode(data).decode("ascii")


def entry_hash_of(leaf_input: bytes) -> bytes:
    """Return the hash a promise of inclusion names for an integrated entry: SHA-256 of it without its seq."""
    value = json.loads(leaf_input)
    if not isinstance(value, dict):
        raise ValueError("the leaf is not a ledger entry")
    value.pop("seq", None)
    return hashlib.sha256(canonical_json.dumps(value)).digest()


def _queued(event: LedgerEvent, time: str, subject: str | None) -> QueuedEntry:
    """Return the entry of *event* as it is queued: canonical, without its seq."""
    body = event.entry(0, time, subject)
    del body["seq"]
    return QueuedEntry(body=canonical_json.dumps(body), time=time)


def _with_seq(body: bytes, seq: int) -> bytes:
    """Return the canonical entry: the queued body with its ``seq`` added."""
    value = json.loads(body)
    value["seq"] = seq
    return canonical_json.dumps(value)


def rfc3339(moment: dt.datetime) -> str:
    """Format a time as RFC 3339 UTC with milliseconds, the one form the ledger writes."""
    return moment.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_rfc3339(text: str) -> dt.datetime:
    """Parse a time the ledger wrote."""
    return dt.datetime.fromisoformat(text)


# --- Statements ----------------------------------------------------------------------------------

_HEAD_COLUMNS = (LedgerHead.tree_size, LedgerHead.frontier, LedgerHead.sth_tree_size, LedgerHead.sth_timestamp)
_SELECT_HEAD = select(*_HEAD_COLUMNS).where(LedgerHead.id == _HEAD_ID)
# PostgreSQL: the row lock is held until the transaction ends, and under READ COMMITTED the
# locked read returns the newest committed head, so appends queue up on it one by one.
_LOCK_HEAD_POSTGRESQL = _SELECT_HEAD.with_for_update()
# SQLite has no row locks: the database has one writer. A deferred transaction takes the write
# lock at its first write, so the append starts with a write (a no-op update) before it reads the
# head; a plain SELECT first would let two writers read the same head.
_LOCK_HEAD_SQLITE = (
    update(LedgerHead).where(LedgerHead.id == _HEAD_ID).values(tree_size=LedgerHead.tree_size).returning(*_HEAD_COLUMNS)
)
_INSERT_ENTRY = insert(LedgerEntry)
_INSERT_OPENING_SQLITE = (
    sqlite.insert(CaseOpening)
    .values(
        case_id=bindparam("case_id"),
        subject_key=bindparam("subject_key"),
        salt=bindparam("salt"),
        commitment=bindparam("commitment"),
    )
    .on_conflict_do_nothing(index_elements=[CaseOpening.case_id])
)
_INSERT_NODE = insert(LedgerNode)
_INSERT_TREE_HEAD = insert(LedgerTreeHead)
_UPDATE_HEAD = update(LedgerHead).where(LedgerHead.id == _HEAD_ID)
_INSERT_QUEUED = insert(LedgerQueued).returning(LedgerQueued.id)
_SELECT_QUEUED = (
    select(LedgerQueued.id, LedgerQueued.body, LedgerQueued.subject, LedgerQueued.consent_id)
    .order_by(LedgerQueued.id)
    .limit(bindparam("limit"))
)
# A case's first entry about a citizen (PostgreSQL): its opening and the queued entry, which carries
# the new commitment, in one statement. When the case has an opening already, nothing is written
# and the statement returns that opening, for the entry to carry its commitment instead.
_QUEUE_NEW_CASE_POSTGRESQL = text(
    """
    WITH existing AS (
        SELECT subject_key, commitment FROM consent_case_opening WHERE case_id = :case_id
    ), opened AS (
        INSERT INTO consent_case_opening (case_id, subject_key, salt, commitment)
        SELECT :case_id, :subject_key, :salt, :commitment WHERE NOT EXISTS (SELECT 1 FROM existing)
        ON CONFLICT (case_id) DO NOTHING
        RETURNING case_id
    ), queued AS (
        INSERT INTO consent_ledger_queue (body, subject, consent_id)
        SELECT :body, :commitment, case_id FROM opened
        RETURNING id
    )
    SELECT (SELECT id FROM queued) AS queued_id,
           (SELECT subject_key FROM existing) AS subject_key,
           (SELECT commitment FROM existing) AS commitment
    """
).bindparams(bindparam("salt", type_=LargeBinary), bindparam("body", type_=LargeBinary))
_FIRST_QUEUED = select(LedgerQueued.id).order_by(LedgerQueued.id).limit(1)
_DELETE_QUEUED = delete(LedgerQueued).where(LedgerQueued.id.in_(bindparam("ids", expanding=True)))
# A whole batch in one round trip while the head is locked (the lock is held until commit, so
# each round trip saved under it raises the ledger's throughput). PostgreSQL runs data-modifying
# WITH queries together with the main statement (PostgreSQL 15 manual §7.8.4): the entries, the
# completed blocks, the signed tree head when the batch signs one, the queue rows it integrated.
_WRITE_CTES = """
    WITH new_entries AS (
        INSERT INTO consent_ledger_entry (seq, leaf_input, subject, consent_id)
        SELECT * FROM unnest(
            CAST(:seqs AS bigint[]), CAST(:leaves AS bytea[]),
            CAST(:subjects AS varchar[]), CAST(:consent_ids AS varchar[])
        )
    ), new_nodes AS (
        INSERT INTO consent_ledger_node (block, hash)
        SELECT * FROM unnest(CAST(:blocks AS bigint[]), CAST(:hashes AS bytea[]))
    ), new_tree_head AS (
        INSERT INTO consent_signed_tree_head (tree_size, root_hash, timestamp, jws)
        SELECT CAST(:sth_tree_size AS bigint), CAST(:sth_root_hash AS bytea), CAST(:sth_timestamp AS varchar),
               CAST(:sth_jws AS text)
        WHERE CAST(:sth_jws AS text) IS NOT NULL
    )"""
_DELETE_CTE = """, integrated AS (
        DELETE FROM consent_ledger_queue WHERE id = ANY(CAST(:ids AS bigint[]))
    )"""
_UPDATE_HEAD_SQL = """
    UPDATE consent_ledger_head
    SET tree_size = :tree_size, frontier = :frontier,
        sth_tree_size = COALESCE(CAST(:sth_tree_size AS bigint), sth_tree_size),
        sth_timestamp = COALESCE(CAST(:sth_timestamp AS varchar), sth_timestamp)
    WHERE id = 1
    """
_WRITE_PARAMETERS = (
    bindparam("seqs", type_=ARRAY(BigInteger)),
    bindparam("leaves", type_=ARRAY(LargeBinary)),
    bindparam("subjects", type_=ARRAY(String)),
    bindparam("consent_ids", type_=ARRAY(String)),
    bindparam("blocks", type_=ARRAY(BigInteger)),
    bindparam("hashes", type_=ARRAY(LargeBinary)),
    bindparam("sth_root_hash", type_=LargeBinary),
    bindparam("frontier", type_=LargeBinary),
)
_INTEGRATE_POSTGRESQL = text(_WRITE_CTES + _DELETE_CTE + _UPDATE_HEAD_SQL).bindparams(
    *_WRITE_PARAMETERS, bindparam("ids", type_=ARRAY(BigInteger))
)
_WRITE_POSTGRESQL = text(_WRITE_CTES + _UPDATE_HEAD_SQL).bindparams(*_WRITE_PARAMETERS)
"""The same without the queue: a raw leaf (tests)."""
TREE_HEAD_COLUMNS = (
    LedgerTreeHead.id,
    LedgerTreeHead.tree_size,
    LedgerTreeHead.root_hash,
    LedgerTreeHead.timestamp,
    LedgerTreeHead.jws,
)
_SELECT_BLOCKS = select(LedgerNode.block, LedgerNode.hash).where(
    LedgerNode.block.in_(bindparam("blocks", expanding=True))
)
_PLACEHOLDER = bytes(merkle.HASH_SIZE)


# --- The ledger ----------------------------------------------------------------------------------


class Ledger:
    """The ledger over one unit of work. It never commits: what it writes commits with the caller's work."""

    def __init__(
        self, uow: UnitOfWork, *, keys: KeyStore, clock: Clock, policy: TreeHeadPolicy, sequencing: str = INLINE
    ) -> None:
        self.uow = uow
        self.keys = keys
        self.clock = clock
        self.policy = policy
        self.sequencing = sequencing

    @property
    def connection(self) -> Connection:
        """Return the connection of the unit of work's transaction."""
        return self.uow.session.connection()

    # -- appending -----------------------------------------------------------------------------

    def record(self, event: LedgerEvent) -> QueuedEntry:
        """Record one event in the caller's transaction, as the deployment sequences the ledger.

        ``inline`` (the default): the entry is queued and integrated at once, as :meth:`append`
        does, and the result carries its ``seq``. ``sequencer``: the entry is only queued (one
        insert, no lock on the head), and a sequencer (:func:`run_sequencer`) integrates it within
        the maximum merge delay. Either way it commits or rolls back with the caller's work.
        """
        if self.sequencing == INLINE:
            appended = self.append(event)
            assert appended.queued is not None
            return appended.queued
        return self.queue(event)

    def queue(self, event: LedgerEvent) -> QueuedEntry:
        """Queue one entry in the caller's transaction, for the sequencer to integrate (no lock on the head).

        The entry is fixed now (its time, its subject commitment, everything but its ``seq``), so
        the result can be promised to the citizen (:mod:`consent.receipts`) before it has a seq.
        """
        time = rfc3339(self.clock.now())
        if event.subject_national_id is not None and event.consent_id is not None and self.uow.dialect == "postgresql":
            return self._queue_about_citizen(event, event.subject_national_id, event.consent_id, time)
        return self._insert_queued(event, time, self._subject(event))

    def _insert_queued(self, event: LedgerEvent, time: str, subject: str | None) -> QueuedEntry:
        queued = _queued(event, time, subject)
        # Through the unit of work's statement runner: on PostgreSQL straight to the driver (decision 0012).
        queued_id = self.uow.run(
            _INSERT_QUEUED, {"body": queued.body, "subject": subject, "consent_id": event.consent_id}
        ).first()[0]
        return replace(queued, queue_id=queued_id)

    def _queue_about_citizen(self, event: LedgerEvent, national_id: str, case_id: str, time: str) -> QueuedEntry:
        """Queue an entry about a citizen on PostgreSQL: at a case's first such entry, one round trip for both rows."""
        key = self.subject_key(national_id)
        salt = secrets.token_bytes(SALT_BYTES)
        commitment = subject_commitment(national_id, salt)
        queued = _queued(event, time, commitment)
        found = self.uow.run(
            _QUEUE_NEW_CASE_POSTGRESQL,
            {"case_id": case_id, "subject_key": key, "salt": salt, "commitment": commitment, "body": queued.body},
        ).first()
        if found.queued_id is not None:  # the case's first entry about a citizen: its opening is the new one
            return replace(queued, queue_id=found.queued_id)
        if found.subject_key is None:
            # Another transaction opened the case meanwhile (see _case_commitment): read its opening.
            found = self.connection.execute(
                select(CaseOpening.subject_key, CaseOpening.commitment).where(CaseOpening.case_id == case_id)
            ).one()
        if not hmac.compare_digest(found.subject_key, key):
            raise LedgerEventInvalid(f"case {case_id!r} is about another citizen")
        return self._insert_queued(event, time, str(found.commitment))

    def append(self, event: LedgerEvent) -> AppendedEntry:
        """Append one entry in the caller's transaction; it commits or rolls back with the caller's work.

        The entry is queued and the queue integrated at once (:meth:`integrate`): the append locks
        the ledger head until that transaction ends, so concurrent appends are serialised and
        sequence numbers are contiguous. Make it the last thing a transaction does before it
        commits (after the state change it records).
        """
        return self._integrate_own(self.queue(event))

    def append_raw(
        self, leaf_input: bytes, *, subject: str | None = None, consent_id: str | None = None
    ) -> AppendedEntry:
        """Append exact bytes as the next leaf, unchecked: for tests only (known answers, older entry versions).

        ``subject`` and ``consent_id`` fill the index columns. A ledger holding a leaf that is not a
        ledger entry, or whose columns disagree with it, fails the audit.
        """
        # Not through the queue: a raw leaf has its seq in it already, so it goes in at once, on
        # the same write path as an integration (and on a schema from before the queue).
        batch = self._write(self._lock_head(), [_Leaf(leaf_input, subject, consent_id)], sign=False)
        return replace(batch.entries[0], signed_tree_head=batch.signed_tree_head)

    def _integrate_own(self, queued: QueuedEntry) -> AppendedEntry:
        # The caller's own leaf is in the queue, visible to this transaction only: integrate until
        # it is in (other transactions' committed leaves ahead of it go in first).
        while True:
            batch = self.integrate(limit=INLINE_BATCH)
            for appended in batch.entries:
                if appended.queue_id == queued.queue_id:
                    own = replace(queued, seq=appended.seq)
                    return replace(appended, queued=own, signed_tree_head=batch.signed_tree_head)
            if not batch.entries:
                raise LedgerUnavailable()  # pragma: no cover - the row inserted above is always there

    def integrate(self, limit: int = SEQUENCER_BATCH, *, sign: bool = False) -> Batch:
        """Integrate up to *limit* queued leaves, oldest first, in the caller's transaction.

        Lock the head, give the leaves contiguous seqs, write their entries and the subtrees they
        complete (:meth:`consent.merkle.CompactRange.append`), update the head and delete the queue
        rows; sign a tree head when *sign* (the sequencer signs one per batch) or the policy says
        one is due. The head stays locked until the caller's transaction ends, so two integrations
        never interleave and no leaf is integrated twice.
        """
        head = self._lock_head()
        # Read after the lock: under READ COMMITTED this statement sees every queue row committed
        # before the previous integration committed, and none that it deleted.
        rows = self.uow.run(_SELECT_QUEUED, {"limit": limit}).all()
        if not rows:
            return Batch(entries=(), signed_tree_head=None)
        seq = head.tree_size
        leaves = [
            _Leaf(_with_seq(bytes(row.body), seq + n), row.subject, row.consent_id, row.id)
            for n, row in enumerate(rows)
        ]
        return self._write(head, leaves, sign=sign)

    def _write(self, head: StoredHead, leaves: list[_Leaf], *, sign: bool) -> Batch:
        """Write leaves as the next entries after *head* (which this transaction has locked)."""
        frontier = head.frontier
        first = seq = head.tree_size
        blocks: list[int] = []
        hashes: list[bytes] = []
        appended: list[AppendedEntry] = []
        for item in leaves:
            leaf = merkle.leaf_hash(item.leaf_input)
            frontier, completed = frontier.append(leaf)
            # Every block the leaf completes ends at this leaf, smallest first: level i has 2**i leaves.
            for level, block in enumerate(completed):
                blocks.append(seq * BLOCK_LEVELS + level)
                hashes.append(block.hash)
            appended.append(AppendedEntry(seq=seq, leaf_input=item.leaf_input, leaf_hash=leaf, queue_id=item.queue_id))
            seq += 1
        signed = None
        if sign or self._tree_head_due(head.sth_tree_size, head.sth_timestamp, frontier.size):
            signed = self._sign(frontier.size, frontier.root(), head.sth_timestamp)
        ids = [item.queue_id for item in leaves if item.queue_id is not None]
        head_values: dict[str, Any] = {"tree_size": frontier.size, "frontier": b"".join(frontier.hashes)}
        connection = self.connection
        if connection.dialect.name == "postgresql":
            # Through the unit of work's statement runner: straight to psycopg, the arrays in its
            # binary format (decision 0012).
            self.uow.run(
                _INTEGRATE_POSTGRESQL if ids else _WRITE_POSTGRESQL,
                {
                    "seqs": list(range(first, seq)),
                    "leaves": [item.leaf_input for item in leaves],
                    "subjects": [item.subject for item in leaves],
                    "consent_ids": [item.consent_id for item in leaves],
                    "blocks": blocks,
                    "hashes": hashes,
                    **({"ids": ids} if ids else {}),
                    "sth_tree_size": signed.tree_size if signed else None,
                    "sth_root_hash": signed.root_hash if signed else None,
                    "sth_timestamp": signed.timestamp if signed else None,
                    "sth_jws": signed.jws if signed else None,
                    **head_values,
                },
            )
        else:
            entries = [
                {
                    "seq": first + n,
                    "leaf_input": item.leaf_input,
                    "subject": item.subject,
                    "consent_id": item.consent_id,
                }
                for n, item in enumerate(leaves)
            ]
            connection.execute(_INSERT_ENTRY, entries)
            nodes = [{"block": block, "hash": hash_} for block, hash_ in zip(blocks, hashes, strict=True)]
            connection.execute(_INSERT_NODE, nodes)
            if signed is not None:
                connection.execute(_INSERT_TREE_HEAD, _tree_head_row(signed))
                head_values.update(sth_tree_size=signed.tree_size, sth_timestamp=signed.timestamp)
            if ids:
                connection.execute(_DELETE_QUEUED, {"ids": ids})
            connection.execute(_UPDATE_HEAD, head_values)
        return Batch(entries=tuple(appended), signed_tree_head=signed)

    def next_queued(self) -> bool:
        """Return whether a committed leaf waits in the queue (a cheap read, no lock: the sequencer's poll)."""
        return self.connection.execute(_FIRST_QUEUED).first() is not None

    def _lock_head(self) -> StoredHead:
        # The caller's own changes go out first, so that the head is the last lock this
        # transaction takes: a transaction holding the head never waits for another row, and
        # two transactions cannot deadlock over the head and a consent row.
        self.uow.session.flush()
        connection = self.connection
        lock = _LOCK_HEAD_POSTGRESQL if connection.dialect.name == "postgresql" else _LOCK_HEAD_SQLITE
        return _head_from(connection.execute(lock).one_or_none())

    def subject_key(self, national_id: str) -> str:
        """Return a citizen's subject key: HMAC-SHA-256 of the national ID under the ledger secret, hex.

        It finds the citizen's cases (:class:`consent.models.CaseOpening`) and is never published
        any more; version 1 entries carry it as their subject, the same in every case.
        """
        secret = self.keys.secret(SUBJECT_KEY_NAME)
        return hmac.new(secret, normalise_national_id(national_id).encode("ascii"), hashlib.sha256).hexdigest()

    def _subject(self, event: LedgerEvent) -> str | None:
        if event.subject_from_case and event.consent_id is not None:
            return self._existing_commitment(event.consent_id)
        if event.subject_national_id is None or event.consent_id is None:
            return None
        return self._case_commitment(event.consent_id, event.subject_national_id)

    def _case_commitment(self, case_id: str, national_id: str) -> str:
        """Return the case's subject commitment, drawing its salt at the case's first entry about a citizen."""
        key = self.subject_key(national_id)
        salt = secrets.token_bytes(SALT_BYTES)
        connection = self.connection
        # The insert keeps the salt of a case that has one. Should two transactions append the
        # first entries of one case at once (consent.consents serialises a case's transitions by
        # its row lock, so they do not), the second waits here and then reads the first's salt.
        opening = {
            "case_id": case_id,
            "subject_key": key,
            "salt": salt,
            "commitment": subject_commitment(national_id, salt),
        }
        # (PostgreSQL queues an entry about a citizen with _queue_about_citizen instead.)
        connection.execute(_INSERT_OPENING_SQLITE, opening)
        found = connection.execute(
            select(CaseOpening.subject_key, CaseOpening.commitment).where(CaseOpening.case_id == case_id)
        ).one()
        if not hmac.compare_digest(found.subject_key, key):
            raise LedgerEventInvalid(f"case {case_id!r} is about another citizen")
        return str(found.commitment)

    def _existing_commitment(self, case_id: str) -> str:
        """Return the subject commitment the case already has; raise if no entry of it was about a citizen."""
        found = self.connection.execute(
            select(CaseOpening.commitment).where(CaseOpening.case_id == case_id)
        ).scalar_one_or_none()
        if found is None:
            raise LedgerEventInvalid(f"case {case_id!r} has no subject commitment: no entry of it is about a citizen")
        return str(found)

    # -- signed tree heads ---------------------------------------------------------------------

    def _tree_head_due(self, sth_tree_size: int | None, sth_timestamp: str | None, tree_size: int) -> bool:
        if sth_tree_size is None or sth_timestamp is None:
            return True
        if tree_size <= sth_tree_size:
            return False
        if tree_size - sth_tree_size >= self.policy.every_entries:
            return True
        age = self.clock.now() - parse_rfc3339(sth_timestamp)
        return age.total_seconds() >= self.policy.every_seconds

    def _sign(self, tree_size: int, root: bytes, previous_timestamp: str | None) -> SignedTreeHead:
        key = self.keys.signing_key()
        now = self.clock.now()
        if previous_timestamp is not None:
            # Tree heads are ordered by time as well as by size, even if the clock steps back.
            now = max(now, parse_rfc3339(previous_timestamp))
        timestamp = rfc3339(now)
        payload = canonical_json.dumps({"tree_size": tree_size, "root_hash": b64(root), "timestamp": timestamp})
        token = jwt.api_jws.encode(
            payload, key.private_key, algorithm=SIGNING_ALG, headers={"kid": key.kid, "typ": STH_TYP}
        )
        return SignedTreeHead(tree_size=tree_size, root_hash=root, timestamp=timestamp, jws=token)

    def sign_tree_head(self) -> SignedTreeHead:
        """Sign the current tree head and store it."""
        return self._sign_locked(self._lock_head())

    def sign_tree_head_if_due(self) -> SignedTreeHead | None:
        """Sign and store the current tree head when the policy says one is due (or none exists); else return None."""
        head = self._lock_head()
        if not self._tree_head_due(head.sth_tree_size, head.sth_timestamp, head.tree_size):
            return None
        return self._sign_locked(head)

    def _sign_locked(self, head: StoredHead) -> SignedTreeHead:
        signed = self._sign(head.tree_size, head.frontier.root(), head.sth_timestamp)
        connection = self.connection
        connection.execute(_INSERT_TREE_HEAD, _tree_head_row(signed))
        connection.execute(_UPDATE_HEAD, {"sth_tree_size": signed.tree_size, "sth_timestamp": signed.timestamp})
        return signed

    def signed_tree_head_covering(self, seq: int) -> SignedTreeHead:
        """Return a signed tree head that includes entry ``seq``, signing one now if none does yet."""
        latest = self.latest_signed_tree_head()
        if latest is not None and latest.tree_size > seq:
            return latest
        if seq < 0 or seq >= read_head(self.connection).tree_size:
            raise LedgerQueryInvalid(f"the ledger has no entry {seq}")
        return self.sign_tree_head()

    def latest_signed_tree_head(self) -> SignedTreeHead | None:
        """Return the newest signed tree head, or None before the first."""
        row = self.connection.execute(
            select(*TREE_HEAD_COLUMNS).order_by(LedgerTreeHead.id.desc()).limit(1)
        ).one_or_none()
        return None if row is None else _signed_tree_head(row)

    def signed_tree_heads(self, start: int = 0, limit: int = MAX_ENTRIES_PER_REQUEST) -> list[SignedTreeHead]:
        """Return stored signed tree heads, oldest first, from position ``start``."""
        rows = self.connection.execute(
            select(*TREE_HEAD_COLUMNS).order_by(LedgerTreeHead.id).offset(start).limit(limit)
        )
        return [_signed_tree_head(row) for row in rows]

    # -- reading -------------------------------------------------------------------------------

    def tree_head(self) -> TreeHead:
        """Return the current size and root, as this transaction sees them."""
        head = read_head(self.connection)
        return TreeHead(head.tree_size, head.frontier.root())

    def entries(self, start: int, end: int) -> list[StoredEntry]:
        """Return entries ``start`` to ``end`` inclusive (at most 1,000; ``end`` is cut at the last entry)."""
        if start < 0 or end < start:
            raise LedgerQueryInvalid(f"start ({start}) must be at least 0 and at most end ({end})")
        if end - start + 1 > MAX_ENTRIES_PER_REQUEST:
            raise LedgerQueryInvalid(f"at most {MAX_ENTRIES_PER_REQUEST} entries per request, not {end - start + 1}")
        tree_size = read_head(self.connection).tree_size
        if start >= tree_size:
            raise LedgerQueryInvalid(f"the ledger has {tree_size} entries: there is no entry {start}")
        end = min(end, tree_size - 1)
        rows = self.connection.execute(
            select(LedgerEntry.seq, LedgerEntry.leaf_input)
            .where(LedgerEntry.seq >= start, LedgerEntry.seq <= end)
            .order_by(LedgerEntry.seq)
        )
        return [StoredEntry(row.seq, bytes(row.leaf_input)) for row in rows]

    def entry(self, seq: int) -> StoredEntry:
        """Return entry ``seq``."""
        found = self.entries(seq, seq)
        if not found or found[0].seq != seq:
            raise LedgerVerificationFailed(f"seq {seq}", "the entry is missing")
        return found[0]

    def inclusion_proof(self, seq: int, tree_size: int) -> InclusionProof:
        """Return the audit path of entry ``seq`` in the tree of ``tree_size`` entries (RFC 9162 §2.1.3.1)."""
        current = read_head(self.connection).tree_size
        if tree_size < 1 or tree_size > current:
            raise LedgerQueryInvalid(
                f"tree_size must be between 1 and the current tree size {current}, not {tree_size}"
            )
        if seq < 0 or seq >= tree_size:
            raise LedgerQueryInvalid(f"seq must be between 0 and tree_size - 1 ({tree_size - 1}), not {seq}")

        def prove(subtree: merkle.SubtreeLookup) -> tuple[bytes, list[bytes]]:
            return subtree(seq, 1), merkle.inclusion_proof(seq, tree_size, subtree)

        leaf, path = with_blocks(self.connection, prove)
        return InclusionProof(seq=seq, tree_size=tree_size, leaf_hash=leaf, audit_path=tuple(path))

    def consistency_proof(self, first: int, second: int) -> ConsistencyProof:
        """Return the proof that the tree of ``first`` entries is a prefix of that of ``second`` (RFC 9162 §2.1.4.1)."""
        current = read_head(self.connection).tree_size
        if first < 0 or first > second:
            raise LedgerQueryInvalid(f"first ({first}) must be at least 0 and at most second ({second})")
        if second > current:
            raise LedgerQueryInvalid(f"second ({second}) is beyond the current tree size {current}")
        path = with_blocks(self.connection, lambda subtree: merkle.consistency_proof(first, second, subtree))
        return ConsistencyProof(first=first, second=second, consistency_path=tuple(path))

    def root_at(self, tree_size: int) -> bytes:
        """Return the root of the tree of the first ``tree_size`` entries (RFC 9162 §2.1.1 MTH)."""
        current = read_head(self.connection).tree_size
        if tree_size < 0 or tree_size > current:
            raise LedgerQueryInvalid(
                f"tree_size must be between 0 and the current tree size {current}, not {tree_size}"
            )
        if tree_size == 0:
            return merkle.EMPTY_ROOT
        return with_blocks(self.connection, lambda subtree: merkle.range_hash(0, tree_size, subtree))

    def public_keys(self) -> dict[str, Any]:
        """Return the platform's verification keys by kid, active and retired (the JWKS)."""
        return {jwk["kid"]: jwt.PyJWK(jwk).key for jwk in self.keys.jwks()["keys"]}


# --- Storage helpers shared with the audit -------------------------------------------------------


def read_head(connection: Connection) -> StoredHead:
    """Read the head row, without locking it."""
    return _head_from(connection.execute(_SELECT_HEAD).one_or_none())


def _head_from(row: Any) -> StoredHead:
    if row is None:
        raise LedgerUnavailable()
    frontier = bytes(row.frontier)
    hashes = tuple(frontier[i : i + merkle.HASH_SIZE] for i in range(0, len(frontier), merkle.HASH_SIZE))
    try:
        compact = merkle.CompactRange(row.tree_size, hashes)
    except ValueError as exc:
        raise LedgerVerificationFailed("tree head", f"the stored frontier does not fit the tree size: {exc}") from None
    return StoredHead(row.tree_size, compact, row.sth_tree_size, row.sth_timestamp)


def with_blocks(connection: Connection, compute: Callable[[merkle.SubtreeLookup], T]) -> T:
    """Run a proof or root computation over the stored blocks, fetching every block it reads in one query."""
    # Which blocks a proof or a root reads depends only on the indexes, never on the hashes, so
    # a dry run with placeholders names them all; one query then fetches the O(log n) rows
    # instead of one round trip per block.
    wanted: set[tuple[int, int]] = set()

    def record(start: int, size: int) -> bytes:
        wanted.add((start, size))
        return _PLACEHOLDER

    compute(record)
    blocks = fetch_blocks(connection, wanted)

    def lookup(start: int, size: int) -> bytes:
        return blocks[start, size]

    return compute(lookup)


def fetch_blocks(connection: Connection, wanted: Iterable[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
    """Return the stored hashes of the blocks ``(start, size)``; raise naming the first one missing."""
    keys = {block_key(start, size): (start, size) for start, size in wanted}
    if not keys:
        return {}
    rows = connection.execute(_SELECT_BLOCKS, {"blocks": list(keys)})
    blocks = {keys[row.block]: bytes(row.hash) for row in rows}
    missing = sorted(block for block in keys.values() if block not in blocks)
    if missing:
        start, size = missing[0]
        raise LedgerVerificationFailed(
            f"seq {start + size - 1}", f"the stored hash of subtree [{start}, {start + size}) is missing"
        )
    return blocks


def block_key(start: int, size: int) -> int:
    """Return the stored key of block ``(start, size)``: its last leaf times 64, plus its level."""
    return (start + size - 1) * BLOCK_LEVELS + size.bit_length() - 1


def block_of(key: int) -> tuple[int, int]:
    """Return the block ``(start, size)`` that a stored key names."""
    last, level = divmod(key, BLOCK_LEVELS)
    size = 1 << level
    return last - size + 1, size


def _tree_head_row(signed: SignedTreeHead) -> dict[str, Any]:
    return {
        "tree_size": signed.tree_size,
        "root_hash": signed.root_hash,
        "timestamp": signed.timestamp,
        "jws": signed.jws,
    }


def _signed_tree_head(row: Any) -> SignedTreeHead:
    return SignedTreeHead(tree_size=row.tree_size, root_hash=bytes(row.root_hash), timestamp=row.timestamp, jws=row.jws)


def check_tree_head_signature(jws: str, public_keys: Mapping[str, Any]) -> dict[str, Any]:
    """Verify a signed tree head's JWS against the platform keys; return its payload or raise ValueError."""
    try:
        header = jwt.get_unverified_header(jws)
    except jwt.InvalidTokenError:
        raise ValueError("the JWS is malformed") from None
    if header.get("alg") != SIGNING_ALG or header.get("typ") != STH_TYP:
        raise ValueError("the JWS header is not that of an ES256 signed tree head")
    key = public_keys.get(str(header.get("kid", "")))
    if key is None:
        raise ValueError(f"the JWS is signed by an unknown key {header.get('kid')!r}")
    try:
        signed = jwt.api_jws.decode_complete(jws, key, algorithms=[SIGNING_ALG])
    except jwt.InvalidTokenError:
        raise ValueError("the JWS signature does not verify") from None
    try:
        payload = json.loads(signed["payload"])
    except ValueError:
        raise ValueError("the JWS payload is not JSON") from None
    if not isinstance(payload, dict) or set(payload) != {"tree_size", "root_hash", "timestamp"}:
        raise ValueError("the JWS payload is not {tree_size, root_hash, timestamp}")
    return payload


# --- Services for the API and the command line (these own their transaction) ---------------------


def ledger(uow: UnitOfWork) -> Ledger:
    """Return the current application's ledger over *uow*."""
    settings = current_app.config["MYDATA_SETTINGS"]
    policy = TreeHeadPolicy(settings.ledger_sth_every_entries, settings.ledger_sth_every_seconds)
    return Ledger(uow, keys=key_store(uow), clock=clock(), policy=policy, sequencing=settings.ledger_sequencing)


def newest_tree_head(uow: UnitOfWork) -> SignedTreeHead:
    """Return the newest signed tree head, writing nothing (a read replica can answer it).

    Raise :class:`NoSignedTreeHead` before the first: appends sign them, and `mydata ledger sign`.
    """
    latest = ledger(uow).latest_signed_tree_head()
    if latest is None:
        raise NoSignedTreeHead()
    return latest


def sign_tree_head(uow: UnitOfWork, *, only_if_due: bool = False) -> SignedTreeHead | None:
    """Sign the current tree head now and commit it; with ``only_if_due``, only when the policy says one is due.

    Return the new signed tree head, or None when nothing was due.
    """
    log = ledger(uow)
    signed = log.sign_tree_head_if_due() if only_if_due else log.sign_tree_head()
    uow.commit()
    return signed


def seed_first_tree_head(uow: UnitOfWork) -> None:
    """Sign the sandbox ledger's tree head when one is due (on a fresh sandbox, its first one)."""
    sign_tree_head(uow, only_if_due=True)
