"""The relying parties' JSON API: applying, operator approval, services, and RFC 7591 client registration.

Three kinds of caller, three blueprints:

* anyone may apply for an organisation (``POST /api/v1/organisations``, rate limited);
* operators approve and suspend organisations and services, and issue initial access tokens, with
  an operator API token or a logged-in staff account holding the ``operator`` role (ADR 0004),
  whose login must be of level high, and for a change at most 15 minutes old (identity.staff);
* an approved organisation, with its initial access token, registers clients at ``/oauth/register``
  (RFC 7591) and defines its services.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, g, jsonify, request
from flask.typing import ResponseReturnValue
from marshmallow import Schema, ValidationError

from identity import staff
from identity.oauth.interfaces import InvalidClientMetadata
from identity.oauth.models import OAuthClient
from identity.sessions import current_authentication
from mydata.db import unit_of_work
from mydata.errors import MydataError, handle_domain_error
from mydata.limits import limiter
from mydata.openapi import ErrorSchema, documented
from mydata.security import csrf
from providers.interfaces import InvalidOperatorToken, MissingOperatorToken
from relying_parties import registration, services
from relying_parties.interfaces import (
    AlreadyRegistered,
    InvalidInitialAccessToken,
    InvalidInput,
    InvalidRegistrationAccessToken,
    MissingInitialAccessToken,
    MissingOperatorCredentials,
    MissingRegistrationAccessToken,
    OrganisationNotApproved,
)
from relying_parties.models import Organisation
from relying_parties.schemas import (
    ClientInformationSchema,
    ClientMetadataSchema,
    ClientUpdateSchema,
    InitialAccessTokenSchema,
    OrganisationApplicationSchema,
    OrganisationListSchema,
    OrganisationOverviewSchema,
    OrganisationSchema,
    RegistrationErrorSchema,
    ServiceDefinitionSchema,
    ServiceListSchema,
    ServiceSchema,
    StaffErrorSchema,
    StatusQuerySchema,
)

public_bp = Blueprint("relying_parties_public", __name__, url_prefix="/api/v1")
operator_bp = Blueprint("relying_parties_operator", __name__, url_prefix="/api/v1")
organisation_bp = Blueprint("relying_parties_organisation", __name__)

#: OpenAPI security schemes: the operator's (shared with the catalogue's operator API) and the organisation's.
OPERATOR_SECURITY_SCHEME = "operatorToken"
STAFF_SESSION_SECURITY_SCHEME = "staffSession"
ORGANISATION_SECURITY_SCHEME = "initialAccessToken"
OPERATOR: list[dict[str, list[str]]] = [{OPERATOR_SECURITY_SCHEME: []}, {STAFF_SESSION_SECURITY_SCHEME: []}]
ORGANISATION: list[dict[str, list[str]]] = [{ORGANISATION_SECURITY_SCHEME: []}]
_OPERATOR_REALM = "mydata-operator"
_ORGANISATION_REALM = "mydata-registration"
_ONBOARDING = ["relying-party onboarding"]
_ADMINISTRATION = ["relying-party administration"]
_OPERATOR_ERRORS: dict[int, type[Schema] | str] = {401: StaffErrorSchema, 403: ErrorSchema, 404: ErrorSchema}
# A write with a staff session but without its CSRF token is refused with 400.
_OPERATOR_WRITE_ERRORS: dict[int, type[Schema] | str] = {400: ErrorSchema, **_OPERATOR_ERRORS}
APPLY_RATE = "10 per hour"


def _load(schema: Schema, document: Any = None) -> dict[str, Any]:
    """Parse a JSON body (or *document*) with *schema*; raise :class:`InvalidInput` naming the fields to fix."""
    document = request.get_json(silent=True) if document is None else document
    if not isinstance(document, dict):
        raise InvalidInput("Send a JSON object with Content-Type: application/json.")
    try:
        return schema.load(document)  # type: ignore[no-any-return]
    except ValidationError as error:
        raise InvalidInput(fields=error.messages) from None


def _sandbox() -> tuple[bool, str | None]:
    """Return whether this is the sandbox, and the origin whose http redirect URIs it also allows (its own)."""
    sandbox = bool(current_app.config["MYDATA_SANDBOX"])
    return sandbox, (str(current_app.config["MYDATA_ISSUER"]) if sandbox else None)


def _challenge(error: MydataError, realm: str, invalid: bool) -> Response:
    response = handle_domain_error(error)
    # RFC 6750 §3: a challenge always; an error code only when a token was presented and refused.
    response.headers["WWW-Authenticate"] = f'Bearer realm="{realm}"' + (', error="invalid_token"' if invalid else "")
    return response


def _bearer() -> str | None:
    scheme, _, secret = request.headers.get("Authorization", "").partition(" ")
    return secret.strip() if scheme.lower() == "bearer" else None


# -- applying -------------------------------------------------------------------------------------


@public_bp.post("/organisations")
@limiter.limit(APPLY_RATE)
@documented(
    "Apply as a relying-party organisation",
    tags=_ONBOARDING,
    body=OrganisationApplicationSchema,
    responses={201: OrganisationSchema, 400: ErrorSchema, 409: ErrorSchema, 429: ErrorSchema},
    examples={409: AlreadyRegistered},
    description="The organisation stays pending until a platform operator approves it; then the operator hands "
    "your contact an initial access token for client registration.",
)
def apply_organisation() -> ResponseReturnValue:
    """Record an organisation's application."""
    body = _load(OrganisationApplicationSchema())
    organisation = services.register_organisation(
        unit_of_work(),
        organisation_id=body["id"],
        name_zh=body["name_zh"],
        name_en=body["name_en"],
        organisation_type=body["type"],
        registration_number=body["registration_number"],
        contacts=body["contacts"],
        actor="applicant",
    )
    response = jsonify(OrganisationSchema().dump(organisation))
    response.headers["Location"] = f"/api/v1/organisations/{organisation.id}"
    return response, 201


