"""What the authorization server needs from outside, and its errors."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from authlib.oauth2 import OAuth2Error

from mydata.errors import BadRequest


class InvalidAuthorizationDetails(OAuth2Error):  # type: ignore[misc]
    """`authorization_details` is malformed or asks for what may not be asked (RFC 9396 §5)."""

    error = "invalid_authorization_details"


class InvalidRequestUri(OAuth2Error):  # type: ignore[misc]
    """The `request_uri` is unknown, used, expired or not this client's (RFC 9126 §4, RFC 9101 §7)."""

    error = "invalid_request_uri"


class InvalidDPoPProofError(OAuth2Error):  # type: ignore[misc]
    """The DPoP proof is missing or does not hold (RFC 9449 §7.1)."""

    error = "invalid_dpop_proof"


class InvalidClientMetadata(BadRequest):
    """A client registration is refused (RFC 7591 §3.2.2)."""

    code = "invalid_client_metadata"
    description = "The client metadata is invalid."


class InteractionNotFound(BadRequest):
    """The sign-in step the browser is on has ended or belongs to another browser."""

    code = "interaction_not_found"
    status = 400
    description = "This sign-in request has ended. Please return to the service and start again."


@dataclass(frozen=True)
class ResolvedDetails:
    """What one `authorization_details` entry grants, once validated."""

    detail: dict[str, Any]
    level: str = "low"
    summary: dict[str, Any] = field(default_factory=dict)


#: Validates one `authorization_details` entry of a type for a client; raises
#: InvalidAuthorizationDetails, returns what it grants and the assurance level it needs.
DetailsValidator = Callable[[dict[str, Any], str], ResolvedDetails]
