"""What the authorization server needs from outside, and its errors."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from flask.typing import ResponseReturnValue

    from identity.oauth.services import PendingAuthorization
    from identity.sessions import Authentication
    from mydata.db import UnitOfWork

from authlib.oauth2 import OAuth2Error

from mydata.errors import BadRequest

# RFC 6749 §5.2: `error_description` holds only %x20-21 / %x23-5B / %x5D-7E.
_NOT_ERROR_TEXT = re.compile(r"[^\x20\x21\x23-\x5b\x5d-\x7e]")


def shown(value: object, limit: int = 60) -> str:
    """Quote client input for an error description: cut short, every character RFC 6749 §5.2 forbids as `?`.

    Authlib refuses to build an error whose description holds such a character (a 500), and a
    description must never carry bidi controls or markup from an attacker to a developer's screen.
    """
    text = str(value)
    if len(text) > limit:
        text = text[:limit] + "..."
    return "'" + _NOT_ERROR_TEXT.sub("?", text) + "'"


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


@dataclass(frozen=True)
class ConsentDecision:
    """The citizen's answer on the consent screen, and what it grants."""

    approve: bool
    granted: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class ConsentWindow:
    """Until when the tokens of a consent may be used: the end of its delivery window, while it stands (§6.1)."""

    ends_at: int  # epoch seconds
    ended: str | None = None  # why the consent no longer stands: `revoked`, `expired`, ...

    def refusal(self, now: int) -> str | None:
        """Say why the consent's tokens may no longer be used, or None while they may."""
        if self.ended == "revoked":
            return "The citizen revoked the consent this token was issued for."
        if self.ended is not None or now >= self.ends_at:
            return "The consent this token was issued for has expired: its delivery window has ended."
        return None


class ConsentFlow(Protocol):
    """The consent screen and lifecycle for requests with `authorization_details` (DESIGN §6.1).

    The authorization server calls it at four points; the consent package implements it, so that
    identity does not depend on consent (DESIGN §2).
    """

    def requested(self, uow: UnitOfWork, client_id: str, details: list[ResolvedDetails]) -> str:
        """Record a pushed request (state `requested`) and return its transaction (consent) id."""

    def screen(
        self, pending: PendingAuthorization, authentication: Authentication, transaction_id: str
    ) -> ResponseReturnValue:
        """Render the consent screen."""

    def decide(
        self,
        uow: UnitOfWork,
        pending: PendingAuthorization,
        authentication: Authentication,
        transaction_id: str,
        form: Mapping[str, list[str]],
    ) -> ConsentDecision:
        """Record the citizen's approval or denial (with its ledger entry) and return it."""

    def window(self, uow: UnitOfWork, transaction_id: str) -> ConsentWindow | None:
        """Return the delivery window of the consent *transaction_id*, or None if it is not a consent's."""
