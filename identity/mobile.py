"""Mobile ID login (行動自然人憑證 / TW FidO style): a pending request approved by an enrolled phone.

The login page shows a short binding code; the phone shows the same code and, once the citizen
approves with biometrics, signs ``{request_id, binding_code, nonce}`` with its device key (ES256
compact JWS, ``kid`` = device id). The approval is checked against the keys enrolled for that
citizen; the browser, polling, then completes the login. No approval within 120 s ends the attempt.
"""

from __future__ import annotations

import datetime as dt
import hmac
import json
import secrets
from dataclasses import dataclass
from typing import Any

import jwt
from jwt.algorithms import ECAlgorithm
from sqlalchemy import select, update

from identity import services
from identity.interfaces import (
    MobileRequestExpired,
    MobileRequestNotFound,
    MobileRequestNotPending,
    MobileRequestPending,
    MobileSignatureInvalid,
)
from identity.models import Citizen, MobileDevice, MobileRequest
from mydata.db import UnitOfWork

REQUEST_LIFETIME = dt.timedelta(seconds=120)
# An approval that arrived in time is picked up by the polling page within seconds; this bounds
# how long a forgotten approved request could still open a session.
PICKUP_WINDOW = dt.timedelta(seconds=60)
APPROVAL_TYPE = "mydata-mobile-approval+jws"

PENDING, APPROVED, COMPLETED, EXPIRED = "pending", "approved", "completed", "expired"


@dataclass(frozen=True)
class RequestState:
    """What the waiting login page shows: the binding code, the state and the seconds left."""

    request_id: str
    binding_code: str
    status: str
    seconds_left: int


def start(uow: UnitOfWork, national_id: str, now: dt.datetime) -> MobileRequest:
    """Create a pending request for the phone(s) of *national_id*.

    A national ID without an account or without an enrolled phone gets a request all the same,
    with a binding code, that no phone can approve: it waits and expires like one its owner ignores,
    so the login page never tells whether someone has an account or a phone.
    """
    citizen = services.find_citizen(uow, national_id)
    has_device = (
        citizen is not None
        and uow.session.scalars(select(MobileDevice.id).where(MobileDevice.citizen_id == citizen.id).limit(1)).first()
    )
    request = MobileRequest(
        id=secrets.token_urlsafe(32),
        citizen_id=citizen.id if citizen is not None and has_device else None,
        binding_code=f"{secrets.randbelow(10_000):04d}",
        nonce=secrets.token_urlsafe(32),
        status=PENDING,
        created_at=now,
        expires_at=now + REQUEST_LIFETIME,
    )
    uow.session.add(request)
    uow.commit()
    return request


def state(uow: UnitOfWork, request_id: str, now: dt.datetime) -> RequestState:
    """Return the state of a request as the waiting page sees it (``expired`` once time is up)."""
    request = uow.session.get(MobileRequest, request_id)
    if request is None:
        raise MobileRequestNotFound()
    status = request.status
    if status == PENDING and now >= request.expires_at:
        status = EXPIRED
    seconds_left = max(0, int((request.expires_at - now).total_seconds())) if status == PENDING else 0
    return RequestState(request.id, request.binding_code, status, seconds_left)


def approval_claims(request: MobileRequest) -> dict[str, str]:
    """Return what the phone signs to approve *request*."""
    return {"request_id": request.id, "binding_code": request.binding_code, "nonce": request.nonce}


def sign_approval(private_key: Any, device_id: str, claims: dict[str, str]) -> str:
    """Return the compact JWS a phone sends to approve a request (what the device app does)."""
    return jwt.api_jws.encode(
        json.dumps(claims, separators=(",", ":")).encode(),
        private_key,
        algorithm="ES256",
        headers={"kid": device_id, "typ": APPROVAL_TYPE},
    )


