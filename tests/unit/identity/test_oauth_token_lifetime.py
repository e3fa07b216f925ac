"""Access tokens do not outlive their consent (issue 10 item 10): lifetime and refusal at the resources."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest
from flask import Flask, render_template
from flask.testing import FlaskClient
from flask.typing import ResponseReturnValue

from identity.oauth.interfaces import ConsentDecision, ConsentWindow, ResolvedDetails
from identity.oauth.services import PendingAuthorization, register_consent_flow, register_details_type
from identity.sessions import Authentication
from mydata.clock import FrozenClock
from mydata.db import UnitOfWork
from tests.factories.oauth import TestRelyingParty
from tests.unit.identity.test_oauth import authorize, signed_in, token_request, userinfo

__all__ = ["signed_in"]  # a fixture of these tests

pytestmark = pytest.mark.db
DETAILS = json.dumps([{"type": "mydata_delivery", "service": "sandbox-bank.credit-card"}])


class FakeConsents:
    """A consent flow whose consent stands, is revoked or expires as the test says."""

    def __init__(self, ends_at: int) -> None:
        self.current = ConsentWindow(ends_at=ends_at)

    def requested(self, uow: UnitOfWork, client_id: str, details: list[ResolvedDetails]) -> str:
        return "txn-1"

    def screen(
        self, pending: PendingAuthorization, authentication: Authentication, transaction_id: str
    ) -> ResponseReturnValue:
        return render_template("oauth/approve.html", pending=pending, authentication=authentication)

    def decide(
        self,
        uow: UnitOfWork,
        pending: PendingAuthorization,
        authentication: Authentication,
        transaction_id: str,
        form: Mapping[str, list[str]],
    ) -> ConsentDecision:
        return ConsentDecision(approve=True, granted=[d.detail for d in pending.details])

    def window(self, uow: UnitOfWork, transaction_id: str) -> ConsentWindow | None:
        return self.current if transaction_id == "txn-1" else None


@pytest.fixture
def consents(app: Flask, clock: FrozenClock) -> FakeConsents:
    """Plug a fake consent flow whose delivery window ends in 5 minutes."""
    fake = FakeConsents(ends_at=clock.timestamp() + 300)
    register_details_type(app, "mydata_delivery", lambda detail, client_id: ResolvedDetails(detail=detail))
    register_consent_flow(app, fake)
    return fake


def redeem(client: FlaskClient, rp: TestRelyingParty, issuer: str, clock: FrozenClock, wait: int = 0) -> Any:
    """Authorize with a consent, wait *wait* seconds, then redeem the code."""
    query, verifier = authorize(client, rp, issuer, authorization_details=DETAILS)
    clock.advance(wait)
    proof = rp.dpop("POST", f"{issuer}/oauth/token", iat=clock.timestamp())
    return token_request(client, rp, issuer, query["code"], verifier, dpop=proof)


def introspect(client: FlaskClient, rp: TestRelyingParty, issuer: str, access_token: str) -> Any:
    return client.post("/oauth/introspect", data={"token": access_token, **rp.client_auth(issuer)}).json


def test_the_token_ends_with_the_delivery_window(
    client: FlaskClient, rp: TestRelyingParty, issuer: str, signed_in: Authentication, clock: FrozenClock,
    consents: FakeConsents,
) -> None:  # fmt: skip
    response = redeem(client, rp, issuer, clock, wait=20)
    assert response.status_code == 200, response.json
    assert response.json["expires_in"] == 280  # the window's end, not the default 600 s
    access_token = response.json["access_token"]
    assert introspect(client, rp, issuer, access_token)["exp"] == consents.current.ends_at

    clock.advance(279)
    assert userinfo(client, rp, issuer, access_token, iat=clock.timestamp()).status_code == 200
    clock.advance(1)
    refused = userinfo(client, rp, issuer, access_token, iat=clock.timestamp())
    assert refused.status_code == 401
    assert 'DPoP error="invalid_token"' in refused.headers["WWW-Authenticate"]
    assert refused.json["error"] == "invalid_token"
    assert "consent" in refused.json["error_description"]
    assert "expired" in refused.json["error_description"]


def test_a_long_window_keeps_the_default_lifetime(
    client: FlaskClient, rp: TestRelyingParty, issuer: str, signed_in: Authentication, clock: FrozenClock,
    consents: FakeConsents,
) -> None:  # fmt: skip
    consents.current = ConsentWindow(ends_at=clock.timestamp() + 3600)
    assert redeem(client, rp, issuer, clock).json["expires_in"] == 600


@pytest.mark.parametrize(("ended", "reason"), [("revoked", "revoked"), ("expired", "expired")])
def test_a_revoked_or_expired_consent_stops_its_token(
    client: FlaskClient, rp: TestRelyingParty, issuer: str, signed_in: Authentication, clock: FrozenClock,
    consents: FakeConsents, ended: str, reason: str,
) -> None:  # fmt: skip
    access_token = redeem(client, rp, issuer, clock).json["access_token"]
    assert userinfo(client, rp, issuer, access_token).status_code == 200
    consents.current = ConsentWindow(ends_at=consents.current.ends_at, ended=ended)
    refused = userinfo(client, rp, issuer, access_token)
    assert refused.status_code == 401
    assert 'DPoP error="invalid_token"' in refused.headers["WWW-Authenticate"]
    assert refused.json["error"] == "invalid_token"
    assert reason in refused.json["error_description"]
    assert introspect(client, rp, issuer, access_token) == {"active": False}


def test_a_consent_revoked_before_the_code_is_redeemed_gets_no_token(
    client: FlaskClient, rp: TestRelyingParty, issuer: str, signed_in: Authentication, clock: FrozenClock,
    consents: FakeConsents,
) -> None:  # fmt: skip
    query, verifier = authorize(client, rp, issuer, authorization_details=DETAILS)
    consents.current = ConsentWindow(ends_at=consents.current.ends_at, ended="revoked")
    response = token_request(client, rp, issuer, query["code"], verifier)
    assert response.status_code == 400
    assert response.json["error"] == "invalid_grant"
    assert "revoked" in response.json["error_description"]
