"""Client assertions and DPoP proofs: used once whatever the outcome, `aud` the issuer string (issue 10 items 8, 9)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient
from joserfc.jwk import ECKey

from identity.sessions import Authentication
from tests.factories.oauth import TestRelyingParty, pkce_pair
from tests.unit.identity.test_oauth import authorize, par, signed_in, token_request

__all__ = ["signed_in"]  # a fixture of these tests


def _form(rp: TestRelyingParty, issuer: str, code: str, verifier: str, assertion: str) -> dict[str, str]:
    return {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": rp.redirect_uri,
        "code_verifier": verifier,
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion,
    }


# -- item 8: a failed request still uses up its assertion and its proof ---------------------------------


@pytest.mark.db
@pytest.mark.parametrize("failure", ["wrong-verifier", "unknown-code"])
def test_an_assertion_of_a_failed_token_request_cannot_be_replayed(
    client: FlaskClient, rp: TestRelyingParty, issuer: str, signed_in: Authentication, failure: str
) -> None:
    query, verifier = authorize(client, rp, issuer)
    assertion = rp.assertion(issuer)
    bad = _form(rp, issuer, query["code"], verifier, assertion)
    if failure == "wrong-verifier":
        bad["code_verifier"] = pkce_pair()[0]
    else:
        bad["code"] = "not-a-code"
    failed = client.post("/oauth/token", data=bad, headers={"DPoP": rp.dpop("POST", f"{issuer}/oauth/token")})
    assert failed.json["error"] == "invalid_grant"

    replay = client.post(
        "/oauth/token",
        data=_form(rp, issuer, query["code"], verifier, assertion),
        headers={"DPoP": rp.dpop("POST", f"{issuer}/oauth/token")},
    )
    assert replay.status_code == 400, replay.json
    assert replay.json["error"] == "invalid_client"
    assert "used" in replay.json["error_description"]
    # The failed request changed nothing else: the code still works with a fresh assertion.
    assert token_request(client, rp, issuer, query["code"], verifier).status_code == 200


@pytest.mark.db
def test_a_dpop_proof_of_a_failed_token_request_cannot_be_replayed(
    client: FlaskClient, rp: TestRelyingParty, issuer: str, signed_in: Authentication
) -> None:
    query, verifier = authorize(client, rp, issuer)
    proof = rp.dpop("POST", f"{issuer}/oauth/token")
    failed = token_request(client, rp, issuer, query["code"], pkce_pair()[0], dpop=proof)
    assert failed.json["error"] == "invalid_grant"

    replay = token_request(client, rp, issuer, query["code"], verifier, dpop=proof)
    assert replay.status_code == 400
    assert replay.json["error"] == "invalid_dpop_proof"
    assert "already used" in replay.json["error_description"]


@pytest.mark.db
def test_an_assertion_and_a_proof_of_a_failed_par_cannot_be_replayed(
    client: FlaskClient, rp: TestRelyingParty, issuer: str
) -> None:
    auth = rp.client_auth(issuer)
    proof = rp.dpop("POST", f"{issuer}/oauth/par")
    failed = par(client, rp, issuer, auth=auth, headers={"DPoP": proof}, scope="profile")
    assert failed.json["error"] == "invalid_scope"

    replayed_assertion = par(client, rp, issuer, auth=auth)
    assert replayed_assertion.json["error"] == "invalid_client"
    replayed_proof = par(client, rp, issuer, headers={"DPoP": proof})
    assert replayed_proof.json["error"] == "invalid_dpop_proof"


@pytest.mark.db
def test_a_proof_of_a_refused_userinfo_request_cannot_be_replayed(
    client: FlaskClient, rp: TestRelyingParty, issuer: str, signed_in: Authentication
) -> None:
    query, verifier = authorize(client, rp, issuer)
    access_token = token_request(client, rp, issuer, query["code"], verifier).json["access_token"]
    # A valid proof, but by another key than the token's: refused after the proof was read.
    proof = rp.dpop("GET", f"{issuer}/oauth/userinfo", access_token=access_token, key=ECKey.generate_key("P-256"))
    headers = {"Authorization": f"DPoP {access_token}", "DPoP": proof}
    first = client.get("/oauth/userinfo", headers=headers)
    assert first.status_code == 401
    assert "another key" in first.json["error_description"]
    again = client.get("/oauth/userinfo", headers=headers)
    assert again.status_code == 401
    assert "already used" in again.json["error_description"]


# -- item 9: `aud` is the issuer identifier, as a string -----------------------------------------------


def _par(client: FlaskClient, rp: TestRelyingParty, issuer: str, audience: Any) -> Any:
    return par(client, rp, issuer, auth=rp.client_auth(audience))


def _token(client: FlaskClient, rp: TestRelyingParty, issuer: str, audience: Any) -> Any:
    form = _form(rp, issuer, "no-such-code", "v" * 43, rp.assertion(audience))
    return client.post("/oauth/token", data=form, headers={"DPoP": rp.dpop("POST", f"{issuer}/oauth/token")})


def _revoke(client: FlaskClient, rp: TestRelyingParty, issuer: str, audience: Any) -> Any:
    return client.post("/oauth/revoke", data={"token": "no-such-token", **rp.client_auth(audience)})


def _introspect(client: FlaskClient, rp: TestRelyingParty, issuer: str, audience: Any) -> Any:
    return client.post("/oauth/introspect", data={"token": "no-such-token", **rp.client_auth(audience)})


ENDPOINTS: dict[str, Callable[[FlaskClient, TestRelyingParty, str, Any], Any]] = {
    "par": _par,
    "token": _token,
    "revoke": _revoke,
    "introspect": _introspect,
}


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize(
    "audience",
    [
        pytest.param(lambda issuer: [issuer], id="array-of-the-issuer"),
        pytest.param(lambda issuer: [issuer, "https://elsewhere.example"], id="array-with-the-issuer"),
        pytest.param(lambda issuer: [issuer, issuer], id="array-twice-the-issuer"),
    ],
)
def test_an_audience_array_is_refused_everywhere(
    client: FlaskClient, rp: TestRelyingParty, issuer: str, endpoint: str, audience: Callable[[str], Any]
) -> None:
    response = ENDPOINTS[endpoint](client, rp, issuer, audience(issuer))
    assert response.status_code in (400, 401), response.json  # RFC 6749 §5.2: 401 only with an Authorization header
    assert response.json["error"] == "invalid_client"
    assert "aud" in response.json["error_description"]


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_the_issuer_string_as_audience_is_accepted_everywhere(
    client: FlaskClient, rp: TestRelyingParty, issuer: str, endpoint: str
) -> None:
    response = ENDPOINTS[endpoint](client, rp, issuer, issuer)
    # The client is authenticated; whatever the endpoint then says, it is not invalid_client.
    assert response.status_code in (200, 201, 400), response.json
    assert (response.json or {}).get("error") != "invalid_client"
