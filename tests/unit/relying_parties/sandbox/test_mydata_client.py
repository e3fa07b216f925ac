"""The sandbox relying parties' MyData client refuses what does not verify and reads every refusal.

The platform is a stub that answers discovery, JWKS and the catalogue; packages are built here with
joserfc as the platform builds them (DESIGN §6.2), then changed one way at a time.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import time
from collections.abc import Callable
from typing import Any

import pytest
import requests
from joserfc import jwe, jws, jwt
from joserfc.jwk import ECKey, KeySet
from requests.structures import CaseInsensitiveDict

from relying_parties.sandbox.mydata_client import (
    AuthorizationError,
    AuthorizationStart,
    ClientSettings,
    DeliveryRefused,
    MyDataClient,
    Tokens,
    VerificationFailed,
    b64url_sha256,
)

ISSUER = "https://mydata.example.gov.tw"
CLIENT_ID = "acme-bank-web"
TXN = "consent-1"
SUB = "pairwise-sub"
HOUSEHOLD = {"household_number": "A0382615", "members": [{"name": "王小明"}]}
INCOME = {"tax_year": 2025, "total_gross_amount": 884615}


def response(
    status: int, body: Any = None, headers: dict[str, str] | None = None, *, raw: str | None = None
) -> requests.Response:
    """Return a canned HTTP response."""
    answer = requests.Response()
    answer.status_code = status
    answer._content = (raw if raw is not None else json.dumps(body)).encode()
    answer.headers = CaseInsensitiveDict({"Content-Type": "application/json", **(headers or {})})
    return answer


class StubPlatform:
    """Answers the client's GETs and POSTs by URL; records what it was sent."""

    def __init__(self, platform_key: ECKey, agency_key: ECKey) -> None:
        self.routes: dict[str, Callable[[], requests.Response]] = {
            f"{ISSUER}/.well-known/openid-configuration": lambda: response(200, self.metadata),
            f"{ISSUER}/oauth/jwks": lambda: response(200, {"keys": [platform_key.as_dict(private=False)]}),
            f"{ISSUER}/api/v1/catalogue": lambda: response(
                200,
                {
                    "datasets": [],
                    "providers": [
                        {"id": "moi-household", "agency_name_zh": "內政部戶政司", "agency_name_en": "MOI",
                         "jwks": {"keys": [agency_key.as_dict(private=False)]}},
                        {"id": "mof-fia", "agency_name_zh": "財政部財政資訊中心", "agency_name_en": "FIA",
                         "jwks": {"keys": [agency_key.as_dict(private=False)]}},
                    ],
                },
            ),
        }  # fmt: skip
        self.metadata = {
            "issuer": ISSUER,
            "authorization_endpoint": f"{ISSUER}/oauth/authorize",
            "pushed_authorization_request_endpoint": f"{ISSUER}/oauth/par",
            "token_endpoint": f"{ISSUER}/oauth/token",
            "jwks_uri": f"{ISSUER}/oauth/jwks",
        }
        self.sent: list[tuple[str, str, dict[str, Any]]] = []

    def get(self, url: str, **kwargs: Any) -> requests.Response:
        self.sent.append(("GET", url, kwargs))
        return self.routes[url]()

    def post(self, url: str, **kwargs: Any) -> requests.Response:
        self.sent.append(("POST", url, kwargs))
        return self.routes[url]()


@pytest.fixture
def platform_key() -> ECKey:
    return ECKey.generate_key("P-256", parameters={"kid": "platform-1"})


@pytest.fixture
def agency_key() -> ECKey:
    return ECKey.generate_key("P-256", parameters={"kid": "agency-1"})


@pytest.fixture
def client_keys() -> tuple[ECKey, ECKey]:
    sig = ECKey.generate_key("P-256", parameters={"kid": "acme-sig", "use": "sig", "alg": "ES256"})
    enc = ECKey.generate_key("P-256", parameters={"kid": "acme-enc", "use": "enc", "alg": "ECDH-ES+A256KW"})
    return sig, enc


@pytest.fixture
def stub(platform_key: ECKey, agency_key: ECKey) -> StubPlatform:
    return StubPlatform(platform_key, agency_key)


@pytest.fixture
def client(stub: StubPlatform, client_keys: tuple[ECKey, ECKey]) -> MyDataClient:
    settings = ClientSettings(
        issuer=ISSUER,
        client_id=CLIENT_ID,
        redirect_uri="https://apply.acme-bank.example/callback",
        keys=KeySet(list(client_keys)),
    )
    return MyDataClient(settings, http=stub)  # type: ignore[arg-type]


