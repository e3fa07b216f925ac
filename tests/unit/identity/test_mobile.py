"""Mobile ID login: binding code, the phone's signed approval, polling, and the 120-second limit."""

from __future__ import annotations

import json
import re

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from identity import mobile
from identity.models import LoginSession, MobileRequest
from identity.sandbox.phones import SandboxPhones
from mydata.clock import FrozenClock
from mydata.db import get_db
from tests.factories.identity import make_citizen, post_form, text

pytestmark = pytest.mark.db


@pytest.fixture
def enrolled(app: Flask, phones: SandboxPhones) -> SandboxPhones:
    """王小明 and 林美華 have phones enrolled; 趙曉雯 has an account but no phone."""
    with app.app_context(), get_db().unit_of_work() as uow:
        for national_id in ("A123456789", "B223456782"):
            phones.enrol(uow, make_citizen(uow, national_id).id, national_id, app.extensions["mydata.clock"].now())
        make_citizen(uow, "L200000002")
    return phones


def start(client: FlaskClient, national_id: str = "A123456789", lang: str = "", **extra: str) -> object:
    return post_form(client, "/login/mobile", {"national_id": national_id, **extra}, lang)


def pending_request(app: Flask) -> MobileRequest:
    with app.app_context(), get_db().unit_of_work() as uow:
        request = uow.session.scalars(select(MobileRequest).order_by(MobileRequest.created_at.desc())).first()
        assert request is not None
        uow.session.expunge(request)
        return request


def check(client: FlaskClient, lang: str = "") -> object:
    return post_form(client, "/login/mobile/check" + (f"?lang={lang}" if lang else ""), {}, "")


def test_phone_approval_completes_the_login_at_level_substantial(
    app: Flask, client: FlaskClient, enrolled: SandboxPhones
) -> None:
    started = start(client)
    assert started.status_code == 303
    assert started.headers["Location"] == "/login/mobile/wait"
    request = pending_request(app)
    waiting = text(client.get("/login/mobile/wait?lang=en"))
    assert f'<p class="binding-code">{request.binding_code}</p>' in waiting
    assert 'aria-live="polite"' in waiting
    assert client.get("/login/mobile/status").json["status"] == "pending"

    approved = client.post("/sandbox/mobile-id/approve", json={"national_id": "A123456789"})
    assert approved.status_code == 200
    assert approved.json["binding_code"] == request.binding_code
    assert client.get("/login/mobile/status").json["status"] == "approved"

    done = check(client)
    assert done.status_code == 303
    assert done.headers["Location"] == "/me"
    with app.app_context(), get_db().unit_of_work() as uow:
        session = uow.session.scalars(select(LoginSession)).one()
        assert (session.level, session.amr, session.method) == ("substantial", ["swk", "user"], "mobile")


def test_without_javascript_check_again_keeps_waiting_until_approved(
    app: Flask, client: FlaskClient, enrolled: SandboxPhones
) -> None:
    start(client)
    early = check(client)
    assert early.status_code == 303
    assert early.headers["Location"] == "/login/mobile/wait?still=1"
    page = text(client.get("/login/mobile/wait?still=1&lang=en"))
    assert "Your phone has not approved the login yet." in page
    assert re.search(r'<form method="post" action="/login/mobile/check"', page)
    client.post("/sandbox/mobile-id/approve", json={"national_id": "A123456789"})
    assert check(client).headers["Location"] == "/me"


def test_signature_from_another_device_key_is_refused(app: Flask, client: FlaskClient, enrolled: SandboxPhones) -> None:
    start(client)
    request = pending_request(app)
    intruder = ec.generate_private_key(ec.SECP256R1())
    # Claims to be 王小明's phone (its kid) and signs the right values, with another key.
    approval = mobile.sign_approval(intruder, enrolled.device_id("A123456789"), mobile.approval_claims(request))
    refused = client.post("/api/v1/mobile-id/approvals", json={"approval": approval})
    assert refused.status_code == 403
    assert refused.json["error"] == "invalid_signature"
    assert client.get("/login/mobile/status").json["status"] == "pending"
    assert check(client).headers["Location"] == "/login/mobile/wait?still=1"