# -- operators ------------------------------------------------------------------------------------


@operator_bp.before_request
def _require_operator() -> None:
    bearer = _bearer()
    authentication = None if bearer is not None else current_authentication()
    g.relying_parties_actor = services.authenticate_operator(
        unit_of_work(), bearer_token=bearer, citizen_id=authentication.citizen_id if authentication else None
    )
    if bearer is None:
        # A login session rides on a cookie, which a cross-site page could make the browser send:
        # the request must also carry the session's CSRF token (X-CSRFToken header).
        csrf.protect()
        # A browser session acts as staff only at level high, and changes the platform only within
        # 15 minutes of its login (identity.staff); an operator token is not a session.
        staff.require_staff_session(authentication, action=staff.is_action(request.method))


def _operator_unauthorized(error: MissingOperatorToken | InvalidOperatorToken | MissingOperatorCredentials) -> Response:
    return _challenge(error, _OPERATOR_REALM, invalid=isinstance(error, InvalidOperatorToken))


operator_bp.register_error_handler(MissingOperatorToken, _operator_unauthorized)
operator_bp.register_error_handler(InvalidOperatorToken, _operator_unauthorized)
operator_bp.register_error_handler(MissingOperatorCredentials, _operator_unauthorized)


def _actor() -> str:
    return str(g.relying_parties_actor)


@operator_bp.get("/organisations")
@documented(
    "List the relying-party organisations",
    tags=_ADMINISTRATION,
    query=StatusQuerySchema,
    responses={200: OrganisationListSchema, 400: ErrorSchema, 401: StaffErrorSchema, 403: ErrorSchema},
    security=OPERATOR,
)
def list_organisations() -> ResponseReturnValue:
    """List organisations, pending applications first to act on with ``?status=pending``."""
    query = _load(StatusQuerySchema(), request.args.to_dict())
    organisations = services.list_organisations(unit_of_work(), status=query.get("status"))
    return jsonify(OrganisationListSchema().dump({"organisations": organisations}))


@operator_bp.get("/organisations/<organisation_id>")
@documented(
    "Show an organisation",
    tags=_ADMINISTRATION,
    responses={200: OrganisationSchema, **_OPERATOR_ERRORS},
    security=OPERATOR,
)
def get_organisation(organisation_id: str) -> ResponseReturnValue:
    """Show one organisation."""
    return jsonify(OrganisationSchema().dump(services.get_organisation(unit_of_work(), organisation_id)))