def tokens(**id_token: Any) -> Tokens:
    claims = {"iss": ISSUER, "aud": CLIENT_ID, "sub": SUB, "txn": TXN, **id_token}
    granted = [
        {"type": "mydata_delivery", "service": "acme-bank.card", "datasets": ["household.registration", "tax.income"]}
    ]
    return Tokens(access_token="token", expires_at=time.time() + 600, id_token=claims, authorization_details=granted)


def agency_document(key: ECKey, dataset: str, data: dict[str, Any], **changes: Any) -> str:
    claims = {"iss": "agency", "dataset": dataset, "sub": "A123456789", "txn": TXN,
              "generated_at": "2026-11-24T19:00:00+08:00", "data": data, **changes}  # fmt: skip
    return jwt.encode({"alg": "ES256", "kid": key.kid, "typ": "mydata-response+jwt"}, claims, key)


def package_claims(agency_key: ECKey) -> dict[str, Any]:
    def entry(provider: str, dataset: str, data: dict[str, Any]) -> dict[str, Any]:
        return {"provider": provider, "status": "ok", "generated_at": "2026-11-24T19:00:00+08:00",
                "provider_jws": agency_document(agency_key, dataset, data), "data": data}  # fmt: skip

    return {
        "iss": ISSUER, "aud": CLIENT_ID, "iat": int(time.time()), "txn": TXN, "sub": SUB,
        "service": "acme-bank.card", "purpose": "審核", "receipt": "receipt-1",
        "datasets": {
            "household.registration": entry("moi-household", "household.registration", HOUSEHOLD),
            "tax.income": entry("mof-fia", "tax.income", INCOME),
        },
    }  # fmt: skip


def seal(claims: dict[str, Any], signer: ECKey, recipient: ECKey, typ: str = "mydata-package+jwt") -> str:
    signed = jwt.encode({"alg": "ES256", "kid": signer.kid, "typ": typ}, claims, signer)
    header = {"alg": "ECDH-ES+A256KW", "enc": "A256GCM", "cty": "JWT", "kid": recipient.kid}
    public = ECKey.import_key(recipient.as_dict(private=False))
    return jwe.encrypt_compact(header, signed.encode(), public, algorithms=["ECDH-ES+A256KW", "A256GCM"])


def test_a_verified_package_gives_each_dataset_and_the_checks_made(
    client: MyDataClient, platform_key: ECKey, agency_key: ECKey, client_keys: tuple[ECKey, ECKey]
) -> None:
    package = client.open_package(seal(package_claims(agency_key), platform_key, client_keys[1]), tokens())
    assert package.txn == TXN
    assert package.receipt == "receipt-1"
    assert package.datasets["household.registration"].data == HOUSEHOLD
    assert package.datasets["household.registration"].agency_zh == "內政部戶政司"
    assert [c.what for c in package.checks] == ["jwe", "package", "provider", "provider"]


def _tamper_data(claims: dict[str, Any]) -> None:
    claims["datasets"]["tax.income"]["data"] = {**INCOME, "total_gross_amount": 9_000_000}


def _unknown_agency_key(claims: dict[str, Any]) -> None:
    stranger = ECKey.generate_key("P-256", parameters={"kid": "agency-1"})  # same kid, other key
    claims["datasets"]["tax.income"]["provider_jws"] = agency_document(stranger, "tax.income", INCOME)


def _other_consent_document(claims: dict[str, Any], agency_key: ECKey) -> None:
    claims["datasets"]["tax.income"]["provider_jws"] = agency_document(agency_key, "tax.income", INCOME, txn="other")


def _another_person(claims: dict[str, Any], agency_key: ECKey) -> None:
    claims["datasets"]["tax.income"]["provider_jws"] = agency_document(
        agency_key, "tax.income", INCOME, sub="B223456782"
    )


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda c, k: c.update(aud="another-client"), "package claims"),
        (lambda c, k: c.update(txn="another-consent"), "package claims"),
        (lambda c, k: c.update(sub="another-citizen"), "package claims"),
        (lambda c, k: c.update(iss="https://evil.example"), "package claims"),
        (lambda c, k: c["datasets"].pop("tax.income"), "datasets the citizen granted"),
        (lambda c, k: _tamper_data(c), "data differs"),
        (lambda c, k: _unknown_agency_key(c), "signature of mof-fia"),
        (lambda c, k: _other_consent_document(c, k), "txn differs"),
        (lambda c, k: _another_person(c, k), "different persons"),
        (lambda c, k: c["datasets"]["tax.income"].update(status="maybe"), "unknown status"),
    ],
    ids=[
        "aud",
        "txn",
        "sub",
        "iss",
        "missing-dataset",
        "tampered-data",
        "unknown-agency-key",
        "other-consent",
        "another-person",
        "unknown-status",
    ],
)
def test_a_package_that_does_not_hold_is_refused(
    client: MyDataClient,
    platform_key: ECKey,
    agency_key: ECKey,
    client_keys: tuple[ECKey, ECKey],
    change: Callable[[dict[str, Any], ECKey], object],
    reason: str,
) -> None:
    claims = package_claims(agency_key)
    change(claims, agency_key)
    with pytest.raises(VerificationFailed, match=reason):
        client.open_package(seal(claims, platform_key, client_keys[1]), tokens())


