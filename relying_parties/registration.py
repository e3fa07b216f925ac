"""Dynamic client registration (RFC 7591) for approved relying-party organisations.

An organisation's initial access token (:func:`relying_parties.services.issue_initial_access_token`)
authenticates ``POST /oauth/register``; the client metadata is checked against this platform's
profile (FAPI 2.0: private_key_jwt with ES256 or PS256, PAR, PKCE, DPoP; one signature and one
encryption key; https redirect URIs) and the client is bound to the organisation, so that its
pairwise subjects and its services are the organisation's.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from identity.oauth import clients as oauth_clients
from identity.oauth.interfaces import InvalidClientMetadata
from identity.oauth.models import OAuthClient
from mydata.clock import clock
from mydata.db import UnitOfWork
from relying_parties.interfaces import (
    InvalidRegistrationAccessToken,
    MissingRegistrationAccessToken,
    OrganisationNotApproved,
)
from relying_parties.models import APPROVED, ClientRegistration, Organisation
from relying_parties.services import get_organisation

log = logging.getLogger(__name__)

AUTH_METHOD = "private_key_jwt"
GRANT_TYPES = ["authorization_code"]
RESPONSE_TYPES = ["code"]
SCOPE = "openid"
DETAILS_TYPES = ["mydata_delivery"]
ID_TOKEN_ALGORITHM = "ES256"  # noqa: S105 -- an algorithm name, not a secret
REGISTRATION_ACCESS_TOKEN_PREFIX = "mdrat_"  # noqa: S105 -- a marker that helps secret scanners, not a secret


def register_organisation_client(
    uow: UnitOfWork,
    organisation_id: str,
    *,
    name: str,
    jwks: Any,
    redirect_uris: Any,
    sandbox: bool,
    sandbox_origin: str | None = None,
    client_id: str | None = None,
) -> OAuthClient:
    """Register a client of an approved organisation, with a signature and an encryption key; commit."""
    organisation = get_organisation(uow, organisation_id)
    if organisation.status != APPROVED:
        raise OrganisationNotApproved(
            f"The organisation {organisation_id!r} is {organisation.status}: only an approved one registers clients."
        )
    client = oauth_clients.register_client(
        uow,
        clock(),
        name=name,
        jwks=jwks,
        redirect_uris=redirect_uris,
        sandbox=sandbox,
        organisation_id=organisation_id,
        client_id=client_id,
        require_encryption_key=True,
        sandbox_origin=sandbox_origin,
    )
    log.info("relying_parties:client:registered client=%s organisation=%s", client.client_id, organisation_id)
    return client


@dataclass(frozen=True)
class ClientSettings:
    """What checked RFC 7591 metadata sets on a client: its name, its public keys, its redirect URIs."""

    name: str
    jwks: dict[str, Any]
    redirect_uris: list[str]


def check_client_metadata(metadata: Mapping[str, Any], *, sandbox: bool, sandbox_origin: str | None) -> ClientSettings:
    """Check RFC 7591 client metadata against the platform's profile; return what it sets.

    Metadata this server does not know is ignored (RFC 7591 §2); known metadata with a value the
    profile forbids is refused with :class:`InvalidClientMetadata` naming it (§3.2.2). Registration,
    its update (RFC 7592 §2.2) and the relying-party console all check through here.
    """
    name = metadata.get("client_name")
    if not isinstance(name, str) or not name.strip():
        raise InvalidClientMetadata("client_name is required: the name citizens see on the consent screen.")
    if "jwks_uri" in metadata:
        raise InvalidClientMetadata("jwks_uri is not supported: send the public keys themselves in `jwks`.")
    if "jwks" not in metadata:
        raise InvalidClientMetadata("jwks is required: one signature key (use `sig`) and one encryption key (`enc`).")
    if metadata.get("token_endpoint_auth_method", AUTH_METHOD) != AUTH_METHOD:
        raise InvalidClientMetadata(
            f"token_endpoint_auth_method must be {AUTH_METHOD} (FAPI 2.0), "
            f"not {str(metadata['token_endpoint_auth_method'])[:50]!r}."
        )
    _expect_list("grant_types", metadata, GRANT_TYPES)
    _expect_list("response_types", metadata, RESPONSE_TYPES)
    if "scope" in metadata and (not isinstance(metadata["scope"], str) or set(metadata["scope"].split()) - {SCOPE}):
        raise InvalidClientMetadata(f"scope may only be {SCOPE!r}: what a client receives is asked per service.")
    if metadata.get("dpop_bound_access_tokens", True) is not True:
        # RFC 9449 §5.2; FAPI 2.0 SP §5.3.2.2: every access token here is sender-constrained.
        raise InvalidClientMetadata("dpop_bound_access_tokens must be true: every access token is DPoP-bound.")
    if "authorization_details_types" in metadata:
        types = metadata["authorization_details_types"]
        if not isinstance(types, list) or not types or set(types) - set(DETAILS_TYPES):
            raise InvalidClientMetadata(f"authorization_details_types may only be {DETAILS_TYPES}.")
    if metadata.get("id_token_signed_response_alg", ID_TOKEN_ALGORITHM) != ID_TOKEN_ALGORITHM:
        raise InvalidClientMetadata(f"id_token_signed_response_alg must be {ID_TOKEN_ALGORITHM}.")
    if metadata.get("subject_type", "pairwise") != "pairwise":
        raise InvalidClientMetadata("subject_type must be pairwise: subjects are per organisation.")
    jwks = oauth_clients.validate_jwks(metadata["jwks"], require_encryption_key=True)
    signing_alg = metadata.get("token_endpoint_auth_signing_alg", _signing_algorithm(jwks))
    if signing_alg != _signing_algorithm(jwks):
        raise InvalidClientMetadata(
            f"token_endpoint_auth_signing_alg must be the algorithm of the signature key "
            f"({_signing_algorithm(jwks)}), not {str(signing_alg)[:20]!r}."
        )
    if len(name.strip()) > oauth_clients.MAX_NAME_LENGTH:
        raise InvalidClientMetadata(f"client_name must be at most {oauth_clients.MAX_NAME_LENGTH} characters.")
    redirect_uris = oauth_clients.validate_redirect_uris(metadata.get("redirect_uris"), sandbox, sandbox_origin)
    return ClientSettings(name.strip(), jwks, list(redirect_uris))


def register_dynamic_client(
    uow: UnitOfWork,
    organisation: Organisation,
    metadata: Mapping[str, Any],
    *,
    sandbox: bool,
    sandbox_origin: str | None = None,
) -> tuple[OAuthClient, str]:
    """Check RFC 7591 client metadata and register the client; commit.

    Return the client and its registration access token (RFC 7592 §3), shown this once.
    """
    settings = check_client_metadata(metadata, sandbox=sandbox, sandbox_origin=sandbox_origin)
    client = register_organisation_client(
        uow,
        organisation.id,
        name=settings.name,
        jwks=settings.jwks,
        redirect_uris=settings.redirect_uris,
        sandbox=sandbox,
        sandbox_origin=sandbox_origin,
    )
    return client, issue_registration_access_token(uow, client.client_id)


# -- client configuration (RFC 7592) --------------------------------------------------------------


def issue_registration_access_token(uow: UnitOfWork, client_id: str) -> str:
    """Give a client a fresh registration access token, replacing its previous one; commit; return it (shown once)."""
    # 32 random bytes: 256 bits, beyond guessing (RFC 6750 §5.2); only the SHA-256 is kept.
    secret = REGISTRATION_ACCESS_TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = uow.session.get(ClientRegistration, client_id)
    if row is None:
        row = ClientRegistration(client_id=client_id)
        uow.session.add(row)
    row.token_sha256, row.issued_at = _digest(secret), clock().now()
    uow.commit()
    log.info("relying_parties:client:registration_token_issued client=%s", client_id)
    return secret


def registration_client_uri(issuer: str, client_id: str) -> str:
    """Return the client configuration endpoint of a client (RFC 7592 §1)."""
    return f"{issuer.rstrip('/')}/oauth/register/{client_id}"


def authenticate_client_configuration(uow: UnitOfWork, client_id: str, secret: str | None) -> OAuthClient:
    """Return the client whose registration access token is *secret*; raise a 401 error otherwise (RFC 7592 §2).

    Another client's token, a deleted client's, or one of an organisation that is not approved are
    all refused alike: 401 invalid_token.
    """
    if not secret:
        raise MissingRegistrationAccessToken()
    row = uow.session.scalars(
        select(ClientRegistration).where(ClientRegistration.token_sha256 == _digest(secret))
    ).one_or_none()
    if row is None or row.client_id != client_id:
        raise InvalidRegistrationAccessToken()
    client = uow.session.get(OAuthClient, client_id)
    if client is None or client.status == oauth_clients.DELETED or client.organisation_id is None:
        raise InvalidRegistrationAccessToken()
    organisation = get_organisation(uow, client.organisation_id)
    if organisation.status != APPROVED:
        raise InvalidRegistrationAccessToken(
            f"The organisation {organisation.id!r} is {organisation.status}: its clients cannot be changed."
        )
    return client


def update_dynamic_client(
    uow: UnitOfWork,
    client: OAuthClient,
    metadata: Mapping[str, Any],
    *,
    sandbox: bool,
    sandbox_origin: str | None = None,
) -> OAuthClient:
    """Replace a client's metadata with *metadata* (RFC 7592 §2.2), checked as a registration is; commit."""
    if metadata.get("client_id") != client.client_id:
        raise InvalidClientMetadata("client_id must be included and be this client's (RFC 7592 §2.2).")
    for member in ("registration_access_token", "registration_client_uri", "client_secret", "client_secret_expires_at"):
        if member in metadata:
            raise InvalidClientMetadata(f"{member} must not be sent: the server sets it (RFC 7592 §2.2).")
    settings = check_client_metadata(metadata, sandbox=sandbox, sandbox_origin=sandbox_origin)
    return update_organisation_client(
        uow,
        client,
        name=settings.name,
        jwks=settings.jwks,
        redirect_uris=settings.redirect_uris,
        sandbox=sandbox,
        sandbox_origin=sandbox_origin,
    )


