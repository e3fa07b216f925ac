"""The authorization server refuses what FAPI 2.0 forbids, each with the RFC's error (security-profile.md)."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
from flask import Flask
from flask.testing import FlaskClient
from joserfc.jwk import ECKey
from werkzeug.datastructures import MultiDict

from identity.oauth import services
from identity.oauth.clients import register_client
from identity.oauth.interfaces import ConsentDecision, InteractionNotFound, InvalidClientMetadata, ResolvedDetails
from identity.oauth.services import register_details_type
from identity.sessions import Authentication
from mydata.clock import FrozenClock
from mydata.db import get_db, unit_of_work
from mydata.keys import key_store
from tests.factories.identity import make_citizen
from tests.factories.oauth import TestRelyingParty, hmac_key, pkce_pair, rsa_key

REDIRECT_URI = "https://rp.example/callback"


@pytest.fixture
def issuer(app: Flask) -> str:
    """Return the issuer identifier; the test client's URLs are under it."""
    return str(app.config["MYDATA_ISSUER"])


@pytest.fixture
def rp(app: Flask, clock: FrozenClock) -> TestRelyingParty:
    """Register a relying party client and the platform's signing key."""
    relying_party = TestRelyingParty(client_id="test-bank", redirect_uri=REDIRECT_URI)
    with app.app_context(), get_db().unit_of_work() as uow:
        key_store(uow).rotate()
        register_client(
            uow,
            clock,
            name="測試銀行",
            jwks=relying_party.jwks(),
            redirect_uris=[REDIRECT_URI],
            sandbox=True,
            organisation_id="test-bank-org",
            client_id=relying_party.client_id,
        )
    return relying_party


@pytest.fixture
def signed_in(app: Flask, monkeypatch: pytest.MonkeyPatch, clock: FrozenClock) -> Authentication:
    """Log a citizen in (the login pages are tested in their own module)."""
    with app.app_context(), get_db().unit_of_work() as uow:
        citizen = make_citizen(uow, "A123456789")
    authentication = Authentication(
        session_id="s1",
        citizen_id=citizen.id,
        national_id="A123456789",
        name="王小明",
        level="high",
        amr=("sc", "pin", "hwk"),
        auth_time=clock.timestamp(),
        method="eid",
    )
    monkeypatch.setattr("identity.oauth.views.current_authentication", lambda: authentication)
    return authentication


def par(
    client: FlaskClient,
    rp: TestRelyingParty,
    issuer: str,
    *,
    headers: dict[str, str] | None = None,
    auth: dict[str, str] | None = None,
    **overrides: Any,
) -> Any:
    """Push an authorization request; *overrides* replace (or with None remove) parameters."""
    verifier, challenge = pkce_pair()
    params: dict[str, Any] = {
        "response_type": "code",
        "client_id": rp.client_id,
        "redirect_uri": rp.redirect_uri,
        "scope": "openid",
        "state": "st-1",
        "nonce": "n-1",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    for name, value in overrides.items():
        if value is None:
            params.pop(name, None)
        else:
            params[name] = value
    form = {**params, **(auth if auth is not None else rp.client_auth(issuer))}
    response = client.post("/oauth/par", data=form, headers=headers or {})
    response.verifier = verifier
    return response


def authorize(client: FlaskClient, rp: TestRelyingParty, issuer: str, **overrides: Any) -> tuple[dict[str, str], str]:
    """Run PAR, authorize and approval; return the redirect's query and the code verifier."""
    pushed = par(client, rp, issuer, **overrides)
    assert pushed.status_code == 201, pushed.json
    started = client.get(f"/oauth/authorize?client_id={rp.client_id}&request_uri={pushed.json['request_uri']}")
    assert started.status_code == 303
    page = client.get(started.headers["Location"])
    assert page.status_code == 200
    token = _csrf(page.get_data(as_text=True))
    answer = client.post(started.headers["Location"], data={"decision": "approve", "csrf_token": token})
    assert answer.status_code == 303
    location = answer.headers["Location"]
    assert location.startswith(rp.redirect_uri)
    query = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
    return query, pushed.verifier


def _csrf(page: str) -> str:
    marker = 'name="csrf_token" value="'
    start = page.index(marker) + len(marker)
    return page[start : page.index('"', start)]


def token_request(
    client: FlaskClient,
    rp: TestRelyingParty,
    issuer: str,
    code: str,
    verifier: str | None,
    *,
    dpop: str | bool | None = True,
    **auth_kwargs: Any,
) -> Any:
    """Exchange a code; `dpop=True` makes a valid proof, a string is sent as is, None sends none."""
    headers = {}
    if dpop is True:
        headers["DPoP"] = rp.dpop("POST", f"{issuer}/oauth/token")
    elif isinstance(dpop, str):
        headers["DPoP"] = dpop
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": rp.redirect_uri,
        **rp.client_auth(issuer, **auth_kwargs),
    }
    if verifier is not None:
        form["code_verifier"] = verifier
    return client.post("/oauth/token", data=form, headers=headers)


