"""Step-up: a session too weak for a service is asked for a stronger method, then resumes ``next``."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from identity.models import LoginSession
from identity.sandbox.phones import SandboxPhones
from mydata.db import get_db
from tests.factories.identity import LoginAs, make_citizen, make_nhi_card, post_form, text

pytestmark = pytest.mark.db

NEXT = "/oauth/authorize?client_id=sandbox-bank&request_uri=urn:ietf:params:oauth:request_uri:abc"


def step_up(level: str) -> str:
    """Return the URL the OAuth server sends a citizen to (what identity.sessions.login_url builds)."""
    return "/login?" + urlencode({"next": NEXT, "level": level})


@pytest.fixture
def citizen(app: Flask, phones: SandboxPhones) -> str:
    """王小明 with his NHI card and his phone."""
    with app.app_context(), get_db().unit_of_work() as uow:
        citizen = make_citizen(uow, "A123456789")
        make_nhi_card(uow, citizen)
        phones.enrol(uow, citizen.id, "A123456789", app.extensions["mydata.clock"].now())
        return citizen.id


def test_low_session_steps_up_with_mobile_id_and_resumes_next(app: Flask, client: FlaskClient, citizen: str) -> None:
    assert (
        post_form(client, "/login/nhi", {"card_number": "000011110001", "password": "Sandbox-2026"}).status_code == 303
    )
    old_cookie = client.get_cookie("mydata_login")
    assert old_cookie is not None

    page = text(client.get(step_up("substantial") + "&lang=en"))
    assert (
        "This service needs the substantial assurance level. You are logged in with NHI card, which gives low. "
        "To continue, use mobile ID or your eID card." in page
    )
    assert 'id="mobile-section"' in page
    assert 'id="nhi_card-section"' not in page
    assert f'name="next" value="{NEXT}"' in page.replace("&amp;", "&")

    started = post_form(client, "/login/mobile", {"national_id": "A123456789", "next": NEXT, "level": "substantial"})
    assert started.headers["Location"] == "/login/mobile/wait"
    assert client.post("/sandbox/mobile-id/approve", json={"national_id": "A123456789"}).status_code == 200
    done = post_form(client, "/login/mobile/check", {})
    assert done.status_code == 303
    assert done.headers["Location"] == NEXT

    with app.app_context(), get_db().unit_of_work() as uow:
        only = uow.session.scalars(select(LoginSession)).one()  # the same session, upgraded
        assert (only.level, only.amr, only.method, only.ended_at) == ("substantial", ["swk", "user"], "mobile", None)
    client.set_cookie(old_cookie.key, old_cookie.value)
    assert client.get("/me").status_code == 303  # the pre-step-up secret was replaced


def test_chinese_step_up_explanation(client: FlaskClient, login_as: LoginAs) -> None:
    login_as("A123456789", "nhi_card")
    page = text(client.get(step_up("substantial") + "&lang=zh_Hant_TW"))
    assert "這項服務需要「中」驗證等級" in page
    assert "請改用行動自然人憑證或自然人憑證" in page


def test_a_weak_method_posted_anyway_is_refused(client: FlaskClient, citizen: str) -> None:
    response = post_form(
        client,
        "/login/nhi",
        {"card_number": "000011110001", "password": "Sandbox-2026", "next": NEXT, "level": "substantial"},
        "en",
    )
    assert response.status_code == 403
    assert "NHI card is not strong enough for this service, which needs the substantial assurance level." in text(
        response
    )
    assert client.get("/me").status_code == 303


def test_high_is_offered_only_the_eid_card(client: FlaskClient, login_as: LoginAs) -> None:
    login_as("A123456789", "mobile")
    page = text(client.get(step_up("high") + "&lang=en"))
    assert "To continue, use your eID card." in page
    assert 'id="mobile-section"' not in page
    assert 'id="nhi_card-section"' not in page


def test_a_strong_enough_session_goes_straight_to_next(client: FlaskClient, login_as: LoginAs) -> None:
    login_as("A123456789", "eid")
    response = client.get(step_up("substantial"))
    assert response.status_code == 303
    assert response.headers["Location"] == NEXT


def test_without_a_session_the_level_limits_the_methods(client: FlaskClient) -> None:
    page = text(client.get(step_up("substantial") + "&lang=en"))
    assert "This service needs the substantial assurance level, so only mobile ID or your eID card can be used." in page
    assert 'id="nhi_card-section"' not in page


def test_an_unknown_level_is_a_bad_request(client: FlaskClient) -> None:
    assert client.get("/login?level=medium").status_code == 400


def test_a_foreign_next_is_ignored(client: FlaskClient, citizen: str) -> None:
    response = post_form(
        client, "/login/nhi", {"card_number": "000011110001", "password": "Sandbox-2026", "next": "//evil.example/"}
    )
    assert response.headers["Location"] == "/me"
