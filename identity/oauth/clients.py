"""Client registration: keys and redirect URIs checked before a client may start a flow."""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select

from identity.oauth.interfaces import InvalidClientMetadata
from identity.oauth.models import OAuthClient
from mydata.clock import Clock
from mydata.db import UnitOfWork

#: Private members of EC, RSA and symmetric JWKs (RFC 7518 §6); none may be registered.
PRIVATE_JWK_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
SIGNING_ALGORITHMS = {"EC": "ES256", "RSA": "PS256"}


def validate_jwks(jwks: Any) -> dict[str, Any]:
    """Check a client JWKS: public keys only, one ES256 or PS256 signature key (FAPI 2.0 SP §5.4)."""
    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list) or not jwks["keys"]:
        raise InvalidClientMetadata("jwks must be an object with a non-empty `keys` array.")
    signing = []
    for key in jwks["keys"]:
        if not isinstance(key, dict) or key.get("kty") not in ("EC", "RSA"):
            raise InvalidClientMetadata("Every key must be an EC or RSA JWK.")
        if PRIVATE_JWK_MEMBERS & key.keys():
            raise InvalidClientMetadata("jwks holds private key material; register public keys only.")
        if not key.get("kid"):
            raise InvalidClientMetadata("Every key needs a `kid`.")
        if key.get("use", "sig") == "sig":
            # An RSA key must say PS256 itself: unlabelled, it could be used for RS256.
            alg = key.get("alg") or ("ES256" if key["kty"] == "EC" else None)
            if alg != SIGNING_ALGORITHMS[key["kty"]]:
                raise InvalidClientMetadata(
                    f"Signature key {key['kid']!r} must be ES256 (EC P-256) or PS256 (RSA), not {alg or 'unspecified'}."
                )
            if key["kty"] == "EC" and key.get("crv") != "P-256":
                raise InvalidClientMetadata(f"Signature key {key['kid']!r} must be on curve P-256.")
            signing.append(key)
    if len(signing) != 1:
        raise InvalidClientMetadata("jwks must hold exactly one signature key (use `sig`).")
    return jwks


def validate_redirect_uris(uris: Any, sandbox: bool) -> list[str]:
    """Check redirect URIs: absolute https without fragment; loopback http in the sandbox only."""
    if not isinstance(uris, list) or not uris or not all(isinstance(u, str) for u in uris):
        raise InvalidClientMetadata("redirect_uris must be a non-empty array of URLs.")
    for uri in uris:
        parts = urlsplit(uri)
        if parts.fragment or not parts.netloc:
            raise InvalidClientMetadata(f"Redirect URI {uri!r} must be absolute and have no fragment.")
        loopback = parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost", "::1")
        if parts.scheme != "https" and not (sandbox and loopback):
            raise InvalidClientMetadata(
                f"Redirect URI {uri!r} must use https"
                + (" (http is allowed only for 127.0.0.1 and localhost in the sandbox)." if sandbox else ".")
            )
    return uris


def register_client(
    uow: UnitOfWork,
    clock: Clock,
    *,
    name: str,
    jwks: Any,
    redirect_uris: Any,
    sandbox: bool,
    organisation_id: str | None = None,
    client_id: str | None = None,
) -> OAuthClient:
    """Register a client after checking its metadata, and commit."""
    if not name.strip():
        raise InvalidClientMetadata("client_name must not be empty.")
    client_id = client_id or "c_" + secrets.token_urlsafe(16)
    if uow.session.get(OAuthClient, client_id) is not None:
        raise InvalidClientMetadata(f"client_id {client_id!r} is already registered.")
    client = OAuthClient(
        client_id=client_id,
        name=name.strip(),
        organisation_id=organisation_id,
        jwks=validate_jwks(jwks),
        redirect_uris=validate_redirect_uris(redirect_uris, sandbox),
        status="active",
        created_at=clock.timestamp(),
    )
    uow.session.add(client)
    uow.commit()
    return client


def list_clients(uow: UnitOfWork) -> list[OAuthClient]:
    """Return every client, oldest first."""
    return list(uow.session.scalars(select(OAuthClient).order_by(OAuthClient.created_at, OAuthClient.client_id)))
