"""Consent receipts (``consent.receipts``): they verify, and an edited or forged one does not.

Version 2 receipts carry the ledger's signed promise of inclusion and get their proof once the entry
is integrated; version 1 receipts (their proof inside, built here as the platform used to) still verify.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from collections.abc import Callable
from typing import Any

import jwt
import pytest
import rfc8785
from cryptography.hazmat.primitives.asymmetric import ec
from flask import Flask, current_app
from sqlalchemy import select

from consent import merkle
from consent.interfaces import ReceiptInvalid, ReceiptNotIssuable
from consent.ledger import Ledger, LedgerEvent, QueuedEntry, b64, ledger, rfc3339
from consent.models import LedgerTreeHead
from consent.receipts import (
    RECEIPT_TYP,
    RECEIPT_VERSION_1,
    ReceiptFields,
    issue_receipt,
    receipt_proof,
    verify_receipt,
)
from mydata.clock import FrozenClock
from mydata.db import UnitOfWork
from mydata.keys import key_store

pytestmark = pytest.mark.db

EventFactory = Callable[..., LedgerEvent]


@pytest.fixture
def fields(log: Ledger, uow: UnitOfWork, granted: EventFactory, clock: FrozenClock) -> ReceiptFields:
    """Record a few events and a consent grant; return the receipt fields of that consent."""
    for n in range(5):
        log.append(granted(n, citizen="B223456782"))
    appended = log.append(granted(42))
    assert appended.seq == 5
    assert appended.queued is not None
    uow.commit()
    return ReceiptFields(
        receipt_id="rcpt-0001",
        consent_id="consent-000042",
        consent_time=clock.now(),
        controller_id="sandbox-bank",
        controller_name="沙盒銀行",
        service="sandbox-bank.credit-card",
        purpose="信用卡線上申辦：核對身分與財力",
        datasets=("tax.income", "household.registration"),
        retention="P1Y",
        ledger_entry=appended.queued,
    )


def issue_receipt_v1(uow: UnitOfWork, fields: ReceiptFields, seq: int = 5) -> str:
    """Sign a version 1 receipt as the platform did before the sequencer: the proof inside, a tree head for it."""
    log = ledger(uow)
    signed = log.signed_tree_head_covering(seq)
    proof = log.inclusion_proof(seq, signed.tree_size)
    claims = {
        "iss": current_app.config["MYDATA_ISSUER"], "iat": int(log.clock.now().timestamp()),
        "version": RECEIPT_VERSION_1,
        "receipt_id": fields.receipt_id, "jurisdiction": "TW", "consent_time": rfc3339(fields.consent_time),
        "controller": {"id": fields.controller_id, "name": fields.controller_name},
        "subject": log.entry(seq).entry["subject"], "consent_id": fields.consent_id, "service": fields.service,
        "purpose": fields.purpose, "datasets": sorted(fields.datasets), "retention": fields.retention,
        "ledger": {
            "seq": proof.seq, "leaf_hash": b64(proof.leaf_hash), "tree_size": proof.tree_size,
            "audit_path": [b64(node) for node in proof.audit_path],
            "signed_tree_head": {**signed.payload(), "jws": signed.jws},
        },
    }  # fmt: skip
    return _resign(uow, claims)


def tree_heads(uow: UnitOfWork) -> int:
    return len(uow.session.scalars(select(LedgerTreeHead.id)).all())


def _claims(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


def _resign(uow: UnitOfWork, claims: dict[str, Any], key: ec.EllipticCurvePrivateKey | None = None) -> str:
    """Sign edited claims with the platform's key (or another key under the platform's kid)."""
    platform = key_store(uow).signing_key()
    return jwt.encode(
        claims, key or platform.private_key, algorithm="ES256", headers={"kid": platform.kid, "typ": RECEIPT_TYP}
    )


def test_a_receipt_verifies_and_states_the_consent(
    app: Flask, uow: UnitOfWork, log: Ledger, fields: ReceiptFields, clock: FrozenClock
) -> None:
    token = issue_receipt(uow, fields)
    header = jwt.get_unverified_header(token)
    assert (header["alg"], header["typ"], header["kid"]) == ("ES256", RECEIPT_TYP, key_store(uow).signing_key().kid)
    claims = _claims(token)
    assert claims["iss"] == app.config["MYDATA_ISSUER"]
    assert claims["receipt_id"] == "rcpt-0001"
    assert claims["jurisdiction"] == "TW"
    assert claims["controller"] == {"id": "sandbox-bank", "name": "沙盒銀行"}
    assert claims["purpose"] == fields.purpose
    assert claims["datasets"] == ["household.registration", "tax.income"]
    assert claims["retention"] == "P1Y"
    entry = json.loads(log.entry(5).leaf_input)
    assert claims["subject"] == entry["subject"]
    assert "A123456789" not in json.dumps(claims)
    # The promise of inclusion: the entry without its seq, its time, the maximum merge delay.
    del entry["seq"]
    promise = {"entry_hash": b64(hashlib.sha256(rfc8785.dumps(entry)).digest()), "time": entry["time"]}
    assert claims["ledger"] == {**promise, "max_merge_delay": 1}
    verified = verify_receipt(uow, token)
    assert (verified.seq, verified.tree_size, verified.current_tree_size) == (5, 6, 6)
    assert verified.claims == claims
    assert not verified.pending
    # The proof it gets, checked as anyone could: from the stored leaf to the signed root.
    proof = receipt_proof(uow, token)
    assert proof is not None
    assert proof == verified.proof
    leaf = merkle.leaf_hash(log.entry(5).leaf_input)
    assert proof.leaf_hash == leaf
    assert merkle.verify_inclusion(leaf, 5, 6, list(proof.audit_path), proof.signed_tree_head.root_hash)
    assert proof.as_json()["tree_size"] == 6


def test_issuing_a_receipt_signs_it_once_and_no_tree_head(uow: UnitOfWork, fields: ReceiptFields) -> None:
    before = tree_heads(uow)
    issue_receipt(uow, fields)
    assert tree_heads(uow) == before


def test_a_receipt_of_a_queued_entry_is_pending_until_the_sequencer_integrates_it(
    uow: UnitOfWork, log: Ledger, granted: EventFactory, fields: ReceiptFields, clock: FrozenClock
) -> None:
    from dataclasses import replace

    sequenced = Ledger(uow, keys=log.keys, clock=log.clock, policy=log.policy, sequencing="sequencer")
    queued = sequenced.record(granted(77))
    assert queued.seq is None
    assert log.tree_head().tree_size == 6
    token = issue_receipt(uow, replace(fields, consent_id="consent-000077", ledger_entry=queued))
    verified = verify_receipt(uow, token)
    assert (verified.pending, verified.overdue, verified.seq, verified.proof) == (True, False, None, None)
    assert receipt_proof(uow, token) is None
    edited = _claims(token)
    edited["datasets"] = ["tax.income"]
    with pytest.raises(ReceiptInvalid, match="differ from its queued ledger entry"):
        verify_receipt(uow, _resign(uow, edited))
    clock.advance(2)
    assert verify_receipt(uow, token).overdue  # beyond the maximum merge delay, still pending
    batch = sequenced.integrate(sign=True)
    assert [e.seq for e in batch.entries] == [6]
    assert batch.signed_tree_head is not None
    verified = verify_receipt(uow, token)
    assert (verified.pending, verified.seq, verified.tree_size) == (False, 6, 7)
    assert verified.proof is not None
    assert verified.proof.signed_tree_head == batch.signed_tree_head


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        (
            lambda p: p.update(entry_hash=base64.b64encode(b"\x07" * 32).decode()),
            "no entry with the receipt's entry hash",
        ),
        (lambda p: p.update(time="2020-01-01T00:00:00.000Z"), "promise time differs"),
        (lambda p: p.update(time="soon"), "RFC 3339"),
        (lambda p: p.pop("max_merge_delay"), "incomplete"),
        (lambda p: p.update(entry_hash="not base64!"), "not base64"),
    ],
)
def test_a_receipt_whose_promise_was_altered_does_not_verify(
    uow: UnitOfWork, fields: ReceiptFields, edit: Callable[[dict[str, Any]], None], reason: str
) -> None:
    claims = _claims(issue_receipt(uow, fields))
    edit(claims["ledger"])
    with pytest.raises(ReceiptInvalid, match=reason):
        verify_receipt(uow, _resign(uow, claims))


def test_a_version_1_receipt_still_verifies(uow: UnitOfWork, log: Ledger, fields: ReceiptFields) -> None:
    token = issue_receipt_v1(uow, fields)
    verified = verify_receipt(uow, token)
    assert (verified.seq, verified.tree_size, verified.current_tree_size) == (5, 6, 6)
    proof = receipt_proof(uow, token)
    assert proof is not None
    assert (proof.seq, proof.signed_tree_head.tree_size) == (5, 6)


def test_a_receipt_still_verifies_as_the_log_grows(
    uow: UnitOfWork, log: Ledger, fields: ReceiptFields, granted: EventFactory, clock: FrozenClock
) -> None:
    token = issue_receipt(uow, fields)
    for n in range(100, 140):
        log.append(granted(n))
    log.sign_tree_head()
    key_store(uow).rotate()  # the receipt's key is retired, still published
    assert verify_receipt(uow, token).current_tree_size == 46


def test_a_receipt_whose_tree_head_was_never_stored_still_verifies(uow: UnitOfWork, fields: ReceiptFields) -> None:
    token = issue_receipt_v1(uow, fields)
    uow.rollback()  # the tree head signed for the receipt is gone; the entry stays
    assert verify_receipt(uow, token).tree_size == 6


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        (lambda c: c.update(purpose="任何用途"), "signature"),
        (lambda c: c.update(datasets=[*c["datasets"], "labor.insurance"]), "signature"),
        (lambda c: c["controller"].update(id="someone-else"), "signature"),
        (lambda c: c["ledger"].update(seq=4), "signature"),
    ],
)
def test_an_edited_receipt_does_not_verify(
    uow: UnitOfWork, fields: ReceiptFields, edit: Callable[[dict[str, Any]], None], reason: str
) -> None:
    header, _payload, signature = issue_receipt(uow, fields).split(".")
    claims = _claims(f"{header}.{_payload}.{signature}")
    edit(claims)
    payload = base64.urlsafe_b64encode(rfc8785.dumps(claims)).rstrip(b"=").decode()
    with pytest.raises(ReceiptInvalid, match=reason):
        verify_receipt(uow, f"{header}.{payload}.{signature}")


def test_a_receipt_with_a_forged_signature_does_not_verify(uow: UnitOfWork, fields: ReceiptFields) -> None:
    claims = _claims(issue_receipt(uow, fields))
    claims["datasets"] = ["household.registration", "labor.insurance", "tax.income"]
    forged = _resign(uow, claims, ec.generate_private_key(ec.SECP256R1()))
    with pytest.raises(ReceiptInvalid, match="signature does not verify"):
        verify_receipt(uow, forged)
    unknown = jwt.encode(claims, ec.generate_private_key(ec.SECP256R1()), algorithm="ES256", headers={"kid": "x"})
    with pytest.raises(ReceiptInvalid):
        verify_receipt(uow, unknown)
    with pytest.raises(ReceiptInvalid, match="not a compact JWS"):
        verify_receipt(uow, "not a receipt")


def test_a_platform_token_of_another_kind_is_not_a_receipt(uow: UnitOfWork, fields: ReceiptFields) -> None:
    claims = _claims(issue_receipt(uow, fields))
    platform = key_store(uow).signing_key()
    id_token_like = jwt.encode(claims, platform.private_key, algorithm="ES256", headers={"kid": platform.kid})
    with pytest.raises(ReceiptInvalid, match="not an ES256 consent receipt"):
        verify_receipt(uow, id_token_like)


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        (lambda p: p["audit_path"].__setitem__(0, base64.b64encode(b"\x07" * 32).decode()), "does not lead"),
        (lambda p: p["audit_path"].pop(), "does not lead"),
        (lambda p: p.update(leaf_hash=base64.b64encode(b"\x07" * 32).decode()), "does not lead"),
        (lambda p: p.update(seq=4), "does not lead"),
        (lambda p: p.update(tree_size=5), "not for the receipt's signed tree head"),
        (lambda p: p["signed_tree_head"].update(root_hash=base64.b64encode(b"\x07" * 32).decode()), "differ"),
        (lambda p: p["signed_tree_head"].update(jws="a.b.c"), "signed tree head does not verify"),
        (lambda p: p.update(leaf_hash="not base64!"), "not base64"),
        (lambda p: p.update(audit_path="x"), "incomplete"),
        (lambda p: p.pop("seq"), "incomplete"),
    ],
)
def test_a_receipt_whose_proof_was_altered_does_not_verify(
    uow: UnitOfWork, fields: ReceiptFields, edit: Callable[[dict[str, Any]], None], reason: str
) -> None:
    claims = _claims(issue_receipt_v1(uow, fields))
    edit(claims["ledger"])
    # Signed with the platform key, so that the proof check itself is what refuses it.
    with pytest.raises(ReceiptInvalid, match=reason):
        verify_receipt(uow, _resign(uow, claims))


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        (lambda c: c.update(datasets=["household.registration"]), "differ from ledger entry 5"),
        (lambda c: c.update(consent_id="consent-000001"), "differ from ledger entry 5"),
        (lambda c: c.update(subject="0" * 64), "differ from ledger entry 5"),
        (lambda c: c.update(jurisdiction="JP"), "jurisdiction TW"),
        (lambda c: c.update(consent_time="yesterday"), "RFC 3339"),
        (lambda c: c.pop("purpose"), "purpose is missing"),
        (lambda c: c.update(iss="https://elsewhere.example"), "claims are invalid"),
    ],
)
def test_a_signed_receipt_that_disagrees_with_the_ledger_does_not_verify(
    uow: UnitOfWork, fields: ReceiptFields, edit: Callable[[dict[str, Any]], None], reason: str
) -> None:
    claims = _claims(issue_receipt_v1(uow, fields))
    edit(claims)
    with pytest.raises(ReceiptInvalid, match=reason):
        verify_receipt(uow, _resign(uow, claims))


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        (lambda c: c.update(datasets=["household.registration"]), "differ from ledger entry 5"),
        (lambda c: c.update(subject="0" * 64), "differ from ledger entry 5"),
        (lambda c: c.update(consent_id="consent-000001"), "no entry with the receipt's entry hash"),
        (lambda c: c.update(version="mydata-consent-receipt/3"), "not a mydata-consent-receipt/2 receipt"),
    ],
)
def test_a_signed_promise_that_disagrees_with_the_ledger_does_not_verify(
    uow: UnitOfWork, fields: ReceiptFields, edit: Callable[[dict[str, Any]], None], reason: str
) -> None:
    claims = _claims(issue_receipt(uow, fields))
    edit(claims)
    with pytest.raises(ReceiptInvalid, match=reason):
        verify_receipt(uow, _resign(uow, claims))


def test_a_receipt_does_not_verify_once_the_ledger_was_rewritten(
    uow: UnitOfWork, log: Ledger, fields: ReceiptFields, rewrite_entry: Callable[[int, bytes], None]
) -> None:
    token = issue_receipt_v1(uow, fields)
    forged = json.loads(log.entry(2).leaf_input)
    forged["outcome"] = "denied"
    rewrite_entry(2, rfc8785.dumps(forged))
    log.sign_tree_head()  # the platform then signs the rewritten tree
    with pytest.raises(ReceiptInvalid, match="rewritten"):
        verify_receipt(uow, token)


def test_a_receipt_for_a_rewritten_entry_does_not_verify(
    uow: UnitOfWork, log: Ledger, fields: ReceiptFields, rewrite_entry: Callable[[int, bytes], None]
) -> None:
    token, promised = issue_receipt_v1(uow, fields), issue_receipt(uow, fields)
    forged = json.loads(log.entry(5).leaf_input)
    forged["time"] = "2020-01-01T00:00:00.000Z"
    rewrite_entry(5, rfc8785.dumps(forged))
    with pytest.raises(ReceiptInvalid, match="not that of ledger entry 5"):
        verify_receipt(uow, token)
    with pytest.raises(ReceiptInvalid, match="no entry with the receipt's entry hash"):
        verify_receipt(uow, promised)


def test_a_receipt_is_only_issued_for_a_recorded_grant(
    uow: UnitOfWork, log: Ledger, fields: ReceiptFields, granted: EventFactory
) -> None:
    from dataclasses import replace

    with pytest.raises(ReceiptNotIssuable):
        issue_receipt(uow, replace(fields, ledger_entry=QueuedEntry(body=b"not json", time="")))
    with pytest.raises(ReceiptNotIssuable):
        issue_receipt(uow, replace(fields, datasets=("tax.income",)))
    other = log.append(granted(0, citizen="B223456782")).queued
    assert other is not None
    with pytest.raises(ReceiptNotIssuable):
        issue_receipt(uow, replace(fields, ledger_entry=other))  # another citizen's consent
    revoked = log.append(LedgerEvent(event="consent.revoked", actor="citizen", consent_id="consent-000042")).queued
    assert revoked is not None
    with pytest.raises(ReceiptNotIssuable):
        issue_receipt(uow, replace(fields, ledger_entry=revoked))


def test_receipt_time_is_rfc3339(uow: UnitOfWork, fields: ReceiptFields) -> None:
    from dataclasses import replace

    moment = dt.datetime(2026, 11, 24, 18, 30, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    claims = _claims(issue_receipt(uow, replace(fields, consent_time=moment)))
    assert claims["consent_time"] == "2026-11-24T10:30:00.000Z"
