"""DPoP proofs (RFC 9449 §4.3), checked on their own: what verifies and what is refused."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAPSSAlgorithm

from identity.oauth.dpop import DPoPProof, InvalidDPoPProof, verify_proof

URL = "https://mydata.example/oauth/token"
EC_KEY = ec.generate_private_key(ec.SECP256R1())
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_jwk(key: Any, alg: str) -> dict[str, Any]:
    """Return the public JWK of *key*."""
    algorithm = ECAlgorithm(ECAlgorithm.SHA256) if alg == "ES256" else RSAPSSAlgorithm(RSAPSSAlgorithm.SHA256)
    return json.loads(algorithm.to_jwk(key.public_key()))  # type: ignore[no-any-return]


def proof(
    claims: dict[str, Any] | None = None, header: dict[str, Any] | None = None, key: Any = EC_KEY, alg: str = "ES256"
) -> str:
    """Return a proof for POST URL, with *claims* and *header* changed."""
    body = {"jti": "proof-0123456789", "htm": "POST", "htu": URL, "iat": int(time.time()), **(claims or {})}
    head = {"typ": "dpop+jwt", "jwk": public_jwk(key, alg), **(header or {})}
    return jwt.encode({k: v for k, v in body.items() if v is not None}, key, algorithm=alg, headers=head)


def check(value: str, seen: set[str] | None = None) -> DPoPProof:
    """Verify *value* for POST URL now."""
    seen = set() if seen is None else seen

    def remember(key: str, _expires_at: int) -> bool:
        fresh = key not in seen
        seen.add(key)
        return fresh

    return verify_proof(value, method="POST", url=URL, now=int(time.time()), remember_jti=remember)


def b64(data: bytes) -> str:
    """Encode base64url without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.mark.parametrize(("key", "alg"), [(EC_KEY, "ES256"), (RSA_KEY, "PS256")])
def test_a_proof_verifies_and_gives_its_key_thumbprint(key: Any, alg: str) -> None:
    verified = check(proof(key=key, alg=alg))
    assert verified.jti == "proof-0123456789"
    assert len(verified.jkt) == 43


def test_a_proof_is_used_once() -> None:
    seen: set[str] = set()
    value = proof()
    check(value, seen)
    with pytest.raises(InvalidDPoPProof, match="already used"):
        check(value, seen)


def tampered_signature() -> str:
    head, body, signature = proof().split(".")
    raw = bytearray(base64.urlsafe_b64decode(signature + "=="))
    raw[5] ^= 1
    return f"{head}.{body}.{b64(bytes(raw))}"


def other_claims() -> str:
    head, _body, signature = proof().split(".")
    body = b64(json.dumps({"jti": "proof-9999999999", "htm": "POST", "htu": URL, "iat": int(time.time())}).encode())
    return f"{head}.{body}.{signature}"


def unsigned(alg: str) -> str:
    head = b64(json.dumps({"typ": "dpop+jwt", "alg": alg, "jwk": public_jwk(EC_KEY, "ES256")}).encode())
    body = b64(json.dumps({"jti": "proof-0123456789", "htm": "POST", "htu": URL, "iat": int(time.time())}).encode())
    return f"{head}.{body}."


def junk_in(part: int) -> str:
    parts = proof().split(".")
    parts[part] = parts[part][:10] + "!!" + parts[part][10:]
    return ".".join(parts)


def with_payload(payload: bytes) -> str:
    head = {"typ": "dpop+jwt", "alg": "ES256", "jwk": public_jwk(EC_KEY, "ES256")}
    signing_input = f"{b64(json.dumps(head).encode())}.{b64(payload)}".encode()
    signature = ECAlgorithm(ECAlgorithm.SHA256).sign(signing_input, EC_KEY)
    return f"{signing_input.decode()}.{b64(signature)}"


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(lambda: tampered_signature(), id="tampered-signature"),
        pytest.param(lambda: other_claims(), id="claims-not-signed"),
        pytest.param(lambda: unsigned("none"), id="alg-none"),
        pytest.param(lambda: unsigned("HS256"), id="alg-hs256"),
        pytest.param(lambda: proof(header={"typ": "JWT"}), id="wrong-typ"),
        pytest.param(lambda: proof(header={"jwk": {**public_jwk(EC_KEY, "ES256"), "d": "AAAA"}}), id="private-jwk"),
        pytest.param(lambda: proof(header={"jwk": public_jwk(RSA_KEY, "PS256")}), id="jwk-of-another-key"),
        pytest.param(lambda: proof(header={"b64": False}), id="unencoded-payload"),
        pytest.param(lambda: proof(claims={"exp": int(time.time()) - 10}), id="expired"),
        pytest.param(lambda: proof(claims={"nbf": int(time.time()) + 60}), id="not-yet-valid"),
        pytest.param(lambda: proof(claims={"htu": None}), id="no-htu"),
        pytest.param(lambda: proof(claims={"jti": None}), id="no-jti"),
        pytest.param(lambda: proof(claims={"iat": None}), id="no-iat"),
        pytest.param(lambda: proof(claims={"iat": "1700000000"}), id="iat-a-string"),
        pytest.param(lambda: proof(claims={"htm": "GET"}), id="wrong-htm"),
        pytest.param(lambda: junk_in(0), id="junk-in-header"),
        pytest.param(lambda: junk_in(1), id="junk-in-payload"),
        pytest.param(lambda: junk_in(2), id="junk-in-signature"),
        pytest.param(lambda: with_payload(b"[1, 2]"), id="payload-not-an-object"),
        pytest.param(lambda: with_payload(b"{not json"), id="payload-not-json"),
        pytest.param(lambda: "a.b", id="two-parts"),
        pytest.param(lambda: "", id="empty"),
    ],
)
def test_a_proof_that_does_not_hold_is_refused(value: Any) -> None:
    with pytest.raises(InvalidDPoPProof):
        check(value())
