"""The authorization server's rules: pushed requests, the browser interaction, tokens, resources.

Views hand these functions the HTTP facts (method, URL, headers, form) and get back what to answer;
each function that changes state commits its unit of work.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import InvalidRequestError, UnsupportedResponseTypeError
from authlib.oidc.core.errors import ConsentRequiredError, LoginRequiredError
from flask import Flask, Response, current_app
from sqlalchemy import Table, bindparam, insert, select, update

from identity.oauth import server as oauth
from identity.oauth.dpop import DPoPProof, InvalidDPoPProof, verify_proof
from identity.oauth.interfaces import (
    ConsentDecision,
    ConsentFlow,
    DetailsValidator,
    InteractionNotFound,
    InvalidAuthorizationDetails,
    InvalidDPoPProofError,
    InvalidRequestUri,
    ResolvedDetails,
    shown,
)
from identity.oauth.models import AccessToken, Interaction, PushedRequest
from identity.sessions import ACR, LEVELS, Authentication, level_at_least
from mydata.clock import clock
from mydata.db import UnitOfWork

# The hot path of every flow reads and writes these tables with Core statements (half the cost of
# the ORM's per statement); the models stay the one description of the schema.
_PAR = cast(Table, PushedRequest.__table__)
_INTERACTION = cast(Table, Interaction.__table__)
_TOKEN = cast(Table, AccessToken.__table__)
# Built once, with bind parameters: building a statement for each request costs as much again as
# running it (decision 0012).
_INSERT_PAR = insert(_PAR)
_REDEEM_PAR = oauth.redeem_once(_PAR, _PAR.c.request_uri_hash, _PAR.c.params, _PAR.c.dpop_jkt, _PAR.c.transaction_id)
_INSERT_INTERACTION = insert(_INTERACTION)
_OPEN_INTERACTION = select(
    _INTERACTION.c.id_hash,
    _INTERACTION.c.client_id,
    _INTERACTION.c.params,
    _INTERACTION.c.dpop_jkt,
    _INTERACTION.c.transaction_id,
    _INTERACTION.c.created_at,
).where(
    _INTERACTION.c.id_hash == bindparam("hash"),
    _INTERACTION.c.completed_at.is_(None),
    _INTERACTION.c.expires_at > bindparam("now"),
)
_COMPLETE_INTERACTION = (
    update(_INTERACTION)
    .where(_INTERACTION.c.id_hash == bindparam("hash"), _INTERACTION.c.completed_at.is_(None))
    .values(completed_at=bindparam("now"))
)

REQUEST_URI_PREFIX = "urn:ietf:params:oauth:request_uri:"
REQUEST_URI_LIFETIME = 90  # DESIGN §3.3; RFC 9126 §2.2 asks for a short lifetime
INTERACTION_LIFETIME = 600  # a citizen may take minutes to log in with a card and read the request
ACR_LEVEL = {acr: level for level, acr in ACR.items()}
#: Parameters that may be pushed; anything else is refused rather than ignored.
PUSHABLE = frozenset(
    {
        "client_id", "response_type", "redirect_uri", "scope", "state", "nonce", "code_challenge",
        "code_challenge_method", "acr_values", "authorization_details", "dpop_jkt", "prompt", "max_age",
        "ui_locales", "client_assertion", "client_assertion_type",
    }
)  # fmt: skip
#: A service or dataset id, as the catalogue and the relying parties package define them.
_ID = re.compile(r"[a-z0-9][a-z0-9._-]{0,99}")
#: Most datasets one `mydata_delivery` entry may name (a service has at most 20: relying_parties.services).
MAX_DATASETS = 20
#: Longest access token read from an Authorization header (ours are 43 characters).
MAX_ACCESS_TOKEN_LENGTH = 512
#: The `prompt` values honoured (OIDC Core §3.1.2.1). `consent` changes nothing: every consent is
#: asked for. `select_account` is refused: a browser holds one citizen's session.
PROMPT_VALUES = ("none", "login", "consent")
#: `max_age` is a count of seconds: at most nine digits (over 31 years), no sign, no exponent.
MAX_AGE_DIGITS = 9


def server() -> oauth.Server:
    """Return the application's Authlib server."""
    return current_app.extensions["identity.oauth"]  # type: ignore[no-any-return]