def _verified_claims(uow: UnitOfWork, approval: str) -> tuple[MobileDevice, dict[str, Any]]:
    try:
        header = jwt.get_unverified_header(approval)
    except jwt.DecodeError:
        raise MobileSignatureInvalid("The approval is not a compact JWS.") from None
    device_id = header.get("kid")
    device = uow.session.get(MobileDevice, device_id) if isinstance(device_id, str) else None
    if device is None:
        raise MobileSignatureInvalid("The approval's kid names no enrolled device.")
    if header.get("typ") != APPROVAL_TYPE:
        raise MobileSignatureInvalid(f"The approval's typ must be {APPROVAL_TYPE}.")
    key = ECAlgorithm.from_jwk(device.public_jwk)
    try:
        payload = jwt.api_jws.decode(approval, key=key, algorithms=["ES256"])  # type: ignore[arg-type]
        claims = json.loads(payload)
    except (jwt.InvalidTokenError, ValueError):
        raise MobileSignatureInvalid("The approval is not signed by the enrolled device key.") from None
    if not isinstance(claims, dict):
        raise MobileSignatureInvalid("The approval's payload must be a JSON object.")
    return device, claims


def approve(uow: UnitOfWork, approval: str, now: dt.datetime) -> MobileRequest:
    """Accept a phone's signed approval; raise if the key, the values or the time are wrong."""
    device, claims = _verified_claims(uow, approval)
    request = uow.session.get(MobileRequest, str(claims.get("request_id", "")))
    # A device can only approve its own citizen's requests: another person's phone, even with a
    # valid signature, is refused the same way as an unknown request.
    if request is None or request.citizen_id != device.citizen_id:
        raise MobileRequestNotFound()
    expected = approval_claims(request)
    if not all(hmac.compare_digest(str(claims.get(k, "")), v) for k, v in expected.items()):
        raise MobileSignatureInvalid("The approval does not sign this request's binding code and nonce.")
    if request.status == PENDING and now >= request.expires_at:
        _expire(uow, request.id)
        raise MobileRequestExpired()
    # Conditional update: of two approvals racing, one wins; an expired or used request stays so.
    result = uow.session.execute(
        update(MobileRequest)
        .where(MobileRequest.id == request.id, MobileRequest.status == PENDING, MobileRequest.expires_at > now)
        .values(status=APPROVED, approved_at=now, device_id=device.id)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        uow.rollback()
        raise MobileRequestNotPending()
    uow.commit()
    uow.session.refresh(request)
    return request


def complete(uow: UnitOfWork, request_id: str, now: dt.datetime) -> str:
    """Use up an approved request and return its citizen id; raise while pending or once expired."""
    request = uow.session.get(MobileRequest, request_id)
    if request is None:
        raise MobileRequestNotFound()
    if request.status == PENDING:
        if now >= request.expires_at:
            _expire(uow, request.id)
            raise MobileRequestExpired()
        raise MobileRequestPending()
    if request.status == EXPIRED:
        raise MobileRequestExpired()
    if request.status != APPROVED:
        raise MobileRequestNotPending()
    assert request.approved_at is not None
    if now > request.approved_at + PICKUP_WINDOW:
        raise MobileRequestExpired()
    result = uow.session.execute(
        update(MobileRequest)
        .where(MobileRequest.id == request.id, MobileRequest.status == APPROVED)
        .values(status=COMPLETED, completed_at=now)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        uow.rollback()
        raise MobileRequestNotPending()
    uow.commit()
    assert request.citizen_id is not None  # only a citizen's enrolled phone can have approved it
    return request.citizen_id


def _expire(uow: UnitOfWork, request_id: str) -> None:
    uow.session.execute(
        update(MobileRequest)
        .where(MobileRequest.id == request_id, MobileRequest.status == PENDING)
        .values(status=EXPIRED)
    )
    uow.commit()


def pending_requests(uow: UnitOfWork, now: dt.datetime) -> list[tuple[MobileRequest, Citizen]]:
    """Return the requests still waiting for a phone, newest first (the sandbox app's inbox)."""
    rows = uow.session.execute(
        select(MobileRequest, Citizen)
        .join(Citizen, Citizen.id == MobileRequest.citizen_id)
        .where(MobileRequest.status == PENDING, MobileRequest.expires_at > now)
        .order_by(MobileRequest.created_at.desc())
    )
    return [(request, citizen) for request, citizen in rows]


def latest_pending(uow: UnitOfWork, citizen_id: str, now: dt.datetime) -> MobileRequest:
    """Return a citizen's newest request still waiting for their phone."""
    request = uow.session.scalars(
        select(MobileRequest)
        .where(MobileRequest.citizen_id == citizen_id, MobileRequest.status == PENDING, MobileRequest.expires_at > now)
        .order_by(MobileRequest.created_at.desc())
        .limit(1)
    ).first()
    if request is None:
        raise MobileRequestNotFound()
    return request
