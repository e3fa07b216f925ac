"""DPoP proofs (RFC 9449): sender-constrained tokens for the token endpoint and resource servers.

A proof is a JWT signed with the client's ephemeral key, whose public half travels in the header.
The server checks it as RFC 9449 §4.3 lists, and binds tokens to the key's RFC 7638 thumbprint.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt
from jwt.exceptions import PyJWTError

from mydata.keys import thumbprint

#: Asymmetric algorithms only (RFC 9449 §4.3 step 5); the same set as client authentication.
DPOP_ALGORITHMS = ("ES256", "PS256")
#: How far a proof's `iat` may lie in the past or (clock skew) in the future, in seconds.
MAX_AGE = 60
MAX_SKEW = 5
#: Longest proof read: one with a 4096-bit RSA key is under 3 kB.
MAX_PROOF_LENGTH = 8 * 1024
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
#: A base64url segment of a compact JWS (RFC 7515 §2: no padding, nothing outside the alphabet).
_SEGMENT = re.compile(r"[A-Za-z0-9_-]*")


class InvalidDPoPProof(Exception):
    """The DPoP proof is missing or does not hold (error ``invalid_dpop_proof``, RFC 9449 §7.1)."""

    error = "invalid_dpop_proof"


@dataclass(frozen=True)
class DPoPProof:
    """A verified proof: the key's thumbprint and the proof's identifier."""

    jkt: str
    jti: str
    iat: int


def access_token_hash(access_token: str) -> str:
    """Return the `ath` of an access token: base64url(SHA-256(ASCII token)), RFC 9449 §4.2."""
    digest = hashlib.sha256(access_token.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def normalise_htu(url: str) -> str:
    """Return the URL as `htu` is compared: without query and fragment (RFC 9449 §4.3 step 9)."""
    return url.split("#", 1)[0].split("?", 1)[0]


def verify_proof(
    proof: str | None,
    *,
    method: str,
    url: str,
    now: int,
    remember_jti: Callable[[str, int], bool],
    access_token: str | None = None,
) -> DPoPProof:
    """Verify one DPoP proof for an HTTP request; raise :class:`InvalidDPoPProof` if it fails.

    *remember_jti* records a proof identifier until the given expiry and returns False when it
    was already seen, which is how replays are refused across processes (§11.1).
    """
    if not proof:
        raise InvalidDPoPProof("A DPoP proof is required (DPoP header).")
    if len(proof) > MAX_PROOF_LENGTH:
        raise InvalidDPoPProof(f"The DPoP proof is longer than {MAX_PROOF_LENGTH} bytes.")
    if proof.count(".") != 2:
        raise InvalidDPoPProof("The DPoP proof is not a compact JWT.")
    # Read once (header, claims, signature), then verified with the key the header carries: PyJWT's
    # get_unverified_header and decode would parse the proof twice, in pure Python.
    header_b64, claims_b64, signature_b64 = proof.split(".")
    header = _json_segment(header_b64, "header")
    if header.get("typ") != "dpop+jwt":
        raise InvalidDPoPProof("The DPoP proof must have typ dpop+jwt.")
    alg = header.get("alg")
    if alg not in DPOP_ALGORITHMS:
        raise InvalidDPoPProof(f"DPoP proof algorithm must be one of {', '.join(DPOP_ALGORITHMS)}.")
    jwk = header.get("jwk")
    if not isinstance(jwk, dict) or _PRIVATE_MEMBERS & jwk.keys():
        raise InvalidDPoPProof("The DPoP proof must carry a public jwk and no private key material.")
    if header.get("b64", True) is not True:  # RFC 7797 unencoded payloads: not a DPoP proof
        raise InvalidDPoPProof("The DPoP proof must have an encoded payload.")
    try:
        key = jwt.PyJWK(jwk, algorithm=alg)
        signature = _segment(signature_b64)
        verified = key.Algorithm.verify(f"{header_b64}.{claims_b64}".encode("ascii"), key.key, signature)
    except (PyJWTError, ValueError, TypeError):
        # PyJWTError includes InvalidKeyError: a jwk that is no key, e.g. a point off its curve.
        verified = False
    if not verified:
        raise InvalidDPoPProof("The DPoP proof signature does not verify with its jwk.")
    claims = _json_segment(claims_b64, "claims")
    missing = [name for name in ("jti", "htm", "htu", "iat") if name not in claims]
    if missing:
        raise InvalidDPoPProof(f"The DPoP proof lacks the claim {missing[0]}.")
    _check_validity(claims, now)
    if claims["htm"] != method:
        raise InvalidDPoPProof("The DPoP proof htm does not match the request method.")
    if normalise_htu(str(claims["htu"])) != normalise_htu(url):
        raise InvalidDPoPProof("The DPoP proof htu does not match the request URL.")
    iat = claims["iat"]
    if not isinstance(iat, int) or iat < now - MAX_AGE or iat > now + MAX_SKEW:
        raise InvalidDPoPProof("The DPoP proof is too old or from the future (iat).")
    if access_token is not None and claims.get("ath") != access_token_hash(access_token):
        raise InvalidDPoPProof("The DPoP proof ath does not match the access token.")
    jti = claims["jti"]
    if not isinstance(jti, str) or not 8 <= len(jti) <= 256:
        raise InvalidDPoPProof("The DPoP proof jti must be a string of 8 to 256 characters.")
    jkt = thumbprint(jwk)
    if not remember_jti(f"{jkt}:{jti}", iat + MAX_AGE + MAX_SKEW):
        raise InvalidDPoPProof("The DPoP proof was already used (jti replay).")
    return DPoPProof(jkt=jkt, jti=jti, iat=iat)


def _segment(value: str) -> bytes:
    """Decode one base64url segment, refusing padding and anything outside the alphabet."""
    if not _SEGMENT.fullmatch(value):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def _json_segment(value: str, part: str) -> dict[str, Any]:
    """Decode a segment holding a JSON object; raise :class:`InvalidDPoPProof` otherwise."""
    try:
        decoded = json.loads(_segment(value))
    except (ValueError, binascii.Error, RecursionError):  # RecursionError: JSON nested deeper than the parser goes
        raise InvalidDPoPProof(f"The DPoP proof {part} cannot be read.") from None
    if not isinstance(decoded, dict):
        raise InvalidDPoPProof(f"The DPoP proof {part} cannot be read.")
    return decoded


def _check_validity(claims: dict[str, Any], now: int) -> None:
    """Refuse a proof past its `exp` or before its `nbf`, when it has them (RFC 7519 §4.1.4, §4.1.5)."""
    for name in ("exp", "nbf"):
        if name not in claims:
            continue
        value = claims[name]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InvalidDPoPProof(f"The DPoP proof {name} is not a number.")
        if (now >= value) if name == "exp" else (now < value):
            raise InvalidDPoPProof(f"The DPoP proof is not valid now ({name}).")
