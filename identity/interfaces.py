"""Identity's outside systems (the card reader) and the conditions its services raise.

Every exception carries an English sentence for API clients; the login pages show their own
translated sentence for each condition (identity.views).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Protocol

from mydata.errors import MydataError


class IdentityError(MydataError):
    """Base of the identity layer's conditions."""

    code = "authentication_failed"
    status = 401
    description = "The authentication failed."


class InvalidNationalId(IdentityError):
    """The national ID number is malformed or its check digit is wrong."""

    code = "invalid_national_id"
    status = 400
    description = "This is not a valid national ID number (one letter and nine digits with a valid check digit)."


class LevelTooLow(IdentityError):
    """The chosen method gives a lower assurance level than the service needs."""

    code = "level_too_low"
    status = 403
    description = "This login method does not reach the assurance level the service needs."

    def __init__(self, needed: str, method: str) -> None:
        super().__init__(f"The {method} method does not reach the {needed} assurance level.")
        self.needed = needed
        self.method = method


class StepUpRequired(IdentityError):
    """A staff login is too weak, or too old for an action that changes the platform (RFC 9470).

    A JSON client gets 401 with an RFC 9470 challenge (``error="insufficient_user_authentication"``,
    ``acr_values``, ``max_age``) and the ``step_up`` URL of the login page in the body; a browser is
    sent there (identity.staff).
    """

    code = "insufficient_user_authentication"
    status = 401
    description = "This needs a stronger or more recent login."

    def __init__(self, description: str, *, step_up: str, acr: str, max_age: int | None = None) -> None:
        challenge = f'Bearer error="{self.code}", error_description="{description}", acr_values="{acr}"'
        if max_age is not None:
            challenge += f", max_age={max_age}"
        super().__init__(description, headers={"WWW-Authenticate": challenge}, step_up=step_up)
        self.step_up = step_up


# -- eID ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CardSignature:
    """What an eID card gives back: its certificate chain (PEM, leaf first) and a signature."""

    certificate_pem: str
    signature: bytes


class CardReader(Protocol):
    """A card reader that unlocks a card with its PIN and signs a nonce with the card's key."""

    def sign(self, national_id: str, pin: str, nonce: str) -> CardSignature:
        """Sign *nonce* with the card of *national_id*; raise NoCardInReader or WrongPin."""
        ...


class RevocationFetcher(Protocol):
    """Fetches revocation data over HTTP: a CRL by GET, an OCSP answer by POST (RFC 6960 appendix A)."""

    def get(self, url: str) -> bytes:
        """Return the body at *url*; raise :class:`RevocationSourceFailed`."""
        ...

    def post(self, url: str, body: bytes, content_type: str) -> bytes:
        """Post *body* to *url* and return the answer's body; raise :class:`RevocationSourceFailed`."""
        ...


class RevocationSourceFailed(Exception):
    """A CRL or OCSP source gave no usable answer; the message says why, for the operator's log."""


class EidNotConfigured(IdentityError):
    """No trusted eID roots are available (sandbox: `mydata sandbox seed` has not run)."""

    code = "eid_unavailable"
    status = 503
    description = "eID login is not available: no trusted certificate authority is configured."


class NoCardInReader(IdentityError):
    """The reader holds no card for this national ID."""

    code = "unknown_card"
    description = "No eID card for this national ID number is in the card reader."


class WrongPin(IdentityError):
    """The card refused the PIN."""

    code = "wrong_pin"
    description = "The PIN of the card is not correct."


class EidNonceInvalid(IdentityError):
    """The nonce is unknown, already used or expired: the login page must be loaded again."""

    code = "nonce_invalid"
    description = "This login attempt has expired or was already used; load the login page again."


CERTIFICATE_REASONS = (
    "malformed",
    "expired",
    "not_yet_valid",
    "untrusted",
    "key_usage",
    "policy",
    "extended_key_usage",
    "bad_signature",
    "no_national_id",
    "revoked",
    "revocation_unknown",
)


class CertificateRejected(IdentityError):
    """The eID certificate or its signature did not pass verification; *reason* says which check."""

    code = "certificate_rejected"
    description = "The eID certificate was refused."

    def __init__(self, reason: str, detail: str = "", *, date: dt.datetime | None = None) -> None:
        assert reason in CERTIFICATE_REASONS, reason
        super().__init__(f"The eID certificate was refused ({reason}). {detail}".strip(), reason=reason)
        self.reason = reason
        self.date = date  # when it expired, becomes valid, or was revoked


# -- mobile ID ------------------------------------------------------------------------------------


class NoMobileDevice(IdentityError):
    """No phone is enrolled for mobile ID for this national ID."""

    code = "no_mobile_device"
    status = 404
    description = "No mobile ID device is enrolled for this national ID number."


class MobileRequestNotFound(IdentityError):
    """There is no such mobile ID request (or it belongs to someone else)."""

    code = "no_pending_request"
    status = 404
    description = "There is no pending mobile ID request for this person."


class MobileRequestPending(IdentityError):
    """The phone has not approved the request yet."""

    code = "authorization_pending"
    status = 409
    description = "The mobile ID request is still waiting for approval on the phone."


class MobileRequestExpired(IdentityError):
    """No approval arrived within the request's lifetime (120 s)."""

    code = "request_expired"
    status = 410
    description = "The mobile ID request expired: no approval arrived within 120 seconds."


class MobileRequestNotPending(IdentityError):
    """The request was already approved or used."""

    code = "request_not_pending"
    status = 409
    description = "This mobile ID request was already approved or used."


class MobileSignatureInvalid(IdentityError):
    """The approval is not signed by the citizen's enrolled device key, or signs other values."""

    code = "invalid_signature"
    status = 403
    description = "The approval is not signed by a device enrolled for this person, or does not match the request."


# -- NHI card -------------------------------------------------------------------------------------


class WrongPassword(IdentityError):
    """No card has this number, or its registration password is wrong; *attempts_left* before it locks.

    One condition for both, so that an answer never tells whether a card number exists.
    """

    code = "wrong_password"
    description = "The NHI card number or the registration password is not correct."

    def __init__(self, attempts_left: int) -> None:
        super().__init__(attempts_left=attempts_left)
        self.attempts_left = attempts_left


class CardLocked(IdentityError):
    """The card is locked after too many wrong passwords, until *until*."""

    code = "card_locked"
    status = 429
    description = "This card is locked after too many wrong passwords."

    def __init__(self, until: dt.datetime) -> None:
        super().__init__(
            f"This card is locked after too many wrong passwords until {until.isoformat()}.",
            locked_until=until.isoformat(),
        )
        self.until = until