def details_validators() -> dict[str, DetailsValidator]:
    """Return the validators of `authorization_details` types, by type."""
    return current_app.extensions["identity.authorization_details"]  # type: ignore[no-any-return]


def register_details_type(app: Flask, type_: str, validator: DetailsValidator) -> None:
    """Accept an `authorization_details` type (RFC 9396 §2), validated by *validator*."""
    app.extensions.setdefault("identity.authorization_details", {})[type_] = validator


def register_consent_flow(app: Flask, flow: ConsentFlow) -> None:
    """Let *flow* record, show and decide requests that carry `authorization_details`."""
    app.extensions["identity.consent_flow"] = flow


def consent_flow() -> ConsentFlow | None:
    """Return the registered consent flow, if any."""
    return current_app.extensions.get("identity.consent_flow")


def publish_endpoint(app: Flask, name: str, path: str) -> None:
    """Name another package's endpoint in the server metadata (e.g. ``registration_endpoint``, RFC 8414 §2)."""
    app.extensions.setdefault("identity.oauth_endpoints", {})[name] = path


def endpoint_url(path: str) -> str:
    """Return the public URL of one of the server's endpoints (what DPoP `htu` must say)."""
    return oauth.issuer() + path


# -- pushed authorization requests (RFC 9126) --------------------------------------------------------


@dataclass(frozen=True)
class PushedRequestResult:
    """The `request_uri` the client sends the browser with."""

    request_uri: str
    expires_in: int


def push_authorization_request(uow: UnitOfWork, form: Mapping[str, list[str]], dpop: str | None) -> PushedRequestResult:
    """Authenticate the client, validate the whole authorization request, and store it."""
    params = _single_values(form)
    request = oauth.prepared_request(params, endpoint_url("/oauth/par"), method="POST")
    client = server().authenticate_client(request, ["private_key_jwt"], "par")
    if "request_uri" in params or "request" in params:
        raise InvalidRequestError("A pushed request cannot carry request_uri or request.")
    unknown = sorted(set(params) - PUSHABLE)
    if unknown:
        raise InvalidRequestError(f"Unknown parameters: {shown(', '.join(unknown))}.")
    if params.setdefault("client_id", client.client_id) != client.client_id:
        raise InvalidRequestError("client_id differs from the authenticated client.")
    now = clock().timestamp()
    # The proof first, like the assertion: once presented it is used, whatever the outcome.
    jkt = _dpop_binding(dpop, params.pop("dpop_jkt", None), now)
    for name in ("client_assertion", "client_assertion_type"):
        params.pop(name, None)
    # Checked before Authlib, whose errors would quote them raw (and fail on a character RFC 6749 §5.2 forbids).
    if params.get("response_type") != "code":
        response_type = shown(params.get("response_type", ""))
        raise UnsupportedResponseTypeError(response_type, f"Only response_type=code is supported, not {response_type}.")
    if "redirect_uri" in params and not client.check_redirect_uri(params["redirect_uri"]):
        raise InvalidRequestError("The redirect_uri is not one this client registered (compared exactly).")

    request.client = client
    grant = server().get_authorization_grant(request)
    grant.validate_authorization_request()
    oauth.validate_scope(params.get("scope"))
    validate_prompt(params.get("prompt"), params.get("max_age"))
    details = resolve_details(params.get("authorization_details"), client.client_id)
    level_for_acr_values(params.get("acr_values"))

    flow = consent_flow()
    if details and flow is not None:
        transaction_id = flow.requested(uow, client.client_id, details)
    else:
        transaction_id = secrets.token_hex(16)
    request_uri = REQUEST_URI_PREFIX + secrets.token_urlsafe(32)
    uow.run_alone(
        _INSERT_PAR,
        {
            "request_uri_hash": oauth.sha256_hex(request_uri),
            "client_id": client.client_id,
            "params": params,
            "dpop_jkt": jkt,
            "transaction_id": transaction_id,
            "created_at": now,
            "expires_at": now + REQUEST_URI_LIFETIME,
        },
    )
    return PushedRequestResult(request_uri=request_uri, expires_in=REQUEST_URI_LIFETIME)


