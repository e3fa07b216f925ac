"""Sandbox-only routes: the mobile app simulator (page and JSON) and the card reader's JSON face.

Mounted only when sandbox mode is on; without it these addresses answer 404.
"""

from __future__ import annotations

import base64
from typing import Any

from flask import Blueprint, Response, abort, current_app, jsonify, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from marshmallow import Schema, ValidationError, fields

from identity import mobile
from identity import national_id as nid
from identity.interfaces import IdentityError
from identity.sandbox.card_reader import VirtualCardReader
from identity.sandbox.phones import SandboxPhones
from identity.sandbox.pki import SandboxPki
from mydata.clock import clock
from mydata.db import unit_of_work
from mydata.errors import MydataError
from mydata.openapi import ErrorSchema, documented

bp = Blueprint("identity_sandbox", __name__, url_prefix="/sandbox")


class PhoneApproveSchema(Schema):
    """Whose phone approves: the persona's national ID."""

    national_id = fields.String(required=True, metadata={"example": "A123456789"})


class PhoneApprovedSchema(Schema):
    """The persona's newest pending request is approved."""

    status = fields.String(required=True, metadata={"example": "approved", "description": "approved"})
    request_id = fields.String(required=True, metadata={"example": "c2f0a7e4b9d1"})
    binding_code = fields.String(required=True, metadata={"example": "4821"})


class CardSignRequestSchema(Schema):
    """What the card-reader component is asked: whose card, its PIN, and the nonce to sign."""

    national_id = fields.String(required=True, metadata={"example": "A123456789"})
    pin = fields.String(required=True, metadata={"example": "123456"})
    nonce = fields.String(required=True, metadata={"example": "k3Jd9sQxV2mB7nL4"})


class CardSignatureSchema(Schema):
    """What the component gives the browser to post to /login/eid."""

    certificate = fields.String(
        required=True,
        metadata={
            "example": "-----BEGIN CERTIFICATE-----\\nMIIB...\\n-----END CERTIFICATE-----\\n",
            "description": "PEM chain, card certificate first",
        },
    )
    signature = fields.String(
        required=True,
        metadata={
            "example": (
                "MEUCIQDx3n2Y8p5J1cK0wQ7rT9sV4mB6zL2aN8fH3gD1eR5uXwIgZ9vK3tP7qL1sW6yB4nM8cF2dH5jA0gE3rT7uV9xY1zQ="
            ),
            "description": "base64 ECDSA P-256 SHA-256 signature",
        },
    )


def _phones() -> SandboxPhones:
    return current_app.extensions["identity.sandbox_phones"]  # type: ignore[no-any-return]


def _json_error(error: MydataError) -> Response:
    # These JSON routes are outside the kernel's API prefixes, so answer JSON here whatever Accept says.
    response = jsonify(error.to_dict())
    response.status_code = error.status
    return response


def _load(schema: Schema) -> dict[str, Any]:
    if not request.is_json:
        raise _BadBody("Send a JSON body (Content-Type: application/json).")
    try:
        return schema.load(request.get_json(silent=True) or {})  # type: ignore[no-any-return]
    except ValidationError as exc:
        raise _BadBody(f"Invalid body: {exc.messages}") from None


class _BadBody(IdentityError):
    code = "invalid_request"
    status = 400


@bp.get("/mobile-id")
def phone() -> ResponseReturnValue:
    """Show the simulator: every pending request with its binding code and an Approve button."""
    with unit_of_work() as uow:
        pending = mobile.pending_requests(uow, clock().now())
    return render_template(
        "login/sandbox_mobile.html",
        pending=[(request_, citizen, nid.mask(citizen.national_id)) for request_, citizen in pending],
        approved=request.args.get("approved"),
        failed=request.args.get("failed") == "1",
    )


@bp.post("/mobile-id")
def phone_approve() -> ResponseReturnValue:
    """Approve from the simulator page (a form with its CSRF token)."""
    try:
        with unit_of_work() as uow:
            approved = _phones().approve(uow, nid.normalize(request.form.get("national_id", "")), clock().now())
    except IdentityError:
        return redirect(url_for(".phone", failed=1), 303)
    return redirect(url_for(".phone", approved=approved.binding_code), 303)


@bp.post("/mobile-id/approve")
@documented(
    "Sandbox: approve a persona's pending mobile ID request",
    tags=["sandbox"],
    body=PhoneApproveSchema,
    responses={200: PhoneApprovedSchema, 400: ErrorSchema, 404: ErrorSchema},
    description="Signs the persona's newest pending request with their sandbox phone's device key and sends the "
    "approval through the same verification as a real phone's. JSON only (no cookie, no CSRF token).",
)
def phone_approve_json() -> ResponseReturnValue:
    """Approve a persona's newest pending request (JSON, for tests and scripts)."""
    try:
        body = _load(PhoneApproveSchema())
        with unit_of_work() as uow:
            approved = _phones().approve(uow, nid.normalize(body["national_id"]), clock().now())
    except MydataError as error:
        return _json_error(error)
    return jsonify({"status": "approved", "request_id": approved.id, "binding_code": approved.binding_code})


@bp.post("/card-reader/sign")
@documented(
    "Sandbox: sign an eID nonce with a persona's virtual card",
    tags=["sandbox"],
    body=CardSignRequestSchema,
    responses={200: CardSignatureSchema, 400: ErrorSchema, 401: ErrorSchema},
    description="What the card-reader component on a citizen's computer does: unlock the card with its PIN and sign "
    "the login page's nonce. Post the result as certificate, signature and nonce to /login/eid.",
)
def card_reader_sign() -> ResponseReturnValue:
    """Sign a nonce with a sandbox card, as the local card-reader component would (JSON)."""
    reader = current_app.extensions["identity.card_reader"]
    assert isinstance(reader, VirtualCardReader)
    try:
        body = _load(CardSignRequestSchema())
        signed = reader.sign(nid.normalize(body["national_id"]), body["pin"], body["nonce"])
    except MydataError as error:
        return _json_error(error)
    return jsonify({"certificate": signed.certificate_pem, "signature": base64.b64encode(signed.signature).decode()})


@bp.get("/eid/ca.crl")
def eid_crl() -> ResponseReturnValue:
    """Publish the sandbox issuing CA's CRL (DER, RFC 5280), as MOICA publishes its own."""
    pki: SandboxPki = current_app.extensions["identity.sandbox_pki"]
    try:
        body = pki.crl_path.read_bytes()
    except OSError:
        abort(404)
    response = Response(body, mimetype="application/pkix-crl")
    response.headers["Cache-Control"] = "no-cache"
    return response


@bp.post("/eid/ocsp")
def eid_ocsp() -> ResponseReturnValue:
    """Answer OCSP requests about the sandbox cards (RFC 6960 over HTTP POST, appendix A.1)."""
    pki: SandboxPki = current_app.extensions["identity.sandbox_pki"]
    answer = pki.answer_ocsp(request.get_data(cache=False)[:65536], clock().now())
    return Response(answer, mimetype="application/ocsp-response", headers={"Cache-Control": "no-store"})
