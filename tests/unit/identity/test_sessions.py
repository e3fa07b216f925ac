"""Login sessions: the contract for the OAuth server, timeouts, logout, rotation, cookie, next."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.test import TestResponse

from identity import sessions
from identity.models import LoginSession
from identity.sessions import ACR, LEVELS, current_authentication, level_at_least, login_url, safe_next
from mydata.clock import FrozenClock
from mydata.db import get_db
from tests.factories.identity import LoginAs, form_token, make_citizen, make_nhi_card, post_form, text


def test_levels_are_ordered_and_have_acr_values() -> None:
    assert LEVELS == ("low", "substantial", "high")
    assert ACR["substantial"] == "urn:mydata:loa:substantial"
    assert level_at_least("high", "substantial")
    assert level_at_least("substantial", "substantial")
    assert not level_at_least("low", "substantial")
    with pytest.raises(ValueError, match="medium"):
        level_at_least("medium", "low")


@pytest.mark.parametrize(
    "value",
    [
        "https://evil.example/",
        "//evil.example/x",
        "/\\evil.example",
        "\\\\evil.example",
        "javascript:alert(1)",
        "evil.example",
        "/ok\r\nSet-Cookie: x=1",
        "",
        None,
    ],
)
def test_next_outside_this_site_falls_back_to_the_account_page(value: str | None) -> None:
    assert safe_next(value) == "/me"


def test_next_on_this_site_is_kept() -> None:
    assert (
        safe_next("/oauth/authorize?request_uri=urn:x&client_id=c") == "/oauth/authorize?request_uri=urn:x&client_id=c"
    )


def test_login_url_carries_next_and_level(app: Flask) -> None:
    with app.test_request_context():
        assert (
            login_url("/oauth/authorize?x=1", "substantial") == "/login?next=/oauth/authorize?x%3D1&level=substantial"
        )
        assert login_url("/x", "high", reauthenticate=True) == "/login?next=/x&level=high&prompt=login"
        with pytest.raises(ValueError, match="unknown assurance level"):
            login_url("/x", "medium")


@pytest.mark.db
def test_current_authentication_describes_the_login(app: Flask, client: FlaskClient, login_as: LoginAs) -> None:
    opened = login_as("A123456789", "mobile")
    with app.test_request_context(headers={"Cookie": client_cookie(app, client)}):
        found = current_authentication()
    assert found is not None
    assert found == opened
    assert (found.national_id, found.name, found.level, found.amr) == (
        "A123456789",
        "王小明",
        "substantial",
        ("swk", "user"),
    )
    assert isinstance(found.auth_time, int)


def login_cookie(response: TestResponse) -> str:
    """Return the Set-Cookie header of the login cookie (the Flask session may set its own too)."""
    return next(h for h in response.headers.getlist("Set-Cookie") if "mydata_login=" in h.split(";")[0])


def client_cookie(app: Flask, client: FlaskClient) -> str:
    cookie = client.get_cookie(sessions.cookie_name(app))
    assert cookie is not None
    return f"{cookie.key}={cookie.value}"


@pytest.mark.db
def test_no_cookie_or_an_unknown_secret_is_nobody(app: Flask) -> None:
    with app.test_request_context():
        assert current_authentication() is None
    with app.test_request_context(headers={"Cookie": "mydata_login=made-up"}):
        assert current_authentication() is None


@pytest.mark.db
def test_idle_for_more_than_15_minutes_ends_the_session(
    app: Flask, client: FlaskClient, login_as: LoginAs, clock: FrozenClock
) -> None:
    login_as()
    clock.advance(14 * 60)
    assert client.get("/me").status_code == 200  # activity keeps it alive
    clock.advance(14 * 60)
    assert client.get("/me").status_code == 200
    clock.advance(15 * 60 + 1)
    expired = client.get("/me")
    assert expired.status_code == 303
    assert expired.headers["Location"] == "/login?next=/me&level=low"
    assert login_cookie(expired).startswith("mydata_login=;")  # the dead cookie is taken off
    with app.app_context(), get_db().unit_of_work() as uow:
        assert uow.session.scalars(select(LoginSession.end_reason)).one() == "idle"


@pytest.mark.db
def test_eight_hours_after_login_the_session_ends_even_when_active(
    app: Flask, client: FlaskClient, login_as: LoginAs, clock: FrozenClock
) -> None:
    login_as()
    for _ in range(47):  # a request every 10 minutes for 7 h 50 min
        clock.advance(10 * 60)
        assert client.get("/me").status_code == 200
    clock.advance(10 * 60 + 1)
    assert client.get("/me").status_code == 303
    with app.app_context(), get_db().unit_of_work() as uow:
        assert uow.session.scalars(select(LoginSession.end_reason)).one() == "expired"


@pytest.mark.db
def test_logout_ends_the_session_on_the_server(app: Flask, client: FlaskClient, login_as: LoginAs) -> None:
    login_as()
    secret = client.get_cookie(sessions.cookie_name(app))
    assert secret is not None
    token = form_token(client, "/me")
    response = client.post("/logout?lang=en", data={"csrf_token": token})
    assert response.status_code == 303
    assert response.headers["Location"] == "/login?logged_out=1"
    assert "You have logged out." in text(client.get("/login?logged_out=1&lang=en"))
    # Even a copy of the old cookie authenticates nobody now.
    client.set_cookie(secret.key, secret.value)
    assert client.get("/me").status_code == 303
    with app.app_context(), get_db().unit_of_work() as uow:
        assert uow.session.scalars(select(LoginSession.end_reason)).one() == "logout"


@pytest.mark.db
def test_logout_without_the_csrf_token_is_refused(client: FlaskClient, login_as: LoginAs) -> None:
    login_as()
    assert client.post("/logout").status_code == 400
    assert client.get("/me").status_code == 200


@pytest.mark.db
def test_login_rotates_the_cookie_and_a_planted_one_is_worthless(
    app: Flask, client: FlaskClient, login_as: LoginAs
) -> None:
    client.set_cookie("mydata_login", "planted-by-an-attacker")
    first = login_as("A123456789", "nhi_card")
    after_first = client.get_cookie("mydata_login")
    assert after_first is not None
    assert after_first.value != "planted-by-an-attacker"
    second = login_as("A123456789", "eid")  # same person, stronger: same session, new secret
    after_second = client.get_cookie("mydata_login")
    assert after_second is not None
    assert after_second.value != after_first.value
    assert second.session_id == first.session_id
    client.set_cookie("mydata_login", after_first.value)
    assert client.get("/me").status_code == 303


@pytest.mark.db
def test_someone_else_logging_in_on_the_browser_ends_the_previous_session(
    app: Flask, client: FlaskClient, login_as: LoginAs
) -> None:
    first = login_as("A123456789")
    second = login_as("B223456782")
    assert second.session_id != first.session_id
    with app.app_context(), get_db().unit_of_work() as uow:
        ended = uow.session.get(LoginSession, first.session_id)
        assert ended is not None
        assert ended.end_reason == "replaced"


@pytest.mark.db
def test_cookie_is_httponly_samesite_lax_and_not_secure_in_the_sandbox(app: Flask, client: FlaskClient) -> None:
    with app.app_context(), get_db().unit_of_work() as uow:
        card = make_nhi_card(uow, make_citizen(uow, "A123456789"))
    response = post_form(client, "/login/nhi", {"card_number": card, "password": "Sandbox-2026"})
    header = login_cookie(response)
    assert "HttpOnly" in header
    assert "SameSite=Lax" in header
    assert "Secure" not in header
    assert "Max-Age" not in header  # leaves with the browser; the server ends it anyway


@pytest.mark.db
def test_outside_the_sandbox_the_cookie_is_secure_and_host_only(
    app: Flask, client: FlaskClient, login_as: LoginAs
) -> None:
    app.config["SESSION_COOKIE_SECURE"] = True
    assert sessions.cookie_name(app) == "__Host-mydata_login"
    login_as()
    https = {"base_url": "https://localhost", "headers": {"Referer": "https://localhost/me"}}
    assert client.get("/me", **https).status_code == 200
    token = form_token(client, "/me")
    out = client.post("/logout", data={"csrf_token": token}, **https)
    header = login_cookie(out)
    assert header.startswith("__Host-mydata_login=;")
    assert "Secure" in header
    assert "HttpOnly" in header


@pytest.mark.db
def test_prompt_login_asks_again_and_renews_auth_time(
    app: Flask, client: FlaskClient, login_as: LoginAs, clock: FrozenClock
) -> None:
    first = login_as("A123456789", "mobile")
    assert client.get("/login?next=/x&level=substantial").headers["Location"] == "/x"
    page = text(client.get("/login?next=/x&level=substantial&prompt=login&lang=en"))
    assert "To continue, the service asks you to prove who you are once more." in page
    clock.advance(300)
    again = login_as("A123456789", "mobile")
    assert again.session_id == first.session_id
    assert again.auth_time == first.auth_time + 300
