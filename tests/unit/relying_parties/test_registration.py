"""RFC 7591 registration at /oauth/register: what is accepted, each refusal with its reason, and the token."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask
from flask.testing import FlaskClient
from joserfc.jwk import ECKey, RSAKey

from identity.oauth.models import OAuthClient
from mydata.db import get_db
from relying_parties import services
from tests.factories.oauth import TestRelyingParty, pkce_pair

from .conftest import BANK, bearer, client_metadata, make_service, register

pytestmark = pytest.mark.db


def test_a_client_is_registered_for_the_tokens_organisation(
    app: Flask, client: FlaskClient, bank: str, rp: TestRelyingParty
) -> None:
    response = register(client, bank, client_metadata(rp, unknown_member="ignored (RFC 7591 §2)"))
    assert response.status_code == 201, response.json
    assert response.headers["Cache-Control"] == "no-store"
    body = response.json
    assert body["client_id"]
    assert isinstance(body["client_id_issued_at"], int)
    assert body["client_name"] == "測試銀行 網路銀行"
    assert body["redirect_uris"] == [rp.redirect_uri]
    assert body["jwks"] == rp.jwks()
    assert body["token_endpoint_auth_method"] == "private_key_jwt"
    assert body["token_endpoint_auth_signing_alg"] == "ES256"
    assert body["grant_types"] == ["authorization_code"]
    assert body["response_types"] == ["code"]
    assert body["dpop_bound_access_tokens"] is True
    assert body["organisation"] == BANK
    assert "unknown_member" not in body
    with app.app_context(), get_db().unit_of_work() as uow:
        row = uow.session.get(OAuthClient, body["client_id"])
        assert row is not None
        assert row.organisation_id == BANK
        assert row.status == "active"


def test_the_registered_client_may_ask_for_its_organisations_approved_service(
    client: FlaskClient, bank: str, rp: TestRelyingParty, issuer: str
) -> None:
    rp.client_id = register(client, bank, client_metadata(rp)).json["client_id"]
    details = [
        {"type": "mydata_delivery", "service": f"{BANK}.loans", "datasets": ["household.registration", "tax.income"]}
    ]
    assert par(client, rp, issuer, details).status_code == 201


def test_a_service_not_yet_approved_cannot_be_requested_at_par(
    app: Flask, client: FlaskClient, bank: str, rp: TestRelyingParty, issuer: str
) -> None:
    with app.app_context(), get_db().unit_of_work() as uow:
        make_service(uow, name="cards", status="pending")
    rp.client_id = register(client, bank, client_metadata(rp)).json["client_id"]
    response = par(client, rp, issuer, [{"type": "mydata_delivery", "service": f"{BANK}.cards"}])
    assert response.status_code == 400
    assert response.json["error"] == "invalid_authorization_details"
    assert "test-bank.cards' is pending" in response.json["error_description"]
    assert "approval" in response.json["error_description"]


def par(client: FlaskClient, rp: TestRelyingParty, issuer: str, details: list[dict[str, Any]]) -> Any:
    """Push an authorization request asking for *details*."""
    _verifier, challenge = pkce_pair()
    form = {
        "response_type": "code",
        "client_id": rp.client_id,
        "redirect_uri": rp.redirect_uri,
        "scope": "openid",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "authorization_details": json.dumps(details),
        **rp.client_auth(issuer),
    }
    return client.post("/oauth/par", data=form)


def _rsa_enc(rp: TestRelyingParty, bits: int = 2048) -> dict[str, Any]:
    # Built by hand: joserfc warns about (and pytest refuses) a key shorter than 2048 bits.
    numbers = rsa.generate_private_key(public_exponent=65537, key_size=bits).public_key().public_numbers()
    public = {"kty": "RSA", "n": _b64(numbers.n), "e": _b64(numbers.e)}
    return {"keys": [rp.jwks()["keys"][0], {**public, "use": "enc", "alg": "RSA-OAEP-256", "kid": "rsa-enc"}]}


def _b64(number: int) -> str:
    return base64.urlsafe_b64encode(number.to_bytes((number.bit_length() + 7) // 8, "big")).rstrip(b"=").decode()


def test_an_rsa_encryption_key_and_a_ps256_signature_key_are_accepted(
    client: FlaskClient, bank: str, rp: TestRelyingParty
) -> None:
    signing = RSAKey.generate_key(2048).as_dict(private=False)
    jwks = {"keys": [{**signing, "use": "sig", "alg": "PS256", "kid": "ps"}, _rsa_enc(rp)["keys"][1]]}
    response = register(client, bank, client_metadata(rp, jwks=jwks))
    assert response.status_code == 201, response.json
    assert response.json["token_endpoint_auth_signing_alg"] == "PS256"


def _with_key(rp: TestRelyingParty, index: int, **changes: Any) -> dict[str, Any]:
    keys = [dict(k) for k in rp.jwks()["keys"]]
    keys[index].update(changes)
    return {"keys": [{k: v for k, v in key.items() if v is not None} for key in keys]}


def _private(rp: TestRelyingParty) -> dict[str, Any]:
    return {
        "keys": [
            {**rp.signing_key.as_dict(private=True), "use": "sig", "alg": "ES256", "kid": "rp-sig-1"},
            rp.jwks()["keys"][1],
        ]
    }


REFUSALS = [
    # Acceptance (issue 6, item 6): an http redirect URI outside the sandbox is tested below.
    ("missing enc key", lambda rp: {"jwks": {"keys": rp.jwks()["keys"][:1]}}, "encryption key"),
    ("private key material", lambda rp: {"jwks": _private(rp)}, "private key material"),
    ("RS256 signature key", lambda rp: {"jwks": _with_key(rp, 0, alg="RS256")}, "not RS256"),
    ("enc key with the wrong alg", lambda rp: {"jwks": _with_key(rp, 1, alg="RSA-OAEP-256")}, "ECDH-ES+A256KW"),
    ("enc key without alg", lambda rp: {"jwks": _with_key(rp, 1, alg=None)}, "ECDH-ES+A256KW"),
    ("enc key without use", lambda rp: {"jwks": _with_key(rp, 1, use=None)}, "no `use`"),
    (
        "enc key on another curve",
        lambda rp: {"jwks": _with_key(rp, 1, **ECKey.generate_key("P-384").as_dict(private=False))},
        "P-256",
    ),
    (
        "point not on the curve",
        lambda rp: {"jwks": _with_key(rp, 1, x=rp.jwks()["keys"][1]["y"])},
        "not a valid public",
    ),
    ("short RSA enc key", lambda rp: {"jwks": _rsa_enc(rp, 1024)}, "shorter than 2048"),
    (
        "two enc keys",
        lambda rp: {"jwks": {"keys": [*rp.jwks()["keys"], {**rp.jwks()["keys"][1], "kid": "2"}]}},
        "at most one",
    ),
    ("duplicate kids", lambda rp: {"jwks": _with_key(rp, 1, kid="rp-sig-1")}, "share the kid"),
    ("jwks_uri", lambda rp: {"jwks": None, "jwks_uri": "https://bank.example/jwks"}, "jwks_uri is not supported"),
    ("no client_name", lambda rp: {"client_name": None}, "client_name"),
    ("client_secret_basic", lambda rp: {"token_endpoint_auth_method": "client_secret_basic"}, "private_key_jwt"),
    ("implicit grant", lambda rp: {"grant_types": ["authorization_code", "implicit"]}, "grant_types"),
    ("token response type", lambda rp: {"response_types": ["code", "token"]}, "response_types"),
    ("unbound tokens", lambda rp: {"dpop_bound_access_tokens": False}, "DPoP"),
    ("signing alg not the key's", lambda rp: {"token_endpoint_auth_signing_alg": "PS256"}, "ES256"),
    ("another scope", lambda rp: {"scope": "openid email"}, "scope"),
    ("redirect URI with a fragment", lambda rp: {"redirect_uris": ["https://bank.example/cb#x"]}, "fragment"),
    ("no redirect URI", lambda rp: {"redirect_uris": []}, "redirect_uris"),
    ("redirect URIs not a list", lambda rp: {"redirect_uris": "https://bank.example/cb"}, "redirect_uris"),
]


@pytest.mark.parametrize(("case", "change", "reason"), REFUSALS, ids=[case for case, _c, _r in REFUSALS])
def test_bad_metadata_is_refused_with_a_reason(
    app: Flask, client: FlaskClient, bank: str, rp: TestRelyingParty, case: str, change: Any, reason: str
) -> None:
    response = register(client, bank, client_metadata(rp, **change(rp)))
    assert response.status_code == 400, case
    assert response.json["error"] == "invalid_client_metadata"
    assert reason in response.json["error_description"], response.json["error_description"]
    with app.app_context(), get_db().unit_of_work() as uow:
        assert services.organisation_clients(uow, BANK) == []


def test_an_http_redirect_uri_is_refused_outside_the_sandbox(
    production_app: Flask, rp: TestRelyingParty, production_bank: str
) -> None:
    client = production_app.test_client()
    response = register(client, production_bank, client_metadata(rp, redirect_uris=["http://bank.example/cb"]))
    assert response.status_code == 400
    assert response.json["error"] == "invalid_client_metadata"
    assert "must use https" in response.json["error_description"]
    loopback = register(client, production_bank, client_metadata(rp, redirect_uris=["http://127.0.0.1/cb"]))
    assert loopback.status_code == 400
    assert register(client, production_bank, client_metadata(rp)).status_code == 201


def test_loopback_http_redirect_uris_are_allowed_in_the_sandbox(
    client: FlaskClient, bank: str, rp: TestRelyingParty
) -> None:
    response = register(client, bank, client_metadata(rp, redirect_uris=["http://127.0.0.1:8080/callback"]))
    assert response.status_code == 201
    assert register(client, bank, client_metadata(rp, redirect_uris=["http://bank.example/cb"])).status_code == 400


def test_a_body_that_is_not_json_is_refused(client: FlaskClient, bank: str) -> None:
    response = client.post("/oauth/register", data="client_name=x", headers=bearer(bank))
    assert response.status_code == 400
    assert response.json["error"] == "invalid_client_metadata"


# -- the initial access token ---------------------------------------------------------------------


def test_without_a_token_the_answer_is_401_with_a_bearer_challenge(client: FlaskClient, rp: TestRelyingParty) -> None:
    response = client.post("/oauth/register", json=client_metadata(rp))
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="mydata-registration"'
    assert response.json["error"] == "unauthorized"


@pytest.mark.parametrize("header", ["Bearer mdiat_not-a-token", "Bearer ", "Basic Zm9vOmJhcg=="])
def test_a_wrong_token_is_refused(client: FlaskClient, bank: str, rp: TestRelyingParty, header: str) -> None:
    response = client.post("/oauth/register", json=client_metadata(rp), headers={"Authorization": header})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith('Bearer realm="mydata-registration"')


def test_the_token_serves_several_registrations_until_reissued(
    app: Flask, client: FlaskClient, bank: str, rp: TestRelyingParty
) -> None:
    assert register(client, bank, client_metadata(rp)).status_code == 201
    assert register(client, bank, client_metadata(rp, client_name="Second app")).status_code == 201
    with app.app_context(), get_db().unit_of_work() as uow:
        _token, fresh = services.issue_initial_access_token(uow, BANK, actor="test")
    refused = register(client, bank, client_metadata(rp))
    assert refused.status_code == 401
    assert refused.json["error"] == "invalid_token"
    assert 'error="invalid_token"' in refused.headers["WWW-Authenticate"]
    assert register(client, fresh, client_metadata(rp)).status_code == 201


def test_a_suspended_organisations_token_is_refused(
    app: Flask, client: FlaskClient, bank: str, rp: TestRelyingParty
) -> None:
    with app.app_context(), get_db().unit_of_work() as uow:
        services.suspend_organisation(uow, BANK, actor="test")
    response = register(client, bank, client_metadata(rp))
    assert response.status_code == 401
    assert "suspended" in response.json["error_description"]


def test_discovery_names_the_registration_endpoint(client: FlaskClient, issuer: str) -> None:
    document = client.get("/.well-known/openid-configuration").json
    assert document["registration_endpoint"] == f"{issuer}/oauth/register"
