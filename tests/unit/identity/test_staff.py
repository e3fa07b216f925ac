"""The staff rule of identity.staff: level high to view, and a login of the last 15 minutes to act."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask

from identity import staff
from identity.interfaces import StepUpRequired
from identity.sessions import Authentication
from mydata.clock import FrozenClock

NOW = 1_800_000_000


def login(level: str, age: int, now: int = NOW) -> Authentication:
    return Authentication("s", "c", "L200000002", "趙曉雯", level, ("sc",), now - age, "eid")


@pytest.mark.parametrize(
    ("authentication", "action", "reason"),
    [
        (None, False, "login"),
        (login("low", 0), False, "level"),
        (login("substantial", 0), True, "level"),
        (login("high", 8 * 3600), False, None),  # viewing: the ordinary session rules only
        (login("high", 900), True, None),
        (login("high", 901), True, "age"),
    ],
)
def test_the_rule(authentication: Authentication | None, action: bool, reason: str | None) -> None:
    assert staff.step_up_reason(authentication, NOW, action=action) == reason


def test_the_challenge_of_an_action_follows_rfc_9470(app: Flask) -> None:
    request = app.test_request_context("/api/v1/organisations/x/approve", method="POST")
    with request, pytest.raises(StepUpRequired) as raised:
        staff.require_staff_session(login("low", 0), action=True)
    error = raised.value
    assert error.status == 401
    assert error.headers["WWW-Authenticate"] == (
        'Bearer error="insufficient_user_authentication", error_description="Staff pages and APIs need the high '
        'assurance level: log in with your eID card.", acr_values="urn:mydata:loa:high", max_age=900'
    )
    body = error.to_dict()
    assert body["error"] == "insufficient_user_authentication"
    assert parse_qs(urlsplit(body["step_up"]).query) == {"next": ["/me"], "level": ["high"], "prompt": ["login"]}


def test_a_view_comes_back_to_itself_and_asks_no_max_age(app: Flask) -> None:
    with app.test_request_context("/operator/organisations?lang=en"), pytest.raises(StepUpRequired) as raised:
        staff.require_staff_session(login("low", 0), action=False)
    assert "max_age" not in raised.value.headers["WWW-Authenticate"]
    assert parse_qs(urlsplit(raised.value.step_up).query)["next"] == ["/operator/organisations?lang=en"]


def test_an_action_comes_back_to_the_page_it_was_sent_from_on_this_site_only(app: Flask, clock: FrozenClock) -> None:
    for referrer, back in (("http://localhost/operator/organisations", "/operator/organisations"),
                           ("https://evil.example/operator", "/me")):  # fmt: skip
        request = app.test_request_context("/api/v1/services/x/approve", method="POST", headers={"Referer": referrer})
        with request, pytest.raises(StepUpRequired) as raised:
            staff.require_staff_session(login("high", 3600, clock.timestamp()), action=True)
        assert parse_qs(urlsplit(raised.value.step_up).query)["next"] == [back]


def test_a_strong_login_of_the_last_15_minutes_passes(app: Flask, clock: FrozenClock) -> None:
    with app.test_request_context("/api/v1/organisations/x/approve", method="POST"):
        staff.require_staff_session(login("high", 900, clock.timestamp()), action=True)
