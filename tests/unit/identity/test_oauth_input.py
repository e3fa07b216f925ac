"""Malformed input at PAR, token and userinfo gets a 4xx with an RFC error code, never a 500 (issue 10, 7 and 15)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from identity.oauth.interfaces import InvalidAuthorizationDetails
from identity.oauth.server import authorization_details_json
from tests.factories.malformed import (
    OFF_CURVE_JWK,
    b64url,
    dpop_proofs,
    json_values,
    nested_arrays,
    off_curve_proof,
    raw_assertion,
    raw_jws,
)
from tests.factories.oauth import TestRelyingParty
from tests.unit.identity import test_oauth as base

# The server, client and flow fixtures of the authorization server's own tests.
issuer = base.issuer
rp = base.rp
signed_in = base.signed_in
code = base.code

#: Error codes an OAuth endpoint may answer with (RFC 6749 §5.2, RFC 9396 §5, RFC 9449 §7.1, RFC 6750 §3.1).
OAUTH_ERRORS = {
    "invalid_request",
    "invalid_client",
    "invalid_grant",
    "unauthorized_client",
    "unsupported_grant_type",
    "unsupported_response_type",
    "invalid_scope",
    "invalid_authorization_details",
    "invalid_dpop_proof",
    "invalid_token",
    "request_too_large",
}


def is_error_text(text: str) -> bool:
    """Tell whether *text* keeps to the characters RFC 6749 §5.2 allows in `error_description`."""
    return all(0x20 <= ord(c) <= 0x7E and c not in '"\\' for c in text)


def assert_refused(response: Any, status: int, error: str) -> None:
    """Check an OAuth error answer: its status, its RFC error code, and a description safe to show."""
    assert response.status_code == status, response.get_data(as_text=True)[:300]
    body = response.get_json(silent=True) or {}
    assert body.get("error") == error, body
    assert is_error_text(body.get("error_description", ""))


def par(client: FlaskClient, rp: TestRelyingParty, issuer: str, **overrides: Any) -> Any:
    """Push an authorization request (see test_oauth.par)."""
    return base.par(client, rp, issuer, **overrides)


# -- item 15: the six reproductions -------------------------------------------------------------------


def test_par_with_an_empty_body_is_refused(client: FlaskClient) -> None:
    assert_refused(client.post("/oauth/par"), 400, "invalid_client")


def test_par_with_a_json_body_is_refused(client: FlaskClient, rp: TestRelyingParty, issuer: str) -> None:
    body = {"response_type": "code", "client_id": rp.client_id, **rp.client_auth(issuer)}
    response = client.post("/oauth/par", json=body)
    assert_refused(response, 400, "invalid_request")
    assert "application/x-www-form-urlencoded" in response.json["error_description"]


def test_off_curve_dpop_key_is_refused_at_par(client: FlaskClient, rp: TestRelyingParty, issuer: str) -> None:
    proof = off_curve_proof(rp, "POST", f"{issuer}/oauth/par")
    assert_refused(par(client, rp, issuer, headers={"DPoP": proof}), 400, "invalid_dpop_proof")


def test_off_curve_dpop_key_is_refused_at_the_token_endpoint(
    client: FlaskClient, rp: TestRelyingParty, issuer: str, code: tuple[str, str]
) -> None:
    proof = off_curve_proof(rp, "POST", f"{issuer}/oauth/token")
    response = base.token_request(client, rp, issuer, *code, dpop=proof)
    assert_refused(response, 400, "invalid_dpop_proof")


def test_off_curve_dpop_key_is_refused_at_userinfo(
    client: FlaskClient, rp: TestRelyingParty, issuer: str, code: tuple[str, str]
) -> None:
    access_token = base.token_request(client, rp, issuer, *code).json["access_token"]
    proof = off_curve_proof(rp, "GET", f"{issuer}/oauth/userinfo", access_token)
    response = client.get("/oauth/userinfo", headers={"Authorization": f"DPoP {access_token}", "DPoP": proof})
    assert_refused(response, 401, "invalid_dpop_proof")
    assert 'error="invalid_dpop_proof"' in response.headers["WWW-Authenticate"]


@pytest.mark.parametrize("where", ["claims", "header"])
def test_client_assertion_nested_5000_deep_is_refused(
    client: FlaskClient, rp: TestRelyingParty, issuer: str, where: str
) -> None:
    if where == "claims":
        assertion = raw_assertion(rp, issuer, nested_arrays(5000))
    else:
        assertion = raw_jws('{"alg": "ES256", "kid": "rp-sig-1", "x": ' + nested_arrays(5000) + "}", "{}")
    auth = {"client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}
    response = par(client, rp, issuer, auth={**auth, "client_assertion": assertion})
    assert_refused(response, 400, "invalid_client")


@pytest.mark.parametrize(
    ("depth", "status", "error"),
    [(50_000, 413, "invalid_request"), (4_000, 400, "invalid_authorization_details")],
)
def test_authorization_details_nested_deep_are_refused(
    client: FlaskClient, rp: TestRelyingParty, issuer: str, depth: int, status: int, error: str
) -> None:
    # 50,000 deep is 100 kB: over the body limit. 4,000 deep fits, and is more than the JSON parser nests.
    response = par(client, rp, issuer, authorization_details=nested_arrays(depth))
    assert_refused(response, status, error)


@pytest.mark.parametrize(("count", "status", "error"), [(5000, 413, "invalid_request"), (150, 400, "at most")])
def test_thousands_of_authorization_details_are_refused_before_any_work(
    client: FlaskClient, rp: TestRelyingParty, issuer: str, count: int, status: int, error: str
) -> None:
    entries = json.dumps([{"type": "mydata_delivery", "service": "s"}] * count, separators=(",", ":"))
    response = par(client, rp, issuer, authorization_details=entries)
    if status == 413:
        assert_refused(response, 413, error)
    else:
        assert_refused(response, 400, "invalid_authorization_details")
        assert error in response.json["error_description"]


@pytest.mark.parametrize("character", ["\u2603", "\u202e", '"', "\\", "\x00"])
def test_redirect_uri_with_odd_characters_is_refused_without_echoing_them(
    client: FlaskClient, rp: TestRelyingParty, issuer: str, character: str
) -> None:
    response = par(client, rp, issuer, redirect_uri=f"https://rp.example/{character}callback")
    assert_refused(response, 400, "invalid_request")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("acr_values", "urn:\u202eevil"),
        ("acr_values", "it's"),
        ("scope", "openid \u2603"),
        ("response_type", "code\u202e"),
        ("p\u2603rameter", "x"),
    ],
)
def test_other_echoed_parameters_never_break_the_error_body(
    client: FlaskClient, rp: TestRelyingParty, issuer: str, name: str, value: str
) -> None:
    response = par(client, rp, issuer, **{name: value})
    assert response.status_code == 400
    assert response.json["error"] in OAUTH_ERRORS
    assert is_error_text(response.json["error_description"])


def test_a_body_larger_than_the_oauth_limit_is_refused(client: FlaskClient, rp: TestRelyingParty, issuer: str) -> None:
    response = par(client, rp, issuer, state="s" * 70_000)
    assert_refused(response, 413, "invalid_request")


# -- item 7: malformed authorization_details -----------------------------------------------------------


def delivery(**members: Any) -> dict[str, Any]:
    """Return a `mydata_delivery` entry with *members*."""
    return {"type": "mydata_delivery", "service": "test-bank.loans", **members}


@pytest.mark.parametrize(
    ("details", "reason"),
    [
        pytest.param({"type": "mydata_delivery"}, "array", id="object"),
        pytest.param("mydata_delivery", "array", id="string"),
        pytest.param(42, "array", id="number"),
        pytest.param(None, "array", id="null"),
        pytest.param([], "array", id="empty"),
        pytest.param(["mydata_delivery"], "objects", id="not-objects"),
        pytest.param([[delivery()]], "objects", id="nested-array"),
        pytest.param([{"service": "s"}], "type", id="no-type"),
        pytest.param([{"type": 7}], "type", id="type-not-string"),
        pytest.param([{"type": "pay\u202eevil"}], "Unsupported", id="unknown-type-bidi"),
        pytest.param([{"type": 'say "hi"'}], "Unsupported", id="unknown-type-quote"),
        pytest.param([delivery(service=None)], "service", id="service-null"),
        pytest.param([delivery(service=["a"])], "service", id="service-array"),
        pytest.param([delivery(service="")], "service", id="service-empty"),
        pytest.param([delivery(service="s" * 1000)], "service", id="service-long"),
        pytest.param([delivery(datasets="tax.income")], "datasets", id="datasets-string"),
        pytest.param([delivery(datasets=[1, 2])], "datasets", id="datasets-numbers"),
        pytest.param([delivery(datasets=[["tax.income"]])], "datasets", id="datasets-nested"),
        pytest.param([delivery(datasets=["tax.income", "tax.income"])], "twice", id="datasets-duplicate"),
        pytest.param([delivery(datasets=[f"d{i}" for i in range(500)])], "at most", id="datasets-many"),
        pytest.param([delivery(**{"\u2603": 1})], "Unknown", id="unknown-member-unicode"),
        pytest.param([delivery(), delivery()], "one", id="two-deliveries"),
        pytest.param([delivery()] * 20, "at most", id="too-many"),
    ],
)
def test_malformed_authorization_details_are_refused(
    client: FlaskClient, rp: TestRelyingParty, issuer: str, details: Any, reason: str
) -> None:
    response = par(client, rp, issuer, authorization_details=json.dumps(details))
    assert_refused(response, 400, "invalid_authorization_details")
    assert reason in response.json["error_description"]


@pytest.mark.parametrize("raw", ["not json", "[" * 3000, "\x00", "[1,]", "\ufffe"])
def test_authorization_details_that_are_not_json_are_refused(
    client: FlaskClient, rp: TestRelyingParty, issuer: str, raw: str
) -> None:
    response = par(client, rp, issuer, authorization_details=raw)
    assert_refused(response, 400, "invalid_authorization_details")


def test_authorization_details_longer_than_the_limit_are_refused_unread() -> None:
    with pytest.raises(InvalidAuthorizationDetails, match="at most"):
        authorization_details_json(" " * 100_000 + "[]")


# -- the fuzz test of item 15 --------------------------------------------------------------------------

_BIDI_AND_CONTROLS = "\u202e\u202d\u2066\u200f\x00\x1b\u2603\ufeff"
_texts = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=_BIDI_AND_CONTROLS + "ab=&%\"'\\[]{}:,.", max_size=40),
    st.sampled_from(
        [
            nested_arrays(50_000),
            "[" * 3000,
            '{"a":' * 3000,
            "x" * 100_000,
            json.dumps([{"type": "mydata_delivery", "service": "s"}] * 2000),
            json.dumps([{"type": "mydata_delivery", "service": "s"}] * 3),
            json.dumps(OFF_CURVE_JWK),
            raw_jws('{"alg": "ES256"}', nested_arrays(5000)),
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "https://rp.example/callback",
            "openid",
            "code",
            "S256",
            "authorization_code",
        ]
    ),
)
# Header values: anything but line breaks (which no HTTP server passes on).
_header_texts = st.one_of(
    st.text(alphabet=st.characters(codec="latin-1", exclude_characters="\r\n"), max_size=60),
    st.sampled_from(
        [
            "DPoP " + "a" * 43,
            "DPoP " + "a" * 10_000,
            "Bearer x",
            "a.b.c",
            raw_jws(json.dumps({"typ": "dpop+jwt", "alg": "ES256", "jwk": OFF_CURVE_JWK}), "{}"),
            raw_jws('{"typ": "dpop+jwt", "alg": "ES256", "jwk": ' + nested_arrays(5000) + "}", "{}"),
            raw_jws(json.dumps({"typ": "dpop+jwt", "alg": "ES256", "jwk": {"kty": "EC"}}), nested_arrays(5000)),
            b64url(b"\xff\xfe") + "." + b64url(b"{}") + ".",
            "x" * 20_000,
        ]
    ),
)
#: Each endpoint's parameters, and the values of a well-formed request that the fuzzer changes.
_FIELDS = {
    "/oauth/par": [
        "response_type", "client_id", "redirect_uri", "scope", "state", "nonce", "code_challenge",
        "code_challenge_method", "acr_values", "authorization_details", "dpop_jkt", "client_assertion_type",
        "client_assertion", "request_uri",
    ],
    "/oauth/token": [
        "grant_type", "code", "redirect_uri", "code_verifier", "client_id", "client_assertion_type",
        "client_assertion",
    ],
    "/oauth/userinfo": ["access_token", "scope"],
}  # fmt: skip
_PROOFS = {path: dpop_proofs("POST", f"http://localhost{path}") for path in _FIELDS}


def well_formed(path: str, rp: TestRelyingParty, issuer: str) -> dict[str, str]:
    """Return a request to *path* that passes every check (but the code, which is made up)."""
    if path == "/oauth/par":
        return {
            "response_type": "code", "client_id": rp.client_id, "redirect_uri": rp.redirect_uri, "scope": "openid",
            "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", "code_challenge_method": "S256",
            **rp.client_auth(issuer),
        }  # fmt: skip
    if path == "/oauth/token":
        return {
            "grant_type": "authorization_code", "code": "x" * 43, "redirect_uri": rp.redirect_uri,
            "code_verifier": "v" * 43, **rp.client_auth(issuer),
        }  # fmt: skip
    return {}


@st.composite
def oauth_requests(draw: st.DrawFn) -> dict[str, Any]:
    """Draw a request to PAR, token or userinfo: a well-formed one changed, or random fields; odd headers and bodies."""
    path = draw(st.sampled_from(sorted(_FIELDS)))
    names = st.sampled_from(_FIELDS[path]) | st.text(max_size=10)
    changes: dict[str, Any] = draw(st.dictionaries(names, st.none() | _texts, max_size=3))
    if "authorization_details" in changes and draw(st.booleans()):
        changes["authorization_details"] = json.dumps(draw(json_values))
    return {
        "path": path,
        "well_formed": draw(st.booleans()),
        "changes": changes,
        "dpop": draw(st.none() | _header_texts | _PROOFS[path] | st.just("valid")),
        "authorization": draw(st.none() | _header_texts),
        "body": draw(st.sampled_from(["form", "form", "form", "json", "text", "multipart", "none"])),
    }


@settings(
    max_examples=200,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(request=oauth_requests())
def test_fuzzed_oauth_requests_never_get_a_server_error(
    client: FlaskClient, rp: TestRelyingParty, issuer: str, request: dict[str, Any]
) -> None:
    path = request["path"]
    form = well_formed(path, rp, issuer) if request["well_formed"] else {}
    for name, value in request["changes"].items():
        if value is None:
            form.pop(name, None)
        else:
            form[name] = value
    headers = {}
    if request["dpop"] == "valid":
        headers["DPoP"] = rp.dpop("POST", issuer + path)
    elif request["dpop"] is not None:
        headers["DPoP"] = request["dpop"]
    if request["authorization"] is not None:
        headers["Authorization"] = request["authorization"]
    kwargs: dict[str, Any] = {"headers": headers}
    if request["body"] == "form":
        kwargs["data"] = form
    elif request["body"] == "json":
        kwargs["json"] = form
    elif request["body"] == "text":
        kwargs["data"] = json.dumps(form)
        kwargs["content_type"] = "text/plain"
    elif request["body"] == "multipart":
        kwargs["data"] = form
        kwargs["content_type"] = "multipart/form-data"
    response = client.post(path, **kwargs)
    assert response.status_code < 500, response.get_data(as_text=True)[:300]
    if response.status_code < 400:
        return  # a well-formed request, left well-formed
    body = response.get_json(silent=True)
    assert body is not None
    assert body["error"] in OAUTH_ERRORS, body
    assert is_error_text(body.get("error_description", ""))
