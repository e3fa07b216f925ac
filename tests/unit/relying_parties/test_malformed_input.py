"""Malformed `authorization_details` and delivery requests of a registered relying party: a 4xx, never a 500.

Issue 10, items 7 and 15, with a real approved service behind the requests (the organisation,
service and client are built as in test_registration).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.factories.malformed import OFF_CURVE_JWK, dpop_proofs, json_values, nested_arrays, off_curve_proof, raw_jws
from tests.factories.oauth import TestRelyingParty
from tests.unit.identity import test_oauth as oauth_tests

from .conftest import BANK, client_metadata, register

pytestmark = pytest.mark.db

# A citizen logged in at the authorization server (its own tests' fixture).
signed_in = oauth_tests.signed_in
SERVICE = f"{BANK}.loans"  # required household.registration and tax.income, optional tax.property
DATASETS = ["household.registration", "tax.income", "tax.property", "labor.insurance", "nhi.enrolment"]


@pytest.fixture
def registered(client: FlaskClient, bank: str, rp: TestRelyingParty) -> TestRelyingParty:
    """Register the relying party's client for the approved test bank."""
    rp.client_id = register(client, bank, client_metadata(rp)).json["client_id"]
    return rp


def par(client: FlaskClient, rp: TestRelyingParty, issuer: str, details: str) -> Any:
    """Push a request whose `authorization_details` is the raw text *details*."""
    return oauth_tests.par(client, rp, issuer, authorization_details=details)


def test_one_delivery_entry_is_accepted(client: FlaskClient, registered: TestRelyingParty, issuer: str) -> None:
    response = par(client, registered, issuer, json.dumps([{"type": "mydata_delivery", "service": SERVICE}]))
    assert response.status_code == 201, response.json


def test_two_delivery_entries_are_refused(client: FlaskClient, registered: TestRelyingParty, issuer: str) -> None:
    entry = {"type": "mydata_delivery", "service": SERVICE}
    response = par(client, registered, issuer, json.dumps([entry, entry]))
    assert response.status_code == 400, response.get_data(as_text=True)[:300]
    assert response.json["error"] == "invalid_authorization_details"
    assert "one 'mydata_delivery' entry" in response.json["error_description"]


def test_many_delivery_entries_are_refused_before_any_is_resolved(
    client: FlaskClient, registered: TestRelyingParty, issuer: str
) -> None:
    entries = json.dumps([{"type": "mydata_delivery", "service": SERVICE}] * 150, separators=(",", ":"))
    response = par(client, registered, issuer, entries)
    assert response.status_code == 400, response.get_data(as_text=True)[:300]
    assert response.json["error"] == "invalid_authorization_details"
    assert "at most" in response.json["error_description"]


_json = json_values
# Entries shaped like the real thing, so that valid, nearly valid and subtly wrong ones all come up.
_entries = st.fixed_dictionaries(
    {"type": st.sampled_from(["mydata_delivery", "payment_initiation", ""]) | st.text(max_size=5)},
    optional={
        "service": st.sampled_from([SERVICE, f"{BANK}.cards", "other.loans", "", SERVICE.upper()]) | _json,
        "datasets": st.lists(st.sampled_from(DATASETS), max_size=6) | _json,
        "purpose": _json,
    },
)
_details = st.one_of(
    _json.map(json.dumps),
    st.lists(_entries, min_size=1, max_size=3).map(json.dumps),
    st.text(max_size=50),  # mostly not JSON
    st.sampled_from([nested_arrays(4000), '{"a":' * 3000, "[" + "{}," * 3000 + "{}]", "\u202e[]", "[]\x00"]),
)


@settings(
    max_examples=150,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(details=_details)
def test_arbitrary_authorization_details_get_201_or_400(
    client: FlaskClient, registered: TestRelyingParty, issuer: str, details: str
) -> None:
    response = par(client, registered, issuer, details)
    assert response.status_code in (201, 400), response.get_data(as_text=True)[:300]
    if response.status_code == 400:
        assert response.json["error"] == "invalid_authorization_details", response.json


# -- the delivery API ---------------------------------------------------------------------------------


@pytest.fixture
def access_token(client: FlaskClient, registered: TestRelyingParty, issuer: str, signed_in: object) -> str:
    """Return an access token of the registered client (a flow without a delivery request)."""
    query, verifier = oauth_tests.authorize(client, registered, issuer)
    response = oauth_tests.token_request(client, registered, issuer, query["code"], verifier)
    assert response.status_code == 200, response.json
    return str(response.json["access_token"])


def test_off_curve_dpop_key_is_refused_at_delivery(
    client: FlaskClient, registered: TestRelyingParty, issuer: str, access_token: str
) -> None:
    proof = off_curve_proof(registered, "GET", f"{issuer}/api/v1/delivery", access_token)
    response = client.get("/api/v1/delivery", headers={"Authorization": f"DPoP {access_token}", "DPoP": proof})
    assert response.status_code == 401, response.get_data(as_text=True)[:300]
    assert response.json["error"] == "invalid_dpop_proof"
    assert 'error="invalid_dpop_proof"' in response.headers["WWW-Authenticate"]


_header_values = st.one_of(
    st.text(alphabet=st.characters(codec="latin-1", exclude_characters="\r\n"), max_size=60),
    st.text(alphabet="\u202e\u2066\x00\x1b.abc=-_", max_size=30).map(lambda t: t.encode().decode("latin-1")),
    st.sampled_from(
        [
            raw_jws(json.dumps({"typ": "dpop+jwt", "alg": "ES256", "jwk": OFF_CURVE_JWK}), "{}"),
            raw_jws('{"typ": "dpop+jwt", "alg": "ES256", "jwk": ' + nested_arrays(3000) + "}", "{}"),
            raw_jws(json.dumps({"typ": "dpop+jwt", "alg": "ES256", "jwk": {"kty": "EC", "crv": 1}}), "{}"),
            raw_jws(json.dumps({"typ": "dpop+jwt", "alg": "PS256", "jwk": {"kty": "RSA", "n": [], "e": "AQAB"}}), "{}"),
            "x." * 20_000,
        ]
    ),
)


@settings(
    max_examples=80,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    authorization=st.none() | _header_values | st.sampled_from(["valid", "DPoP valid", "Bearer valid"]),
    dpop=st.none() | _header_values | dpop_proofs("GET", "http://localhost/api/v1/delivery") | st.just("off-curve"),
)
def test_fuzzed_delivery_requests_never_get_a_server_error(
    client: FlaskClient,
    registered: TestRelyingParty,
    issuer: str,
    access_token: str,
    authorization: str | None,
    dpop: str | None,
) -> None:
    headers = {}
    if authorization is not None:
        headers["Authorization"] = authorization.replace("valid", access_token)
    if dpop == "off-curve":
        dpop = off_curve_proof(registered, "GET", f"{issuer}/api/v1/delivery", access_token)
    if dpop is not None:
        headers["DPoP"] = dpop
    response = client.get("/api/v1/delivery", headers=headers)
    assert response.status_code == 401, response.get_data(as_text=True)[:300]
    assert response.json["error"] in ("invalid_token", "invalid_dpop_proof")
    assert response.headers["WWW-Authenticate"].startswith("DPoP ")