def _single_values(form: Mapping[str, list[str]]) -> dict[str, str]:
    """Refuse repeated parameters (RFC 6749 §3.1) and return one value per name."""
    values: dict[str, str] = {}
    for name, items in form.items():
        if len(items) != 1:
            raise InvalidRequestError(f"Parameter {shown(name)} must not be repeated.")
        values[name] = items[0]
    return values


def _dpop_binding(proof: str | None, dpop_jkt: str | None, now: int) -> str | None:
    """Bind the code to a DPoP key given as a proof or as `dpop_jkt` (RFC 9449 §10)."""
    if proof is None:
        return dpop_jkt
    try:
        verified = verify_proof(
            proof, method="POST", url=endpoint_url("/oauth/par"), now=now, remember_jti=oauth.remember_jti
        )
    except InvalidDPoPProof as exc:
        raise InvalidDPoPProofError(str(exc)) from None
    if dpop_jkt is not None and dpop_jkt != verified.jkt:
        raise InvalidDPoPProofError("dpop_jkt differs from the key of the DPoP proof.")
    return verified.jkt


def resolve_details(raw: str | None, client_id: str) -> list[ResolvedDetails]:
    """Validate every `authorization_details` entry with the validator of its type (RFC 9396 §5)."""
    details = oauth.authorization_details_json(raw)
    if details is None:
        return []
    validators = details_validators()
    seen: set[str] = set()
    for detail in details:  # shapes and types first: no entry is resolved before all are known to be sound
        type_ = detail["type"]
        if type_ not in validators:
            raise InvalidAuthorizationDetails(f"Unsupported authorization_details type {shown(type_)}.")
        if type_ in seen:
            # DESIGN §3.3: a request asks for one delivery (one consent), never several.
            raise InvalidAuthorizationDetails(f"Ask for one {shown(type_)} entry per request, not several.")
        seen.add(type_)
    return [validators[detail["type"]](detail, client_id) for detail in details]


def validate_delivery_detail(detail: dict[str, Any], client_id: str) -> ResolvedDetails:
    """Check the shape of a `mydata_delivery` entry (DESIGN §3.3); consent wires what it grants."""
    allowed = {"type", "service", "datasets"}
    extra = sorted(set(detail) - allowed)
    if extra:
        raise InvalidAuthorizationDetails(f"Unknown mydata_delivery fields: {shown(', '.join(extra))}.")
    service = detail.get("service")
    if not isinstance(service, str) or not _ID.fullmatch(service):
        raise InvalidAuthorizationDetails("mydata_delivery needs a `service` id (lower-case letters, digits, . _ -).")
    datasets = detail.get("datasets")
    if datasets is not None:
        if not isinstance(datasets, list) or not datasets:
            raise InvalidAuthorizationDetails("mydata_delivery `datasets` must be a non-empty array of dataset ids.")
        if len(datasets) > MAX_DATASETS:
            raise InvalidAuthorizationDetails(f"mydata_delivery `datasets` may name at most {MAX_DATASETS} datasets.")
        if not all(isinstance(d, str) and _ID.fullmatch(d) for d in datasets):
            raise InvalidAuthorizationDetails("mydata_delivery `datasets` must be a non-empty array of dataset ids.")
        if len(set(datasets)) != len(datasets):
            raise InvalidAuthorizationDetails("mydata_delivery `datasets` names a dataset twice.")
    return ResolvedDetails(detail=detail, level="low", summary={"service": service, "datasets": datasets or []})


