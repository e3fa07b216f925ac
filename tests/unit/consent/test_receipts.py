"""Consent receipts (``consent.receipts``): they verify, and an edited or forged one does not."""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import jwt
import pytest
import rfc8785
from cryptography.hazmat.primitives.asymmetric import ec
from flask import Flask

from consent.interfaces import ReceiptInvalid, ReceiptNotIssuable
from consent.ledger import Ledger, LedgerEvent
from consent.receipts import RECEIPT_TYP, ReceiptFields, issue_receipt, verify_receipt
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
    seq = log.append(granted(42)).seq
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
        ledger_seq=seq,
    )


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
    assert claims["subject"] == json.loads(log.entry(fields.ledger_seq).leaf_input)["subject"]
    assert "A123456789" not in json.dumps(claims)
    assert claims["ledger"]["seq"] == fields.ledger_seq == 5
    assert claims["ledger"]["tree_size"] == 6
    verified = verify_receipt(uow, token)
    assert (verified.seq, verified.tree_size, verified.current_tree_size) == (5, 6, 6)
    assert verified.claims == claims


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
    token = issue_receipt(uow, fields)
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
    claims = _claims(issue_receipt(uow, fields))
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
    claims = _claims(issue_receipt(uow, fields))
    edit(claims)
    with pytest.raises(ReceiptInvalid, match=reason):
        verify_receipt(uow, _resign(uow, claims))


def test_a_receipt_does_not_verify_once_the_ledger_was_rewritten(
    uow: UnitOfWork, log: Ledger, fields: ReceiptFields, rewrite_entry: Callable[[int, bytes], None]
) -> None:
    token = issue_receipt(uow, fields)
    forged = json.loads(log.entry(2).leaf_input)
    forged["outcome"] = "denied"
    rewrite_entry(2, rfc8785.dumps(forged))
    log.sign_tree_head()  # the platform then signs the rewritten tree
    with pytest.raises(ReceiptInvalid, match="rewritten"):
        verify_receipt(uow, token)


def test_a_receipt_for_a_rewritten_entry_does_not_verify(
    uow: UnitOfWork, log: Ledger, fields: ReceiptFields, rewrite_entry: Callable[[int, bytes], None]
) -> None:
    token = issue_receipt(uow, fields)
    forged = json.loads(log.entry(5).leaf_input)
    forged["time"] = "2020-01-01T00:00:00.000Z"
    rewrite_entry(5, rfc8785.dumps(forged))
    with pytest.raises(ReceiptInvalid, match="not that of ledger entry 5"):
        verify_receipt(uow, token)


def test_a_receipt_is_only_issued_for_a_recorded_grant(uow: UnitOfWork, log: Ledger, fields: ReceiptFields) -> None:
    from dataclasses import replace

    with pytest.raises(ReceiptNotIssuable):
        issue_receipt(uow, replace(fields, ledger_seq=99))
    with pytest.raises(ReceiptNotIssuable):
        issue_receipt(uow, replace(fields, datasets=("tax.income",)))
    with pytest.raises(ReceiptNotIssuable):
        issue_receipt(uow, replace(fields, ledger_seq=0))  # another citizen's consent
    log.append(LedgerEvent(event="consent.revoked", actor="citizen", consent_id="consent-000042"))
    with pytest.raises(ReceiptNotIssuable):
        issue_receipt(uow, replace(fields, ledger_seq=6))


def test_receipt_time_is_rfc3339(uow: UnitOfWork, fields: ReceiptFields) -> None:
    from dataclasses import replace

    moment = dt.datetime(2026, 11, 24, 18, 30, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    claims = _claims(issue_receipt(uow, replace(fields, consent_time=moment)))
    assert claims["consent_time"] == "2026-11-24T10:30:00.000Z"