def userinfo(client: FlaskClient, rp: TestRelyingParty, issuer: str, access_token: str, **dpop_kwargs: Any) -> Any:
    """Call userinfo with the token and a proof."""
    proof = rp.dpop("GET", f"{issuer}/oauth/userinfo", access_token=access_token, **dpop_kwargs)
    return client.get("/oauth/userinfo", headers={"Authorization": f"DPoP {access_token}", "DPoP": proof})


# -- discovery ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"])
def test_discovery_states_the_fapi_profile(client: FlaskClient, issuer: str, path: str) -> None:
    document = client.get(path).json
    assert document["issuer"] == issuer
    assert document["require_pushed_authorization_requests"] is True
    assert document["code_challenge_methods_supported"] == ["S256"]
    assert document["token_endpoint_auth_methods_supported"] == ["private_key_jwt"]
    assert set(document["dpop_signing_alg_values_supported"]) == {"ES256", "PS256"}
    assert document["authorization_response_iss_parameter_supported"] is True
    assert document["acr_values_supported"] == [
        "urn:mydata:loa:low",
        "urn:mydata:loa:substantial",
        "urn:mydata:loa:high",
    ]
    assert document["authorization_details_types_supported"] == ["mydata_delivery"]
    assert document["jwks_uri"] == f"{issuer}/oauth/jwks"


def test_jwks_publishes_the_platform_key(client: FlaskClient, rp: TestRelyingParty) -> None:
    keys = client.get("/oauth/jwks").json["keys"]
    assert len(keys) == 1
    assert keys[0]["alg"] == "ES256"
    assert "d" not in keys[0]


# -- the whole flow ----------------------------------------------------------------------------------


@pytest.mark.db
def test_complete_flow_issues_a_dpop_bound_token_and_an_id_token(
    client: FlaskClient, rp: TestRelyingParty, issuer: str, signed_in: Authentication
) -> None:
    query, verifier = authorize(client, rp, issuer)
    assert query["iss"] == issuer  # RFC 9207
    assert query["state"] == "st-1"
    response = token_request(client, rp, issuer, query["code"], verifier)
    assert response.status_code == 200, response.json
    body = response.json
    assert body["token_type"] == "DPoP"
    assert "refresh_token" not in body
    assert response.headers["Cache-Control"] == "no-store"
    jwks = jwt.PyJWKSet.from_dict(client.get("/oauth/jwks").json)
    header = jwt.get_unverified_header(body["id_token"])
    claims = jwt.decode(
        body["id_token"], jwks[header["kid"]].key, algorithms=["ES256"], audience=rp.client_id, issuer=issuer
    )
    assert claims["acr"] == "urn:mydata:loa:high"
    assert claims["amr"] == ["sc", "pin", "hwk"]
    assert claims["nonce"] == "n-1"
    assert claims["auth_time"] == signed_in.auth_time
    assert claims["sub"] != signed_in.national_id
    info = userinfo(client, rp, issuer, body["access_token"])
    assert info.status_code == 200, info.json
    assert info.json["sub"] == claims["sub"]


