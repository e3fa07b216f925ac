"""The sandbox agency checks every query like a real agency, and its control endpoint sets faults."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from flask import Flask
from flask.testing import FlaskClient

from mydata.clock import FrozenClock
from mydata.keys import public_jwk
from providers.protocol import REQUEST_TYP, RESPONSE_TYP
from providers.sandbox.agency import LEEWAY_SECONDS, AgencySettings, PlatformJwks, ReplayCache, create_agency_app
from providers.sandbox.faults import Fault, FaultKind, FaultTable
from providers.sandbox.keys import ensure_agency_key

ISSUER = "http://platform.test"
WANG = "A123456789"
QUERY = "/mof-fia/mydata/v1/query"


class Platform:
    """A stand-in for the platform: one ES256 key, published in a JWKS that a test can change."""

    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.kid = "platform-1"
        self.jwks: dict[str, Any] = {"keys": [public_jwk(self.key.public_key(), self.kid)]}
        self.fetches = 0

    def load(self) -> dict[str, Any]:
        self.fetches += 1
        return self.jwks

    def query(self, clock: FrozenClock, **overrides: Any) -> str:
        now = clock.timestamp()
        claims = {
            "iss": ISSUER,
            "aud": "mof-fia",
            "sub": WANG,
            "dataset": "tax.income",
            "txn": "txn-1",
            "purpose": "test",
            "iat": now,
            "exp": now + 60,
            "jti": secrets.token_urlsafe(8),
        } | overrides
        claims = {k: v for k, v in claims.items() if v is not None}
        headers = {"kid": self.kid, "typ": REQUEST_TYP}
        return jwt.encode(claims, self.key, algorithm="ES256", headers=headers)


@pytest.fixture
def platform() -> Platform:
    return Platform()


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
def agency(tmp_path: Path, platform: Platform, clock: FrozenClock) -> Flask:
    for provider in ("moi-household", "mof-fia", "bli", "nhia"):
        ensure_agency_key(tmp_path, provider)
    return create_agency_app(
        AgencySettings(
            platform_issuer=ISSUER,
            platform_jwks=PlatformJwks(platform.load, min_refetch_seconds=0),
            keys_dir=tmp_path,
            faults=FaultTable(),
            clock=clock,
            timeout_sleep_seconds=0.01,
        )
    )


@pytest.fixture
def client(agency: Flask) -> FlaskClient:
    return agency.test_client()


def post(client: FlaskClient, token: str, path: str = QUERY) -> Any:
    return client.post(path, data=token, content_type="application/jwt")


def test_a_valid_query_gets_a_signed_answer(
    client: FlaskClient, platform: Platform, clock: FrozenClock, tmp_path: Path
) -> None:
    response = post(client, platform.query(clock))
    assert response.status_code == 200
    assert response.mimetype == "application/jose"
    token = response.get_data(as_text=True)
    header = jwt.get_unverified_header(token)
    assert header["typ"] == RESPONSE_TYP
    key = ensure_agency_key(tmp_path, "mof-fia")
    assert header["kid"] == key.kid
    claims = jwt.decode(token, key.private_key.public_key(), algorithms=["ES256"])
    assert claims["iss"] == "mof-fia"
    assert (claims["dataset"], claims["sub"], claims["txn"]) == ("tax.income", WANG, "txn-1")
    assert claims["data"]["tax_year"] == 2025


def unsigned(platform: Platform, clock: FrozenClock) -> str:
    token = platform.query(clock)
    _header, payload, _ = token.split(".")
    none_header = jwt.utils.base64url_encode(json.dumps({"alg": "none", "typ": REQUEST_TYP}).encode()).decode()
    return f"{none_header}.{payload}."


def hs256(platform: Platform, clock: FrozenClock) -> str:
    # The classic confusion attack: HMAC keyed with the platform's public key.
    secret = json.dumps(platform.jwks["keys"][0]).encode()
    _, payload, _ = platform.query(clock).split(".")
    header = jwt.utils.base64url_encode(json.dumps({"alg": "HS256", "kid": platform.kid, "typ": REQUEST_TYP}).encode())
    signing_input = header + b"." + payload.encode()
    signature = jwt.utils.base64url_encode(hmac.new(secret, signing_input, hashlib.sha256).digest())
    return (signing_input + b"." + signature).decode()


def forged(platform: Platform, clock: FrozenClock) -> str:
    other = ec.generate_private_key(ec.SECP256R1())
    claims = jwt.decode(platform.query(clock), options={"verify_signature": False})
    return jwt.encode(claims, other, algorithm="ES256", headers={"kid": platform.kid, "typ": REQUEST_TYP})


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (unsigned, "signed with ES256"),
        (hs256, "signed with ES256"),
        (forged, "signature does not verify"),
        (lambda p, c: p.query(c, iat=c.timestamp() - 120, exp=c.timestamp() - 60), "expired"),
        (lambda p, c: p.query(c, aud="bli"), "another provider"),
        (lambda p, c: p.query(c, iss="https://evil.example"), "someone else"),
        (lambda p, c: p.query(c, iat=c.timestamp() + 60, exp=c.timestamp() + 90), "in the future"),
        (lambda p, c: p.query(c, exp=c.timestamp() + 3600), "more than 60 seconds"),
        (lambda p, c: p.query(c, jti=None), "lacks the jti"),
        (lambda p, c: p.query(c, exp="later"), "lacks the exp"),
        (lambda p, c: "not-a-jwt", "not a JWT"),
    ],
)
def test_unacceptable_queries_are_refused_with_401(
    client: FlaskClient, platform: Platform, clock: FrozenClock, make: Any, reason: str
) -> None:
    response = post(client, make(platform, clock))
    assert response.status_code == 401
    assert response.json["error"] == "invalid_query"
    assert reason in response.json["error_description"]


def test_a_replayed_query_is_refused(client: FlaskClient, platform: Platform, clock: FrozenClock) -> None:
    token = platform.query(clock)
    assert post(client, token).status_code == 200
    replay = post(client, token)
    assert replay.status_code == 401
    assert "used before" in replay.json["error_description"]


def test_a_wrong_typ_header_is_refused(client: FlaskClient, platform: Platform, clock: FrozenClock) -> None:
    claims = jwt.decode(platform.query(clock), options={"verify_signature": False})
    token = jwt.encode(claims, platform.key, algorithm="ES256", headers={"kid": platform.kid, "typ": "JWT"})
    assert post(client, token).status_code == 401


def test_a_rotated_platform_key_is_fetched_once_and_unknown_kids_are_refused(
    client: FlaskClient, platform: Platform, clock: FrozenClock
) -> None:
    assert post(client, platform.query(clock)).status_code == 200
    assert platform.fetches == 1
    platform.key, platform.kid = ec.generate_private_key(ec.SECP256R1()), "platform-2"
    platform.jwks = {"keys": [public_jwk(platform.key.public_key(), "platform-2"), *platform.jwks["keys"]]}
    assert post(client, platform.query(clock)).status_code == 200
    assert platform.fetches == 2
    platform.kid = "made-up"
    assert "does not publish" in post(client, platform.query(clock)).json["error_description"]


def test_jwks_refetch_on_unknown_kids_is_rate_limited(platform: Platform) -> None:
    jwks = PlatformJwks(platform.load, min_refetch_seconds=3600)
    assert jwks.key("platform-1") is not None
    for _ in range(5):
        assert jwks.key("made-up") is None
    assert platform.fetches == 1


def test_protocol_errors(client: FlaskClient, platform: Platform, clock: FrozenClock) -> None:
    token = platform.query(clock)
    assert client.post(QUERY, data=token, content_type="text/plain").status_code == 415
    assert post(client, token, "/nobody/mydata/v1/query").status_code == 404
    other = post(client, platform.query(clock, dataset="household.registration"))
    assert other.status_code == 400
    assert other.json["error"] == "unknown_dataset"
    assert client.get(QUERY).status_code == 405
    assert client.get(QUERY).json["error"] == "method_not_allowed"


def test_no_record_is_404_no_record(client: FlaskClient, platform: Platform, clock: FrozenClock) -> None:
    response = post(client, platform.query(clock, sub="Z999999999"))
    assert response.status_code == 404
    assert response.json["error"] == "no_record"


def test_health(client: FlaskClient, tmp_path: Path) -> None:
    response = client.get("/nhia/mydata/v1/health")
    assert response.json == {"status": "ok", "provider": "nhia", "datasets": ["nhi.enrolment"]}
    (tmp_path / "nhia.jwk.json").unlink()
    assert client.get("/nobody/mydata/v1/health").status_code == 404


def test_health_before_seeding_is_503(platform: Platform, clock: FrozenClock, tmp_path: Path) -> None:
    app = create_agency_app(
        AgencySettings(ISSUER, PlatformJwks(platform.load), tmp_path / "empty", FaultTable(), clock)
    )
    response = app.test_client().get("/bli/mydata/v1/health")
    assert response.status_code == 503
    assert "mydata sandbox seed" in response.json["reason"]


def test_control_endpoint_sets_lists_and_removes_faults(
    client: FlaskClient, platform: Platform, clock: FrozenClock
) -> None:
    fault = {"national_id": WANG, "dataset": "tax.income", "kind": "busy", "retry_after": 9}
    assert client.put("/sandbox/faults", json=fault).json == fault | {"delay_ms": 0}
    assert client.get("/sandbox/faults").json["faults"] == [fault | {"delay_ms": 0}]
    busy = post(client, platform.query(clock))
    assert busy.status_code == 503
    assert busy.headers["Retry-After"] == "9"
    removed = client.delete(f"/sandbox/faults?national_id={WANG}&dataset=tax.income")
    assert removed.json == {"faults": []}
    assert post(client, platform.query(clock)).status_code == 200
    assert client.delete(f"/sandbox/faults?national_id={WANG}&dataset=tax.income").status_code == 404
    assert client.delete(f"/sandbox/faults?national_id={WANG}").status_code == 400


def test_control_endpoint_refuses_bad_faults(client: FlaskClient) -> None:
    bad = client.put("/sandbox/faults", json={"national_id": "*", "dataset": "tax.income", "kind": "explode"})
    assert bad.status_code == 400
    assert bad.json["error"] == "invalid_fault"
    assert "kind must be one of" in bad.json["error_description"]
    assert client.put("/sandbox/faults", data="{}", content_type="text/plain").status_code == 415


def test_clearing_every_fault(client: FlaskClient, agency: Flask) -> None:
    agency.extensions["sandbox.agency"].settings.faults.put(Fault("*", "*", FaultKind.ERROR))
    assert client.delete("/sandbox/faults").json == {"faults": []}


@pytest.mark.parametrize(
    ("kind", "status"),
    [(FaultKind.ERROR, 500), (FaultKind.TIMEOUT, 200), (FaultKind.DELAY, 200), (FaultKind.INVALID_DATA, 200)],
)
def test_faults_apply_to_their_person_and_dataset_only(
    client: FlaskClient, agency: Flask, platform: Platform, clock: FrozenClock, kind: FaultKind, status: int
) -> None:
    agency.extensions["sandbox.agency"].settings.faults.put(Fault(WANG, "tax.income", kind, delay_ms=1))
    assert post(client, platform.query(clock)).status_code == status
    assert post(client, platform.query(clock, dataset="tax.property")).status_code == 200
    assert post(client, platform.query(clock, sub="B223456782")).status_code == 200


def test_an_unexpected_failure_is_a_json_500_without_details(
    client: FlaskClient, platform: Platform, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(national_id: str, dataset: str) -> None:
        raise RuntimeError("internal detail")

    monkeypatch.setattr("providers.sandbox.agency.dataset_for", broken)
    response = post(client, platform.query(clock))
    assert response.status_code == 500
    assert response.json["error"] == "server_error"
    assert "internal detail" not in response.get_data(as_text=True)


# -- the replay cache: every jti once while its query is valid, at a constant cost per query ------


def test_a_jti_is_refused_while_its_query_is_valid_however_many_others_are_remembered() -> None:
    replays = ReplayCache()
    now = 1_000_000.0
    for n in range(3000):  # more live queries than the old sweep threshold
        assert replays.first_use(f"jti-{n}", now + 60, now)
    assert not replays.first_use("jti-7", now + 60, now + 30)
    assert not replays.first_use("jti-2999", now + 60, now + 60 + LEEWAY_SECONDS)


def test_expired_jtis_are_forgotten_and_live_ones_kept() -> None:
    replays = ReplayCache()
    now = 1_000_000.0
    for n in range(2000):
        replays.first_use(f"old-{n}", now + 60, now)
    replays.first_use("live", now + 200, now + 100)
    later = now + 60 + LEEWAY_SECONDS + 2
    assert replays.first_use("new", later + 60, later)
    assert len(replays) == 2  # "live" and "new": the 2,000 expired ones are gone
    assert not replays.first_use("live", now + 200, later)


def test_the_remembered_jtis_are_swept_at_most_once_a_second() -> None:
    replays = ReplayCache()
    now = 1_000_000.0
    for n in range(2000):
        replays.first_use(f"jti-{n}", now + 60, now)
    sweeps = replays.sweeps
    for n in range(500):  # within one second: no other sweep, whatever the size
        replays.first_use(f"more-{n}", now + 60, now + n / 1000)
    assert replays.sweeps - sweeps <= 1
