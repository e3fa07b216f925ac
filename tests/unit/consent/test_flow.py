"""The consent flow tells the authorization server how long a consent's tokens may live (issue 10 item 10)."""

from __future__ import annotations

import pytest

from consent import consents
from consent.flow import ConsentScreen
from consent.interfaces import ConsentExpired
from identity.models import Citizen
from identity.oauth.interfaces import ConsentWindow
from mydata.clock import FrozenClock
from mydata.db import UnitOfWork
from tests.unit.consent.test_consents import citizen, requested, uow

__all__ = ["citizen", "uow"]  # fixtures of these tests
pytestmark = pytest.mark.db


def granted(uow: UnitOfWork, citizen: Citizen, clock: FrozenClock) -> str:
    """Grant a consent; return its id."""
    consent = requested(uow, clock)
    consents.grant(uow, consent.id, citizen_id=citizen.id, national_id="A123456789", optional_chosen=(),
                   amr=(), now=clock.now())  # fmt: skip
    uow.commit()
    return consent.id


def test_a_granted_consent_stands_until_its_window_ends(uow: UnitOfWork, citizen: Citizen, clock: FrozenClock) -> None:
    consent_id = granted(uow, citizen, clock)
    window = ConsentScreen().window(uow, consent_id)
    assert window == ConsentWindow(ends_at=clock.timestamp() + 600)
    assert window.refusal(clock.timestamp() + 599) is None
    assert "expired" in (window.refusal(clock.timestamp() + 600) or "")


def test_a_revoked_consent_has_ended(uow: UnitOfWork, citizen: Citizen, clock: FrozenClock) -> None:
    consent_id = granted(uow, citizen, clock)
    consents.revoke(uow, consent_id, citizen_id=citizen.id, national_id="A123456789", now=clock.now())
    uow.commit()
    window = ConsentScreen().window(uow, consent_id)
    assert window is not None
    assert window.ended == "revoked"
    assert "revoked" in (window.refusal(clock.timestamp()) or "")


def test_an_expired_consent_has_ended(uow: UnitOfWork, citizen: Citizen, clock: FrozenClock) -> None:
    consent_id = granted(uow, citizen, clock)
    clock.advance(601)
    with pytest.raises(ConsentExpired):
        consents.claim_for_delivery(uow, consent_id, national_id="A123456789", now=clock.now())
    window = ConsentScreen().window(uow, consent_id)
    assert window is not None
    assert window.ended == "expired"


def test_a_transaction_without_a_consent_has_no_window(uow: UnitOfWork) -> None:
    assert ConsentScreen().window(uow, "0123456789abcdef") is None