def test_pairwise_subjects_differ_between_organisations(
    app: Flask, client: FlaskClient, rp: TestRelyingParty, issuer: str, signed_in: Authentication, clock: FrozenClock
) -> None:
    other = TestRelyingParty(client_id="test-school", redirect_uri="https://school.example/cb")
    with app.app_context(), get_db().unit_of_work() as uow:
        register_client(
            uow,
            clock,
            name="測試學校",
            jwks=other.jwks(),
            redirect_uris=[other.redirect_uri],
            sandbox=True,
            organisation_id="school-org",
            client_id=other.client_id,
        )
    subjects = []
    for party in (rp, other):
        query, verifier = authorize(client, party, issuer)
        body = token_request(client, party, issuer, query["code"], verifier).json
        subjects.append(jwt.decode(body["id_token"], options={"verify_signature": False})["sub"])
    assert subjects[0] != subjects[1]


def test_citizen_denying_sends_access_denied_with_iss(
    client: FlaskClient, rp: TestRelyingParty, issuer: str, signed_in: Authentication
) -> None:
    pushed = par(client, rp, issuer)
    started = client.get(f"/oauth/authorize?client_id={rp.client_id}&request_uri={pushed.json['request_uri']}")
    page = client.get(started.headers["Location"]).get_data(as_text=True)
    answer = client.post(started.headers["Location"], data={"decision": "deny", "csrf_token": _csrf(page)})
    assert answer.status_code == 303
    query = parse_qs(urlsplit(answer.headers["Location"]).query)
    assert query["error"] == ["access_denied"]
    assert query["iss"] == [issuer]


def test_not_logged_in_sees_the_login_page_at_the_needed_level(
    client: FlaskClient, rp: TestRelyingParty, issuer: str
) -> None:
    pushed = par(client, rp, issuer, acr_values="urn:mydata:loa:substantial")
    started = client.get(f"/oauth/authorize?client_id={rp.client_id}&request_uri={pushed.json['request_uri']}")
    interaction = urlsplit(started.headers["Location"]).path
    login = client.get(f"{interaction}?lang=en")
    assert login.status_code == 200  # the login page itself, without another redirect
    page = login.get_data(as_text=True)
    assert 'action="/login/mobile"' in page
    assert 'action="/login/nhi"' not in page  # only the methods strong enough are offered
    assert f'<input type="hidden" name="next" value="{interaction}">' in page
    assert '<input type="hidden" name="level" value="substantial">' in page
    # A form posted after the session ended still goes to the login page, by redirect.
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token is not None
    posted = client.post(interaction, data={"decision": "approve", "csrf_token": token.group(1)})
    assert posted.status_code == 303
    target = urlsplit(posted.headers["Location"])
    assert target.path == "/login"
    assert parse_qs(target.query)["level"] == ["substantial"]
    assert parse_qs(target.query)["next"] == [interaction]


# -- refusals: PAR and authorize --------------------------------------------------------------------


def test_authorize_without_par_is_refused(client: FlaskClient, rp: TestRelyingParty) -> None:
    response = client.get(
        f"/oauth/authorize?client_id={rp.client_id}&response_type=code&redirect_uri={REDIRECT_URI}&scope=openid"
    )
    assert response.status_code == 400
    assert "invalid_request" in response.get_data(as_text=True)
    assert "Location" not in response.headers


def test_plain_pkce_is_refused(client: FlaskClient, rp: TestRelyingParty, issuer: str) -> None:
    response = par(client, rp, issuer, code_challenge_method="plain")
    assert response.status_code == 400
    assert response.json["error"] == "invalid_request"


def test_pkce_is_required(client: FlaskClient, rp: TestRelyingParty, issuer: str) -> None:
    response = par(client, rp, issuer, code_challenge=None, code_challenge_method=None)
    assert response.status_code == 400
    assert response.json["error"] == "invalid_request"


@pytest.mark.parametrize(
    "redirect_uri", [REDIRECT_URI + "/", REDIRECT_URI + "?x=1", "https://evil.example/callback", REDIRECT_URI.upper()]
)
def test_redirect_uri_must_match_exactly(
    client: FlaskClient, rp: TestRelyingParty, issuer: str, redirect_uri: str
) -> None:
    response = par(client, rp, issuer, redirect_uri=redirect_uri)
    assert response.status_code == 400
    assert response.json["error"] == "invalid_request"