def validate_prompt(prompt: str | None, max_age: str | None) -> None:
    """Refuse a `prompt` this platform does not honour, `none` with another value, and a malformed `max_age`."""
    if prompt is not None:
        values = prompt.split(" ")
        unknown = sorted({v for v in values if v not in PROMPT_VALUES})
        if unknown or len(set(values)) != len(values):
            raise InvalidRequestError(
                f"Unsupported prompt value {' '.join(unknown) or prompt!r}; supported: {', '.join(PROMPT_VALUES)}."
            )
        if "none" in values and len(values) > 1:
            # OIDC Core §3.1.2.1: none must not be combined with any other value.
            raise InvalidRequestError("prompt=none cannot be combined with another prompt value.")
    if max_age is not None and not (max_age.isascii() and max_age.isdigit() and len(max_age) <= MAX_AGE_DIGITS):
        raise InvalidRequestError(f"max_age must be a whole number of seconds, at most {MAX_AGE_DIGITS} digits.")


def level_for_acr_values(acr_values: str | None) -> str:
    """Return the level the request asks for: the weakest of its `acr_values` (OIDC Core §3.1.2.1)."""
    if not acr_values:
        return "low"
    levels = []
    for value in acr_values.split():
        if value not in ACR_LEVEL:
            raise InvalidRequestError(f"Unknown acr value {shown(value)}; supported: {', '.join(ACR.values())}.")
        levels.append(ACR_LEVEL[value])
    return min(levels, key=LEVELS.index)


# -- the authorization endpoint ----------------------------------------------------------------------


def start_interaction(uow: UnitOfWork, args: Mapping[str, list[str]]) -> str:
    """Redeem a `request_uri` once and open the browser interaction; return its secret id."""
    params = _single_values(args)
    request_uri = params.get("request_uri")
    client_id = params.get("client_id")
    if not request_uri:
        raise InvalidRequestError(
            "This platform accepts only pushed authorization requests: "
            "POST the request to the PAR endpoint and send client_id and request_uri (RFC 9126)."
        )
    if not client_id:
        raise InvalidRequestError("Missing client_id.")
    extra = sorted(set(params) - {"client_id", "request_uri"})
    if extra:
        raise InvalidRequestError(f"Only client_id and request_uri are accepted here, not {', '.join(extra)}.")
    now = clock().timestamp()
    request_hash = oauth.sha256_hex(request_uri)
    pushed = uow.run(_REDEEM_PAR, {"hash": request_hash, "client": client_id, "now": now}).first()
    if pushed is None:  # say why
        known = uow.session.execute(
            select(_PAR.c.client_id, _PAR.c.used_at).where(_PAR.c.request_uri_hash == request_hash)
        ).first()
        if known is None or known.client_id != client_id:
            raise InvalidRequestUri("The request_uri is unknown for this client.")
        if known.used_at is not None:
            raise InvalidRequestUri("The request_uri was already used.")
        raise InvalidRequestUri("The request_uri has expired (it lives 90 seconds).")
    interaction_id = secrets.token_urlsafe(32)
    uow.run(
        _INSERT_INTERACTION,
        {
            "id_hash": oauth.sha256_hex(interaction_id),
            "client_id": client_id,
            "params": pushed.params,
            "dpop_jkt": pushed.dpop_jkt,
            "transaction_id": pushed.transaction_id,
            "created_at": now,
            "expires_at": now + INTERACTION_LIFETIME,
        },
    )
    uow.commit()
    return interaction_id


@dataclass(frozen=True)
class InteractionRecord:
    """An open browser interaction: the pushed request it redeemed, and whose it is."""

    id_hash: str
    client_id: str
    params: dict[str, Any]
    dpop_jkt: str | None
    transaction_id: str
    created_at: int


