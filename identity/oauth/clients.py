"""Client registration: keys and redirect URIs checked before a client may start a flow."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from joserfc.errors import JoseError
from joserfc.jwk import JWKRegistry
from sqlalchemy import select

from identity.oauth.interfaces import InvalidClientMetadata
from identity.oauth.models import OAuthClient
from identity.oauth.server import forget_client
from mydata.clock import Clock
from mydata.db import UnitOfWork

#: Private members of EC, RSA and symmetric JWKs (RFC 7518 §6); none may be registered.
PRIVATE_JWK_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
SIGNING_ALGORITHMS = {"EC": "ES256", "RSA": "PS256"}
#: Key management algorithms of the delivery JWE (DESIGN §6.2), by key type.
ENCRYPTION_ALGORITHMS = {"EC": "ECDH-ES+A256KW", "RSA": "RSA-OAEP-256"}
MIN_RSA_BITS = 2048  # FAPI 2.0 SP §5.4.1: RSA keys of at least 2048 bits
MAX_KEYS = 10
PUBLIC_MEMBERS = {"EC": ("kty", "crv", "x", "y"), "RSA": ("kty", "n", "e")}
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
MAX_REDIRECT_URIS = 10
MAX_URI_LENGTH = 500
MAX_NAME_LENGTH = 200  # the column's length
CLIENT_STATUSES = ("active", "suspended")
#: A client its owner deleted (RFC 7592 §2.3): kept for the records that name it, never active again.
DELETED = "deleted"


def validate_jwks(jwks: Any, *, require_encryption_key: bool = False) -> dict[str, Any]:
    """Check a client JWKS: public keys only, one ES256 or PS256 signature key (FAPI 2.0 SP §5.4).

    At most one encryption key (``use: "enc"``) may be registered: EC P-256 with ``ECDH-ES+A256KW``
    or RSA (>= 2048 bits) with ``RSA-OAEP-256``, the key the delivery package is encrypted to
    (DESIGN §6.2). With *require_encryption_key* (dynamic registration of a relying party) it must be there.
    """
    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list) or not jwks["keys"]:
        raise InvalidClientMetadata("jwks must be an object with a non-empty `keys` array.")
    if len(jwks["keys"]) > MAX_KEYS:
        raise InvalidClientMetadata(f"jwks holds more than {MAX_KEYS} keys.")
    signing, encryption, kids = [], [], set()
    for key in jwks["keys"]:
        if not isinstance(key, dict) or key.get("kty") not in ("EC", "RSA"):
            raise InvalidClientMetadata("Every key must be an EC or RSA JWK.")
        if PRIVATE_JWK_MEMBERS & key.keys():
            raise InvalidClientMetadata("jwks holds private key material; register public keys only.")
        kid = key.get("kid")
        if not kid or not isinstance(kid, str):
            raise InvalidClientMetadata("Every key needs a `kid`.")
        if kid in kids:
            raise InvalidClientMetadata(f"Two keys share the kid {kid!r}; every kid must be unique.")
        kids.add(kid)
        if "use" not in key and key.get("alg") in ENCRYPTION_ALGORITHMS.values():
            raise InvalidClientMetadata(f'Key {kid!r} has alg {key["alg"]} but no `use`: mark it `"use": "enc"`.')
        use = key.get("use", "sig")
        if use == "sig":
            _check_signing_key(key)
            signing.append(key)
        elif use == "enc":
            _check_encryption_key(key)
            encryption.append(key)
        else:
            raise InvalidClientMetadata(f"Key {kid!r} has `use` {str(use)[:20]!r}; use `sig` or `enc`.")
    if len(signing) != 1:
        raise InvalidClientMetadata("jwks must hold exactly one signature key (use `sig`).")
    if len(encryption) > 1:
        raise InvalidClientMetadata("jwks must hold at most one encryption key (use `enc`).")
    if require_encryption_key and not encryption:
        raise InvalidClientMetadata(
            "jwks must hold one encryption key (use `enc`): EC P-256 with alg ECDH-ES+A256KW, "
            "or RSA of at least 2048 bits with alg RSA-OAEP-256; the data package is encrypted to it."
        )
    return jwks


def _check_signing_key(key: dict[str, Any]) -> None:
    # An RSA key must say PS256 itself: unlabelled, it could be used for RS256.
    alg = key.get("alg") or ("ES256" if key["kty"] == "EC" else None)
    if alg != SIGNING_ALGORITHMS[key["kty"]]:
        raise InvalidClientMetadata(
            f"Signature key {key['kid']!r} must be ES256 (EC P-256) or PS256 (RSA), not {alg or 'unspecified'}."
        )
    if key["kty"] == "EC" and key.get("crv") != "P-256":
        raise InvalidClientMetadata(f"Signature key {key['kid']!r} must be on curve P-256.")
    _check_key_material(key)


def _check_encryption_key(key: dict[str, Any]) -> None:
    expected = ENCRYPTION_ALGORITHMS[key["kty"]]
    if key.get("alg") != expected:
        raise InvalidClientMetadata(
            f"Encryption key {key['kid']!r} must say alg {expected} (an {key['kty']} key), "
            f"not {str(key.get('alg') or 'unspecified')[:30]}."
        )
    if key["kty"] == "EC" and key.get("crv") != "P-256":
        raise InvalidClientMetadata(f"Encryption key {key['kid']!r} must be on curve P-256.")
    _check_key_material(key)


def _check_key_material(key: dict[str, Any]) -> None:
    """Parse the key: an EC point must be on its curve, an RSA modulus at least 2048 bits."""
    if key["kty"] == "RSA" and _modulus_bits(key.get("n")) < MIN_RSA_BITS:
        # Checked before parsing, which would only warn about a short key.
        raise InvalidClientMetadata(f"RSA key {key['kid']!r} is shorter than {MIN_RSA_BITS} bits.")
    try:
        JWKRegistry.import_key({m: key[m] for m in PUBLIC_MEMBERS[key["kty"]]})
    except (JoseError, ValueError, TypeError, KeyError):
        raise InvalidClientMetadata(f"Key {key['kid']!r} is not a valid public {key['kty']} key.") from None


def _modulus_bits(n: object) -> int:
    if not isinstance(n, str):
        return 0
    try:
        return int.from_bytes(base64.urlsafe_b64decode(n + "=" * (-len(n) % 4)), "big").bit_length()
    except ValueError:
        return 0


def encryption_key(jwks: Mapping[str, Any]) -> dict[str, Any] | None:
    """Return the encryption key (``use: "enc"``) of a registered client JWKS, if it has one."""
    for key in jwks.get("keys", []):
        if key.get("use") == "enc":
            return dict(key)
    return None


def validate_redirect_uris(uris: Any, sandbox: bool, sandbox_origin: str | None = None) -> list[str]:
    """Check redirect URIs: absolute https without fragment; loopback http in the sandbox only.

    *sandbox_origin* (``http://host:port``, the platform's own issuer in the sandbox) is also allowed
    over http in the sandbox: the sandbox relying parties are served by the platform's process.
    """
    if not isinstance(uris, list) or not uris or not all(isinstance(u, str) for u in uris):
        raise InvalidClientMetadata("redirect_uris must be a non-empty array of URLs.")
    if len(uris) > MAX_REDIRECT_URIS or any(len(u) > MAX_URI_LENGTH for u in uris):
        raise InvalidClientMetadata(
            f"Register at most {MAX_REDIRECT_URIS} redirect URIs of at most {MAX_URI_LENGTH} characters."
        )
    for uri in uris:
        try:
            parts = urlsplit(uri)
            parts.port  # noqa: B018 -- parsing the port is what raises ValueError for a bad one
        except ValueError:
            raise InvalidClientMetadata(f"Redirect URI {uri[:100]!r} is not a URL.") from None
        if parts.fragment or not parts.netloc or parts.scheme not in ("http", "https"):
            raise InvalidClientMetadata(f"Redirect URI {uri!r} must be an absolute http(s) URL with no fragment.")
        loopback = parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS
        own = sandbox_origin is not None and f"{parts.scheme}://{parts.netloc}" == sandbox_origin.rstrip("/")
        if parts.scheme != "https" and not (sandbox and (loopback or own)):
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
    require_encryption_key: bool = False,
    sandbox_origin: str | None = None,
) -> OAuthClient:
    """Register a client after checking its metadata, and commit."""
    if not name.strip():
        raise InvalidClientMetadata("client_name must not be empty.")
    if len(name.strip()) > MAX_NAME_LENGTH:
        raise InvalidClientMetadata(f"client_name must be at most {MAX_NAME_LENGTH} characters.")
    client_id = client_id or "c_" + secrets.token_urlsafe(16)
    if uow.session.get(OAuthClient, client_id) is not None:
        raise InvalidClientMetadata(f"client_id {client_id!r} is already registered.")
    client = OAuthClient(
        client_id=client_id,
        name=name.strip(),
        organisation_id=organisation_id,
        jwks=validate_jwks(jwks, require_encryption_key=require_encryption_key),
        redirect_uris=validate_redirect_uris(redirect_uris, sandbox, sandbox_origin),
        status="active",
        created_at=clock.timestamp(),
    )
    uow.session.add(client)
    uow.commit()
    forget_client(client_id)
    return client


def update_client(
    uow: UnitOfWork,
    client_id: str,
    *,
    jwks: Any | None = None,
    redirect_uris: Any | None = None,
    sandbox: bool,
    require_encryption_key: bool = False,
    sandbox_origin: str | None = None,
    name: str | None = None,
) -> OAuthClient:
    """Replace a client's keys, redirect URIs or name after checking them, and commit."""
    client = uow.session.get(OAuthClient, client_id)
    if client is None:
        raise InvalidClientMetadata(f"No client is registered as {client_id!r}.")
    if name is not None:
        if not name.strip() or len(name.strip()) > MAX_NAME_LENGTH:
            raise InvalidClientMetadata(f"client_name must be 1 to {MAX_NAME_LENGTH} characters.")
        client.name = name.strip()
    if jwks is not None:
        client.jwks = validate_jwks(jwks, require_encryption_key=require_encryption_key)
    if redirect_uris is not None:
        client.redirect_uris = validate_redirect_uris(redirect_uris, sandbox, sandbox_origin)
    uow.commit()
    forget_client(client_id)
    return client


def set_organisation_clients_status(uow: UnitOfWork, organisation_id: str, status: str) -> list[OAuthClient]:
    """Activate or suspend every client of an organisation (its suspension stops every flow); commit."""
    if status not in CLIENT_STATUSES:
        raise ValueError(f"unknown client status {status!r}; expected one of {', '.join(CLIENT_STATUSES)}")
    clients = list(
        uow.session.scalars(
            select(OAuthClient).where(OAuthClient.organisation_id == organisation_id, OAuthClient.status != DELETED)
        )
    )
    for client in clients:
        client.status = status
    uow.commit()
    for client in clients:
        forget_client(client.client_id)
    return clients


def delete_client(uow: UnitOfWork, client_id: str) -> OAuthClient:
    """Retire a client for good: no flow starts with it again, and no approval brings it back; commit."""
    client = uow.session.get(OAuthClient, client_id)
    if client is None:
        raise InvalidClientMetadata(f"No client is registered as {client_id!r}.")
    client.status = DELETED
    uow.commit()
    forget_client(client_id)
    return client


def list_clients(uow: UnitOfWork, organisation_id: str | None = None) -> list[OAuthClient]:
    """Return every client (of one organisation, if given), oldest first."""
    query = select(OAuthClient).order_by(OAuthClient.created_at, OAuthClient.client_id)
    if organisation_id is not None:
        query = query.where(OAuthClient.organisation_id == organisation_id)
    return list(uow.session.scalars(query))
