"""The citizen's portal pages: the dashboard (/me) and My consents (/me/consents), with revocation."""

from __future__ import annotations

import re

import pytest
from flask import Flask
from flask.testing import FlaskClient

from consent import consents, portal
from consent.ledger import LedgerEvent, ledger
from consent.models import Consent
from identity.oauth.clients import register_client
from identity.sessions import Authentication
from mydata.clock import FrozenClock
from mydata.db import get_db
from mydata.keys import key_store
from tests.factories.consent import TERMS
from tests.factories.identity import LoginAs, text
from tests.factories.oauth import TestRelyingParty

pytestmark = pytest.mark.db


@pytest.fixture(autouse=True)
def bank(app: Flask, clock: FrozenClock) -> None:
    """Register the sandbox bank's client, and a platform key to sign receipts and tree heads."""
    with app.app_context(), get_db().unit_of_work() as uow:
        key_store(uow).rotate()
        rp = TestRelyingParty(client_id="sandbox-bank-web", redirect_uri="https://bank.example/cb")
        register_client(uow, clock, name="沙盒銀行", jwks=rp.jwks(), redirect_uris=[rp.redirect_uri], sandbox=True,
                        organisation_id="sandbox-bank", client_id=rp.client_id)  # fmt: skip
        uow.commit()


def make_consents(
    app: Flask, clock: FrozenClock, citizen: Authentication, national_id: str, outcomes: list[str]
) -> list[str]:
    """Give the citizen one consent per outcome (granted, revoked, denied, delivered); return their ids."""
    ids = []
    with app.app_context(), get_db().unit_of_work() as uow:
        for outcome in outcomes:
            consent = consents.record_request(uow, client_id="sandbox-bank-web", terms=TERMS, now=clock.now())
            who = {"citizen_id": citizen.citizen_id, "national_id": national_id, "now": clock.now()}
            if outcome == "denied":
                consents.deny(uow, consent.id, **who)
            else:
                consents.grant(uow, consent.id, optional_chosen=(), amr=citizen.amr, **who)
            if outcome == "revoked":
                consents.revoke(uow, consent.id, **who)
            if outcome == "delivered":
                locked = consents.claim_for_delivery(uow, consent.id, national_id=national_id, now=clock.now())
                consents.complete_delivery(uow, locked, national_id=national_id, outcomes={"tax.income": "ok"},
                                           document_hashes={}, now=clock.now())  # fmt: skip
            uow.commit()
            ids.append(consent.id)
    return ids


def status_of(app: Flask, consent_id: str) -> str:
    with app.app_context(), get_db().unit_of_work() as uow:
        consent = uow.session.get(Consent, consent_id)
        assert consent is not None
        return consent.status


