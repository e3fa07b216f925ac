"""JSON API for enrolled phones: a mobile ID approval, signed with the device key.

Not cookie-authenticated (the device's signature is the authentication), so exempt from CSRF.
"""

from __future__ import annotations

from flask import Blueprint, jsonify, request
from flask.typing import ResponseReturnValue
from marshmallow import Schema, ValidationError, fields

from identity import mobile
from identity.interfaces import MobileRequestExpired, MobileRequestNotPending
from mydata.clock import clock
from mydata.db import unit_of_work
from mydata.errors import BadRequest
from mydata.limits import limiter
from mydata.openapi import ErrorSchema, documented

bp = Blueprint("identity_api", __name__, url_prefix="/api/v1/mobile-id")


class MobileApprovalSchema(Schema):
    """A phone's approval of a mobile ID request."""

    approval = fields.String(
        required=True,
        metadata={
            "example": (
                "eyJhbGciOiJFUzI1NiIsImtpZCI6ImRldmljZS03ZjNhIiwidHlwIjoibXlkYXRhLW1vYmlsZS1hcHByb3ZhbCtqd3"
                "MifQ.eyJyZXF1ZXN0X2lkIjogImMyZjBhN2U0YjlkMSIsICJiaW5kaW5nX2NvZGUiOiAiNDgyMSIsICJub25jZSI6I"
                "CJrM0pkOXNReCJ9.O9JXupBIzNF5df5JTf78KmxGPtHeDckbVF9uqnBD853_cckfr4PIIw4f1ogxTIe7ajn15aasUV"
                "FXlXreRFzezg"
            ),
            "description": "Compact JWS (ES256; header kid = device id, typ = mydata-mobile-approval+jws) over "
            '{"request_id", "binding_code", "nonce"} of the pushed request',
        },
    )


class MobileApprovedSchema(Schema):
    """The request is approved; the waiting browser completes the login."""

    status = fields.String(required=True, metadata={"example": "approved", "description": "approved"})
    request_id = fields.String(required=True, metadata={"example": "c2f0a7e4b9d1"})


@bp.post("/approvals")
@limiter.limit("60 per minute")
@documented(
    "Approve a mobile ID login request",
    tags=["identity"],
    body=MobileApprovalSchema,
    responses={
        200: MobileApprovedSchema,
        400: ErrorSchema,
        403: ErrorSchema,
        404: ErrorSchema,
        409: ErrorSchema,
        410: ErrorSchema,
        429: ErrorSchema,
    },
    examples={409: MobileRequestNotPending, 410: MobileRequestExpired},
    description="Sent by the citizen's enrolled phone after biometric approval. Refused (403 invalid_signature) "
    "unless signed by a key enrolled for the request's citizen over the request's own binding code and nonce; "
    "410 request_expired after 120 s.",
)
def approve() -> ResponseReturnValue:
    """Accept a phone's signed approval."""
    try:
        body = MobileApprovalSchema().load(request.get_json(silent=True) or {})
    except ValidationError as exc:
        raise BadRequest(f"Invalid approval: {exc.messages}") from None
    with unit_of_work() as uow:
        approved = mobile.approve(uow, body["approval"], clock().now())
    return jsonify({"status": "approved", "request_id": approved.id})
