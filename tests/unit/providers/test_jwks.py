"""What a provider may register as its JWKS: public ES256 or PS256 signing keys only."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from providers.interfaces import InvalidJwks, PrivateKeyInJwks
from providers.jwks import check_provider_jwks, verification_keys


def ec_jwk(kid: str = "k1", private: bool = False, curve: ec.EllipticCurve | None = None) -> dict[str, Any]:
    key = ec.generate_private_key(curve or ec.SECP256R1())
    jwk: dict[str, Any] = json.loads(ECAlgorithm.to_jwk(key if private else key.public_key()))
    return {**jwk, "kid": kid}


def rsa_jwk(kid: str = "r1", bits: int = 2048, private: bool = False) -> dict[str, Any]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    jwk: dict[str, Any] = json.loads(RSAAlgorithm.to_jwk(key if private else key.public_key()))
    return {**jwk, "kid": kid}


def test_public_ec_and_rsa_keys_are_kept_with_alg_and_use() -> None:
    checked = check_provider_jwks({"keys": [ec_jwk("a"), {**rsa_jwk("b"), "alg": "PS256", "x5t": "ignored"}]})
    first, second = checked["keys"]
    assert first["alg"] == "ES256"
    assert first["use"] == "sig"
    assert set(first) == {"kty", "crv", "x", "y", "kid", "alg", "use"}
    assert second["alg"] == "PS256"
    assert "x5t" not in second
    keys = verification_keys(checked)
    assert set(keys) == {"a", "b"}
    assert isinstance(keys["a"].key, ec.EllipticCurvePublicKey)


@pytest.mark.parametrize(
    "jwk",
    [
        pytest.param(ec_jwk(private=True), id="ec-private"),
        pytest.param(rsa_jwk(private=True), id="rsa-private"),
        pytest.param({"kty": "oct", "k": "c2VjcmV0", "kid": "h"}, id="symmetric"),
    ],
)
def test_private_key_material_is_refused_as_such(jwk: dict[str, Any]) -> None:
    with pytest.raises(PrivateKeyInJwks):
        check_provider_jwks({"keys": [ec_jwk("other"), jwk]})


@pytest.mark.parametrize(
    ("jwks", "reason"),
    [
        ([], "JSON object"),
        ({"keys": []}, "between 1 and 10"),
        ({"keys": [ec_jwk(kid=f"k{i}") for i in range(11)]}, "between 1 and 10"),
        ({"keys": ["not a key"]}, "not a JSON object"),
        ({"keys": [{**ec_jwk(), "kid": ""}]}, "needs a kid"),
        ({"keys": [ec_jwk("same"), ec_jwk("same")]}, "unique"),
        ({"keys": [{**ec_jwk(), "alg": "ES384"}]}, "ES256 only"),
        ({"keys": [{**rsa_jwk(), "alg": "RS256"}]}, "PS256 only"),
        ({"keys": [{**ec_jwk(), "alg": "none"}]}, "ES256 only"),
        ({"keys": [{**ec_jwk(), "use": "enc"}]}, 'use "sig"'),
        ({"keys": [ec_jwk(curve=ec.SECP384R1())]}, "P-256"),
        ({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": "AA", "kid": "e"}]}, "only EC"),
        ({"keys": [{**ec_jwk(), "y": ec_jwk()["y"]}]}, "not a valid EC public key"),
        ({"keys": [{k: v for k, v in ec_jwk().items() if k != "x"}]}, "misses"),
        ({"keys": [rsa_jwk(bits=1024)]}, "at least 2048"),
    ],
)
def test_invalid_jwks_is_refused_with_a_reason(jwks: object, reason: str) -> None:
    with pytest.raises(InvalidJwks, match=reason) as raised:
        check_provider_jwks(jwks)
    assert not isinstance(raised.value, PrivateKeyInJwks)