def csrf_token(page: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match
    return match.group(1)


def test_the_dashboard_asks_for_a_login_and_comes_back(client: FlaskClient) -> None:
    answer = client.get("/me")
    assert answer.status_code == 303
    assert answer.headers["Location"].startswith("/login?next=/me")
    assert client.get("/me/consents").headers["Location"].startswith("/login?next=/me/consents")


def test_the_dashboard_greets_shows_recent_activity_waiting_consents_and_the_ways_to_my_data(
    app: Flask, client: FlaskClient, clock: FrozenClock, login_as: LoginAs
) -> None:
    citizen = login_as("A123456789", method="eid")
    waiting, *_ = make_consents(app, clock, citizen, "A123456789", ["granted", "revoked", "denied", "delivered"])
    html = client.get("/me?lang=en").get_data(as_text=True)
    page = text(client.get("/me?lang=en"))
    assert "Hello, 王小明" in page
    assert "high" in page
    assert "eID card (citizen digital certificate)" in page
    assert "A12****789" in html
    assert "A123456789" not in html
    # Recent activity: the last 5 of its 10 ledger events (4 requests, 4 answers, a revocation, a delivery).
    activity = re.search(r'<ol class="activity">(.*?)</ol>', html, re.S)
    assert activity
    assert activity.group(1).count("<li") == 5
    assert "Data delivered to 沙盒銀行" in page
    # Waiting for delivery: only the granted one, with its revoke step.
    assert html.count('href="/me/consents/') == 1
    assert f'href="/me/consents/{waiting}/revoke"' in html
    for path in ("/me/data", "/me/history", "/me/consents"):
        assert f'href="{path}"' in html
    assert 'action="/logout"' in html
    assert "您好，王小明" in text(client.get("/me?lang=zh_Hant_TW"))


def test_the_dashboard_of_a_new_citizen_says_there_is_nothing_yet(client: FlaskClient, login_as: LoginAs) -> None:
    login_as("B223456782", method="mobile")
    page = text(client.get("/me?lang=en"))
    assert "Nothing has happened with your data yet." in page
    assert "No consent is waiting for delivery." in page
    assert "substantial" in page


def test_my_consents_lists_the_waiting_ones_with_revoke_and_the_past_ones_with_outcome_and_receipt(
    app: Flask, client: FlaskClient, clock: FrozenClock, login_as: LoginAs
) -> None:
    citizen = login_as("A123456789", method="eid")
    waiting, revoked, denied, delivered = make_consents(
        app, clock, citizen, "A123456789", ["granted", "revoked", "denied", "delivered"]
    )
    html = client.get("/me/consents?lang=en").get_data(as_text=True)
    page = text(client.get("/me/consents?lang=en"))
    assert f'href="/me/consents/{waiting}/revoke"' in html
    for other in (revoked, denied, delivered):
        assert f"/me/consents/{other}/revoke" not in html
    assert "Revoked" in page
    assert "Refused" in page
    assert "Delivered" in page
    assert f'href="/me/consents/{delivered}/receipt"' in html
    assert f'href="/me/consents/{denied}/receipt"' not in html  # a refusal has no receipt
    assert TERMS.purpose in page
    assert "撤回" in text(client.get("/me/consents?lang=zh_Hant_TW"))
    # Each receipt's promised entry, once in the ledger, links to its entry page and its proof.
    with app.app_context(), get_db().unit_of_work() as uow:
        grants = {c: portal.grant_seqs(uow, [c]).get(c) for c in (waiting, delivered, denied)}
    assert grants[denied] is None
    for consent in (waiting, delivered):
        assert grants[consent] is not None
        assert f'href="/me/history/{grants[consent]}"' in html
    assert "Its proof in the transparency ledger" in page


def test_revoking_takes_a_confirmation_and_a_csrf_token(
    app: Flask, client: FlaskClient, clock: FrozenClock, login_as: LoginAs
) -> None:
    citizen = login_as("A123456789", method="eid")
    (waiting,) = make_consents(app, clock, citizen, "A123456789", ["granted"])
    confirm = client.get(f"/me/consents/{waiting}/revoke?lang=en")
    assert confirm.status_code == 200
    assert "Revoke this consent?" in text(confirm)
    assert status_of(app, waiting) == "granted"  # showing the question changes nothing
    html = confirm.get_data(as_text=True)
    assert f'action="/me/consents/{waiting}/revoke"' in html

    refused = client.post(f"/me/consents/{waiting}/revoke", data={})
    assert refused.status_code == 400  # no CSRF token
    assert status_of(app, waiting) == "granted"

    done = client.post(f"/me/consents/{waiting}/revoke", data={"csrf_token": csrf_token(html)})
    assert done.status_code == 303
    assert done.headers["Location"] == f"/me/consents?revoked={waiting}"
    assert status_of(app, waiting) == "revoked"
    after = text(client.get(done.headers["Location"] + "&lang=en"))
    assert "The consent was revoked. 沙盒銀行 will not receive your data." in after


def test_a_consent_that_cannot_be_revoked_says_why(
    app: Flask, client: FlaskClient, clock: FrozenClock, login_as: LoginAs
) -> None:
    citizen = login_as("A123456789", method="eid")
    (delivered,) = make_consents(app, clock, citizen, "A123456789", ["delivered"])
    token = csrf_token(client.get("/me").get_data(as_text=True))
    answer = client.post(f"/me/consents/{delivered}/revoke?lang=en", data={"csrf_token": token})
    assert answer.status_code == 409
    assert "This consent can no longer be revoked" in text(answer)
    assert status_of(app, delivered) == "delivered"
    assert client.get(f"/me/consents/{delivered}/revoke").status_code == 409


def test_another_citizens_consent_is_not_found(
    app: Flask, client: FlaskClient, clock: FrozenClock, login_as: LoginAs
) -> None:
    owner = login_as("A123456789", method="eid")
    (waiting,) = make_consents(app, clock, owner, "A123456789", ["granted"])
    login_as("B223456782", method="mobile")
    assert client.get(f"/me/consents/{waiting}/revoke").status_code == 404
    token = csrf_token(client.get("/me").get_data(as_text=True))
    assert client.post(f"/me/consents/{waiting}/revoke", data={"csrf_token": token}).status_code == 404
    assert client.get(f"/me/consents/{waiting}/receipt").status_code == 404
    assert status_of(app, waiting) == "granted"


def test_the_receipt_downloads_as_the_signed_jws(
    app: Flask, client: FlaskClient, clock: FrozenClock, login_as: LoginAs
) -> None:
    citizen = login_as("A123456789", method="eid")
    (waiting,) = make_consents(app, clock, citizen, "A123456789", ["granted"])
    answer = client.get(f"/me/consents/{waiting}/receipt")
    assert answer.status_code == 200
    assert answer.mimetype == "application/jose"
    assert "attachment" in answer.headers["Content-Disposition"]
    assert answer.headers["Cache-Control"] == "no-store"
    with app.app_context(), get_db().unit_of_work() as uow:
        consent = uow.session.get(Consent, waiting)
        assert consent is not None
        assert answer.get_data(as_text=True) == consent.receipt


def test_an_expired_window_is_no_longer_waiting(
    app: Flask, client: FlaskClient, clock: FrozenClock, login_as: LoginAs
) -> None:
    citizen = login_as("A123456789", method="eid")
    (waiting,) = make_consents(app, clock, citizen, "A123456789", ["granted"])
    clock.advance(11 * 60)
    html = client.get("/me/consents?lang=en").get_data(as_text=True)
    assert f"/me/consents/{waiting}/revoke" not in html
    assert "Window passed" in text(client.get("/me/consents?lang=en"))


@pytest.mark.parametrize("lang", ["zh_Hant_TW", "en"])
def test_the_portal_pages_keep_the_page_rules(
    app: Flask, client: FlaskClient, clock: FrozenClock, login_as: LoginAs, lang: str
) -> None:
    citizen = login_as("A123456789", method="eid")
    (waiting,) = make_consents(app, clock, citizen, "A123456789", ["granted"])
    for path in ("/me", "/me/consents", f"/me/consents/{waiting}/revoke"):
        answer = client.get(f"{path}?lang={lang}")
        html = answer.get_data(as_text=True)
        assert answer.headers["Cache-Control"] == "no-store", path
        assert "style=" not in html, path  # CSP: style-src 'self'
        assert "<script>" not in html, path
        assert html.count("<h1") == 1, path
        current = re.findall(r'<a href="([^"]+)" aria-current="page"', html)
        assert current == [path if path != f"/me/consents/{waiting}/revoke" else "/me/consents"], path
        ids = re.findall(r'\sid="([^"]+)"', html)
        assert len(ids) == len(set(ids)), path


def test_the_dashboard_says_downloads_and_verifications_in_words(
    app: Flask, client: FlaskClient, login_as: LoginAs
) -> None:
    login_as("A123456789", method="eid")
    with app.app_context(), get_db().unit_of_work() as uow:
        for event, outcome in (("download.completed", "ok"), ("document.verified", "confirmed")):
            ledger(uow).append(
                LedgerEvent(
                    event=event,
                    actor="citizen",
                    subject_national_id="A123456789",
                    outcome=outcome,
                    datasets=("nhi.enrolment",),
                    consent_id="download-1",
                )
            )
        uow.commit()
    html = client.get("/me?lang=en").get_data(as_text=True)
    page = text(client.get("/me?lang=en"))
    assert "You downloaded your data" in page
    assert "Someone checked a document you downloaded" in page
    assert "download.completed" not in page
    assert "activity-failed" not in html  # a confirmed verification is no failure