def test_request_uri_is_single_use(client: FlaskClient, rp: TestRelyingParty, issuer: str) -> None:
    request_uri = par(client, rp, issuer).json["request_uri"]
    url = f"/oauth/authorize?client_id={rp.client_id}&request_uri={request_uri}"
    assert client.get(url).status_code == 303
    again = client.get(url)
    assert again.status_code == 400
    assert "invalid_request_uri" in again.get_data(as_text=True)


def test_request_uri_expires_after_90_seconds(
    client: FlaskClient, rp: TestRelyingParty, issuer: str, clock: FrozenClock
) -> None:
    request_uri = par(client, rp, issuer).json["request_uri"]
    clock.advance(91)
    response = client.get(f"/oauth/authorize?client_id={rp.client_id}&request_uri={request_uri}")
    assert response.status_code == 400
    assert "invalid_request_uri" in response.get_data(as_text=True)


def test_request_uri_of_another_client_is_refused(client: FlaskClient, rp: TestRelyingParty, issuer: str) -> None:
    request_uri = par(client, rp, issuer).json["request_uri"]
    response = client.get(f"/oauth/authorize?client_id=someone-else&request_uri={request_uri}")
    assert "invalid_request_uri" in response.get_data(as_text=True)


def test_scope_must_include_openid(client: FlaskClient, rp: TestRelyingParty, issuer: str) -> None:
    response = par(client, rp, issuer, scope="profile")
    assert response.status_code == 400
    assert response.json["error"] == "invalid_scope"


def test_response_type_other_than_code_is_refused(client: FlaskClient, rp: TestRelyingParty, issuer: str) -> None:
    assert par(client, rp, issuer, response_type="token").json["error"] == "unsupported_response_type"


def test_repeated_parameter_is_refused(client: FlaskClient, rp: TestRelyingParty, issuer: str) -> None:
    form = MultiDict([("response_type", "code"), ("scope", "openid"), ("scope", "openid")])
    form.update(rp.client_auth(issuer))
    response = client.post("/oauth/par", data=form)
    assert response.json["error"] == "invalid_request"


@pytest.mark.parametrize(
    ("details", "reason"),
    [
        ("not json", "not JSON"),
        (json.dumps({"type": "mydata_delivery"}), "array"),
        (json.dumps([{"type": "payment_initiation"}]), "Unsupported"),
        (json.dumps([{"type": "mydata_delivery"}]), "service"),
        (json.dumps([{"type": "mydata_delivery", "service": "s", "datasets": []}]), "datasets"),
        (json.dumps([{"type": "mydata_delivery", "service": "s", "purpose": "x"}]), "Unknown"),
    ],
)
def test_invalid_authorization_details_are_refused(
    client: FlaskClient, rp: TestRelyingParty, issuer: str, details: str, reason: str
) -> None:
    response = par(client, rp, issuer, authorization_details=details)
    assert response.status_code == 400
    assert response.json["error"] == "invalid_authorization_details"
    assert reason in response.json["error_description"]


def test_valid_authorization_details_are_accepted(
    app: Flask, client: FlaskClient, rp: TestRelyingParty, issuer: str
) -> None:
    # What a service grants is the relying_parties validator's business (tested there); the server
    # accepts an entry its type's validator accepts.
    register_details_type(app, "mydata_delivery", lambda detail, client_id: ResolvedDetails(detail=detail))
    app.extensions.pop("identity.consent_flow")  # the consent lifecycle is tested in tests/unit/consent
    details = [{"type": "mydata_delivery", "service": "sandbox-bank.credit-card", "datasets": ["tax.income"]}]
    assert par(client, rp, issuer, authorization_details=json.dumps(details)).status_code == 201


# -- refusals: client authentication -----------------------------------------------------------------


@pytest.mark.parametrize(("alg", "make_key"), [("RS256", rsa_key), ("HS256", hmac_key)])
def test_rs256_and_hs256_assertions_are_refused(
    client: FlaskClient, rp: TestRelyingParty, issuer: str, alg: str, make_key: Callable[[], Any]
) -> None:
    response = par(client, rp, issuer, auth=rp.client_auth(issuer, alg=alg, key=make_key()))
    assert response.json["error"] == "invalid_client"