@operator_bp.post("/organisations/<organisation_id>/approve")
@documented(
    "Approve an organisation",
    tags=_ADMINISTRATION,
    responses={200: OrganisationSchema, **_OPERATOR_WRITE_ERRORS},
    description="Also re-activates the clients of an organisation that was suspended.",
    security=OPERATOR,
)
def approve_organisation(organisation_id: str) -> ResponseReturnValue:
    """Approve an organisation."""
    organisation = services.approve_organisation(unit_of_work(), organisation_id, actor=_actor())
    return jsonify(OrganisationSchema().dump(organisation))


@operator_bp.post("/organisations/<organisation_id>/suspend")
@documented(
    "Suspend an organisation",
    tags=_ADMINISTRATION,
    responses={200: OrganisationSchema, **_OPERATOR_WRITE_ERRORS},
    description="Its clients stop working at once and its initial access token is refused.",
    security=OPERATOR,
)
def suspend_organisation(organisation_id: str) -> ResponseReturnValue:
    """Suspend an organisation."""
    organisation = services.suspend_organisation(unit_of_work(), organisation_id, actor=_actor())
    return jsonify(OrganisationSchema().dump(organisation))


@operator_bp.post("/organisations/<organisation_id>/initial-access-token")
@documented(
    "Issue an organisation's initial access token",
    tags=_ADMINISTRATION,
    responses={201: InitialAccessTokenSchema, **_OPERATOR_WRITE_ERRORS, 409: ErrorSchema},
    examples={409: OrganisationNotApproved},
    description="The token is shown once; issuing a new one revokes the previous one. Approved organisations only.",
    security=OPERATOR,
)
def issue_token(organisation_id: str) -> ResponseReturnValue:
    """Give an approved organisation a fresh initial access token."""
    token, secret = services.issue_initial_access_token(unit_of_work(), organisation_id, actor=_actor())
    document = {"organisation": token.organisation_id, "initial_access_token": secret, "issued_at": token.created_at}
    response = jsonify(InitialAccessTokenSchema().dump(document))
    response.headers["Cache-Control"] = "no-store"
    return response, 201


@operator_bp.get("/services")
@documented(
    "List the relying parties' services",
    tags=_ADMINISTRATION,
    query=StatusQuerySchema,
    responses={200: ServiceListSchema, 400: ErrorSchema, 401: StaffErrorSchema, 403: ErrorSchema},
    security=OPERATOR,
)
def list_services() -> ResponseReturnValue:
    """List services (``?status=pending``: those waiting for approval)."""
    query = _load(StatusQuerySchema(), request.args.to_dict())
    return jsonify(
        ServiceListSchema().dump({"services": services.list_services(unit_of_work(), status=query.get("status"))})
    )


@operator_bp.get("/services/<service_id>")
@documented(
    "Show a service", tags=_ADMINISTRATION, responses={200: ServiceSchema, **_OPERATOR_ERRORS}, security=OPERATOR
)
def get_service(service_id: str) -> ResponseReturnValue:
    """Show one service."""
    return jsonify(ServiceSchema().dump(services.get_service(unit_of_work(), service_id)))


@operator_bp.post("/services/<service_id>/approve")
@documented(
    "Approve a service",
    tags=_ADMINISTRATION,
    responses={200: ServiceSchema, **_OPERATOR_WRITE_ERRORS, 409: ErrorSchema},
    examples={409: OrganisationNotApproved},
    description="Citizens may be asked for an approved service of an approved organisation.",
    security=OPERATOR,
)
def approve_service(service_id: str) -> ResponseReturnValue:
    """Approve a service."""
    return jsonify(ServiceSchema().dump(services.approve_service(unit_of_work(), service_id, actor=_actor())))


@operator_bp.post("/services/<service_id>/suspend")
@documented(
    "Suspend a service",
    tags=_ADMINISTRATION,
    responses={200: ServiceSchema, **_OPERATOR_WRITE_ERRORS},
    description="New requests for it are refused at PAR with invalid_authorization_details.",
    security=OPERATOR,
)
def suspend_service(service_id: str) -> ResponseReturnValue:
    """Suspend a service."""
    return jsonify(ServiceSchema().dump(services.suspend_service(unit_of_work(), service_id, actor=_actor())))


# -- the organisation, with its initial access token ---------------------------------------------


@organisation_bp.before_request
def _require_organisation() -> None:
    g.relying_parties_organisation = services.authenticate_organisation(unit_of_work(), _bearer())


