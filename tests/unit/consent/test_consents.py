"""The consent lifecycle: every transition with its ledger entry, in one transaction (DESIGN §6.1)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator

import pytest
from flask import Flask
from sqlalchemy import text

from consent import consents
from consent.interfaces import (
    AlreadyDelivered,
    ConsentExpired,
    ConsentNotFound,
    ConsentNotPending,
    ConsentNotRevocable,
    ConsentRevoked,
)
from consent.ledger import ledger
from consent.models import Consent
from consent.receipts import verify_receipt
from identity.models import Citizen
from identity.oauth.clients import register_client
from mydata.clock import FrozenClock
from mydata.db import UnitOfWork, get_db
from mydata.keys import key_store
from tests.factories.consent import TERMS
from tests.factories.identity import make_citizen
from tests.factories.oauth import TestRelyingParty
from tests.factories.statements import recorded_statements

pytestmark = pytest.mark.db


@pytest.fixture
def uow(app: Flask, clock: FrozenClock) -> Iterator[UnitOfWork]:
    """A unit of work with a platform key, a client and a citizen."""
    with app.app_context(), get_db().unit_of_work() as unit:
        key_store(unit).rotate()
        rp = TestRelyingParty(client_id="sandbox-bank-web", redirect_uri="https://bank.example/cb")
        register_client(unit, clock, name="沙盒銀行", jwks=rp.jwks(), redirect_uris=[rp.redirect_uri], sandbox=True,
                        organisation_id="sandbox-bank", client_id=rp.client_id)  # fmt: skip
        yield unit


@pytest.fixture
def citizen(uow: UnitOfWork) -> Citizen:
    """Persona 1."""
    return make_citizen(uow, "A123456789")


def requested(uow: UnitOfWork, clock: FrozenClock) -> Consent:
    """Record a request, committed."""
    consent = consents.record_request(uow, client_id="sandbox-bank-web", terms=TERMS, now=clock.now())
    uow.commit()
    return consent


def grant(uow: UnitOfWork, consent: Consent, citizen: Citizen, clock: FrozenClock) -> Consent:
    """Grant *consent* as persona 1 would, with no optional dataset (not committed)."""
    return consents.grant(uow, consent.id, citizen_id=citizen.id, national_id="A123456789", optional_chosen=(),
                          amr=(), now=clock.now())  # fmt: skip


def events(uow: UnitOfWork, consent_id: str) -> list[str]:
    """Return the ledger events recorded for a consent, in order."""
    log = ledger(uow)
    size = log.tree_head().tree_size
    return [e.entry["event"] for e in log.entries(0, size - 1) if e.entry["consent_id"] == consent_id]


def test_grant_records_the_citizen_the_datasets_and_a_receipt_that_verifies(
    uow: UnitOfWork, citizen: Citizen, clock: FrozenClock
) -> None:
    consent = requested(uow, clock)
    consents.grant(uow, consent.id, citizen_id=citizen.id, national_id="A123456789",
                   optional_chosen=("tax.property",), amr=("sc", "pin", "hwk"), now=clock.now())  # fmt: skip
    uow.commit()
    assert consent.status == "granted"
    assert consent.datasets_granted == ["household.registration", "tax.income", "tax.property"]
    assert consent.window_ends_at == clock.now() + dt.timedelta(minutes=10)
    assert events(uow, consent.id) == ["consent.requested", "consent.granted"]
    verified = verify_receipt(uow, consent.receipt or "")
    assert verified.claims["consent_id"] == consent.id
    assert verified.claims["purpose"] == TERMS.purpose
    # The ledger holds no ID number, name or purpose text: only identifiers.
    entries = json.dumps([e.entry for e in ledger(uow).entries(0, ledger(uow).tree_head().tree_size - 1)],
                         ensure_ascii=False)  # fmt: skip
    assert "A123456789" not in entries
    assert "王小明" not in entries
    assert TERMS.purpose not in entries


def test_optional_datasets_not_chosen_are_not_granted(uow: UnitOfWork, citizen: Citizen, clock: FrozenClock) -> None:
    consent = requested(uow, clock)
    consents.grant(uow, consent.id, citizen_id=citizen.id, national_id="A123456789", optional_chosen=(),
                   amr=("sc",), now=clock.now())  # fmt: skip
    assert consent.datasets_granted == ["household.registration", "tax.income"]


def test_deny_is_recorded_and_final(uow: UnitOfWork, citizen: Citizen, clock: FrozenClock) -> None:
    consent = requested(uow, clock)
    consents.deny(uow, consent.id, citizen_id=citizen.id, national_id="A123456789", now=clock.now())
    uow.commit()
    assert consent.status == "denied"
    assert events(uow, consent.id) == ["consent.requested", "consent.denied"]
    with pytest.raises(ConsentNotPending):
        grant(uow, consent, citizen, clock)


def test_revoke_before_delivery_then_delivery_is_refused(uow: UnitOfWork, citizen: Citizen, clock: FrozenClock) -> None:
    consent = requested(uow, clock)
    grant(uow, consent, citizen, clock)
    uow.commit()
    consents.revoke(uow, consent.id, citizen_id=citizen.id, national_id="A123456789", now=clock.now())
    uow.commit()
    assert events(uow, consent.id)[-1] == "consent.revoked"
    with pytest.raises(ConsentRevoked):
        consents.claim_for_delivery(uow, consent.id, national_id="A123456789", now=clock.now())


def test_only_the_citizen_can_revoke(uow: UnitOfWork, citizen: Citizen, clock: FrozenClock) -> None:
    other = make_citizen(uow, "B223456782")
    consent = requested(uow, clock)
    grant(uow, consent, citizen, clock)
    with pytest.raises(ConsentNotFound):
        consents.revoke(uow, consent.id, citizen_id=other.id, national_id="B223456782", now=clock.now())


def test_a_delivered_consent_is_neither_delivered_again_nor_revocable(
    uow: UnitOfWork, citizen: Citizen, clock: FrozenClock
) -> None:
    consent = requested(uow, clock)
    grant(uow, consent, citizen, clock)
    claimed = consents.claim_for_delivery(uow, consent.id, national_id="A123456789", now=clock.now())
    assert claimed.delivery_attempts == 1
    consents.complete_delivery(uow, claimed, national_id="A123456789", outcomes={"tax.income": "ok"},
                               document_hashes={"tax.income": "a" * 64}, now=clock.now())  # fmt: skip
    uow.commit()
    with pytest.raises(AlreadyDelivered):
        consents.claim_for_delivery(uow, consent.id, national_id="A123456789", now=clock.now())
    with pytest.raises(ConsentNotRevocable):
        consents.revoke(uow, consent.id, citizen_id=citizen.id, national_id="A123456789", now=clock.now())
    assert events(uow, consent.id)[-1] == "delivery.completed"


def test_delivery_after_the_window_expires_the_consent(uow: UnitOfWork, citizen: Citizen, clock: FrozenClock) -> None:
    consent = requested(uow, clock)
    grant(uow, consent, citizen, clock)
    uow.commit()
    clock.advance(601)
    with pytest.raises(ConsentExpired):
        consents.claim_for_delivery(uow, consent.id, national_id="A123456789", now=clock.now())
    assert uow.session.get(Consent, consent.id).status == "expired"  # committed although refused
    assert events(uow, consent.id)[-1] == "consent.expired"
    with pytest.raises(ConsentExpired):
        consents.claim_for_delivery(uow, consent.id, national_id="A123456789", now=clock.now())


def test_a_failed_transition_leaves_no_ledger_entry(uow: UnitOfWork, citizen: Citizen, clock: FrozenClock) -> None:
    consent = requested(uow, clock)
    size = ledger(uow).tree_head().tree_size
    grant(uow, consent, citizen, clock)
    uow.rollback()
    assert uow.session.get(Consent, consent.id).status == "requested"
    assert ledger(uow).tree_head().tree_size == size


def test_unknown_consent(uow: UnitOfWork, clock: FrozenClock) -> None:
    with pytest.raises(ConsentNotFound):
        consents.claim_for_delivery(uow, "nope", national_id="A123456789", now=clock.now())


def test_a_grant_locks_and_reads_the_consent_in_one_statement_and_writes_it_in_another(
    uow: UnitOfWork, citizen: Citizen, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    consent = requested(uow, clock)
    uow.session.expunge_all()  # a decision's request starts with no consent in its session
    with recorded_statements(uow, monkeypatch) as statements:
        granted = consents.grant(uow, consent.id, citizen_id=citizen.id, national_id="A123456789",
                                 optional_chosen=("tax.property",), amr=("sc",), now=clock.now())  # fmt: skip
        uow.session.flush()
    on_consents = [s for s in statements if "consent_consent" in s]
    assert [s.split()[0] for s in on_consents] == ["UPDATE", "UPDATE"], on_consents
    uow.commit()
    # The entity the caller gets is the row as written, and the session's own.
    assert granted.status == "granted"
    assert granted.datasets_granted == ["household.registration", "tax.income", "tax.property"]
    assert granted is uow.session.get(Consent, consent.id)
    uow.session.expire_all()
    stored = uow.session.get(Consent, consent.id)
    assert stored is not None
    assert (stored.status, stored.receipt_id) == ("granted", granted.receipt_id)
    assert stored.datasets_granted == ["household.registration", "tax.income", "tax.property"]


def test_a_locked_consent_reads_its_times_in_utc_whatever_the_connection_zone(
    uow: UnitOfWork, citizen: Citizen, clock: FrozenClock
) -> None:
    consent = requested(uow, clock)
    grant(uow, consent, citizen, clock)
    uow.commit()
    uow.session.expunge_all()
    if uow.session.get_bind().dialect.name == "postgresql":
        # The driver gives times in the connection's zone; the revoke API dumps the entity's.
        uow.session.execute(text("SET LOCAL TIME ZONE 'Asia/Taipei'"))
    revoked = consents.revoke(uow, consent.id, citizen_id=citizen.id, national_id="A123456789", now=clock.now())
    assert revoked.requested_at.isoformat() == clock.now().isoformat()
    assert revoked.window_ends_at is not None
    assert revoked.window_ends_at.isoformat() == (clock.now() + consents.DELIVERY_WINDOW).isoformat()