@dataclass(frozen=True)
class PendingAuthorization:
    """An interaction as the approval page shows it."""

    interaction: InteractionRecord
    client: oauth.Client
    level: str
    details: list[ResolvedDetails]

    @property
    def redirect_uri(self) -> str:
        """Return where the answer goes."""
        return str(self.interaction.params["redirect_uri"])

    @property
    def prompt(self) -> frozenset[str]:
        """Return the request's `prompt` values (checked at PAR)."""
        return frozenset(str(self.interaction.params.get("prompt", "")).split())


def load_interaction(uow: UnitOfWork, interaction_id: str) -> PendingAuthorization:
    """Return an open interaction, or raise :class:`InteractionNotFound`."""
    # No transaction needed to read it: answering it is a conditional update (_complete).
    row = uow.read(_OPEN_INTERACTION, {"hash": oauth.sha256_hex(interaction_id), "now": clock().timestamp()}).first()
    if row is None:
        raise InteractionNotFound()
    client = oauth.query_client(row.client_id)
    if client is None:
        raise InteractionNotFound()
    interaction = InteractionRecord(
        row.id_hash, row.client_id, dict(row.params), row.dpop_jkt, row.transaction_id, row.created_at
    )
    details = resolve_details(interaction.params.get("authorization_details"), client.client_id)
    levels = [level_for_acr_values(interaction.params.get("acr_values"))] + [d.level for d in details]
    return PendingAuthorization(interaction, client, max(levels, key=LEVELS.index), details)


LOGIN, REAUTHENTICATE = "login", "reauthenticate"


def login_needed(pending: PendingAuthorization, authentication: Authentication | None) -> str | None:
    """Return what the citizen must do before answering: log in, log in again, or nothing (None).

    `login` when there is no session or it is too weak; `reauthenticate` when the request asked for
    `prompt=login`, or its `max_age` is shorter than the session's age (OIDC Core §3.1.2.1). A login
    made since the interaction began satisfies both, however long the citizen then reads the screen.
    """
    if authentication is None or not level_at_least(authentication.level, pending.level):
        return LOGIN
    if authentication.auth_time >= pending.interaction.created_at:
        return None
    if "login" in pending.prompt:
        return REAUTHENTICATE
    max_age = pending.interaction.params.get("max_age")
    if max_age is not None and clock().timestamp() - authentication.auth_time > int(max_age):
        return REAUTHENTICATE
    return None


def answer_prompt_none(
    uow: UnitOfWork, pending: PendingAuthorization, authentication: Authentication | None
) -> Response | None:
    """Answer a `prompt=none` request at once, without a page; None for other requests.

    `login_required` when a login would be needed; otherwise `consent_required`, since a citizen
    always approves a request on this platform (OIDC Core §3.1.2.6). Like every authorization
    response it is a 303 with `iss` and `state` (RFC 9207).
    """
    if "none" not in pending.prompt:
        return None
    if login_needed(pending, authentication) is not None:
        error: OAuth2Error = LoginRequiredError(description="The citizen must log in, which prompt=none forbids.")
    else:
        error = ConsentRequiredError(description="The citizen must approve the request, which prompt=none forbids.")
    _complete(uow, pending.interaction)
    return _respond(uow, pending, error)


def _complete(uow: UnitOfWork, interaction: InteractionRecord) -> None:
    completed = uow.run(_COMPLETE_INTERACTION, {"hash": interaction.id_hash, "now": clock().timestamp()})
    if completed.rowcount != 1:
        raise InteractionNotFound()  # answered already, by a request racing this one


def _respond(uow: UnitOfWork, pending: PendingAuthorization, grant_user: oauth.Grant | OAuth2Error | None) -> Response:
    request = oauth.prepared_request(dict(pending.interaction.params), endpoint_url("/oauth/authorize"))
    grant = server().get_authorization_grant(request)
    response: Response = server().create_authorization_response(request, grant_user=grant_user, grant=grant)
    uow.commit()
    return response