def test_assertion_signed_by_an_unregistered_key_is_refused(
    client: FlaskClient, rp: TestRelyingParty, issuer: str
) -> None:
    stranger = ECKey.generate_key("P-256")
    assert par(client, rp, issuer, auth=rp.client_auth(issuer, key=stranger)).json["error"] == "invalid_client"


def test_reused_assertion_jti_is_refused(client: FlaskClient, rp: TestRelyingParty, issuer: str) -> None:
    assert par(client, rp, issuer, auth=rp.client_auth(issuer, jti="same-jti")).status_code == 201
    again = par(client, rp, issuer, auth=rp.client_auth(issuer, jti="same-jti"))
    assert again.json["error"] == "invalid_client"


@pytest.mark.parametrize("audience", ["https://elsewhere.example", "{issuer}/oauth/token", "{issuer}/oauth/par"])
def test_assertion_for_another_audience_is_refused(
    client: FlaskClient, rp: TestRelyingParty, issuer: str, audience: str
) -> None:
    response = par(client, rp, issuer, auth=rp.client_auth(audience.format(issuer=issuer)))
    assert response.json["error"] == "invalid_client"


def test_assertion_living_more_than_five_minutes_is_refused(
    client: FlaskClient, rp: TestRelyingParty, issuer: str
) -> None:
    response = par(client, rp, issuer, auth=rp.client_auth(issuer, lifetime=3600))
    assert response.json["error"] == "invalid_client"


def test_expired_assertion_is_refused(client: FlaskClient, rp: TestRelyingParty, issuer: str) -> None:
    response = par(client, rp, issuer, auth=rp.client_auth(issuer, now=int(time.time()) - 600))
    assert response.json["error"] == "invalid_client"


# -- refusals: the token endpoint --------------------------------------------------------------------


@pytest.mark.db
def test_missing_code_verifier_is_refused(
    client: FlaskClient, rp: TestRelyingParty, issuer: str, signed_in: Authentication
) -> None:
    query, _ = authorize(client, rp, issuer)
    response = token_request(client, rp, issuer, query["code"], None)
    assert response.status_code == 400
    assert response.json["error"] == "invalid_request"


def test_wrong_code_verifier_is_refused(
    client: FlaskClient, rp: TestRelyingParty, issuer: str, signed_in: Authentication
) -> None:
    query, _ = authorize(client, rp, issuer)
    response = token_request(client, rp, issuer, query["code"], pkce_pair()[0])
    assert response.json["error"] == "invalid_grant"


@pytest.mark.db
def test_reused_code_is_refused_and_its_tokens_revoked(
    client: FlaskClient, rp: TestRelyingParty, issuer: str, signed_in: Authentication
) -> None:
    query, verifier = authorize(client, rp, issuer)
    first = token_request(client, rp, issuer, query["code"], verifier)
    access_token = first.json["access_token"]
    assert userinfo(client, rp, issuer, access_token).status_code == 200
    second = token_request(client, rp, issuer, query["code"], verifier)
    assert second.status_code == 400
    assert second.json["error"] == "invalid_grant"
    refused = userinfo(client, rp, issuer, access_token)
    assert refused.status_code == 401
    assert 'error="invalid_token"' in refused.headers["WWW-Authenticate"]


def test_code_older_than_60_seconds_is_refused(
    client: FlaskClient, rp: TestRelyingParty, issuer: str, signed_in: Authentication, clock: FrozenClock
) -> None:
    query, verifier = authorize(client, rp, issuer)
    clock.advance(61)
    proof = rp.dpop("POST", f"{issuer}/oauth/token", iat=clock.timestamp())
    response = token_request(client, rp, issuer, query["code"], verifier, dpop=proof)
    assert response.json["error"] == "invalid_grant"
    assert "expired" in response.json["error_description"]


