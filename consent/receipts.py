"""Consent receipts (同意紀錄收據): what the citizen agreed to, signed by the platform, provably in the ledger.

A receipt is a compact JWS (ES256, platform kid, ``typ`` ``consent-receipt+jwt``) in the spirit of
the Kantara Consent Receipt v1.1 and ISO/IEC TS 27560: receipt id (``consentReceiptID``), time
(``consentTimestamp``), jurisdiction ``TW``, controller (``piiControllers``: the relying party's
organisation), purpose, datasets (``piiCategory``), retention (``termination``) and the subject
as the ledger entry records it (``piiPrincipalId``: the consent's subject commitment, never the ID
number).

It also carries the ledger's signed promise of inclusion of the ``consent.granted`` entry (version
2, docs/decisions/0011), as a Certificate Transparency SCT does: the SHA-256 of the entry without
its seq (:attr:`consent.ledger.QueuedEntry.entry_hash`), its time and the maximum merge delay. The
receipt is signed once, when the consent is granted, without waiting for the entry's seq or a signed
tree head. Once the entry is integrated (within the maximum merge delay while the sequencer runs),
:func:`receipt_proof` finds it and gives its inclusion proof (RFC 9162 §2.1.3) against a signed
tree head, so the citizen can check, now or years later, that the platform's public log records
this consent and was never rewritten since. Version 1 receipts (before the sequencer) carry that
proof inside them; they still verify.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from typing import Any

import jwt
from flask import current_app
from sqlalchemy import select

from consent import merkle
from consent.interfaces import LedgerQueryInvalid, LedgerVerificationFailed, ReceiptInvalid, ReceiptNotIssuable
from consent.ledger import (
    MAX_MERGE_DELAY_SECONDS,
    SIGNING_ALG,
    Ledger,
    QueuedEntry,
    SignedTreeHead,
    b64,
    check_tree_head_signature,
    entry_hash_of,
    ledger,
    parse_rfc3339,
    rfc3339,
)
from consent.models import LedgerEntry, LedgerQueued
from mydata.db import UnitOfWork

RECEIPT_TYP = "consent-receipt+jwt"
"""JWS ``typ`` of a receipt (RFC 8725 §3.11): no other platform token passes as a receipt."""

RECEIPT_VERSION = "mydata-consent-receipt/2"
"""Receipts with a promise of inclusion; the proof comes from :func:`receipt_proof`."""
RECEIPT_VERSION_1 = "mydata-consent-receipt/1"
"""Receipts with their inclusion proof inside (until the sequencer): still verified."""
JURISDICTION = "TW"
GRANTED = "consent.granted"


@dataclass(frozen=True)
class ReceiptFields:
    """What a receipt states about one consent (the consent model arrives in a later issue)."""

    receipt_id: str
    consent_id: str
    consent_time: dt.datetime
    """When the citizen consented."""
    controller_id: str
    """The relying party's organisation: the controller that receives the data."""
    controller_name: str
    service: str
    purpose: str
    """The purpose exactly as the consent screen showed it."""
    datasets: tuple[str, ...]
    retention: str
    """How long the relying party promised to keep the data, e.g. ``P1Y`` (ISO 8601) or its own words."""
    ledger_entry: QueuedEntry
    """The ``consent.granted`` ledger entry of this consent, as it was queued (in the same transaction)."""


@dataclass(frozen=True)
class ReceiptProof:
    """Where a receipt's entry is in the ledger: its seq, and its inclusion proof against a signed tree head."""

    seq: int
    leaf_hash: bytes
    audit_path: tuple[bytes, ...]
    signed_tree_head: SignedTreeHead

    def as_json(self) -> dict[str, Any]:
        """Return the proof as the receipt API shows it (hashes in base64, as the ledger API gives them)."""
        return {
            "seq": self.seq,
            "leaf_hash": b64(self.leaf_hash),
            "tree_size": self.signed_tree_head.tree_size,
            "audit_path": [b64(node) for node in self.audit_path],
            "signed_tree_head": {**self.signed_tree_head.payload(), "jws": self.signed_tree_head.jws},
        }


@dataclass(frozen=True)
class VerifiedReceipt:
    """A receipt that verified: its claims, and the signed tree head it is proven in today.

    A version 2 receipt whose entry the sequencer has not integrated yet verifies as *pending*:
    its signature and its promise hold, it has no seq and no proof yet.
    """

    claims: dict[str, Any]
    seq: int | None
    tree_size: int | None
    """Size of the signed tree head the receipt's entry is proven in."""
    current_tree_size: int | None
    """Size of the newest signed tree head, shown consistent with the receipt's."""
    proof: ReceiptProof | None = None
    pending: bool = False
    """The entry is still queued: promised, not yet integrated."""
    overdue: bool = False
    """Pending beyond the maximum merge delay: the ledger is late on its promise."""