def decide(
    uow: UnitOfWork,
    pending: PendingAuthorization,
    authentication: Authentication,
    decision: ConsentDecision,
) -> Response:
    """Answer the client: a code when the citizen approves, `access_denied` otherwise (303, with `iss`).

    The code carries what was granted: the consent flow's narrowed `authorization_details` when
    there is one, the requested ones otherwise.
    """
    interaction = pending.interaction
    _complete(uow, interaction)
    grant_user = None
    if decision.approve:
        grant_user = oauth.Grant(
            citizen_id=authentication.citizen_id,
            subject=oauth.pairwise_subject(authentication.national_id, pending.client.sector),
            acr=ACR[authentication.level],
            amr=authentication.amr,
            auth_time=authentication.auth_time,
            nonce=interaction.params.get("nonce"),
            authorization_details=decision.granted or [d.detail for d in pending.details] or None,
            dpop_jkt=interaction.dpop_jkt,
            transaction_id=interaction.transaction_id,
        )
    return _respond(uow, pending, grant_user)


# -- the token endpoint -------------------------------------------------------------------------------


def exchange_code(uow: UnitOfWork, dpop: str | None) -> Response:
    """Verify the DPoP proof, then let Authlib authenticate the client and redeem the code."""
    try:
        proof = verify_proof(
            dpop,
            method="POST",
            url=endpoint_url("/oauth/token"),
            now=clock().timestamp(),
            remember_jti=oauth.remember_jti,
        )
    except InvalidDPoPProof as exc:
        return oauth_error_response(InvalidDPoPProofError(str(exc)))
    request = server().create_oauth2_request(None)
    request.dpop_jkt = proof.jkt
    response: Response = server().create_token_response(request)
    if response.status_code == 200:
        uow.commit()
    else:
        uow.rollback()
    return response


def oauth_error_response(error: OAuth2Error) -> Response:
    """Render an OAuth error as a JSON body (RFC 6749 §5.2), never as a redirect (RFC 9126 §2.3)."""
    error.redirect_uri = None
    return server().handle_error_response(None, error)  # type: ignore[no-any-return]


# -- protected resources -----------------------------------------------------------------------------


@dataclass(frozen=True)
class AccessTokenRecord:
    """A stored access token, as resource endpoints see it."""

    token_hash: str
    client_id: str
    citizen_id: str
    subject: str
    jkt: str
    scope: str
    acr: str
    amr: list[str]
    auth_time: int
    transaction_id: str
    expires_at: int
    revoked_at: int | None


_TOKEN_FIELDS = tuple(AccessTokenRecord.__dataclass_fields__)
_FIND_TOKEN = select(*(_TOKEN.c[name] for name in _TOKEN_FIELDS), _TOKEN.c.authorization_details).where(
    _TOKEN.c.token_hash == bindparam("hash")
)


class InvalidToken(Exception):
    """The access token or its proof is refused; carries the WWW-Authenticate error (RFC 9449 §7.1)."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description

    def www_authenticate(self) -> str:
        """Return the challenge for the 401 answer."""
        return f'DPoP error="{self.error}", error_description="{self.description}", algs="ES256 PS256"'


class ConsentEnded(InvalidToken):
    """The token's consent was revoked or its window ended; a resource may name that reason instead."""

    def __init__(self, description: str, *, revoked: bool) -> None:
        super().__init__("invalid_token", description)
        self.revoked = revoked