def test_code_redeemed_by_another_client_is_refused(
    app: Flask, client: FlaskClient, rp: TestRelyingParty, issuer: str, signed_in: Authentication, clock: FrozenClock
) -> None:
    query, verifier = authorize(client, rp, issuer)
    thief = TestRelyingParty(client_id="thief", redirect_uri=REDIRECT_URI)
    with app.app_context(), get_db().unit_of_work() as uow:
        register_client(
            uow, clock, name="Thief", jwks=thief.jwks(), redirect_uris=[REDIRECT_URI], sandbox=True, client_id="thief"
        )
    assert token_request(client, thief, issuer, query["code"], verifier).json["error"] == "invalid_grant"


# -- refusals: DPoP ----------------------------------------------------------------------------------


@pytest.fixture
def code(client: FlaskClient, rp: TestRelyingParty, issuer: str, signed_in: Authentication) -> tuple[str, str]:
    """Return a fresh code and its verifier."""
    query, verifier = authorize(client, rp, issuer)
    return query["code"], verifier


@pytest.mark.parametrize(
    "proof",
    [
        pytest.param(lambda rp, issuer: None, id="missing"),
        pytest.param(lambda rp, issuer: rp.dpop("POST", f"{issuer}/oauth/par"), id="wrong-htu"),
        pytest.param(lambda rp, issuer: rp.dpop("GET", f"{issuer}/oauth/token"), id="wrong-htm"),
        pytest.param(
            lambda rp, issuer: rp.dpop("POST", f"{issuer}/oauth/token", iat=int(time.time()) - 600), id="stale-iat"
        ),
        pytest.param(lambda rp, issuer: "not.a.proof", id="garbage"),
    ],
)
def test_bad_dpop_proof_at_the_token_endpoint_is_refused(
    client: FlaskClient, rp: TestRelyingParty, issuer: str, code: tuple[str, str], proof: Callable[..., Any]
) -> None:
    value = proof(rp, issuer)
    response = token_request(client, rp, issuer, code[0], code[1], dpop=value)
    assert response.status_code == 400
    assert response.json["error"] == "invalid_dpop_proof"


def test_replayed_dpop_proof_is_refused(
    client: FlaskClient, rp: TestRelyingParty, issuer: str, code: tuple[str, str]
) -> None:
    access_token = token_request(client, rp, issuer, *code).json["access_token"]
    proof = rp.dpop("GET", f"{issuer}/oauth/userinfo", access_token=access_token)
    headers = {"Authorization": f"DPoP {access_token}", "DPoP": proof}
    assert client.get("/oauth/userinfo", headers=headers).status_code == 200
    replay = client.get("/oauth/userinfo", headers=headers)
    assert replay.status_code == 401
    assert 'error="invalid_dpop_proof"' in replay.headers["WWW-Authenticate"]


def test_proof_from_another_key_is_refused(
    client: FlaskClient, rp: TestRelyingParty, issuer: str, code: tuple[str, str]
) -> None:
    access_token = token_request(client, rp, issuer, *code).json["access_token"]
    refused = userinfo(client, rp, issuer, access_token, key=ECKey.generate_key("P-256"))
    assert refused.status_code == 401
    assert 'error="invalid_dpop_proof"' in refused.headers["WWW-Authenticate"]


def test_token_presented_as_bearer_is_refused(
    client: FlaskClient, rp: TestRelyingParty, issuer: str, code: tuple[str, str]
) -> None:
    access_token = token_request(client, rp, issuer, *code).json["access_token"]
    refused = client.get("/oauth/userinfo", headers={"Authorization": f"Bearer {access_token}"})
    assert refused.status_code == 401


def test_proof_without_ath_is_refused_at_the_resource(
    client: FlaskClient, rp: TestRelyingParty, issuer: str, code: tuple[str, str]
) -> None:
    access_token = token_request(client, rp, issuer, *code).json["access_token"]
    proof = rp.dpop("GET", f"{issuer}/oauth/userinfo")
    refused = client.get("/oauth/userinfo", headers={"Authorization": f"DPoP {access_token}", "DPoP": proof})
    assert refused.status_code == 401


def test_code_bound_at_par_must_be_redeemed_with_that_key(
    client: FlaskClient, rp: TestRelyingParty, issuer: str, signed_in: Authentication
) -> None:
    par_proof = rp.dpop("POST", f"{issuer}/oauth/par")
    query, verifier = authorize(client, rp, issuer, headers={"DPoP": par_proof})
    other_key = ECKey.generate_key("P-256")
    response = token_request(
        client, rp, issuer, query["code"], verifier, dpop=rp.dpop("POST", f"{issuer}/oauth/token", key=other_key)
    )
    assert response.json["error"] == "invalid_grant"


