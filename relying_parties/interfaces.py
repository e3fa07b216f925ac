"""What the relying_parties package reports as errors.

Refused `authorization_details` are :class:`identity.oauth.interfaces.InvalidAuthorizationDetails`
(an RFC 9396 error of the PAR endpoint) and refused client metadata is
:class:`identity.oauth.interfaces.InvalidClientMetadata` (RFC 7591 §3.2.2): those conditions belong
to the authorization server, which answers them in the RFCs' shapes.
"""

from __future__ import annotations

from mydata.errors import BadRequest, MydataError, NotFound

# -- organisations and services -------------------------------------------------------------------


class InvalidInput(BadRequest):
    """A request body or command option does not have the expected shape."""

    code = "invalid_request"
    description = "The request body is invalid; see `fields` for what to change."


class InvalidRegistrationNumber(BadRequest):
    """A unified business number (統一編號) is not eight digits or fails its check."""

    code = "invalid_registration_number"
    description = "The registration number (統一編號) must be 8 digits whose check digit is right."


class AlreadyRegistered(MydataError):
    """An organisation or service with this id (or an approved one with this number) exists already."""

    code = "already_registered"
    status = 409
    description = "Something is already registered under this id."


class OrganisationNotFound(NotFound):
    """No organisation is registered under this id."""

    code = "organisation_not_found"
    description = "No relying-party organisation is registered under this id."


class ServiceNotFound(NotFound):
    """No service is registered under this id."""

    code = "service_not_found"
    description = "No service is registered under this id."


class OrganisationNotApproved(MydataError):
    """The organisation is pending or suspended, and what was asked needs an approved one."""

    code = "organisation_not_approved"
    status = 409
    description = "The organisation is not approved: an operator must approve it first."


class UnknownDataset(BadRequest):
    """A service names a dataset that is not in the catalogue."""

    code = "unknown_dataset"
    description = "A dataset of this service is not in the catalogue (GET /api/v1/catalogue lists them)."


class InvalidLevel(BadRequest):
    """An assurance level is not one of low, substantial, high."""

    code = "invalid_level"
    description = "The level must be low, substantial or high."


class ClientHasNoEncryptionKey(MydataError):
    """The client registered no encryption key, so no package can be encrypted to it."""

    code = "no_encryption_key"
    status = 409
    description = "This client has no encryption key (use `enc`): register one before asking for deliveries."


# -- credentials ----------------------------------------------------------------------------------


class MissingInitialAccessToken(MydataError):
    """A registration request carries no bearer token (RFC 6750 §3.1: no error code)."""

    code = "unauthorized"
    status = 401
    description = (
        "Client registration needs your organisation's initial access token: send `Authorization: Bearer <token>`."
    )


class InvalidInitialAccessToken(MydataError):
    """A registration request carries a token that is unknown, revoked, or of an organisation not approved."""

    code = "invalid_token"
    status = 401
    description = "The initial access token is unknown or revoked: ask the platform operator for a new one."


class MissingOperatorCredentials(MydataError):
    """An operator request carries neither an operator token nor an operator's login session."""

    code = "unauthorized"
    status = 401
    description = (
        "This API is for platform operators: send `Authorization: Bearer <operator token>` "
        "(`mydata providers issue-operator-token`) or log in with an account that has the operator role."
    )


class NotAnOperator(MydataError):
    """The logged-in account does not hold the operator role."""

    code = "forbidden"
    status = 403
    description = "Your account does not have the platform operator role."


class StaffAccountNotFound(BadRequest):
    """A role can be given only to an account, and an account exists once its owner has logged in."""

    code = "account_not_found"
    description = (
        "No account has this national ID yet: the person should log in to MyData once with their eID card, "
        "then try again."
    )


class RoleNotHeld(NotFound):
    """The account does not hold this role for this organisation."""

    code = "role_not_held"
    description = "This account does not hold this role for this organisation."


class NotAConsoleMember(MydataError):
    """The account holds no role that opens this console (DESIGN §1: staff act through roles)."""

    code = "not_a_console_member"
    status = 403
    description = "This account has no role that opens this console."

    def __init__(self, console: str) -> None:
        super().__init__(f"This account has no role that opens the {console} console.", console=console)
        self.console = console


# -- the counter (臨櫃核驗) --------------------------------------------------------------------------


class NoCounterRole(MydataError):
    """The logged-in account holds no ``counter`` role of any organisation."""

    code = "no_counter_role"
    status = 403
    description = "This account has no counter role; ask your organisation's administrator to give it to you."


class CounterClosed(MydataError):
    """Every organisation the clerk has the ``counter`` role of is pending or suspended."""

    code = "counter_closed"
    status = 403
    description = "Your organisation is not approved: the counter is closed."

    def __init__(self, *, organisation_id: str, name_zh: str, name_en: str, organisation_status: str) -> None:
        super().__init__(
            f"The organisation {organisation_id} is {organisation_status}: its counter is closed.",
            organisation_id=organisation_id,
            organisation_status=organisation_status,
        )
        self.organisation_id = organisation_id
        self.name_zh = name_zh
        self.name_en = name_en
        self.organisation_status = organisation_status


# -- the operator's statistics --------------------------------------------------------------------


class StatisticsPeriodInvalid(MydataError):
    """A period the statistics cannot cover: a day that is not a date, the wrong order, or too long."""

    code = "invalid_period"
    status = 400
    description = "Give the period's first and last days as YYYY-MM-DD, the first not after the last, at most 366 days."

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}", field=field, reason=reason)
        #: The form field at fault (``from`` or ``to``) and why: ``not_a_date``, ``order`` or ``too_long``.
        self.field = field
        self.reason = reason


# -- the organisation's transaction log (issue 13) ---------------------------------------------------


class InvalidClientAssertion(MydataError):
    """The transactions API got no client assertion, or one that does not authenticate a client of an organisation."""

    code = "invalid_client"
    status = 401
    description = (
        "Send `Authorization: Bearer <client assertion>`: a JWT signed (ES256 or PS256) with a key your client "
        "registered, iss = sub = client_id, aud = the issuer identifier as a single string, a fresh jti, exp within "
        "5 minutes (RFC 7523 §3, the same rules as the token endpoint)."
    )


class MissingClientAssertion(InvalidClientAssertion):
    """The transactions API got no client assertion at all (RFC 6750 §3.1: the challenge then names no error)."""


# -- client configuration (RFC 7592) ----------------------------------------------------------------


class MissingRegistrationAccessToken(MydataError):
    """A client configuration request carries no bearer token (RFC 6750 §3.1: no error code)."""

    code = "unauthorized"
    status = 401
    description = (
        "The client configuration endpoint needs the client's registration access token (RFC 7592): "
        "send `Authorization: Bearer <registration_access_token>`."
    )


class InvalidRegistrationAccessToken(MydataError):
    """The token is unknown, another client's, of a deleted client, or of an organisation not approved."""

    code = "invalid_token"
    status = 401
    description = (
        "The registration access token is not this client's, or the client is deleted or its organisation "
        "not approved; the relying-party console issues a new one."
    )


# -- the operator console (issue 13) ---------------------------------------------------------------


class NotPending(MydataError):
    """Only a pending organisation or service can be rejected (an approved one is suspended)."""

    code = "not_pending"
    status = 409
    description = "Only a pending application can be rejected."
