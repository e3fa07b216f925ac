"""HTTP endpoints of the authorization server (DESIGN §3.3); each is thin over identity.oauth.services."""

from __future__ import annotations

from typing import Any

from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import InvalidRequestError
from flask import Blueprint, abort, jsonify, redirect, render_template, request, session
from flask.typing import ResponseReturnValue
from marshmallow import Schema, fields
from werkzeug.exceptions import RequestEntityTooLarge

from identity.oauth import services
from identity.oauth.interfaces import ConsentDecision
from identity.oauth.services import InvalidToken
from identity.sessions import current_authentication, login_url
from identity.views import login_page
from mydata.db import unit_of_work
from mydata.keys import key_store
from mydata.openapi import ErrorSchema, documented
from mydata.security import csrf_exempt

bp = Blueprint("oauth", __name__)
_INTERACTIONS = "oauth_interactions"  # the browser's open interactions, in its signed session cookie
#: Largest body the OAuth endpoints read (a pushed request is about 2 kB), and the only encoding (RFC 6749 §3.2).
MAX_BODY_BYTES = 64 * 1024
FORM = "application/x-www-form-urlencoded"


@bp.before_request
def bound_the_body() -> ResponseReturnValue | None:
    """Refuse a body too large or not form-encoded before any work, with an OAuth error (RFC 9126 §2.1)."""
    request.max_content_length = MAX_BODY_BYTES
    if request.method != "POST":
        return None
    if request.mimetype not in ("", FORM):
        return services.oauth_error_response(InvalidRequestError(f"Send the parameters as {FORM}."))
    try:
        request.form  # noqa: B018 -- reading it is what enforces the limit
    except RequestEntityTooLarge:
        too_large = InvalidRequestError(
            f"The request body is larger than {MAX_BODY_BYTES // 1024} kB.", status_code=413
        )
        return services.oauth_error_response(too_large)
    return None


#: An example client assertion (RFC 7523): a JWT the client signs with its own `sig` key for each request.
_CLIENT_ASSERTION_EXAMPLE = (
    "eyJhbGciOiJFUzI1NiIsImtpZCI6ImFjbWUtc2lnLTIwMjYiLCJ0eXAiOiJKV1QifQ.eyJpc3MiOiJhY21lLWJhbms"
    "td2ViIiwic3ViIjoiYWNtZS1iYW5rLXdlYiIsImF1ZCI6Imh0dHBzOi8vbXlkYXRhLmV4YW1wbGUuZ292LnR3Iiwia"
    "nRpIjoiMGM1ZDdlOWYxYTNiIiwiaWF0IjoxNzcyMzI4NjAwLCJleHAiOjE3NzIzMjg2NjB9.MsW8FiCmewij_6hmm1"
    "KG_RPCkm0LhuV0R7jhasRgl1tDFtzHw5ZjNexQ50mhE-unBGHswMwlPHUWLqKsuGY2qw"
)


#: What the OAuth endpoints answer most often (RFC 6749 §5.2): a request that does not parse, a client
#: whose assertion is refused, a body over the size limit.
_OAUTH_ERROR_EXAMPLES: dict[int | str, Any] = {
    400: {"error": "invalid_request", "error_description": "The request lacks a required parameter: code_verifier."},
    401: {"error": "invalid_client", "error_description": "The client assertion is invalid or was used before."},
    413: {
        "error": "invalid_request",
        "error_description": f"The request body is larger than {MAX_BODY_BYTES // 1024} kB.",
    },
}


#: The issuer the reference's examples show; the document's `servers` names the real one.
EXAMPLE_ISSUER = "https://mydata.example.gov.tw"


def _discovery_example() -> dict[str, Any]:
    """Return this platform's metadata with its URLs under the example issuer (the document is the same everywhere)."""
    metadata = services.discovery()
    issuer = metadata["issuer"]
    return {
        name: EXAMPLE_ISSUER + value.removeprefix(issuer)
        if isinstance(value, str) and value.startswith(issuer)
        else value
        for name, value in metadata.items()
    }


def _strings(description: str) -> fields.List[str]:
    return fields.List(fields.String(), required=True, metadata={"description": description})


def _url(description: str, *, required: bool = True) -> fields.String:
    return fields.String(required=required, metadata={"format": "uri", "description": description})


