"""Consent receipts (同意紀錄收據): what the citizen agreed to, signed by the platform, provably in the ledger.

A receipt is a compact JWS (ES256, platform kid, ``typ`` ``consent-receipt+jwt``) in the spirit of
the Kantara Consent Receipt v1.1 and ISO/IEC TS 27560: receipt id (``consentReceiptID``), time
(``consentTimestamp``), jurisdiction ``TW``, controller (``piiControllers``: the relying party's
organisation), purpose, datasets (``piiCategory``), retention (``termination``) and the subject
as the ledger entry records it (``piiPrincipalId``: the consent's subject commitment, never the ID
number). It also carries the ledger seq of
the ``consent.granted`` entry and that entry's inclusion proof (RFC 9162 §2.1.3) against a signed
tree head, so the citizen can check, now or years later, that the platform's public log records
this consent and was never rewritten since.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from dataclasses import dataclass
from typing import Any

import jwt
from flask import current_app

from consent import merkle
from consent.interfaces import LedgerQueryInvalid, LedgerVerificationFailed, ReceiptInvalid, ReceiptNotIssuable
from consent.ledger import (
    SIGNING_ALG,
    Ledger,
    b64,
    check_tree_head_signature,
    ledger,
    parse_rfc3339,
    rfc3339,
)
from mydata.db import UnitOfWork

RECEIPT_TYP = "consent-receipt+jwt"
"""JWS ``typ`` of a receipt (RFC 8725 §3.11): no other platform token passes as a receipt."""

RECEIPT_VERSION = "mydata-consent-receipt/1"
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
    ledger_seq: int
    """Sequence number of the ``consent.granted`` ledger entry of this consent."""


@dataclass(frozen=True)
class VerifiedReceipt:
    """A receipt that verified: its claims, and the signed tree head it is proven in today."""

    claims: dict[str, Any]
    seq: int
    tree_size: int
    """Size of the signed tree head the receipt carries its proof against."""
    current_tree_size: int
    """Size of the newest signed tree head, shown consistent with the receipt's."""


def issue_receipt(uow: UnitOfWork, fields: ReceiptFields) -> str:
    """Sign a consent receipt with its ledger inclusion proof; the caller commits (a tree head may be signed)."""
    log = ledger(uow)
    try:
        entry = log.entry(fields.ledger_seq).entry
    except (LedgerQueryInvalid, LedgerVerificationFailed):
        raise ReceiptNotIssuable(f"the ledger has no entry {fields.ledger_seq}") from None
    expected = {
        "event": GRANTED,
        "consent_id": fields.consent_id,
        "service": fields.service,
        "datasets": sorted(fields.datasets),
    }
    recorded = {name: entry.get(name) for name in expected}
    if recorded != expected or not isinstance(entry.get("subject"), str):
        raise ReceiptNotIssuable(f"ledger entry {fields.ledger_seq} does not record this consent being granted")
    signed_tree_head = log.signed_tree_head_covering(fields.ledger_seq)
    proof = log.inclusion_proof(fields.ledger_seq, signed_tree_head.tree_size)
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
            "seq": proof.seq,
            "leaf_hash": b64(proof.leaf_hash),
            "tree_size": proof.tree_size,
            "audit_path": [b64(node) for node in proof.audit_path],
            "signed_tree_head": {**signed_tree_head.payload(), "jws": signed_tree_head.jws},
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
    if claims["version"] != RECEIPT_VERSION or claims["jurisdiction"] != JURISDICTION:
        raise ReceiptInvalid(f"the receipt is not a {RECEIPT_VERSION} receipt under jurisdiction {JURISDICTION}")
    if not all(isinstance(d, str) for d in claims["datasets"]):
        raise ReceiptInvalid("the receipt's datasets are not identifiers")
    try:
        parse_rfc3339(claims["consent_time"])
    except ValueError:
        raise ReceiptInvalid("the receipt's consent_time is not an RFC 3339 time") from None
    return claims


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
    entry = stored.entry
    recorded = {name: entry.get(name) for name in ("event", "consent_id", "service", "datasets", "subject")}
    stated = {
        "event": GRANTED,
        "consent_id": claims["consent_id"],
        "service": claims["service"],
        "datasets": sorted(claims["datasets"]),
        "subject": claims["subject"],
    }
    if recorded != stated:
        raise ReceiptInvalid(f"the receipt's fields differ from ledger entry {seq}")


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