def test_another_persons_phone_cannot_approve(app: Flask, client: FlaskClient, enrolled: SandboxPhones) -> None:
    start(client)
    request = pending_request(app)
    other_phone = enrolled.key("B223456782")
    approval = mobile.sign_approval(other_phone, enrolled.device_id("B223456782"), mobile.approval_claims(request))
    refused = client.post("/api/v1/mobile-id/approvals", json={"approval": approval})
    assert refused.status_code == 404
    assert client.get("/login/mobile/status").json["status"] == "pending"


def test_approval_must_sign_the_binding_code_shown(app: Flask, client: FlaskClient, enrolled: SandboxPhones) -> None:
    start(client)
    claims = mobile.approval_claims(pending_request(app))
    claims["binding_code"] = "0000" if claims["binding_code"] != "0000" else "1111"
    approval = mobile.sign_approval(enrolled.key("A123456789"), enrolled.device_id("A123456789"), claims)
    refused = client.post("/api/v1/mobile-id/approvals", json={"approval": approval})
    assert (refused.status_code, refused.json["error"]) == (403, "invalid_signature")


def test_the_real_phone_api_accepts_a_valid_approval(app: Flask, client: FlaskClient, enrolled: SandboxPhones) -> None:
    start(client)
    claims = mobile.approval_claims(pending_request(app))
    approval = mobile.sign_approval(enrolled.key("A123456789"), enrolled.device_id("A123456789"), claims)
    accepted = client.post("/api/v1/mobile-id/approvals", json={"approval": approval})
    assert accepted.status_code == 200
    again = client.post("/api/v1/mobile-id/approvals", json={"approval": approval})
    assert (again.status_code, again.json["error"]) == (409, "request_not_pending")
    assert check(client).headers["Location"] == "/me"


def test_no_approval_in_120_seconds_ends_the_attempt(
    app: Flask, client: FlaskClient, enrolled: SandboxPhones, clock: FrozenClock
) -> None:
    start(client)
    clock.advance(119)
    assert client.get("/login/mobile/status").json["status"] == "pending"
    clock.advance(1)
    status = client.get("/login/mobile/status?lang=en").json
    assert status["status"] == "expired"
    assert "did not approve the login within 2 minutes" in status["message"]
    late = client.post("/sandbox/mobile-id/approve", json={"national_id": "A123456789"})
    assert late.status_code == 404  # nothing pending any more
    ended = check(client, "en")
    assert ended.status_code == 401
    assert "Your phone did not approve the login within 2 minutes, so this attempt has ended." in text(ended)
    assert client.get("/me").status_code == 303


def test_expired_message_in_chinese(
    app: Flask, client: FlaskClient, enrolled: SandboxPhones, clock: FrozenClock
) -> None:
    start(client)
    clock.advance(121)
    assert "2 分鐘內" in text(check(client, "zh_Hant_TW"))


def test_an_approval_arriving_late_is_refused(
    app: Flask, client: FlaskClient, enrolled: SandboxPhones, clock: FrozenClock
) -> None:
    start(client)
    claims = mobile.approval_claims(pending_request(app))
    approval = mobile.sign_approval(enrolled.key("A123456789"), enrolled.device_id("A123456789"), claims)
    clock.advance(121)
    late = client.post("/api/v1/mobile-id/approvals", json={"approval": approval})
    assert (late.status_code, late.json["error"]) == (410, "request_expired")


def test_simulator_lists_pending_requests_with_binding_codes(
    app: Flask, client: FlaskClient, enrolled: SandboxPhones
) -> None:
    start(client)
    code = pending_request(app).binding_code
    page = text(client.get("/sandbox/mobile-id?lang=en"))
    assert "王小明" in page
    assert code in page
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token
    approved = client.post("/sandbox/mobile-id", data={"csrf_token": token.group(1), "national_id": "A123456789"})
    assert approved.headers["Location"] == f"/sandbox/mobile-id?approved={code}"
    assert f"Approved the request with binding code {code}" in text(
        client.get(approved.headers["Location"] + "&lang=en")
    )
    assert check(client).headers["Location"] == "/me"


def test_simulator_json_needs_a_json_body(client: FlaskClient, enrolled: SandboxPhones) -> None:
    refused = client.post("/sandbox/mobile-id/approve", data={"national_id": "A123456789"})
    assert refused.status_code == 400
    assert refused.json["error"] == "invalid_request"


def test_waiting_page_without_a_request_goes_back_to_login(client: FlaskClient) -> None:
    assert client.get("/login/mobile/wait").headers["Location"] == "/login"
    assert client.get("/login/mobile/status").json["status"] == "none"


