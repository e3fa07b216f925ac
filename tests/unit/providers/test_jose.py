"""The provider protocol's compact JWS reader: what PyJWT accepts it accepts, and refuses the rest."""

from __future__ import annotations

import base64
import json

import jwt
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from providers import jose

EC_KEY = ec.generate_private_key(ec.SECP256R1())
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
CLAIMS = {"dataset": "tax.income", "data": {"名字": "王小明", "n": 1}}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_an_es256_token_of_pyjwt_verifies_and_reads_the_same() -> None:
    token = jwt.encode(CLAIMS, EC_KEY, algorithm="ES256", headers={"kid": "k", "typ": "x+jwt"})
    parsed = jose.parse(token)
    assert parsed.header == {"alg": "ES256", "kid": "k", "typ": "x+jwt"}
    assert json.loads(parsed.payload) == CLAIMS
    assert jose.verify(parsed, "ES256", EC_KEY.public_key())


def test_a_ps256_token_of_pyjwt_verifies() -> None:
    token = jwt.encode(CLAIMS, RSA_KEY, algorithm="PS256")
    assert jose.verify(jose.parse(token), "PS256", RSA_KEY.public_key())


@pytest.mark.parametrize("alg", ["ES256", "PS256", "RS256", "HS256", "none"])
def test_another_key_algorithm_or_key_type_does_not_verify(alg: str) -> None:
    token = jwt.encode(CLAIMS, EC_KEY, algorithm="ES256")
    other = ec.generate_private_key(ec.SECP256R1()).public_key()
    assert not jose.verify(jose.parse(token), "ES256", other)
    if alg != "ES256":
        assert not jose.verify(jose.parse(token), alg, EC_KEY.public_key())
    assert not jose.verify(jose.parse(token), "ES256", RSA_KEY.public_key())


def test_a_tampered_payload_or_signature_does_not_verify() -> None:
    header, payload, signature = jwt.encode(CLAIMS, EC_KEY, algorithm="ES256").split(".")
    other_payload = _b64(json.dumps({**CLAIMS, "dataset": "tax.property"}).encode())
    assert not jose.verify(jose.parse(f"{header}.{other_payload}.{signature}"), "ES256", EC_KEY.public_key())
    short = _b64(base64.urlsafe_b64decode(signature + "==")[:63])
    assert not jose.verify(jose.parse(f"{header}.{payload}.{short}"), "ES256", EC_KEY.public_key())
    der = _b64(EC_KEY.sign(f"{header}.{payload}".encode(), ec.ECDSA(hashes.SHA256())))
    assert not jose.verify(jose.parse(f"{header}.{payload}.{der}"), "ES256", EC_KEY.public_key())


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: "!!!!" + t,  # junk a lenient decoder would skip
        lambda t: t.replace(".", "=.", 1),  # padding
        lambda t: t.replace("-", "+").replace("_", "/") if ("-" in t or "_" in t) else "+" + t,  # standard alphabet
        lambda t: t + ".more",
        lambda t: t.rsplit(".", 1)[0],
        lambda t: "a" + t,  # a header of 4n+1 characters
        lambda t: "bm90IGpzb24." + t.split(".", 1)[1],  # "not json"
        lambda t: "WzFd." + t.split(".", 1)[1],  # [1]
        lambda t: _b64(b'{"alg":"ES256","b64":false,"crit":["b64"]}') + "." + t.split(".", 1)[1],
        lambda t: _b64(b'{"alg":"ES256","crit":["exp"]}') + "." + t.split(".", 1)[1],
    ],
)
def test_anything_else_is_malformed(mangle: object) -> None:
    token = jwt.encode(CLAIMS, EC_KEY, algorithm="ES256")
    with pytest.raises(jose.MalformedJws):
        jose.parse(mangle(token))  # type: ignore[operator]