def authenticate_resource_request(
    uow: UnitOfWork, *, method: str, url: str, authorization: str | None, dpop: str | None
) -> AccessTokenRecord:
    """Check a DPoP-bound access token and its proof for a resource request (RFC 9449 §7)."""
    if not authorization:
        raise InvalidToken("invalid_token", "An access token is required: Authorization: DPoP <token>.")
    scheme, _, token = authorization.partition(" ")
    if len(token) > MAX_ACCESS_TOKEN_LENGTH:
        raise InvalidToken("invalid_token", "The access token is unknown, revoked or expired.")
    if scheme.lower() != "dpop" or not token:
        # A DPoP-bound token presented as a bearer token is a downgrade (RFC 9449 §7.2).
        raise InvalidToken("invalid_token", "Use the DPoP authorization scheme with a DPoP proof.")
    now = clock().timestamp()
    found = uow.read(_FIND_TOKEN, {"hash": oauth.sha256_hex(token)}).first()
    if found is None or found.revoked_at is not None:
        raise InvalidToken("invalid_token", "The access token is unknown or revoked.")
    row = AccessTokenRecord(*found[: len(_TOKEN_FIELDS)])
    # The consent first: a token ends with its consent's window, and the client learns why. A token
    # without authorization_details is a sign-in's, which has no consent.
    flow = consent_flow()
    window = (
        flow.window(uow, row.transaction_id) if flow is not None and found.authorization_details is not None else None
    )
    refusal = window.refusal(now) if window is not None else None
    if refusal is not None:
        assert window is not None
        raise ConsentEnded(refusal, revoked=window.ended == "revoked")
    if now >= row.expires_at:
        raise InvalidToken("invalid_token", "The access token has expired.")
    try:
        proof: DPoPProof = verify_proof(
            dpop, method=method, url=url, now=now, remember_jti=oauth.remember_jti, access_token=token
        )
    except InvalidDPoPProof as exc:
        raise InvalidToken("invalid_dpop_proof", str(exc)) from None
    if proof.jkt != row.jkt:
        raise InvalidToken("invalid_dpop_proof", "The DPoP proof is signed by another key than the token's.")
    return row


def userinfo(token: AccessTokenRecord) -> dict[str, Any]:
    """Return the claims the client may see: the pairwise subject and how the citizen logged in."""
    client = oauth.query_client(token.client_id)
    if client is None:
        raise InvalidToken("invalid_token", "The client of this token is no longer active.")
    claims = {
        "sub": token.subject,
        "acr": token.acr,
        "amr": token.amr,
        "auth_time": token.auth_time,
        "txn": token.transaction_id,
    }
    return claims


def discovery() -> dict[str, Any]:
    """Return the server metadata (RFC 8414 §2, OIDC Discovery §3) with the FAPI 2.0 choices."""
    base = oauth.issuer()
    algs = list(oauth.CLIENT_ASSERTION_ALGORITHMS)
    return {
        "issuer": base,
        "authorization_endpoint": f"{base}/oauth/authorize",
        "pushed_authorization_request_endpoint": f"{base}/oauth/par",
        "require_pushed_authorization_requests": True,
        "token_endpoint": f"{base}/oauth/token",
        "userinfo_endpoint": f"{base}/oauth/userinfo",
        "jwks_uri": f"{base}/oauth/jwks",
        "revocation_endpoint": f"{base}/oauth/revoke",
        "introspection_endpoint": f"{base}/oauth/introspect",
        "scopes_supported": list(oauth.SCOPES),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["ES256"],
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": algs,
        "revocation_endpoint_auth_methods_supported": ["private_key_jwt"],
        "revocation_endpoint_auth_signing_alg_values_supported": algs,
        "introspection_endpoint_auth_methods_supported": ["private_key_jwt"],
        "introspection_endpoint_auth_signing_alg_values_supported": algs,
        "code_challenge_methods_supported": ["S256"],
        "dpop_signing_alg_values_supported": algs,
        "authorization_response_iss_parameter_supported": True,
        "acr_values_supported": list(ACR.values()),
        "prompt_values_supported": list(PROMPT_VALUES),
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "acr", "amr", "nonce", "txn"],
        "authorization_details_types_supported": sorted(details_validators()),
        "ui_locales_supported": ["zh-TW", "en"],
        **{name: base + path for name, path in current_app.extensions.get("identity.oauth_endpoints", {}).items()},
    }


def token_operation(uow: UnitOfWork, endpoint: str) -> Response:
    """Run Authlib's revocation or introspection endpoint and keep what it changed."""
    response: Response = server().create_endpoint_response(endpoint)
    if response.status_code == 200:
        uow.commit()
    return response
