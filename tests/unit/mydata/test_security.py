"""Personal data and tokens are never cached: every answer of those routes says no-store (issue 10 item 10)."""

from __future__ import annotations

import re

import pytest
from flask import Flask
from flask.testing import FlaskClient

from identity.sessions import Authentication
from mydata.security import never_stored
from tests.factories.identity import LoginAs
from tests.factories.oauth import TestRelyingParty
from tests.unit.identity.test_oauth import authorize, issuer, par, rp, signed_in, token_request, userinfo

__all__ = ["issuer", "rp", "signed_in"]  # fixtures of these tests

#: Public documents that may be cached on purpose.
CACHEABLE = {"/oauth/jwks"}


def _routes(app: Flask) -> list[tuple[str, str]]:
    """Return (method, path) of every route under the never-stored prefixes, placeholders filled."""
    routes = []
    for rule in app.url_map.iter_rules():
        path = re.sub(r"<[^>]+>", "x", rule.rule)
        if not never_stored(path) or path in CACHEABLE:
            continue
        routes += [(method, path) for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})]
    return routes


def test_the_walk_covers_the_routes_of_the_issue(app: Flask) -> None:
    paths = {path for _, path in _routes(app)}
    for path in (
        "/api/v1/me/consents", "/api/v1/me/history", "/api/v1/me/consents/x/revoke", "/api/v1/delivery",
        "/oauth/par", "/oauth/token", "/oauth/userinfo", "/oauth/introspect", "/oauth/revoke", "/oauth/register",
        "/oauth/authorize", "/oauth/interaction/x", "/me", "/login", "/login/nhi", "/logout",
    ):  # fmt: skip
        assert path in paths


@pytest.mark.parametrize("logged_in", [False, True], ids=["anonymous", "logged-in"])
@pytest.mark.parametrize("body", ["form", "json"])
def test_every_answer_of_personal_and_token_routes_says_no_store(
    app: Flask, client: FlaskClient, login_as: LoginAs, logged_in: bool, body: str
) -> None:
    if logged_in:
        login_as()
    seen = set()
    # Each route with its methods, a method it does not allow (405), and a path under it (404).
    calls = [*_routes(app), *[("PUT", path) for _, path in _routes(app)]]
    for method, path in calls:
        for suffix in ("", "/nothing-here"):
            kwargs = {"json": {"x": 1}} if body == "json" else {"data": {"x": "1"}}
            response = client.open(path + suffix, method=method, **kwargs)
            seen.add(response.status_code)
            where = f"{method} {path}{suffix} -> {response.status_code}"
            assert "no-store" in response.headers.get("Cache-Control", ""), where
            if path.startswith("/oauth/"):
                assert response.headers.get("Pragma") == "no-cache", where  # RFC 6749 §5.1
    assert {400, 401, 404, 405} <= seen  # error answers were walked too


def test_successful_oauth_answers_say_no_store(
    client: FlaskClient, rp: TestRelyingParty, issuer: str, signed_in: Authentication
) -> None:
    pushed = par(client, rp, issuer)
    assert pushed.status_code == 201
    query, verifier = authorize(client, rp, issuer)
    token = token_request(client, rp, issuer, query["code"], verifier)
    assert token.status_code == 200
    access_token = token.json["access_token"]
    answers = [
        pushed,
        token,
        userinfo(client, rp, issuer, access_token),
        client.post("/oauth/introspect", data={"token": access_token, **rp.client_auth(issuer)}),
        client.post("/oauth/revoke", data={"token": access_token, **rp.client_auth(issuer)}),
    ]
    for answer in answers:
        assert answer.status_code in (200, 201)
        assert answer.headers["Cache-Control"] == "no-store"
        assert answer.headers["Pragma"] == "no-cache"


def test_public_documents_stay_cacheable(client: FlaskClient, rp: TestRelyingParty) -> None:
    assert client.get("/oauth/jwks").headers["Cache-Control"] == "public, max-age=300"
    assert "no-store" not in client.get("/api/v1/catalogue").headers.get("Cache-Control", "")


def test_the_session_cookie_is_flasks_with_its_serializer_built_once(app: Flask) -> None:
    from flask.sessions import SecureCookieSessionInterface

    from mydata.security import SessionCookies

    ours = app.session_interface
    assert isinstance(ours, SessionCookies)
    flasks = SecureCookieSessionInterface()
    cookie = flasks.get_signing_serializer(app).dumps({"oauth_interactions": ["a"], "csrf_token": "t"})  # type: ignore[union-attr]
    assert ours.get_signing_serializer(app).loads(cookie) == {"oauth_interactions": ["a"], "csrf_token": "t"}  # type: ignore[union-attr]
    assert ours.get_signing_serializer(app) is ours.get_signing_serializer(app)
    app.config["SECRET_KEY_FALLBACKS"] = [app.secret_key]
    app.secret_key = "another key"
    assert ours.get_signing_serializer(app).loads(cookie)["csrf_token"] == "t"  # type: ignore[union-attr]
    assert flasks.get_signing_serializer(app).loads(  # type: ignore[union-attr]
        ours.get_signing_serializer(app).dumps({"x": 1})  # type: ignore[union-attr]
    ) == {"x": 1}