def issue_receipt(uow: UnitOfWork, fields: ReceiptFields) -> str:
    """Sign a consent receipt with the ledger's promise to include its grant entry (one signature, no tree head)."""
    log = ledger(uow)
    queued = fields.ledger_entry
    try:
        entry = json.loads(queued.body)
    except ValueError:
        entry = None
    expected = {
        "event": GRANTED,
        "consent_id": fields.consent_id,
        "service": fields.service,
        "datasets": sorted(fields.datasets),
    }
    recorded = {name: entry.get(name) for name in expected} if isinstance(entry, dict) else {}
    if recorded != expected or not isinstance(entry, dict) or not isinstance(entry.get("subject"), str):
        raise ReceiptNotIssuable("the ledger entry does not record this consent being granted")
    claims = {
        "iss": current_app.config["MYDATA_ISSUER"],
        "iat": int(log.clock.now().timestamp()),
        "version": RECEIPT_VERSION,
        "receipt_id": fields.receipt_id,
        "jurisdiction": JURISDICTION,
        "consent_time": rfc3339(fields.consent_time),
        "controller": {"id": fields.controller_id, "name": fields.controller_name},
        "subject": entry["subject"],
        "consent_id": fields.consent_id,
        "service": fields.service,
        "purpose": fields.purpose,
        "datasets": sorted(fields.datasets),
        "retention": fields.retention,
        "ledger": {
            "entry_hash": b64(queued.entry_hash),
            "time": queued.time,
            "max_merge_delay": MAX_MERGE_DELAY_SECONDS,
        },
    }
    key = log.keys.signing_key()
    return jwt.encode(claims, key.private_key, algorithm=SIGNING_ALG, headers={"kid": key.kid, "typ": RECEIPT_TYP})


def verify_receipt(uow: UnitOfWork, token: str) -> VerifiedReceipt:
    """Verify a receipt: its signature, its fields, its inclusion proof, and the ledger still holding it today.

    Raise :class:`ReceiptInvalid` naming the first thing that does not hold.
    """
    log = ledger(uow)
    keys = log.public_keys()
    claims = _signed_claims(token, keys)
    if claims["version"] == RECEIPT_VERSION:
        return _verify_promise(log, claims)
    proof = _proof(claims)
    tree_head = proof["signed_tree_head"]
    try:
        payload = check_tree_head_signature(tree_head["jws"], keys)
    except ValueError as exc:
        raise ReceiptInvalid(f"the receipt's signed tree head does not verify: {exc}") from None
    if payload != {name: tree_head[name] for name in ("tree_size", "root_hash", "timestamp")}:
        raise ReceiptInvalid("the receipt's signed tree head fields differ from the signed ones")
    if payload["tree_size"] != proof["tree_size"]:
        raise ReceiptInvalid("the inclusion proof is not for the receipt's signed tree head")
    root = _hash(payload["root_hash"], "signed tree head root_hash")
    seq, tree_size, leaf = proof["seq"], proof["tree_size"], proof["leaf_hash"]
    # RFC 9162 §2.1.3.2: the audit path must lead from this leaf to the signed root.
    if not merkle.verify_inclusion(leaf, seq, tree_size, proof["audit_path"], root):
        raise ReceiptInvalid("the inclusion proof does not lead to the signed root")
    _check_ledger_entry(log, claims, seq, leaf)
    current = _check_still_in_log(log, keys, tree_size, root)
    return VerifiedReceipt(claims=claims, seq=seq, tree_size=tree_size, current_tree_size=current)