class DiscoverySchema(Schema):
    """OpenID Provider / authorization server metadata (RFC 8414 §2, OIDC Discovery §3), the same at both paths."""

    issuer = fields.String(
        required=True,
        metadata={
            "example": EXAMPLE_ISSUER,
            "description": "the issuer identifier, the `aud` of assertions",
        },
    )
    authorization_endpoint = _url("where the browser goes with a request_uri from PAR")
    pushed_authorization_request_endpoint = _url("RFC 9126 pushed authorization requests")
    require_pushed_authorization_requests = fields.Boolean(required=True, metadata={"description": "always true"})
    token_endpoint = _url("RFC 6749 §3.2, with a DPoP proof")
    userinfo_endpoint = _url("OIDC Core §5.3, with a DPoP-bound access token")
    jwks_uri = _url("the platform's public keys")
    revocation_endpoint = _url("RFC 7009")
    introspection_endpoint = _url("RFC 7662")
    registration_endpoint = _url("RFC 7591 dynamic client registration, with an initial access token", required=False)
    mydata_delivery_endpoint = _url("where a client collects the data package of a consent", required=False)
    scopes_supported = _strings("scopes a client may ask for")
    response_types_supported = _strings("code only")
    response_modes_supported = _strings("query only")
    grant_types_supported = _strings("authorization_code only; no refresh tokens")
    subject_types_supported = _strings("pairwise only: one sub per citizen and relying-party organisation")
    id_token_signing_alg_values_supported = _strings("ES256")
    token_endpoint_auth_methods_supported = _strings("private_key_jwt only")
    token_endpoint_auth_signing_alg_values_supported = _strings("algorithms of client assertions")
    revocation_endpoint_auth_methods_supported = _strings("private_key_jwt only")
    revocation_endpoint_auth_signing_alg_values_supported = _strings("algorithms of client assertions")
    introspection_endpoint_auth_methods_supported = _strings("private_key_jwt only")
    introspection_endpoint_auth_signing_alg_values_supported = _strings("algorithms of client assertions")
    code_challenge_methods_supported = _strings("S256 only (RFC 7636)")
    dpop_signing_alg_values_supported = _strings("algorithms of DPoP proofs (RFC 9449 §5.1)")
    authorization_response_iss_parameter_supported = fields.Boolean(
        required=True, metadata={"description": "RFC 9207: the authorization response carries iss"}
    )
    acr_values_supported = _strings("authentication levels, low to high")
    prompt_values_supported = _strings("none, login and consent (OIDC Core §3.1.2.1)")
    claims_supported = _strings("claims of ID tokens and userinfo")
    authorization_details_types_supported = _strings("RFC 9396 types, e.g. mydata_delivery")
    ui_locales_supported = _strings("languages of the login and consent pages")


class JwksSchema(Schema):
    """The platform's public signing keys, active and retired (RFC 7517 §5)."""

    keys = fields.List(
        fields.Dict(),
        required=True,
        metadata={
            "example": [
                {
                    "kty": "EC",
                    "crv": "P-256",
                    "kid": "platform-2026-03",
                    "use": "sig",
                    "alg": "ES256",
                    "x": "VjAwWXkGj2hbLs2DcR9IMb887Qlb9285sE2NqPAUqDI",
                    "y": "TtwxCURivlWPWLa74zEdOUNpvF-VKOt3VTd69rNfGbs",
                }
            ]
        },
    )


class OAuthErrorSchema(ErrorSchema):
    """An OAuth error (RFC 6749 §5.2): invalid_request, invalid_client, invalid_grant, ..."""

    error_uri = fields.String(metadata={"description": "a page about the error"})
    state = fields.String(metadata={"example": "af0ifjsldkj", "description": "the request's state, when it had one"})


