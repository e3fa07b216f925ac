"""The delivery API (DESIGN §6.2): a relying party collects a consent's package, once."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request
from flask.typing import ResponseReturnValue
from marshmallow import fields
from sqlalchemy import bindparam, select

from consent import broker
from consent.interfaces import AlreadyDelivered, ConsentRevoked, ProviderUnavailable
from identity.models import Citizen
from identity.oauth import services as oauth
from identity.oauth.server import issuer, query_client
from mydata.clock import clock
from mydata.db import unit_of_work
from mydata.openapi import Content, ErrorSchema, documented
from mydata.security import csrf_exempt

bp = Blueprint("delivery", __name__)
PATH = "/api/v1/delivery"
_NATIONAL_ID = select(Citizen.national_id).where(Citizen.id == bindparam("id"))
#: A compact JWE (RFC 7516 §7.1): five base64url parts, the encrypted key empty for direct key agreement.
JWE_PATTERN = r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$"
#: A package sealed (ECDH-ES+A256KW, A256GCM) to the example client's `enc` key of /openapi.json.
JWE_EXAMPLE = (
    "eyJhbGciOiJFQ0RILUVTK0EyNTZLVyIsImVuYyI6IkEyNTZHQ00iLCJjdHkiOiJKV1QiLCJraWQiOiJiYW5rLWVuYy0yMDI2Iiwi"
    "ZXBrIjp7ImNydiI6IlAtMjU2IiwieCI6ImEyR3JBN2dkLWkxZy03RFhXUlAzYzR0SXotSERxcDc2amhrZkdkbDJBeXMiLCJ5Ijoi"
    "bzNUaEJRT09Lc2xSRmZPUER3dlpaNHJQS29CMkFnQ1BIQnZ1dFA2OE5qZyIsImt0eSI6IkVDIn19.vYGdBxlVh3-QVS2YsGAWcrY"
    "lY0Pv6en0cTBPUC4suEaaAJ7cGvYoqA.GAjDa7LvaqL333b9.eEg3wzZedpeb6YOqCXxw14ISN-OMAdQXAsEB11rRd-bi58lmVDV"
    "I1Q2wMNacWrMLZN8Aa7puXTyiQ-PjI3s_hU804rlLnxj1CoQMQQPGhggO2-7yhnk5sKblklFzJNyfAf-OZOTd4-Za1tNnh6EG2cG"
    "kccihIz685slkvUoj3hwsYrZFE6fchYwmDTsujKBwo5qbhS9hEfJfWJsh-HBRhiDwDl-wD9iC_VyviQwB1jxP9EbCIALNL4aMpth"
    "T6r-kyEfNrs8IrOs536rOww6W3PS5fI_1khrDTkL2icizx8ca8okge3ntUR0.THa_J9bi8SMF8NSa-HdeMg"
)


class ProviderUnavailableSchema(ErrorSchema):
    """provider_unavailable: nothing was delivered; retry within the consent's window (Retry-After)."""

    datasets = fields.Dict(
        keys=fields.String(),
        values=fields.String(),
        required=True,
        metadata={"description": "each dataset id with the outcome of its fetch"},
    )


@bp.get(PATH)
@csrf_exempt
@documented(
    "Collect the data package of a consent",
    tags=["delivery"],
    responses={
        200: Content(
            "application/jose",
            "The package: a compact JWE whose plaintext is the platform's JWS",
            {"type": "string", "pattern": JWE_PATTERN, "description": "compact JWE (RFC 7516 §7.1)"},
            JWE_EXAMPLE,
        ),
        401: ErrorSchema,
        403: ErrorSchema,
        410: ErrorSchema,
        503: ProviderUnavailableSchema,
    },
    examples={
        401: {"error": "invalid_token", "error_description": "The access token is invalid or has expired."},
        403: ConsentRevoked,
        410: AlreadyDelivered,
        503: lambda: ProviderUnavailable(
            datasets={"household.registration": "ok", "tax.income": "timeout"}, retry_after=30
        ),
    },
    description=(
        "Requires `Authorization: DPoP <access token>` and a DPoP proof (RFC 9449). Answers once per "
        "consent; then 410 already_delivered. Once the citizen has revoked the consent, 403 "
        "consent_revoked; once its delivery window has ended, 401 invalid_token (the token ends with its "
        "consent). 503 provider_unavailable (with "
        "Retry-After and the per-dataset outcomes) leaves the consent granted for a retry within its window."
    ),
)
def deliver() -> ResponseReturnValue:
    """Deliver the package of the consent the access token was issued for."""
    uow = unit_of_work(read_only=False)  # a GET that writes: the claim, the ledger, the replay records
    try:
        token = oauth.authenticate_resource_request(
            uow,
            method="GET",
            url=oauth.endpoint_url(PATH),
            authorization=request.headers.get("Authorization"),
            dpop=request.headers.get("DPoP"),
        )
        client = query_client(token.client_id)
        if client is None:
            raise oauth.InvalidToken("invalid_token", "The client of this token is suspended.")
    except oauth.ConsentEnded as exc:
        if exc.revoked:
            raise ConsentRevoked() from None  # the reason the RP's customer must hear (DESIGN §6.2)
        return _refused(exc)
    except oauth.InvalidToken as exc:
        return _refused(exc)
    # A lone read, before the claim opens the delivery's transaction.
    citizen = uow.read(_NATIONAL_ID, {"id": token.citizen_id}).first()
    assert citizen is not None  # foreign key
    national_id: str = citizen.national_id
    recipient = broker.Recipient(
        client_id=client.client_id, subject=token.subject, encryption_jwk=broker.encryption_key(client.record.jwks)
    )
    sealed = broker.deliver(
        uow,
        consent_id=token.transaction_id,
        national_id=national_id,
        recipient=recipient,
        issuer=issuer(),
        now=clock().now(),
    )
    return Response(sealed, status=200, mimetype="application/jose")  # no-store: mydata.security


def _refused(exc: oauth.InvalidToken) -> Response:
    """Answer 401 with the DPoP challenge (RFC 9449 §7.1)."""
    response = jsonify({"error": exc.error, "error_description": exc.description})
    response.status_code = 401
    response.headers["WWW-Authenticate"] = exc.www_authenticate()
    return response