def test_a_package_signed_or_sealed_otherwise_is_refused(
    client: MyDataClient, platform_key: ECKey, agency_key: ECKey, client_keys: tuple[ECKey, ECKey]
) -> None:
    claims = package_claims(agency_key)
    impostor = ECKey.generate_key("P-256", parameters={"kid": "platform-1"})
    with pytest.raises(VerificationFailed, match="platform's signature"):
        client.open_package(seal(claims, impostor, client_keys[1]), tokens())
    with pytest.raises(VerificationFailed, match="type mydata-package"):
        client.open_package(seal(claims, platform_key, client_keys[1], typ="JWT"), tokens())
    someone_else = ECKey.generate_key("P-256", parameters={"kid": "acme-enc"})
    with pytest.raises(VerificationFailed, match="does not decrypt"):
        client.open_package(seal(claims, platform_key, someone_else), tokens())


def test_an_optional_dataset_not_given_is_reported_not_verified(
    client: MyDataClient, platform_key: ECKey, agency_key: ECKey, client_keys: tuple[ECKey, ECKey]
) -> None:
    claims = package_claims(agency_key)
    claims["datasets"]["tax.income"] = {"provider": "mof-fia", "status": "no_record"}
    package = client.open_package(seal(claims, platform_key, client_keys[1]), tokens())
    assert package.datasets["tax.income"].status == "no_record"
    assert package.datasets["tax.income"].data is None


def test_the_authorization_response_must_be_ours_and_from_our_issuer(client: MyDataClient) -> None:
    good = {"state": "s1", "iss": ISSUER, "code": "c1"}
    assert client.authorization_code(good, "s1") == "c1"
    with pytest.raises(VerificationFailed, match="state"):
        client.authorization_code(good, "s2")
    with pytest.raises(VerificationFailed, match="iss"):
        client.authorization_code({**good, "iss": "https://evil.example"}, "s1")
    with pytest.raises(VerificationFailed, match="iss"):
        client.authorization_code({"state": "s1", "code": "c1"}, "s1")
    with pytest.raises(AuthorizationError) as denied:
        client.authorization_code({"state": "s1", "iss": ISSUER, "error": "access_denied"}, "s1")
    assert denied.value.error == "access_denied"


CHALLENGE = 'DPoP error="invalid_dpop_proof", error_description="The proof is old.", algs="ES256"'
REFUSALS = {
    "503": (
        response(
            503,
            {"error": "provider_unavailable", "error_description": "later", "datasets": {"tax.income": "timeout"}},
            {"Retry-After": "30"},
        ),
        (503, "provider_unavailable", {"tax.income": "timeout"}, 30),
    ),
    "already-delivered": (response(410, {"error": "already_delivered"}), (410, "already_delivered", {}, None)),
    "expired": (response(410, {"error": "consent_expired"}), (410, "consent_expired", {}, None)),
    "revoked": (response(403, {"error": "consent_revoked"}), (403, "consent_revoked", {}, None)),
    "401": (
        response(401, {"error": "invalid_token"}, {"WWW-Authenticate": CHALLENGE}),
        (401, "invalid_dpop_proof", {}, None),
    ),
}


@pytest.mark.parametrize(("answer", "expected"), REFUSALS.values(), ids=REFUSALS.keys())
def test_delivery_refusals_are_read_as_the_platform_states_them(
    client: MyDataClient, stub: StubPlatform, answer: requests.Response, expected: tuple[Any, ...]
) -> None:
    stub.routes[f"{ISSUER}/api/v1/delivery"] = lambda: answer
    dpop_key = ECKey.generate_key("P-256")
    with pytest.raises(DeliveryRefused) as refused:
        client.collect_delivery(tokens(), dpop_key)
    error = refused.value
    assert (error.status, error.error, error.datasets, error.retry_after) == expected
    if error.status == 401:
        assert error.description == "The proof is old."
    # The call carried the DPoP-bound token and a proof over this request with the token's hash.
    method, url, sent = stub.sent[-1]
    assert (method, url) == ("GET", f"{ISSUER}/api/v1/delivery")
    assert sent["headers"]["Authorization"] == "DPoP token"
    proof = jws.extract_compact(sent["headers"]["DPoP"].encode())
    assert proof.headers()["typ"] == "dpop+jwt"
    claims = json.loads(proof.payload)
    assert (claims["htm"], claims["htu"], claims["ath"]) == ("GET", url, b64url_sha256("token"))