class ParRequestSchema(Schema):
    """A pushed authorization request (RFC 9126 §2.1), authenticated with private_key_jwt."""

    response_type = fields.String(required=True, metadata={"enum": ["code"]})
    client_id = fields.String(metadata={"example": "acme-bank-web"})
    redirect_uri = fields.String(required=True, metadata={"example": "https://apply.acme-bank.example/mydata/callback"})
    scope = fields.String(required=True, metadata={"example": "openid"})
    state = fields.String(metadata={"example": "af0ifjsldkj"})
    nonce = fields.String(metadata={"example": "n-0S6_WzA2Mj"})
    code_challenge = fields.String(required=True, metadata={"example": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"})
    code_challenge_method = fields.String(required=True, metadata={"enum": ["S256"]})
    acr_values = fields.String(metadata={"example": "urn:mydata:loa:substantial"})
    prompt = fields.String(
        metadata={"example": "consent", "description": "none, login or consent; login and consent may be combined"}
    )
    max_age = fields.String(
        metadata={"example": "600", "description": "seconds (digits only) since the citizen's last login"}
    )
    authorization_details = fields.String(
        metadata={
            "example": '[{"type": "mydata_delivery", "service": "acme-bank.loans"}]',
            "description": "JSON array (RFC 9396)",
        }
    )
    dpop_jkt = fields.String(metadata={"example": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"})
    client_assertion_type = fields.String(
        required=True, metadata={"example": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}
    )
    client_assertion = fields.String(
        required=True,
        metadata={"example": _CLIENT_ASSERTION_EXAMPLE},
    )


class ParResponseSchema(Schema):
    """Where to send the browser (RFC 9126 §2.2)."""

    request_uri = fields.String(
        required=True, metadata={"example": "urn:ietf:params:oauth:request_uri:Rk2xN8vQ1pT6wZ3yB7cD"}
    )
    expires_in = fields.Integer(required=True, metadata={"example": 60})


class TokenRequestSchema(Schema):
    """A token request with a DPoP proof header (RFC 6749 §4.1.3, RFC 9449 §5)."""

    grant_type = fields.String(required=True, metadata={"enum": ["authorization_code"]})
    code = fields.String(required=True, metadata={"example": "SplxlOBeZQQYbYS6WxSbIA"})
    redirect_uri = fields.String(required=True, metadata={"example": "https://apply.acme-bank.example/mydata/callback"})
    code_verifier = fields.String(required=True, metadata={"example": "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"})
    client_assertion_type = fields.String(
        required=True, metadata={"example": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}
    )
    client_assertion = fields.String(
        required=True,
        metadata={"example": _CLIENT_ASSERTION_EXAMPLE},
    )


class TokenResponseSchema(Schema):
    """A DPoP-bound access token and an ID token; no refresh token."""

    access_token = fields.String(required=True, metadata={"example": "Yw3K9pQ2rT7vX1zB5nD8fH0jL4mP6sU9wA2cE5gI7kM"})
    token_type = fields.String(required=True, metadata={"enum": ["DPoP"]})
    expires_in = fields.Integer(required=True, metadata={"example": 300})
    id_token = fields.String(
        required=True,
        metadata={
            "example": (
                "eyJhbGciOiJFUzI1NiIsImtpZCI6InBsYXRmb3JtLTIwMjYtMDMiLCJ0eXAiOiJKV1QifQ.eyJpc3MiOiJodHRwczo"
                "vL215ZGF0YS5leGFtcGxlLmdvdi50dyIsInN1YiI6InA3SHEyTHhOOXZSNHRZNndaMWFCM2NENWVGOGdKMGtNIiwiY"
                "XVkIjoiYWNtZS1iYW5rLXdlYiIsImlhdCI6MTc3MjMyODYwMCwiZXhwIjoxNzcyMzI4OTAwLCJub25jZSI6Im4tMFM"
                "2X1d6QTJNaiIsImFjciI6InVybjpteWRhdGE6bG9hOnN1YnN0YW50aWFsIiwidHhuIjoiNmYxYzJhOWUtM2I3ZC00Y"
                "zVlLTlhOGYtMmQ0YjZlOGEwYzFmIn0.PrkunKav-rY9e5rHaSj217HKW8CXjlNdqU9zt6tQ7GLPPJISEoVldWMXu2K"
                "P6ijB4uPuoxnSZ7Xw5amE0smwpg"
            )
        },
    )
    scope = fields.String(metadata={"example": "openid"})
    authorization_details = fields.List(
        fields.Dict(),
        metadata={
            "example": [
                {
                    "type": "mydata_delivery",
                    "service": "acme-bank.loans",
                    "datasets": ["household.registration", "tax.income"],
                }
            ]
        },
    )


class IntrospectionSchema(Schema):
    """A token's state (RFC 7662 §2.2): only ``active`` when it is unknown, expired, revoked or another client's."""

    active = fields.Boolean(required=True)
    client_id = fields.String(metadata={"example": "acme-bank-web"})
    token_type = fields.String(metadata={"enum": ["DPoP"]})
    scope = fields.String(metadata={"example": "openid"})
    sub = fields.String(metadata={"example": "p7Hq2LxN9vR4tY6wZ1aB3cD5eF8gJ0kM", "description": "the pairwise subject"})
    iss = fields.String(metadata={"example": EXAMPLE_ISSUER})
    iat = fields.Integer(metadata={"example": 1772328600})
    exp = fields.Integer(metadata={"example": 1772328900})
    acr = fields.String(metadata={"example": "urn:mydata:loa:substantial"})
    auth_time = fields.Integer(metadata={"example": 1772328540})
    cnf = fields.Dict(
        metadata={
            "example": {"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"},
            "description": "RFC 9449 §6.2: jkt, the thumbprint of the DPoP key",
        }
    )
    authorization_details = fields.List(
        fields.Dict(),
        allow_none=True,
        metadata={
            "example": [
                {
                    "type": "mydata_delivery",
                    "service": "acme-bank.loans",
                    "datasets": ["household.registration", "tax.income"],
                }
            ]
        },
    )


class UserInfoSchema(Schema):
    """Claims about the citizen this client may see (OIDC Core §5.3)."""

    sub = fields.String(
        required=True,
        metadata={
            "example": "p7Hq2LxN9vR4tY6wZ1aB3cD5eF8gJ0kM",
            "description": "pairwise per relying-party organisation",
        },
    )
    acr = fields.String(metadata={"example": "urn:mydata:loa:substantial"})
    amr = fields.List(fields.String(), metadata={"example": ["swk", "user"]})
    auth_time = fields.Integer(metadata={"example": 1772328540})
    txn = fields.String(metadata={"example": "6f1c2a9e-3b7d-4c5e-9a8f-2d4b6e8a0c1f"})


class TokenOperationSchema(Schema):
    """A token to revoke or introspect, with the client's assertion."""

    token = fields.String(required=True, metadata={"example": "Yw3K9pQ2rT7vX1zB5nD8fH0jL4mP6sU9wA2cE5gI7kM"})
    token_type_hint = fields.String(metadata={"example": "access_token"})
    client_assertion_type = fields.String(
        required=True, metadata={"example": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}
    )
    client_assertion = fields.String(
        required=True,
        metadata={"example": _CLIENT_ASSERTION_EXAMPLE},
    )


@bp.get("/.well-known/openid-configuration")
@bp.get("/.well-known/oauth-authorization-server")
@documented(
    "Authorization server metadata",
    tags=["oauth"],
    responses={200: DiscoverySchema},
    examples={200: _discovery_example},
)
def discovery() -> ResponseReturnValue:
    """Publish the server metadata at both well-known paths."""
    return jsonify(services.discovery())


@bp.get("/oauth/jwks")
@documented("Platform public keys", tags=["oauth"], responses={200: JwksSchema})
def jwks() -> ResponseReturnValue:
    """Publish the platform's active and retired public keys."""
    response = jsonify(key_store(unit_of_work()).jwks())
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


@bp.post("/oauth/par")
@csrf_exempt
@documented(
    "Push an authorization request",
    tags=["oauth"],
    body=ParRequestSchema,
    body_content_type="application/x-www-form-urlencoded",
    responses={201: ParResponseSchema, 400: OAuthErrorSchema, 401: OAuthErrorSchema, 413: OAuthErrorSchema},
    examples=_OAUTH_ERROR_EXAMPLES,
)
def par() -> ResponseReturnValue:
    """Accept a pushed authorization request (RFC 9126)."""
    try:
        result = services.push_authorization_request(
            unit_of_work(), request.form.to_dict(flat=False), request.headers.get("DPoP")
        )
    except OAuth2Error as error:
        return services.oauth_error_response(error)
    response = jsonify({"request_uri": result.request_uri, "expires_in": result.expires_in})
    response.status_code = 201
    return response


@bp.get("/oauth/authorize")
def authorize() -> ResponseReturnValue:
    """Redeem a pushed request in the browser and continue to login and approval."""
    try:
        interaction_id = services.start_interaction(unit_of_work(), request.args.to_dict(flat=False))
    except OAuth2Error as error:
        # Nothing is trusted yet (no valid pushed request): show the error, never redirect (RFC 6749 §4.1.2.1).
        return render_template("oauth/error.html", error=error.error, description=error.description), 400
    session[_INTERACTIONS] = [*session.get(_INTERACTIONS, [])[-4:], interaction_id]
    return redirect(f"/oauth/interaction/{interaction_id}", code=303)


@bp.route("/oauth/interaction/<interaction_id>", methods=["GET", "POST"])
def interaction(interaction_id: str) -> ResponseReturnValue:
    """Log the citizen in at the level needed, then ask for approval and answer the client."""
    if interaction_id not in session.get(_INTERACTIONS, []):
        abort(404)
    authentication = current_authentication()  # first: it may write, before this request has begun its work
    uow = unit_of_work()
    pending = services.load_interaction(uow, interaction_id)
    silent = services.answer_prompt_none(uow, pending, authentication)
    if silent is not None:
        session[_INTERACTIONS] = [i for i in session.get(_INTERACTIONS, []) if i != interaction_id]
        return silent
    needed = services.login_needed(pending, authentication)
    if needed == services.LOGIN and request.method == "GET":
        # The login page itself, here: one round trip less, and the address stays the interaction's.
        return login_page(request.path, pending.level)
    if needed is not None:
        again = needed == services.REAUTHENTICATE
        return redirect(login_url(request.path, pending.level, reauthenticate=again), code=303)
    assert authentication is not None
    flow = services.consent_flow() if pending.details else None
    transaction_id = pending.interaction.transaction_id
    if request.method == "GET":
        if flow is not None:
            return flow.screen(pending, authentication, transaction_id)
        return render_template("oauth/approve.html", pending=pending, authentication=authentication)
    answer = request.form.get("decision")
    if answer not in ("approve", "deny"):
        abort(400)
    if flow is not None:
        decision = flow.decide(uow, pending, authentication, transaction_id, request.form.to_dict(flat=False))
    else:
        decision = ConsentDecision(approve=answer == "approve")
    session[_INTERACTIONS] = [i for i in session.get(_INTERACTIONS, []) if i != interaction_id]
    return services.decide(uow, pending, authentication, decision)


@bp.post("/oauth/token")
@csrf_exempt
@documented(
    "Exchange an authorization code",
    tags=["oauth"],
    body=TokenRequestSchema,
    body_content_type="application/x-www-form-urlencoded",
    responses={200: TokenResponseSchema, 400: OAuthErrorSchema, 401: OAuthErrorSchema, 413: OAuthErrorSchema},
    examples=_OAUTH_ERROR_EXAMPLES,
    description="Requires a DPoP proof header (RFC 9449) and private_key_jwt client authentication.",
)
def token() -> ResponseReturnValue:
    """Issue a DPoP-bound access token and an ID token for a code."""
    return services.exchange_code(unit_of_work(), request.headers.get("DPoP"))


@bp.route("/oauth/userinfo", methods=["GET", "POST"])
@csrf_exempt
@documented("Claims about the citizen", tags=["oauth"], responses={200: UserInfoSchema, 401: ErrorSchema})
def userinfo() -> ResponseReturnValue:
    """Answer a DPoP-authenticated userinfo request."""
    uow = unit_of_work()
    try:
        access_token = services.authenticate_resource_request(
            uow,
            method=request.method,
            url=services.endpoint_url(request.path),
            authorization=request.headers.get("Authorization"),
            dpop=request.headers.get("DPoP"),
        )
        claims = services.userinfo(access_token)
    except InvalidToken as exc:
        response = jsonify({"error": exc.error, "error_description": exc.description})
        response.status_code = 401
        response.headers["WWW-Authenticate"] = exc.www_authenticate()
        return response
    return jsonify(claims)


@bp.post("/oauth/revoke")
@csrf_exempt
@documented(
    "Revoke a token",
    tags=["oauth"],
    body=TokenOperationSchema,
    body_content_type="application/x-www-form-urlencoded",
    responses={200: "Revoked (or unknown)", 400: OAuthErrorSchema, 401: OAuthErrorSchema},
    examples=_OAUTH_ERROR_EXAMPLES,
)
def revoke() -> ResponseReturnValue:
    """Revoke one of the client's own tokens (RFC 7009)."""
    return services.token_operation(unit_of_work(), "revocation")


@bp.post("/oauth/introspect")
@csrf_exempt
@documented(
    "Introspect a token",
    tags=["oauth"],
    body=TokenOperationSchema,
    body_content_type="application/x-www-form-urlencoded",
    responses={200: IntrospectionSchema, 400: OAuthErrorSchema, 401: OAuthErrorSchema},
    examples=_OAUTH_ERROR_EXAMPLES,
)
def introspect() -> ResponseReturnValue:
    """Describe one of the client's own tokens (RFC 7662)."""
    return services.token_operation(unit_of_work(), "introspection")