def test_starts_are_capped_per_address(client: FlaskClient, enrolled: SandboxPhones) -> None:
    # Each start pushes to a phone: ten a minute from one address, then 429.
    for _ in range(10):
        assert start(client).status_code == 303
    assert start(client).status_code == 429


@pytest.mark.parametrize("approval", ["not a jws", "e30.e30.e30"])
def test_garbage_approvals_are_refused(client: FlaskClient, enrolled: SandboxPhones, approval: str) -> None:
    refused = client.post("/api/v1/mobile-id/approvals", json={"approval": approval})
    assert (refused.status_code, refused.json["error"]) == (403, "invalid_signature")


def test_an_approval_needs_its_type_header(app: Flask, client: FlaskClient, enrolled: SandboxPhones) -> None:
    start(client)
    claims = mobile.approval_claims(pending_request(app))
    untyped = jwt.api_jws.encode(
        json.dumps(claims).encode(), enrolled.key("A123456789"), "ES256", {"kid": enrolled.device_id("A123456789")}
    )
    refused = client.post("/api/v1/mobile-id/approvals", json={"approval": untyped})
    assert refused.status_code == 403
    assert client.post("/api/v1/mobile-id/approvals", json={}).status_code == 400


def normalised(page: str) -> str:
    """Return a page without what differs by chance (binding code, CSRF token, eID nonce)."""
    page = re.sub(r'<p class="binding-code">[0-9]{4}</p>', '<p class="binding-code">CODE</p>', page)
    return re.sub(r'name="(csrf_token|nonce)" value="[^"]*"', r'name="\1" value=""', page)


def waiting_page(client: FlaskClient, path: str) -> str:
    """Return a page of the mobile flow, normalised."""
    return normalised(text(client.get(path)))


def test_an_unknown_id_or_one_without_a_phone_waits_and_times_out_like_a_real_one(
    app: Flask, enrolled: SandboxPhones, clock: FrozenClock
) -> None:
    # 王小明 has a phone, 趙曉雯 an account without one, H120000004 no account at all.
    people = {national_id: app.test_client() for national_id in ("A123456789", "L200000002", "H120000004")}
    seen: dict[str, list[object]] = {national_id: [] for national_id in people}
    for national_id, browser in people.items():
        started = start(browser, national_id, "en")
        seen[national_id] += [started.status_code, started.headers.get("Location")]
        seen[national_id].append(waiting_page(browser, "/login/mobile/wait?lang=en"))
    clock.advance(60)
    for national_id, browser in people.items():
        seen[national_id].append(browser.get("/login/mobile/status?lang=en").json)
        still = check(browser)
        seen[national_id] += [still.status_code, still.headers.get("Location")]
        seen[national_id].append(waiting_page(browser, "/login/mobile/wait?still=1&lang=en"))
    clock.advance(60)
    for national_id, browser in people.items():
        seen[national_id].append(browser.get("/login/mobile/status?lang=en").json)
        ended = check(browser, "en")
        seen[national_id] += [ended.status_code, normalised(text(ended))]
        seen[national_id].append(browser.get("/me").status_code)

    real = seen["A123456789"]
    assert real[:2] == [303, "/login/mobile/wait"]
    assert real[3]["status"] == "pending"  # type: ignore[index]
    assert real[7]["status"] == "expired"  # type: ignore[index]
    assert real[8] == 401
    assert "Your phone did not approve the login within 2 minutes" in str(real[9])
    assert seen["L200000002"] == real
    assert seen["H120000004"] == real


def test_nobody_can_approve_a_request_for_an_unknown_id(
    app: Flask, client: FlaskClient, enrolled: SandboxPhones
) -> None:
    start(client, "H120000004")
    request = pending_request(app)
    # Not even a valid signature of an enrolled phone over the request's own values.
    approval = mobile.sign_approval(
        enrolled.key("A123456789"), enrolled.device_id("A123456789"), mobile.approval_claims(request)
    )
    refused = client.post("/api/v1/mobile-id/approvals", json={"approval": approval})
    assert (refused.status_code, refused.json["error"]) == (404, "no_pending_request")
    assert client.post("/sandbox/mobile-id/approve", json={"national_id": "H120000004"}).status_code == 404
    assert "H120000004" not in text(client.get("/sandbox/mobile-id?lang=en"))