def _signed_claims(token: str, keys: dict[str, Any]) -> dict[str, Any]:
    try:
        header = jwt.get_unverified_header(token)
    except jwt.InvalidTokenError:
        raise ReceiptInvalid("the receipt is not a compact JWS") from None
    if header.get("alg") != SIGNING_ALG or header.get("typ") != RECEIPT_TYP:
        raise ReceiptInvalid("the receipt is not an ES256 consent receipt")
    key = keys.get(str(header.get("kid", "")))
    if key is None:
        raise ReceiptInvalid(f"the receipt is signed by a key the platform never published: {header.get('kid')!r}")
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=[SIGNING_ALG],
            issuer=current_app.config["MYDATA_ISSUER"],
            options={"require": ["iss", "iat"], "verify_iat": False},
        )
    except jwt.InvalidSignatureError:
        raise ReceiptInvalid("the receipt's signature does not verify") from None
    except jwt.InvalidTokenError as exc:
        raise ReceiptInvalid(f"the receipt's claims are invalid: {exc}") from None
    expected_types = {
        "version": str,
        "receipt_id": str,
        "jurisdiction": str,
        "consent_time": str,
        "controller": dict,
        "subject": str,
        "consent_id": str,
        "service": str,
        "purpose": str,
        "datasets": list,
        "retention": str,
        "ledger": dict,
    }
    for name, kind in expected_types.items():
        if not isinstance(claims.get(name), kind):
            raise ReceiptInvalid(f"the receipt's {name} is missing or not a {kind.__name__}")
    if claims["version"] not in (RECEIPT_VERSION, RECEIPT_VERSION_1) or claims["jurisdiction"] != JURISDICTION:
        raise ReceiptInvalid(f"the receipt is not a {RECEIPT_VERSION} receipt under jurisdiction {JURISDICTION}")
    if not all(isinstance(d, str) for d in claims["datasets"]):
        raise ReceiptInvalid("the receipt's datasets are not identifiers")
    try:
        parse_rfc3339(claims["consent_time"])
    except ValueError:
        raise ReceiptInvalid("the receipt's consent_time is not an RFC 3339 time") from None
    return claims


def _verify_promise(log: Ledger, claims: dict[str, Any]) -> VerifiedReceipt:
    """Verify a version 2 receipt: its promise names an entry of this consent, integrated (with a proof) or queued."""
    entry_hash, time = _promise(claims)
    proof = _find_proof(log, claims, entry_hash, time)
    if proof is not None:
        tree_size = proof.signed_tree_head.tree_size
        return VerifiedReceipt(claims=claims, seq=proof.seq, tree_size=tree_size, current_tree_size=tree_size,
                               proof=proof)  # fmt: skip
    queued = log.connection.execute(select(LedgerQueued.body).where(LedgerQueued.consent_id == claims["consent_id"]))
    body = next((bytes(row.body) for row in queued if hashlib.sha256(bytes(row.body)).digest() == entry_hash), None)
    if body is None:
        raise ReceiptInvalid("the ledger holds no entry with the receipt's entry hash")
    entry = json.loads(body)
    if entry.get("time") != time:
        raise ReceiptInvalid("the receipt's promise time differs from its queued entry")
    _check_entry_fields(entry, claims, None)
    overdue = (log.clock.now() - parse_rfc3339(time)).total_seconds() > MAX_MERGE_DELAY_SECONDS
    current = log.latest_signed_tree_head()
    size = current.tree_size if current else None
    return VerifiedReceipt(claims=claims, seq=None, tree_size=None, current_tree_size=size, pending=True,
                           overdue=overdue)  # fmt: skip


def _promise(claims: dict[str, Any]) -> tuple[bytes, str]:
    promise = claims["ledger"]
    time = promise.get("time")
    if not isinstance(time, str) or not isinstance(promise.get("max_merge_delay"), int):
        raise ReceiptInvalid("the receipt's promise of inclusion is incomplete")
    try:
        parse_rfc3339(time)
    except ValueError:
        raise ReceiptInvalid("the receipt's promise time is not an RFC 3339 time") from None
    return _hash(promise.get("entry_hash"), "entry_hash"), time


def _find_proof(log: Ledger, claims: dict[str, Any], entry_hash: bytes, time: str) -> ReceiptProof | None:
    """Return the inclusion proof of the integrated entry the promise names, or None while it is queued."""
    rows = log.connection.execute(
        select(LedgerEntry.seq, LedgerEntry.leaf_input)
        .where(LedgerEntry.consent_id == claims["consent_id"])
        .order_by(LedgerEntry.seq)
    )
    for row in rows:
        leaf_input = bytes(row.leaf_input)
        try:
            same = entry_hash_of(leaf_input) == entry_hash
        except ValueError:
            continue
        if not same:
            continue
        stored = log.entry(row.seq)
        _check_entry_fields(stored.entry, claims, row.seq)
        if stored.entry.get("time") != time:
            raise ReceiptInvalid(f"the receipt's promise time differs from ledger entry {row.seq}")
        # The newest signed tree head, signed now if none covers the entry yet (inline sequencing
        # signs by the policy; the sequencer signs one per batch, so it always covers).
        signed = log.signed_tree_head_covering(row.seq)
        proof = log.inclusion_proof(row.seq, signed.tree_size)
        if not merkle.verify_inclusion(proof.leaf_hash, row.seq, signed.tree_size, proof.audit_path, signed.root_hash):
            raise ReceiptInvalid(f"ledger entry {row.seq} is not in the signed tree head")  # pragma: no cover
        return ReceiptProof(
            seq=row.seq, leaf_hash=proof.leaf_hash, audit_path=proof.audit_path, signed_tree_head=signed
        )
    return None


