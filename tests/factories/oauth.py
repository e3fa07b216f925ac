"""A test relying party built on joserfc (not our code): assertions, DPoP proofs and PKCE."""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from joserfc import jwt
from joserfc.jwk import ECKey, OctKey, RSAKey


def pkce_pair() -> tuple[str, str]:
    """Return a code verifier and its S256 challenge (RFC 7636 §4)."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def ath(access_token: str) -> str:
    """Return the DPoP `ath` of a token."""
    return base64.urlsafe_b64encode(hashlib.sha256(access_token.encode()).digest()).rstrip(b"=").decode()


@dataclass
class TestRelyingParty:
    """A client's keys and the messages it signs."""

    client_id: str
    redirect_uri: str
    signing_key: ECKey = field(default_factory=lambda: ECKey.generate_key("P-256", parameters={"kid": "rp-sig-1"}))
    dpop_key: ECKey = field(default_factory=lambda: ECKey.generate_key("P-256"))
    # The key the platform encrypts data packages to (DESIGN §6.2): ECDH-ES+A256KW on P-256.
    encryption_key: ECKey = field(default_factory=lambda: ECKey.generate_key("P-256", parameters={"kid": "rp-enc-1"}))

    __test__ = False  # not a test class

    def jwks(self) -> dict[str, Any]:
        """Return the public JWKS to register: the signature key, then the encryption key."""
        public = self.signing_key.as_dict(private=False)
        encryption = self.encryption_key.as_dict(private=False)
        return {
            "keys": [
                {**public, "use": "sig", "alg": "ES256", "kid": "rp-sig-1"},
                {**encryption, "use": "enc", "alg": "ECDH-ES+A256KW", "kid": "rp-enc-1"},
            ]
        }

    def assertion(
        self,
        audience: str,
        *,
        alg: str = "ES256",
        key: Any = None,
        jti: str | None = None,
        now: int | None = None,
        lifetime: int = 60,
        **claims: Any,
    ) -> str:
        """Return a private_key_jwt client assertion (RFC 7523 §3)."""
        now = int(time.time()) if now is None else now
        payload = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": audience,
            "iat": now,
            "exp": now + lifetime,
            "jti": jti or secrets.token_urlsafe(16),
            **claims,
        }
        key = key or self.signing_key
        return jwt.encode({"alg": alg, "kid": "rp-sig-1"}, payload, key, algorithms=[alg])

    def client_auth(self, audience: str, **kwargs: Any) -> dict[str, str]:
        """Return the form fields of private_key_jwt authentication."""
        return {
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": self.assertion(audience, **kwargs),
        }

    def dpop(
        self,
        method: str,
        url: str,
        *,
        key: ECKey | None = None,
        access_token: str | None = None,
        iat: int | None = None,
        jti: str | None = None,
    ) -> str:
        """Return a DPoP proof (RFC 9449 §4.2)."""
        key = key or self.dpop_key
        claims: dict[str, Any] = {
            "jti": jti or secrets.token_urlsafe(16),
            "htm": method,
            "htu": url,
            "iat": int(time.time()) if iat is None else iat,
        }
        if access_token is not None:
            claims["ath"] = ath(access_token)
        header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": key.as_dict(private=False)}
        return jwt.encode(header, claims, key)


def rsa_key() -> RSAKey:
    """Return a fresh RSA key (for RS256 / PS256 cases)."""
    return RSAKey.generate_key(2048)


def hmac_key() -> OctKey:
    """Return a symmetric key (for HS256 cases)."""
    return OctKey.generate_key(256)
