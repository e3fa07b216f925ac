"""Dynamic client registration (RFC 7591) for approved relying-party organisations.

An organisation's initial access token (:func:`relying_parties.services.issue_initial_access_token`)
authenticates ``POST /oauth/register``; the client metadata is checked against this platform's
profile (FAPI 2.0: private_key_jwt with ES256 or PS256, PAR, PKCE, DPoP; one signature and one
encryption key; https redirect URIs) and the client is bound to the organisation, so that its
pairwise subjects and its services are the organisation's.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from identity.oauth import clients as oauth_clients
from identity.oauth.interfaces import InvalidClientMetadata
from identity.oauth.models import OAuthClient
from mydata.clock import clock
from mydata.db import UnitOfWork
from relying_parties.interfaces import OrganisationNotApproved
from relying_parties.models import APPROVED, Organisation
from relying_parties.services import get_organisation

log = logging.getLogger(__name__)

AUTH_METHOD = "private_key_jwt"
GRANT_TYPES = ["authorization_code"]
RESPONSE_TYPES = ["code"]
SCOPE = "openid"
DETAILS_TYPES = ["mydata_delivery"]
ID_TOKEN_ALGORITHM = "ES256"  # noqa: S105 -- an algorithm name, not a secret


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


def register_dynamic_client(
    uow: UnitOfWork,
    organisation: Organisation,
    metadata: Mapping[str, Any],
    *,
    sandbox: bool,
    sandbox_origin: str | None = None,
) -> OAuthClient:
    """Check RFC 7591 client metadata against the platform's profile and register the client; commit.

    Metadata this server does not know is ignored (RFC 7591 §2); known metadata with a value the
    profile forbids is refused with :class:`InvalidClientMetadata` naming it (§3.2.2).
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
    return register_organisation_client(
        uow,
        organisation.id,
        name=name,
        jwks=jwks,
        redirect_uris=metadata.get("redirect_uris"),
        sandbox=sandbox,
        sandbox_origin=sandbox_origin,
    )


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