def test_a_retry_after_date_is_read_as_seconds(client: MyDataClient, stub: StubPlatform) -> None:
    later = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 120))
    stub.routes[f"{ISSUER}/api/v1/delivery"] = lambda: response(
        503, {"error": "provider_unavailable", "datasets": {}}, {"Retry-After": later}
    )
    with pytest.raises(DeliveryRefused) as refused:
        client.collect_delivery(tokens(), ECKey.generate_key("P-256"))
    assert refused.value.retry_after is not None
    assert 100 <= refused.value.retry_after <= 120


def id_token(key: ECKey, access_token: str, **changes: Any) -> str:
    digest = hashlib.sha256(access_token.encode()).digest()[:16]
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": CLIENT_ID, "sub": SUB, "txn": TXN, "iat": now, "exp": now + 600,
              "nonce": "n1", "at_hash": base64.urlsafe_b64encode(digest).rstrip(b"=").decode(), **changes}  # fmt: skip
    return jwt.encode({"alg": "ES256", "kid": key.kid}, claims, key)


def test_the_id_token_is_verified(client: MyDataClient, platform_key: ECKey) -> None:
    assert client.verify_id_token(id_token(platform_key, "t1"), nonce="n1", access_token="t1")["txn"] == TXN
    with pytest.raises(VerificationFailed, match="nonce"):
        client.verify_id_token(id_token(platform_key, "t1"), nonce="n2", access_token="t1")
    with pytest.raises(VerificationFailed, match="at_hash"):
        client.verify_id_token(id_token(platform_key, "t1"), nonce="n1", access_token="t2")
    with pytest.raises(VerificationFailed, match="ID token claims"):
        client.verify_id_token(id_token(platform_key, "t1", aud="other"), nonce="n1", access_token="t1")
    with pytest.raises(VerificationFailed, match="ID token claims"):
        client.verify_id_token(id_token(platform_key, "t1", exp=int(time.time()) - 120), nonce="n1", access_token="t1")


def test_the_token_must_be_dpop_bound(client: MyDataClient, stub: StubPlatform, platform_key: ECKey) -> None:
    stub.routes[f"{ISSUER}/oauth/token"] = lambda: response(
        200, {"access_token": "t1", "token_type": "Bearer", "expires_in": 600, "id_token": id_token(platform_key, "t1")}
    )
    start = AuthorizationStart("", "s1", "n1", "verifier", ECKey.generate_key("P-256"))
    with pytest.raises(VerificationFailed, match="DPoP-bound"):
        client.redeem_code("c1", start)


def test_the_pushed_request_carries_pkce_dpop_and_a_short_assertion(client: MyDataClient, stub: StubPlatform) -> None:
    stub.routes[f"{ISSUER}/oauth/par"] = lambda: response(201, {"request_uri": "urn:ietf:params:oauth:request_uri:x"})
    start = client.start_authorization([{"type": "mydata_delivery", "service": "acme-bank.card"}], ui_locales="en")
    assert start.authorization_url == (
        f"{ISSUER}/oauth/authorize?client_id={CLIENT_ID}&request_uri=urn%3Aietf%3Aparams%3Aoauth%3Arequest_uri%3Ax"
    )
    _, _, sent = stub.sent[-1]
    form = sent["data"]
    assert form["code_challenge"] == b64url_sha256(start.code_verifier)
    assert form["code_challenge_method"] == "S256"
    assert json.loads(form["authorization_details"]) == [{"type": "mydata_delivery", "service": "acme-bank.card"}]
    assertion = json.loads(jws.extract_compact(form["client_assertion"].encode()).payload)
    assert assertion["aud"] == ISSUER
    assert assertion["iss"] == assertion["sub"] == CLIENT_ID
    assert assertion["exp"] - assertion["iat"] == 60
    proof = jws.extract_compact(sent["headers"]["DPoP"].encode())
    assert proof.headers()["jwk"] == start.dpop_key.as_dict(private=False)
    assert "ath" not in json.loads(proof.payload)


def test_a_discovery_document_of_another_issuer_is_not_used(client: MyDataClient, stub: StubPlatform) -> None:
    stub.metadata = {**copy.deepcopy(stub.metadata), "issuer": "https://evil.example"}
    with pytest.raises(VerificationFailed, match="another issuer"):
        client.metadata()