# -- revocation and introspection --------------------------------------------------------------------


def test_revoked_token_stops_working_and_introspects_inactive(
    client: FlaskClient, rp: TestRelyingParty, issuer: str, code: tuple[str, str]
) -> None:
    access_token = token_request(client, rp, issuer, *code).json["access_token"]
    active = client.post("/oauth/introspect", data={"token": access_token, **rp.client_auth(issuer)}).json
    assert active["active"] is True
    assert active["cnf"]["jkt"]
    assert client.post("/oauth/revoke", data={"token": access_token, **rp.client_auth(issuer)}).status_code == 200
    assert userinfo(client, rp, issuer, access_token).status_code == 401
    inactive = client.post("/oauth/introspect", data={"token": access_token, **rp.client_auth(issuer)}).json
    assert inactive == {"active": False}


# -- client registration ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda jwks: {"keys": [{**jwks["keys"][0], "d": "secret"}]}, "private key material"),
        (lambda jwks: {"keys": [{**jwks["keys"][0], "alg": "RS256"}]}, "ES256"),
        (lambda jwks: {"keys": []}, "non-empty"),
        (lambda jwks: {"keys": [jwks["keys"][0], {**jwks["keys"][0], "kid": "second"}]}, "exactly one"),
    ],
)
def test_client_registration_checks_keys(
    app: Flask, clock: FrozenClock, change: Callable[[dict[str, Any]], Any], reason: str
) -> None:
    rp = TestRelyingParty(client_id="x", redirect_uri=REDIRECT_URI)
    with app.app_context(), get_db().unit_of_work() as uow, pytest.raises(InvalidClientMetadata, match=reason):
        register_client(uow, clock, name="x", jwks=change(rp.jwks()), redirect_uris=[REDIRECT_URI], sandbox=True)


@pytest.mark.parametrize(
    ("uri", "sandbox", "accepted"),
    [
        ("https://rp.example/cb", False, True),
        ("http://rp.example/cb", True, False),
        ("http://127.0.0.1:5000/cb", True, True),
        ("http://127.0.0.1:5000/cb", False, False),
        ("https://rp.example/cb#frag", True, False),
        ("/relative", True, False),
    ],
)
def test_client_registration_checks_redirect_uris(
    app: Flask, clock: FrozenClock, uri: str, sandbox: bool, accepted: bool
) -> None:
    rp = TestRelyingParty(client_id="x", redirect_uri=uri)
    with app.app_context(), get_db().unit_of_work() as uow:
        if accepted:
            register_client(uow, clock, name="x", jwks=rp.jwks(), redirect_uris=[uri], sandbox=sandbox)
        else:
            with pytest.raises(InvalidClientMetadata):
                register_client(uow, clock, name="x", jwks=rp.jwks(), redirect_uris=[uri], sandbox=sandbox)


def test_an_interaction_is_answered_once_even_by_racing_requests(
    app: Flask, client: FlaskClient, rp: TestRelyingParty, issuer: str, signed_in: Authentication
) -> None:

    pushed = par(client, rp, issuer)
    started = client.get(f"/oauth/authorize?client_id={rp.client_id}&request_uri={pushed.json['request_uri']}")
    interaction_id = urlsplit(started.headers["Location"]).path.rsplit("/", 1)[1]
    with app.test_request_context():
        uow = unit_of_work()  # the request's, as the view's
        # Two requests loaded the interaction before either answered it (a double click, two tabs).
        first = services.load_interaction(uow, interaction_id)
        second = services.load_interaction(uow, interaction_id)
        assert services.decide(uow, first, signed_in, ConsentDecision(approve=True)).status_code == 303
        with pytest.raises(InteractionNotFound):
            services.decide(uow, second, signed_in, ConsentDecision(approve=True))
        with pytest.raises(InteractionNotFound):
            services.load_interaction(uow, interaction_id)
