"""`prompt` and `max_age` (OIDC Core §3.1.2.1): refused when unknown, honoured in the browser (issue 10 item 6)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
from flask.testing import FlaskClient

from mydata.clock import FrozenClock
from tests.factories.identity import LoginAs
from tests.factories.oauth import TestRelyingParty
from tests.unit.identity.test_oauth import _csrf, par, token_request

pytestmark = pytest.mark.db


def start(client: FlaskClient, rp: TestRelyingParty, issuer: str, **params: str) -> tuple[str, str]:
    """Push a request with *params* and open it in the browser; return the interaction path and the verifier."""
    pushed = par(client, rp, issuer, **params)
    assert pushed.status_code == 201, pushed.json
    started = client.get(f"/oauth/authorize?client_id={rp.client_id}&request_uri={pushed.json['request_uri']}")
    assert started.status_code == 303
    return urlsplit(started.headers["Location"]).path, pushed.verifier


def answer_of(response: object, rp: TestRelyingParty) -> dict[str, str]:
    """Return the query of a 303 to the client's redirect URI."""
    assert response.status_code == 303  # type: ignore[attr-defined]
    location = response.headers["Location"]  # type: ignore[attr-defined]
    assert location.startswith(rp.redirect_uri + "?")
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def approve(client: FlaskClient, interaction: str) -> object:
    """Show the approval page and approve."""
    page = client.get(interaction)
    assert page.status_code == 200
    return client.post(interaction, data={"decision": "approve", "csrf_token": _csrf(page.get_data(as_text=True))})


# -- PAR refuses what it does not support ------------------------------------------------------------


@pytest.mark.parametrize(
    "params",
    [
        {"prompt": "select_account"},
        {"prompt": "none login"},
        {"prompt": "consent none"},
        {"prompt": "bogus"},
        {"prompt": ""},
        {"prompt": "login login"},
        {"max_age": "-1"},
        {"max_age": "ten"},
        {"max_age": "1e3"},
        {"max_age": " 60"},
        {"max_age": "99999999999999999999"},
    ],
)
def test_unknown_prompt_or_malformed_max_age_is_refused_at_par(
    client: FlaskClient, rp: TestRelyingParty, issuer: str, params: dict[str, str]
) -> None:
    response = par(client, rp, issuer, **params)
    assert response.status_code == 400
    assert response.json["error"] == "invalid_request"
    assert next(iter(params)) in response.json["error_description"]
    assert "Unknown parameters" not in response.json["error_description"]


@pytest.mark.parametrize(
    "params",
    [{"prompt": "none"}, {"prompt": "login"}, {"prompt": "consent"}, {"prompt": "login consent"}, {"max_age": "0"}],
)
def test_supported_prompt_and_max_age_are_accepted(
    client: FlaskClient, rp: TestRelyingParty, issuer: str, params: dict[str, str]
) -> None:
    assert par(client, rp, issuer, **{"max_age": "3600", **params}).status_code == 201


def test_discovery_states_the_supported_prompt_values(client: FlaskClient) -> None:
    assert client.get("/.well-known/openid-configuration").json["prompt_values_supported"] == [
        "none",
        "login",
        "consent",
    ]


# -- prompt=none: never a page, always an answer to the client -----------------------------------------


def test_prompt_none_without_a_session_answers_login_required(
    client: FlaskClient, rp: TestRelyingParty, issuer: str
) -> None:
    interaction, _ = start(client, rp, issuer, prompt="none")
    query = answer_of(client.get(interaction), rp)
    assert query["error"] == "login_required"
    assert query["iss"] == issuer  # RFC 9207
    assert query["state"] == "st-1"
    assert "code" not in query


def test_prompt_none_with_too_weak_a_session_answers_login_required(
    client: FlaskClient, rp: TestRelyingParty, issuer: str, login_as: LoginAs
) -> None:
    login_as(method="nhi_card")
    interaction, _ = start(client, rp, issuer, prompt="none", acr_values="urn:mydata:loa:high")
    assert answer_of(client.get(interaction), rp)["error"] == "login_required"


def test_prompt_none_with_a_session_answers_consent_required(
    client: FlaskClient, rp: TestRelyingParty, issuer: str, login_as: LoginAs
) -> None:
    login_as()
    interaction, _ = start(client, rp, issuer, prompt="none")
    query = answer_of(client.get(interaction), rp)
    assert query["error"] == "consent_required"
    assert query["iss"] == issuer
    assert query["state"] == "st-1"
    # The interaction is answered: it cannot be approved afterwards.
    assert client.get(interaction).status_code in (400, 404)


def test_prompt_none_with_a_session_older_than_max_age_answers_login_required(
    client: FlaskClient, rp: TestRelyingParty, issuer: str, login_as: LoginAs, clock: FrozenClock
) -> None:
    login_as()
    clock.advance(120)
    interaction, _ = start(client, rp, issuer, prompt="none", max_age="60")
    assert answer_of(client.get(interaction), rp)["error"] == "login_required"


# -- prompt=login and max_age: a fresh login, whose time the ID token carries ----------------------------


def _id_token(
    client: FlaskClient, rp: TestRelyingParty, issuer: str, query: dict[str, str], verifier: str, now: int
) -> dict:
    proof = rp.dpop("POST", f"{issuer}/oauth/token", iat=now)
    body = token_request(client, rp, issuer, query["code"], verifier, dpop=proof).json
    assert "id_token" in body, body
    return jwt.decode(body["id_token"], options={"verify_signature": False})  # type: ignore[no-any-return]


@pytest.mark.parametrize("params", [{"prompt": "login"}, {"max_age": "60"}, {"max_age": "0"}])
def test_prompt_login_and_max_age_force_a_fresh_login(
    client: FlaskClient,
    rp: TestRelyingParty,
    issuer: str,
    login_as: LoginAs,
    clock: FrozenClock,
    params: dict[str, str],
) -> None:
    first = login_as()
    clock.advance(120)
    interaction, verifier = start(client, rp, issuer, **params)
    refused = client.get(interaction)
    assert refused.status_code == 303
    target = urlsplit(refused.headers["Location"])
    assert target.path == "/login"
    assert parse_qs(target.query)["prompt"] == ["login"]
    assert parse_qs(target.query)["next"] == [interaction]
    # The login page asks again although the session is alive and strong enough ...
    login_page = client.get(refused.headers["Location"])
    assert login_page.status_code == 200
    # ... and a posted approval does not get past it either.
    token = _csrf(login_page.get_data(as_text=True))
    posted = client.post(interaction, data={"decision": "approve", "csrf_token": token})
    assert posted.status_code == 303
    assert posted.headers["Location"] == refused.headers["Location"]

    clock.advance(30)
    again = login_as()  # the citizen logs in again: same session, new auth_time
    assert again.session_id == first.session_id
    assert again.auth_time == first.auth_time + 150
    clock.advance(90)  # reading the consent screen takes time: the fresh login still counts
    query = answer_of(approve(client, interaction), rp)
    assert _id_token(client, rp, issuer, query, verifier, clock.timestamp())["auth_time"] == again.auth_time


def test_a_session_younger_than_max_age_is_enough(
    client: FlaskClient, rp: TestRelyingParty, issuer: str, login_as: LoginAs, clock: FrozenClock
) -> None:
    first = login_as()
    clock.advance(120)
    interaction, verifier = start(client, rp, issuer, max_age="600")
    query = answer_of(approve(client, interaction), rp)
    assert _id_token(client, rp, issuer, query, verifier, clock.timestamp())["auth_time"] == first.auth_time
