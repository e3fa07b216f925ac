"""Staff powers need a strong, fresh login: level high for every staff page and API call, and an
``auth_time`` of at most 15 minutes for an action that changes the platform (issue 10, item 3)."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from identity.services import grant_role
from mydata.clock import FrozenClock
from mydata.db import get_db
from relying_parties.models import APPROVED, PENDING, Organisation
from tests.factories.identity import LoginAs, eid_nonce, form_token, make_citizen, make_nhi_card, post_form, text
from tests.unit.relying_parties.conftest import BANK, bearer, make_organisation

pytestmark = pytest.mark.db

OPERATOR = "L200000002"  # 趙曉雯, the sandbox operator


@pytest.fixture
def operator(eid_app: Flask, clock: FrozenClock) -> str:
    """趙曉雯 with her NHI card and the operator role; the test bank applied and waits for approval."""
    with eid_app.app_context(), get_db().unit_of_work() as uow:
        citizen = make_citizen(uow, OPERATOR, clock.now())
        make_nhi_card(uow, citizen, clock.now())
        grant_role(uow, citizen.id, "operator", "platform", clock.now())
        make_organisation(uow, status=PENDING)
        return citizen.id


def status(app: Flask) -> str:
    with app.app_context(), get_db().unit_of_work() as uow:
        organisation = uow.session.get(Organisation, BANK)
        assert organisation is not None
        return organisation.status


def nhi_login(client: FlaskClient) -> None:
    done = post_form(client, "/login/nhi", {"card_number": "000011110006", "password": "Sandbox-2026"})
    assert done.status_code == 303


def eid_login(client: FlaskClient, step_up: str) -> TestResponse:
    """Follow a step-up URL: the login page at level high, then the eID card (PIN), as a browser would."""
    query = parse_qs(urlsplit(step_up).query)
    assert query["level"] == ["high"]
    assert query["prompt"] == ["login"]
    nonce = eid_nonce(client, step_up)
    form = {"national_id": OPERATOR, "pin": "123456", "nonce": nonce, "next": query["next"][0], "level": "high"}
    return post_form(client, "/login/eid", form)


def api_approve(client: FlaskClient) -> TestResponse:
    return client.post(f"/api/v1/organisations/{BANK}/approve", headers={"X-CSRFToken": form_token(client, "/me")})


def assert_step_up(response: TestResponse, *, max_age: bool) -> str:
    """Check an RFC 9470 step-up challenge; return its step-up URL."""
    assert response.status_code == 401
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith("Bearer ")
    assert 'error="insufficient_user_authentication"' in challenge
    assert 'acr_values="urn:mydata:loa:high"' in challenge
    assert ("max_age=900" in challenge) is max_age
    body = response.json
    assert body is not None
    assert body["error"] == "insufficient_user_authentication"
    assert body["error_description"]
    assert body["step_up"].startswith("/login?")
    return str(body["step_up"])


# -- acceptance 4: the operator JSON API ----------------------------------------------------------


def test_an_nhi_card_login_must_step_up_before_an_operator_action_then_it_completes(
    eid_app: Flask, client: FlaskClient, operator: str
) -> None:
    nhi_login(client)  # level low
    assert_step_up(client.get("/api/v1/organisations"), max_age=False)  # not even a view
    step_up = assert_step_up(api_approve(client), max_age=True)
    assert status(eid_app) == PENDING

    assert eid_login(client, step_up).status_code == 303
    approved = api_approve(client)
    assert approved.status_code == 200
    assert approved.json["status"] == APPROVED
    assert status(eid_app) == APPROVED


def test_a_login_older_than_15_minutes_may_view_but_must_log_in_again_to_act(
    eid_app: Flask, client: FlaskClient, operator: str, login_as: LoginAs, clock: FrozenClock
) -> None:
    login_as(OPERATOR, "eid")  # level high
    clock.advance(8 * 60)
    assert client.get("/api/v1/organisations").status_code == 200  # (keeps the session from going idle)
    clock.advance(8 * 60)
    assert client.get("/api/v1/organisations").status_code == 200  # 16 minutes after the login: may view
    step_up = assert_step_up(api_approve(client), max_age=True)
    assert status(eid_app) == PENDING

    assert eid_login(client, step_up).status_code == 303  # a fresh auth_time
    assert api_approve(client).status_code == 200


def test_a_fresh_high_login_acts_at_once(eid_app: Flask, client: FlaskClient, operator: str, login_as: LoginAs) -> None:
    login_as(OPERATOR, "eid")
    assert api_approve(client).status_code == 200


def test_the_operator_token_is_not_a_browser_session_and_keeps_working(
    eid_app: Flask, client: FlaskClient, operator: str, operator_token: str
) -> None:
    nhi_login(client)  # a weak session on the same client does not matter: the bearer token wins
    approved = client.post(f"/api/v1/organisations/{BANK}/approve", headers=bearer(operator_token))
    assert approved.status_code == 200
    issued = client.post(f"/api/v1/organisations/{BANK}/initial-access-token", headers=bearer(operator_token))
    assert issued.status_code == 201


def test_a_citizen_without_the_role_is_still_forbidden_at_any_level(
    eid_app: Flask, client: FlaskClient, login_as: LoginAs
) -> None:
    login_as("A123456789", "nhi_card")
    assert client.get("/api/v1/organisations").status_code == 403


def test_the_organisation_api_takes_no_staff_session(
    eid_app: Flask, client: FlaskClient, login_as: LoginAs, clock: FrozenClock
) -> None:
    # The RP developer acts for the organisation with its initial access token only (ADR 0004).
    developer = login_as("A123456789", "eid")
    with eid_app.app_context(), get_db().unit_of_work() as uow:
        make_organisation(uow)
        grant_role(uow, developer.citizen_id, "rp_developer", BANK, clock.now())
    assert client.get("/api/v1/organisation").status_code == 401


# -- acceptance 4: the operator's page ------------------------------------------------------------


def csrf(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found
    return found.group(1)


QUEUE = "/console/operator/organisations"  # the operator console's queue (it replaced /operator/organisations)
DECISION = f"{QUEUE}/{BANK}/decision"


def test_the_page_asks_a_weak_login_to_step_up_and_resumes_the_action_after_a_confirmation(
    eid_app: Flask, client: FlaskClient, operator: str
) -> None:
    nhi_login(client)
    viewed = client.get(QUEUE)
    assert viewed.status_code == 303
    assert parse_qs(urlsplit(viewed.headers["Location"]).query) == {
        "next": [QUEUE],
        "level": ["high"],
        "prompt": ["login"],
    }

    # The form was loaded before (the operator's tab from earlier): its POST is not carried out, but kept.
    token = form_token(client, "/me")
    posted = client.post(DECISION, data={"csrf_token": token, "action": "approve"})
    assert posted.status_code == 303
    step_up = posted.headers["Location"]
    assert parse_qs(urlsplit(step_up).query)["next"] == ["/console/operator/confirm"]
    assert status(eid_app) == PENDING

    logged_in = eid_login(client, step_up)
    assert logged_in.headers["Location"] == "/console/operator/confirm"
    assert status(eid_app) == PENDING  # never carried out silently after the login

    page = text(client.get("/console/operator/confirm?lang=en"))
    assert "Approve: Test Bank <code>test-bank</code>?" in page
    assert f'action="{DECISION}"' in page
    done = client.post(DECISION, data={"csrf_token": csrf(page), "action": "approve"})
    assert done.status_code == 303
    assert done.headers["Location"] == QUEUE
    assert status(eid_app) == APPROVED
    # Done once: nothing is left to confirm.
    assert client.get("/console/operator/confirm").headers["Location"] == "/console/operator"


def test_the_page_with_an_old_login_may_view_but_must_log_in_again_to_act(
    eid_app: Flask, client: FlaskClient, operator: str, login_as: LoginAs, clock: FrozenClock
) -> None:
    login_as(OPERATOR, "eid")
    clock.advance(8 * 60)
    assert client.get(QUEUE).status_code == 200
    clock.advance(8 * 60)
    page = client.get(f"{QUEUE}?lang=en")
    assert page.status_code == 200
    posted = client.post(DECISION, data={"csrf_token": csrf(text(page)), "action": "reject", "reason": "Not a bank."})
    assert posted.status_code == 303
    assert parse_qs(urlsplit(posted.headers["Location"]).query)["prompt"] == ["login"]
    assert status(eid_app) == PENDING

    assert eid_login(client, posted.headers["Location"]).status_code == 303
    confirm = text(client.get("/console/operator/confirm?lang=en"))
    assert "Reject: Test Bank <code>test-bank</code>?" in confirm
    assert ">Not a bank.</textarea>" in confirm
    data = {"csrf_token": csrf(confirm), "action": "reject", "reason": "Not a bank."}
    assert client.post(DECISION, data=data).status_code == 303
    assert status(eid_app) == "rejected"


@pytest.mark.parametrize(
    ("lang", "heading", "approve"), [("en", "Organisations", "Approve"), ("zh_Hant_TW", "機構", "核准")]
)
def test_the_page_lists_organisations_with_their_actions(
    eid_app: Flask, client: FlaskClient, operator: str, login_as: LoginAs, lang: str, heading: str, approve: str
) -> None:
    login_as(OPERATOR, "eid")
    response = client.get(f"{QUEUE}?lang={lang}")
    assert response.status_code == 200
    page = text(response)
    assert f"<h1>{heading}</h1>" in page
    assert "test-bank" in page
    assert f'action="{DECISION}"' in page
    assert f'value="approve">{approve}</button>' in page
    assert 'value="reject"' in page


def test_the_page_is_for_operators_only(eid_app: Flask, client: FlaskClient, login_as: LoginAs) -> None:
    assert client.get(QUEUE).headers["Location"].startswith("/login?")  # nobody logged in
    login_as("A123456789", "eid")
    assert client.get(QUEUE).status_code == 403


def test_an_action_kept_for_one_person_is_not_offered_to_another(
    eid_app: Flask, client: FlaskClient, operator: str, login_as: LoginAs, clock: FrozenClock
) -> None:
    nhi_login(client)
    client.post(DECISION, data={"csrf_token": form_token(client, "/me"), "action": "approve"})
    other = login_as("A123456789", "eid")  # someone else logs in on this browser, and is an operator too
    with eid_app.app_context(), get_db().unit_of_work() as uow:
        grant_role(uow, other.citizen_id, "operator", "platform", clock.now())
    assert client.get("/console/operator/confirm").headers["Location"] == "/console/operator"


def test_a_post_without_its_csrf_token_is_refused(
    eid_app: Flask, client: FlaskClient, operator: str, login_as: LoginAs
) -> None:
    login_as(OPERATOR, "eid")
    assert client.post(DECISION, data={"action": "approve"}).status_code == 400
    assert status(eid_app) == PENDING
