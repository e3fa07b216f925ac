"""``GET /api/v1/organisation/transactions``: the organisation's transaction log for its own systems (issue 13).

The caller is one of the organisation's OAuth clients, authenticated as at the token endpoint: a
private_key_jwt client assertion (RFC 7523), sent as ``Authorization: Bearer <assertion>``. Not as
``client_assertion`` form fields: a GET has no body, and in the query string a credential ends up in
access logs, proxies and browser history (RFC 6750 §2.3, §5.3). Each assertion is good for one call.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, Response, current_app, jsonify, request
from flask.typing import ResponseReturnValue
from marshmallow import Schema, ValidationError, fields, validate

from mydata.db import unit_of_work
from mydata.errors import handle_domain_error
from mydata.limits import limiter
from mydata.openapi import ErrorSchema, add_security_scheme, documented
from relying_parties import transactions
from relying_parties.interfaces import InvalidClientAssertion, InvalidInput, MissingClientAssertion

PATH = "/api/v1/organisation/transactions"
SECURITY_SCHEME = "clientAssertion"
RATE = "60 per minute"
_REALM = "mydata-organisation-transactions"

bp = Blueprint("relying_parties_transactions", __name__)


class TransactionQuerySchema(Schema):
    """Which transactions, and which page (dates are days in Taiwan time, both included)."""

    since = fields.Date(metadata={"description": "first day (Taiwan time)", "example": "2026-11-01"})
    until = fields.Date(metadata={"description": "last day (Taiwan time)", "example": "2026-11-30"})
    service = fields.String(validate=validate.Length(min=1, max=128), metadata={"example": "sandbox-bank.credit-card"})
    status = fields.String(validate=validate.OneOf(transactions.STATUSES))
    kind = fields.String(validate=validate.OneOf(transactions.KINDS))
    page_size = fields.Integer(
        load_default=transactions.PAGE_SIZE,
        validate=validate.Range(min=1, max=transactions.MAX_PAGE_SIZE),
        metadata={"description": f"at most {transactions.MAX_PAGE_SIZE}"},
    )
    cursor = fields.String(
        validate=validate.Length(max=512), metadata={"description": "`next_cursor` of the previous page"}
    )


class TransactionSchema(Schema):
    """One case of the organisation: a consent of one of its services, or a counter use by one of its clerks."""

    time = fields.AwareDateTime(
        required=True,
        metadata={"description": "when the consent was requested, or the clerk took the counter code",
                  "example": "2026-11-30T02:00:00+00:00"},
    )  # fmt: skip
    kind = fields.String(required=True, metadata={"enum": list(transactions.KINDS)})
    case_id = fields.String(required=True, metadata={"example": "0f8e2b5c-3c1d-4f7a-9b1e-2d6c8a4e7f10"})
    service_id = fields.String(
        allow_none=True, metadata={"description": "null for a counter use", "example": "sandbox-bank.credit-card"}
    )
    subject = fields.String(
        allow_none=True,
        metadata={
            "description": "the pairwise `sub` your client got in the ID token; null before the citizen "
            "answered, and for a counter use",
            "example": "Jb0y3e4c3zQm2cQ5m2xVq3n5i7bB1Qm0u2l8Kc9fWnE",
        },
    )
    status = fields.String(required=True, metadata={"enum": list(transactions.STATUSES)})
    datasets = fields.List(fields.String(), required=True, metadata={"example": ["household.registration"]})
    outcomes = fields.Dict(
        keys=fields.String(),
        values=fields.String(),
        required=True,
        metadata={"description": "each dataset's delivery outcome", "example": {"household.registration": "ok"}},
    )
    decided_at = fields.AwareDateTime(allow_none=True)
    delivered_at = fields.AwareDateTime(allow_none=True)


class TransactionPageSchema(Schema):
    """One page of the organisation's transactions, newest first."""

    transactions = fields.List(fields.Nested(TransactionSchema), required=True)
    next_cursor = fields.String(
        allow_none=True, required=True, metadata={"description": "pass as `cursor` for the next page; null on the last"}
    )


def _rate() -> str:
    return str(current_app.config["TRANSACTIONS_RATE_LIMIT"])


@bp.get(PATH)
@limiter.limit(_rate)
@documented(
    "List your organisation's transactions",
    tags=["relying-party transactions"],
    query=TransactionQuerySchema,
    responses={200: TransactionPageSchema, 400: ErrorSchema, 401: ErrorSchema, 429: ErrorSchema},
    description="Your organisation's consents and counter uses, newest first, by case id and pairwise subject "
    "(never a citizen's name or ID number). Authenticate with a private_key_jwt client assertion of any of your "
    "organisation's clients, as at the token endpoint but in `Authorization: Bearer <assertion>` (a GET has no "
    "body, and a credential does not belong in a URL): `aud` = the issuer identifier as a single string, a fresh "
    "`jti` each call. Errors: 401 `invalid_client` (no assertion, or a refused one), 400 `invalid_request` "
    "naming the `fields` to fix, 429 with Retry-After.",
    security=[{SECURITY_SCHEME: []}],
)
def list_transactions() -> ResponseReturnValue:
    """Answer one page of the authenticated client's organisation's transactions."""
    try:
        query: dict[str, Any] = TransactionQuerySchema().load(request.args.to_dict())
    except ValidationError as error:
        raise InvalidInput(fields=error.messages) from None
    scheme, _, assertion = request.headers.get("Authorization", "").partition(" ")
    organisation_id = transactions.authenticate_client(assertion.strip() if scheme.lower() == "bearer" else None, PATH)
    wanted = transactions.TransactionFilter(
        since=query.get("since"),
        until=query.get("until"),
        service_id=query.get("service"),
        status=query.get("status"),
        kind=query.get("kind"),
    )
    page = transactions.organisation_transactions(
        unit_of_work(), organisation_id, wanted, cursor=query.get("cursor"), page_size=query["page_size"]
    )
    return jsonify(TransactionPageSchema().dump(page))


@bp.errorhandler(InvalidClientAssertion)
def _unauthorized(error: InvalidClientAssertion) -> Response:
    response = handle_domain_error(error)
    # RFC 6750 §3: a challenge always, with an error code only when a credential was presented and
    # refused (§3.1); the body says invalid_client (RFC 6749 §5.2: client authentication failed).
    refused = "" if isinstance(error, MissingClientAssertion) else ', error="invalid_token"'
    response.headers["WWW-Authenticate"] = f'Bearer realm="{_REALM}"{refused}'
    return response


def init_app(app: Flask) -> None:
    """Register the API, its rate limit (``TRANSACTIONS_RATE_LIMIT``) and its security scheme."""
    app.config.setdefault("TRANSACTIONS_RATE_LIMIT", RATE)
    app.register_blueprint(bp)
    add_security_scheme(
        app,
        SECURITY_SCHEME,
        {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "A private_key_jwt client assertion (RFC 7523 §2.2) of one of the organisation's clients, "
            "signed ES256 or PS256: iss = sub = client_id, aud = the issuer identifier (a single string), "
            "a fresh jti, exp at most 5 minutes ahead. Each assertion is accepted once.",
        },
    )
