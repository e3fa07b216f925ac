"""Malformed input an attacker sends to the OAuth and delivery endpoints (issue 10, item 15)."""

from __future__ import annotations

import base64
import json
import secrets
import time
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from hypothesis import strategies as st
from joserfc import jws, jwt
from joserfc.jwk import ECKey

from tests.factories.oauth import TestRelyingParty, ath


def b64url(data: bytes) -> str:
    """Return unpadded base64url."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


#: A P-256 public key whose point (x = 32 bytes of 0x01, y = 32 bytes of 0x02) is not on the curve.
OFF_CURVE_JWK = {"kty": "EC", "crv": "P-256", "x": b64url(b"\x01" * 32), "y": b64url(b"\x02" * 32)}


def nested_arrays(depth: int) -> str:
    """Return JSON text of *depth* nested arrays."""
    return "[" * depth + "]" * depth


def off_curve_proof(rp: TestRelyingParty, method: str, url: str, access_token: str | None = None) -> str:
    """Return a DPoP proof whose header `jwk` is not a point on P-256 (signed with a real key)."""
    claims: dict[str, Any] = {"jti": secrets.token_urlsafe(16), "htm": method, "htu": url, "iat": int(time.time())}
    if access_token is not None:
        claims["ath"] = ath(access_token)
    return jwt.encode({"typ": "dpop+jwt", "alg": "ES256", "jwk": OFF_CURVE_JWK}, claims, rp.dpop_key)


def raw_assertion(rp: TestRelyingParty, audience: str, extra_claims_json: str) -> str:
    """Return a client assertion, signed by *rp*, whose claims end with raw JSON text (e.g. deep nesting)."""
    now = int(time.time())
    claims = {"iss": rp.client_id, "sub": rp.client_id, "aud": audience, "iat": now, "exp": now + 60}
    claims["jti"] = secrets.token_urlsafe(16)
    payload = json.dumps(claims)[:-1] + ', "x": ' + extra_claims_json + "}"
    return jws.serialize_compact({"alg": "ES256", "kid": "rp-sig-1"}, payload.encode(), rp.signing_key)


def raw_jws(header_json: str, claims_json: str) -> str:
    """Return a compact JWS of raw header and claims JSON text (deep nesting, odd types), with a junk signature."""
    signing_input = f"{b64url(header_json.encode())}.{b64url(claims_json.encode())}"
    return signing_input + "." + b64url(b"\x00" * 64)


_PROOF_KEY = ECKey.generate_key("P-256")


def signed_jws(header: Any, claims: Any) -> str:
    """Return a compact JWS of arbitrary header and claims JSON, with a valid ES256 signature by a fixed key."""
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
    der = _PROOF_KEY.private_key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(der)
    return signing_input + "." + b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big"))


#: Arbitrary JSON values, small (RFC 8259).
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)


def dpop_proofs(method: str, url: str) -> st.SearchStrategy[str]:
    """Return DPoP proofs signed by their (fixed) key whose members are arbitrary: odd types, keys, times."""
    public = _PROOF_KEY.as_dict(private=False)
    keys = st.sampled_from(
        [public, OFF_CURVE_JWK, {"kty": "EC"}, {"kty": "RSA", "n": "AQAB", "e": "AQAB"}, {**public, "d": "x"}]
    )
    header = st.fixed_dictionaries(
        {"typ": st.just("dpop+jwt") | json_values, "alg": st.sampled_from(["ES256", "PS256"]) | json_values},
        optional={"jwk": keys | json_values},
    )
    claims = st.fixed_dictionaries(
        {},
        optional={
            "jti": st.text(min_size=8, max_size=20) | json_values,
            "htm": st.just(method) | json_values,
            "htu": st.just(url) | json_values,
            "iat": st.integers(min_value=-30, max_value=2).map(lambda ago: int(time.time()) + ago) | json_values,
            "ath": json_values,
        },
    )
    return st.builds(signed_jws, header, claims)