def update_organisation_client(
    uow: UnitOfWork,
    client: OAuthClient,
    *,
    sandbox: bool,
    sandbox_origin: str | None = None,
    name: str | None = None,
    jwks: Any | None = None,
    redirect_uris: Any | None = None,
) -> OAuthClient:
    """Replace a client's name, keys or redirect URIs (an encryption key stays required); commit."""
    updated = oauth_clients.update_client(
        uow,
        client.client_id,
        name=name,
        jwks=jwks,
        redirect_uris=redirect_uris,
        sandbox=sandbox,
        require_encryption_key=True,
        sandbox_origin=sandbox_origin,
    )
    log.info("relying_parties:client:updated client=%s organisation=%s", client.client_id, client.organisation_id)
    return updated


def delete_dynamic_client(uow: UnitOfWork, client: OAuthClient) -> None:
    """Retire a client and its registration access token (RFC 7592 §2.3); commit."""
    row = uow.session.get(ClientRegistration, client.client_id)
    if row is not None:
        uow.session.delete(row)
    oauth_clients.delete_client(uow, client.client_id)
    log.info("relying_parties:client:deleted client=%s organisation=%s", client.client_id, client.organisation_id)


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def client_information(client: OAuthClient) -> dict[str, Any]:
    """Return a registered client's metadata as the registration response states it (RFC 7591 §3.2.1)."""
    return {
        "client_id": client.client_id,
        "client_id_issued_at": client.created_at,
        "client_name": client.name,
        "redirect_uris": list(client.redirect_uris),
        "jwks": client.jwks,
        "token_endpoint_auth_method": AUTH_METHOD,
        "token_endpoint_auth_signing_alg": _signing_algorithm(client.jwks),
        "grant_types": GRANT_TYPES,
        "response_types": RESPONSE_TYPES,
        "scope": SCOPE,
        "dpop_bound_access_tokens": True,
        "authorization_details_types": DETAILS_TYPES,
        "id_token_signed_response_alg": ID_TOKEN_ALGORITHM,
        "subject_type": "pairwise",
        "organisation": client.organisation_id,
    }


def _signing_algorithm(jwks: Mapping[str, Any]) -> str:
    key = next(k for k in jwks["keys"] if k.get("use", "sig") == "sig")
    return oauth_clients.SIGNING_ALGORITHMS[key["kty"]]


def _expect_list(name: str, metadata: Mapping[str, Any], allowed: list[str]) -> None:
    if name in metadata and metadata[name] != allowed:
        raise InvalidClientMetadata(f"{name} must be {allowed} (or left out): this platform supports nothing else.")
