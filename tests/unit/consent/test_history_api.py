"""The citizen's own JSON API: usage history from the ledger, consents with receipts, revocation."""

from __future__ import annotations

import re

import pytest
import rfc8785
from flask import Flask
from flask.testing import FlaskClient

from consent import consents
from consent.ledger import LedgerEvent, ledger
from identity.oauth.clients import register_client
from identity.sessions import Authentication
from mydata.clock import FrozenClock
from mydata.db import get_db
from mydata.keys import key_store
from tests.factories.consent import TERMS
from tests.factories.identity import LoginAs
from tests.factories.oauth import TestRelyingParty

pytestmark = pytest.mark.db


@pytest.fixture
def citizen(app: Flask, clock: FrozenClock, login_as: LoginAs) -> Authentication:
    """Log persona 1 in, with a bank client and one granted consent."""
    authentication = login_as("A123456789", method="eid")
    with app.app_context(), get_db().unit_of_work() as uow:
        key_store(uow).rotate()
        rp = TestRelyingParty(client_id="sandbox-bank-web", redirect_uri="https://bank.example/cb")
        register_client(uow, clock, name="沙盒銀行", jwks=rp.jwks(), redirect_uris=[rp.redirect_uri], sandbox=True,
                        organisation_id="sandbox-bank", client_id=rp.client_id)  # fmt: skip
        for _ in range(2):
            consent = consents.record_request(uow, client_id=rp.client_id, terms=TERMS, now=clock.now())
            consents.grant(uow, consent.id, citizen_id=authentication.citizen_id, national_id="A123456789",
                           optional_chosen=("tax.property",), amr=authentication.amr, now=clock.now())  # fmt: skip
            uow.commit()
    return authentication


def csrf_token(client: FlaskClient) -> str:
    """Return the session's CSRF token (from a page's form)."""
    page = client.get("/me").get_data(as_text=True)
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match
    return match.group(1)


def test_history_lists_my_events_newest_first_with_their_ledger_seq(
    client: FlaskClient, citizen: Authentication
) -> None:
    events = client.get("/api/v1/me/history").json["events"]
    assert [e["event"] for e in events] == ["consent.granted", "consent.granted"]
    assert events[0]["seq"] > events[1]["seq"]
    assert events[0]["recipient"] == "sandbox-bank"
    assert events[0]["purpose"] == TERMS.purpose
    assert "tax.property" in events[0]["datasets"]


def test_version_1_entries_stay_in_the_history_without_an_opening(
    app: Flask, client: FlaskClient, citizen: Authentication
) -> None:
    with app.app_context(), get_db().unit_of_work() as uow:
        log = ledger(uow)
        for national_id, case in (("A123456789", "old-consent-1"), ("B223456782", "old-consent-2")):
            event = LedgerEvent(event="consent.revoked", actor="citizen", subject_national_id=national_id,
                                service=TERMS.service_id, consent_id=case)  # fmt: skip
            key = log.subject_key(national_id)
            entry = {**event.entry(log.tree_head().tree_size, "2026-11-30T08:00:00.000Z", key), "version": 1}
            log.append_raw(rfc8785.dumps(entry), subject=key, consent_id=case)
        uow.commit()
    events = client.get("/api/v1/me/history").json["events"]
    assert (events[0]["version"], events[0]["consent_id"]) == (1, "old-consent-1")
    assert events[0]["opening"] is None
    assert len(events[0]["subject"]) == 64
    assert [e["version"] for e in events[1:]] == [2, 2]
    assert all(len(e["opening"]["salt"]) == 43 and e["opening"]["scheme"] == "mydata-subject-v1" for e in events[1:])


def test_history_filters(client: FlaskClient, citizen: Authentication) -> None:
    assert len(client.get("/api/v1/me/history?dataset=tax.income").json["events"]) == 2
    assert client.get("/api/v1/me/history?dataset=labor.insurance").json["events"] == []
    assert client.get("/api/v1/me/history?event=delivery.completed").json["events"] == []
    assert client.get("/api/v1/me/history?recipient=sandbox-school").json["events"] == []
    assert len(client.get("/api/v1/me/history?since=2000-01-01T00:00:00Z").json["events"]) == 2
    refused = client.get("/api/v1/me/history?since=yesterday")
    assert refused.status_code == 400
    assert "since" in refused.json["error_description"]


def test_consents_carry_their_receipts(client: FlaskClient, citizen: Authentication) -> None:
    listed = client.get("/api/v1/me/consents").json["consents"]
    assert len(listed) == 2
    assert {c["status"] for c in listed} == {"granted"}
    assert listed[0]["receipt"].count(".") == 2


def test_revoking_a_granted_consent(client: FlaskClient, citizen: Authentication) -> None:
    consent_id = client.get("/api/v1/me/consents").json["consents"][0]["id"]
    token = csrf_token(client)
    revoked = client.post(f"/api/v1/me/consents/{consent_id}/revoke", headers={"X-CSRFToken": token})
    assert revoked.status_code == 200, revoked.json
    assert revoked.json["status"] == "revoked"
    again = client.post(f"/api/v1/me/consents/{consent_id}/revoke", headers={"X-CSRFToken": token})
    assert again.status_code == 409
    assert again.json["error"] == "consent_not_revocable"
    assert client.get("/api/v1/me/history").json["events"][0]["event"] == "consent.revoked"


def test_revoking_without_the_csrf_token_is_refused(client: FlaskClient, citizen: Authentication) -> None:
    consent_id = client.get("/api/v1/me/consents").json["consents"][0]["id"]
    assert client.post(f"/api/v1/me/consents/{consent_id}/revoke").status_code == 400


def test_the_api_needs_a_login(client: FlaskClient) -> None:
    response = client.get("/api/v1/me/history")
    assert response.status_code == 401
    assert response.json["error"] == "login_required"
