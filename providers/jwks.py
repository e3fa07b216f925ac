"""Provider JWKS: what registration accepts, and the verification keys the client uses.

A provider signs its answers with ES256 (EC P-256) or PS256 (RSA-PSS, >= 2048 bits); nothing else is
accepted, so that neither ``none`` nor an HMAC algorithm can ever verify an answer (RFC 8725 §3.1-3.2).
Only the public members of each key are kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from providers.interfaces import InvalidJwks, PrivateKeyInJwks

#: The algorithm each key type signs with.
ALGORITHM_FOR_KTY = {"EC": "ES256", "RSA": "PS256"}
#: Members of a JWK that are private (RFC 7518 §6.2.2, §6.3.2) or secret (``k`` of ``oct`` keys, §6.4).
PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_PUBLIC_MEMBERS = {"EC": ("kty", "crv", "x", "y"), "RSA": ("kty", "n", "e")}
MAX_KEYS = 10
MIN_RSA_BITS = 2048


@dataclass(frozen=True)
class VerificationKey:
    """A provider's public key, ready to verify answers signed with ``alg``."""

    kid: str
    alg: str
    key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey


def check_provider_jwks(jwks: object) -> dict[str, list[dict[str, str]]]:
    """Return the public JWKS to register, or raise :class:`InvalidJwks` / :class:`PrivateKeyInJwks`."""
    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list):
        raise InvalidJwks('The JWKS must be a JSON object with a "keys" array (RFC 7517 §5).')
    keys = jwks["keys"]
    if not 1 <= len(keys) <= MAX_KEYS:
        raise InvalidJwks(f"The JWKS must hold between 1 and {MAX_KEYS} keys, not {len(keys)}.")
    for jwk in keys:
        # Checked before anything else: a leaked private key must be reported as such.
        if isinstance(jwk, dict) and (PRIVATE_MEMBERS & jwk.keys() or jwk.get("kty") == "oct"):
            raise PrivateKeyInJwks()
    public: list[dict[str, str]] = []
    seen: set[str] = set()
    for position, jwk in enumerate(keys):
        checked = _check_key(jwk, position)
        if checked["kid"] in seen:
            raise InvalidJwks(f"Two keys of the JWKS have the kid {checked['kid']!r}: kids must be unique.")
        seen.add(checked["kid"])
        public.append(checked)
    return {"keys": public}


def _check_key(jwk: object, position: int) -> dict[str, str]:
    where = f"key {position + 1} of the JWKS"
    if not isinstance(jwk, dict):
        raise InvalidJwks(f"The {where} is not a JSON object.")
    kid = jwk.get("kid")
    if not isinstance(kid, str) or not 1 <= len(kid) <= 128:
        raise InvalidJwks(f"The {where} needs a kid (1 to 128 characters): answers name their key by kid.")
    where = f"key {kid!r}"
    kty = jwk.get("kty")
    if kty not in ALGORITHM_FOR_KTY:
        raise InvalidJwks(f"The {where} has kty {kty!r}: only EC (ES256) and RSA (PS256) keys sign answers.")
    alg = ALGORITHM_FOR_KTY[kty]
    if jwk.get("alg", alg) != alg:
        raise InvalidJwks(f"The {where} has alg {jwk.get('alg')!r}: a {kty} key must be used with {alg} only.")
    if jwk.get("use", "sig") != "sig":
        raise InvalidJwks(f'The {where} has use {jwk.get("use")!r}: response-signing keys have use "sig".')
    if kty == "EC" and jwk.get("crv") != "P-256":
        raise InvalidJwks(f"The {where} is on curve {jwk.get('crv')!r}: ES256 needs P-256.")
    members = _PUBLIC_MEMBERS[kty]
    if not all(isinstance(jwk.get(m), str) and jwk.get(m) for m in members):
        raise InvalidJwks(f"The {where} misses one of {', '.join(members)}.")
    public = {m: jwk[m] for m in members} | {"kid": kid, "alg": alg, "use": "sig"}
    try:
        key = jwt.PyJWK(public, algorithm=alg).key
    except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError):
        raise InvalidJwks(f"The {where} is not a valid {kty} public key.") from None
    if isinstance(key, rsa.RSAPublicKey) and key.key_size < MIN_RSA_BITS:
        raise InvalidJwks(f"The {where} has {key.key_size} bits: RSA keys need at least {MIN_RSA_BITS}.")
    return public


def verification_keys(jwks: dict[str, Any]) -> dict[str, VerificationKey]:
    """Return the keys of a registered (already checked) JWKS by kid."""
    keys: dict[str, VerificationKey] = {}
    for jwk in jwks.get("keys", []):
        key = jwt.PyJWK(jwk, algorithm=jwk["alg"]).key
        assert isinstance(key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey)
        keys[jwk["kid"]] = VerificationKey(kid=jwk["kid"], alg=jwk["alg"], key=key)
    return keys
