"""Client key rules: one signature key, an optional (or required) encryption key, public keys only."""

from __future__ import annotations

from typing import Any

import pytest
from joserfc.jwk import ECKey, RSAKey

from identity.oauth.clients import encryption_key, validate_jwks, validate_redirect_uris
from identity.oauth.interfaces import InvalidClientMetadata
from tests.factories.oauth import TestRelyingParty


@pytest.fixture
def jwks() -> dict[str, Any]:
    """Return a JWKS with an ES256 signature key and an ECDH-ES+A256KW encryption key."""
    return TestRelyingParty(client_id="x", redirect_uri="").jwks()


def test_an_encryption_key_is_optional_unless_required(jwks: dict[str, Any]) -> None:
    signature_only = {"keys": jwks["keys"][:1]}
    assert validate_jwks(signature_only) == signature_only
    assert encryption_key(signature_only) is None
    with pytest.raises(InvalidClientMetadata, match="one encryption key"):
        validate_jwks(signature_only, require_encryption_key=True)
    assert validate_jwks(jwks, require_encryption_key=True) == jwks
    assert encryption_key(jwks) == jwks["keys"][1]


def test_an_rsa_oaep_256_encryption_key_is_accepted(jwks: dict[str, Any]) -> None:
    rsa = {**RSAKey.generate_key(2048).as_dict(private=False), "use": "enc", "alg": "RSA-OAEP-256", "kid": "r"}
    assert validate_jwks({"keys": [jwks["keys"][0], rsa]}, require_encryption_key=True)
    with pytest.raises(InvalidClientMetadata, match="RSA-OAEP-256"):
        validate_jwks({"keys": [jwks["keys"][0], {**rsa, "alg": "RSA1_5"}]})


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"alg": "ECDH-ES"}, "ECDH-ES\\+A256KW"),
        ({"use": "wrap"}, "use `sig` or `enc`"),
        ({"d": "AAAA"}, "private key material"),
        ({"crv": "P-384"}, "P-256"),
        ({"y": "AAAA"}, "not a valid public EC key"),
    ],
)
def test_a_bad_encryption_key_is_refused(jwks: dict[str, Any], change: dict[str, str], reason: str) -> None:
    with pytest.raises(InvalidClientMetadata, match=reason):
        validate_jwks({"keys": [jwks["keys"][0], {**jwks["keys"][1], **change}]})


def test_a_signature_key_off_its_curve_is_refused(jwks: dict[str, Any]) -> None:
    other = ECKey.generate_key("P-256").as_dict(private=False)
    with pytest.raises(InvalidClientMetadata, match="not a valid public EC key"):
        validate_jwks({"keys": [{**jwks["keys"][0], "y": other["y"]}]})


def test_the_sandbox_allows_http_on_its_own_origin_only() -> None:
    own = ["http://192.0.2.10:5000/sandbox/bank/callback"]
    assert validate_redirect_uris(own, True, "http://192.0.2.10:5000") == own
    with pytest.raises(InvalidClientMetadata, match="https"):
        validate_redirect_uris(own, True, "http://192.0.2.11:5000")
    with pytest.raises(InvalidClientMetadata, match="https"):
        validate_redirect_uris(own, False, "http://192.0.2.10:5000")
    with pytest.raises(InvalidClientMetadata, match="http\\(s\\)"):
        validate_redirect_uris(["ftp://bank.example/cb"], True)