def _organisation_unauthorized(error: MissingInitialAccessToken | InvalidInitialAccessToken) -> Response:
    return _challenge(error, _ORGANISATION_REALM, invalid=isinstance(error, InvalidInitialAccessToken))


organisation_bp.register_error_handler(MissingInitialAccessToken, _organisation_unauthorized)
organisation_bp.register_error_handler(InvalidInitialAccessToken, _organisation_unauthorized)


def _organisation() -> Organisation:
    organisation: Organisation = g.relying_parties_organisation
    return organisation


@organisation_bp.post("/oauth/register")
@documented(
    "Register a client (RFC 7591)",
    tags=["oauth", *_ONBOARDING],
    body=ClientMetadataSchema,
    responses={201: ClientInformationSchema, 400: RegistrationErrorSchema, 401: ErrorSchema},
    description="Needs the organisation's initial access token. The client belongs to the organisation: its "
    "citizens' pairwise subjects and the services it may ask for are the organisation's. The answer holds the "
    "client's registration access token and configuration endpoint (RFC 7592), to read, update or delete it.",
    security=ORGANISATION,
)
def register_client() -> ResponseReturnValue:
    """Register a client of the token's organisation."""
    metadata = _load_client_metadata(ClientMetadataSchema())
    sandbox, origin = _sandbox()
    client, token = registration.register_dynamic_client(
        unit_of_work(), _organisation(), metadata, sandbox=sandbox, sandbox_origin=origin
    )
    # RFC 7591 §3.2.1: not cached; mydata.security says no-store (and Pragma) for every /oauth/ answer.
    return jsonify(ClientInformationSchema().dump(_information(client, token))), 201


def _information(client: OAuthClient, token: str | None = None) -> dict[str, Any]:
    """Return the client information response (RFC 7592 §3): with the token only when it was just issued."""
    document = registration.client_information(client)
    document["registration_client_uri"] = registration.registration_client_uri(
        str(current_app.config["MYDATA_ISSUER"]), client.client_id
    )
    if token is not None:
        document["registration_access_token"] = token
    return document


def _load_client_metadata(schema: Schema) -> dict[str, Any]:
    document = request.get_json(silent=True)
    if not isinstance(document, dict):
        raise InvalidClientMetadata("Send the client metadata as a JSON object with Content-Type: application/json.")
    try:
        metadata: dict[str, Any] = schema.load(document)
    except ValidationError as error:
        messages = error.messages_dict
        reasons = "; ".join(f"{name}: {' '.join(map(str, _flat(found)))}" for name, found in messages.items())
        raise InvalidClientMetadata(reasons) from None
    return metadata


def _flat(messages: Any) -> list[Any]:
    if isinstance(messages, dict):
        return [item for value in messages.values() for item in _flat(value)]
    if isinstance(messages, list):
        return [item for value in messages for item in _flat(value)]
    return [messages]


@organisation_bp.get("/api/v1/organisation")
@documented(
    "Show your organisation",
    tags=_ONBOARDING,
    responses={200: OrganisationOverviewSchema, 401: ErrorSchema},
    description="The organisation of the initial access token, its services and its registered clients.",
    security=ORGANISATION,
)
def get_own_organisation() -> ResponseReturnValue:
    """Show the token's organisation with its services and clients."""
    uow = unit_of_work()
    organisation = _organisation()
    document = {
        "organisation": organisation,
        "services": services.list_services(uow, organisation_id=organisation.id),
        "clients": services.organisation_clients(uow, organisation.id),
    }
    return jsonify(OrganisationOverviewSchema().dump(document))


@organisation_bp.post("/api/v1/organisation/services")
@documented(
    "Define a service",
    tags=_ONBOARDING,
    body=ServiceDefinitionSchema,
    responses={201: ServiceSchema, 400: ErrorSchema, 401: ErrorSchema, 409: ErrorSchema},
    examples={409: AlreadyRegistered},
    description="The service stays pending until a platform operator approves it; citizens cannot be asked for it "
    "before (PAR answers invalid_authorization_details). Its level is the highest minimum level of its datasets, "
    "or `level` if higher.",
    security=ORGANISATION,
)
def define_service() -> ResponseReturnValue:
    """Define a service of the token's organisation."""
    body = _load(ServiceDefinitionSchema())
    organisation = _organisation()
    service = services.define_service(
        unit_of_work(),
        organisation_id=organisation.id,
        service_id=body["id"],
        name_zh=body["name_zh"],
        name_en=body["name_en"],
        purpose_zh=body["purpose_zh"],
        purpose_en=body["purpose_en"],
        purpose_code=body["purpose_code"],
        required_datasets=body["required_datasets"],
        optional_datasets=body["optional_datasets"],
        retention_days=body["retention_days"],
        level=body.get("level"),
        actor=f"organisation:{organisation.id}",
    )
    return jsonify(ServiceSchema().dump(service)), 201