def receipt_proof(uow: UnitOfWork, token: str) -> ReceiptProof | None:
    """Return the inclusion proof of a receipt's ledger entry, once integrated; None while it is queued.

    Raise :class:`ReceiptInvalid` when the receipt does not verify. The caller commits (a tree head
    covering the entry may be signed now, under inline sequencing).
    """
    verified = verify_receipt(uow, token)
    if verified.proof is not None or verified.pending:
        return verified.proof
    # A version 1 receipt carries its proof; give it as a version 2 one would be given.
    proof = verified.claims["ledger"]
    tree_head = proof["signed_tree_head"]
    signed = SignedTreeHead(
        tree_size=tree_head["tree_size"],
        root_hash=base64.b64decode(tree_head["root_hash"]),
        timestamp=tree_head["timestamp"],
        jws=tree_head["jws"],
    )
    return ReceiptProof(
        seq=proof["seq"],
        leaf_hash=base64.b64decode(proof["leaf_hash"]),
        audit_path=tuple(base64.b64decode(node) for node in proof["audit_path"]),
        signed_tree_head=signed,
    )


def _check_entry_fields(entry: dict[str, Any], claims: dict[str, Any], seq: int | None) -> None:
    recorded = {name: entry.get(name) for name in ("event", "consent_id", "service", "datasets", "subject")}
    stated = {
        "event": GRANTED,
        "consent_id": claims["consent_id"],
        "service": claims["service"],
        "datasets": sorted(claims["datasets"]),
        "subject": claims["subject"],
    }
    if recorded != stated:
        where = "its queued ledger entry" if seq is None else f"ledger entry {seq}"
        raise ReceiptInvalid(f"the receipt's fields differ from {where}")


def _proof(claims: dict[str, Any]) -> dict[str, Any]:
    proof = claims["ledger"]
    tree_head = proof.get("signed_tree_head")
    ints = (proof.get("seq"), proof.get("tree_size"))
    if not all(isinstance(i, int) and not isinstance(i, bool) for i in ints) or not isinstance(tree_head, dict):
        raise ReceiptInvalid("the receipt's ledger proof is incomplete")
    if not isinstance(tree_head.get("jws"), str) or not isinstance(proof.get("audit_path"), list):
        raise ReceiptInvalid("the receipt's ledger proof is incomplete")
    return {
        "seq": proof["seq"],
        "tree_size": proof["tree_size"],
        "leaf_hash": _hash(proof.get("leaf_hash"), "leaf_hash"),
        "audit_path": [_hash(node, "audit_path") for node in proof["audit_path"]],
        "signed_tree_head": tree_head,
    }


def _hash(value: Any, name: str) -> bytes:
    if not isinstance(value, str):
        raise ReceiptInvalid(f"the receipt's {name} is not base64")
    try:
        decoded = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ReceiptInvalid(f"the receipt's {name} is not base64") from None
    if len(decoded) != merkle.HASH_SIZE:
        raise ReceiptInvalid(f"the receipt's {name} is not a SHA-256 hash")
    return decoded


def _check_ledger_entry(log: Ledger, claims: dict[str, Any], seq: int, leaf: bytes) -> None:
    """Check that the entry the proof is about is this consent's grant, as the ledger stores it."""
    try:
        stored = log.entry(seq)
    except (LedgerQueryInvalid, LedgerVerificationFailed):
        raise ReceiptInvalid(f"the ledger has no entry {seq}") from None
    if merkle.leaf_hash(stored.leaf_input) != leaf:
        raise ReceiptInvalid(f"the receipt's leaf hash is not that of ledger entry {seq}")
    _check_entry_fields(stored.entry, claims, seq)


def _check_still_in_log(log: Ledger, keys: dict[str, Any], tree_size: int, root: bytes) -> int:
    """Check the receipt's tree is a prefix of today's signed tree (RFC 9162 §2.1.4); return today's size."""
    current = log.latest_signed_tree_head()
    if current is None or current.tree_size < tree_size:
        # The receipt's tree head is newer than any stored one: compare with the stored tree itself.
        try:
            same = log.root_at(tree_size) == root
        except LedgerQueryInvalid:
            same = False
        if not same:
            raise ReceiptInvalid("the ledger does not contain the receipt's tree")
        return tree_size
    try:
        check_tree_head_signature(current.jws, keys)
    except ValueError as exc:
        raise ReceiptInvalid(f"the newest signed tree head does not verify: {exc}") from None
    path = log.consistency_proof(tree_size, current.tree_size).consistency_path
    if not merkle.verify_consistency(tree_size, current.tree_size, root, current.root_hash, path):
        raise ReceiptInvalid("the ledger was rewritten since the receipt's signed tree head")
    return current.tree_size
