"""Compact JWS (RFC 7515) reading and verifying for the provider protocol, straight on `cryptography`.

PyJWT checks every character of a token in Python before it decodes it (tens of microseconds per
kilobyte, and an agency's answer is kilobytes); here one regular expression and the C base64 decoder
in strict mode refuse the same tokens. Only what the protocol uses: ES256 (P-256) and PS256, a
base64url payload (no RFC 7797 ``b64: false``), and no critical header extensions.
"""

from __future__ import annotations

import binascii
import json
import re
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

_SEGMENT = re.compile(r"[A-Za-z0-9_-]*")
_TO_STANDARD = str.maketrans("-_", "+/")
_ES256_SIGNATURE_BYTES = 64


class MalformedJws(ValueError):
    """Not a compact JWS this reader accepts: the sentence says what is wrong (never the content)."""


@dataclass(frozen=True)
class CompactJws:
    """A compact JWS taken apart, not yet verified."""

    header: dict[str, Any]
    payload: bytes
    signing_input: bytes
    signature: bytes


def decode_segment(segment: str) -> bytes:
    """Decode one base64url segment without padding; raise :class:`MalformedJws` for anything else."""
    if not _SEGMENT.fullmatch(segment):
        raise MalformedJws("a segment holds characters outside base64url")
    padded = segment.translate(_TO_STANDARD) + "=" * (-len(segment) % 4)
    try:
        return binascii.a2b_base64(padded, strict_mode=True)
    except binascii.Error:
        raise MalformedJws("a segment is not valid base64url") from None


def parse(token: str) -> CompactJws:
    """Split and decode a compact JWS; raise :class:`MalformedJws`."""
    parts = token.split(".")
    if len(parts) != 3:
        raise MalformedJws("a compact JWS has three segments")
    header_segment, payload_segment, signature_segment = parts
    try:
        header = json.loads(decode_segment(header_segment))
    except ValueError:  # MalformedJws included
        raise MalformedJws("the header is not base64url JSON") from None
    if not isinstance(header, dict):
        raise MalformedJws("the header is not a JSON object")
    if header.get("b64", True) is not True or "crit" in header:
        raise MalformedJws("the header asks for an extension this reader does not implement")
    return CompactJws(
        header=header,
        payload=decode_segment(payload_segment),
        signing_input=f"{header_segment}.{payload_segment}".encode("ascii"),
        signature=decode_segment(signature_segment),
    )


def verify(jws: CompactJws, alg: str, key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey) -> bool:
    """Tell whether *jws* is signed by *key* with *alg* (ES256 or PS256; anything else is not)."""
    try:
        if alg == "ES256" and isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
            if len(jws.signature) != _ES256_SIGNATURE_BYTES:
                return False
            r = int.from_bytes(jws.signature[:32], "big")
            s = int.from_bytes(jws.signature[32:], "big")
            key.verify(encode_dss_signature(r, s), jws.signing_input, ec.ECDSA(hashes.SHA256()))
            return True
        if alg == "PS256" and isinstance(key, rsa.RSAPublicKey):
            pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=hashes.SHA256.digest_size)
            key.verify(jws.signature, jws.signing_input, pss, hashes.SHA256())
            return True
    except InvalidSignature:
        return False
    return False