# -- the client, with its registration access token (RFC 7592) ------------------------------------

client_configuration_bp = Blueprint("relying_parties_client_configuration", __name__)
CLIENT_CONFIGURATION_SECURITY_SCHEME = "registrationAccessToken"
CLIENT_CONFIGURATION: list[dict[str, list[str]]] = [{CLIENT_CONFIGURATION_SECURITY_SCHEME: []}]
_CLIENT_CONFIGURATION_REALM = "mydata-client-configuration"
_CONFIGURATION_PATH = "/oauth/register/<client_id>"
# RFC 7592 §2.1: an unknown client_id is answered 401 like a wrong token (and not 404), so that a
# token cannot probe which clients exist; 404 is listed for the routing's answer to a malformed path.
_CONFIGURATION_ERRORS: dict[int, type[Schema] | str] = {401: ErrorSchema, 404: ErrorSchema}


@client_configuration_bp.before_request
def _require_registration_access_token() -> None:
    client_id = (request.view_args or {}).get("client_id", "")
    g.relying_parties_client = registration.authenticate_client_configuration(unit_of_work(), client_id, _bearer())


def _client_unauthorized(error: MissingRegistrationAccessToken | InvalidRegistrationAccessToken) -> Response:
    return _challenge(error, _CLIENT_CONFIGURATION_REALM, invalid=isinstance(error, InvalidRegistrationAccessToken))


client_configuration_bp.register_error_handler(MissingRegistrationAccessToken, _client_unauthorized)
client_configuration_bp.register_error_handler(InvalidRegistrationAccessToken, _client_unauthorized)


def _client() -> OAuthClient:
    client: OAuthClient = g.relying_parties_client
    return client


@client_configuration_bp.get(_CONFIGURATION_PATH)
@documented(
    "Read a client's registration (RFC 7592)",
    tags=["oauth", *_ONBOARDING],
    responses={200: ClientInformationSchema, **_CONFIGURATION_ERRORS},
    description="Needs the client's registration access token, from the registration's answer or the "
    "relying-party console. Another client's token, or a deleted client's, is refused with 401 invalid_token.",
    security=CLIENT_CONFIGURATION,
)
def read_client(client_id: str) -> ResponseReturnValue:
    """Show the client's metadata as registered."""
    return jsonify(ClientInformationSchema().dump(_information(_client())))


@client_configuration_bp.put(_CONFIGURATION_PATH)
@documented(
    "Update a client's registration (RFC 7592)",
    tags=["oauth", *_ONBOARDING],
    body=ClientUpdateSchema,
    responses={200: ClientInformationSchema, 400: RegistrationErrorSchema, **_CONFIGURATION_ERRORS},
    description="Send all the client's metadata with its client_id: it replaces what is registered, checked as "
    "a registration is (left-out metadata takes its default).",
    security=CLIENT_CONFIGURATION,
)
def update_client(client_id: str) -> ResponseReturnValue:
    """Replace the client's metadata."""
    metadata = _load_client_metadata(ClientUpdateSchema())
    sandbox, origin = _sandbox()
    client = registration.update_dynamic_client(
        unit_of_work(), _client(), metadata, sandbox=sandbox, sandbox_origin=origin
    )
    return jsonify(ClientInformationSchema().dump(_information(client)))


@client_configuration_bp.delete(_CONFIGURATION_PATH)
@documented(
    "Delete a client (RFC 7592)",
    tags=["oauth", *_ONBOARDING],
    responses={204: "Deleted: the client and its registration access token no longer work", **_CONFIGURATION_ERRORS},
    security=CLIENT_CONFIGURATION,
)
def delete_client(client_id: str) -> ResponseReturnValue:
    """Retire the client and its registration access token."""
    registration.delete_dynamic_client(unit_of_work(), _client())
    return "", 204
