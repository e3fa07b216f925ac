"""The consent lifecycle (同意): every transition in one transaction with its ledger entry (DESIGN §6.1).

requested (PAR accepted) -> granted | denied | expired (never answered, :mod:`consent.sweeper`);
granted -> delivered | expired | revoked. The functions take plain values (what relying_parties
knows of the service, what identity knows of the citizen) and a unit of work; the caller commits,
so a transition and its ledger entry commit or roll back together.
"""

from __future__ import annotations

import datetime as dt
import secrets
import uuid
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Update, bindparam, case, insert, update
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

from consent.interfaces import (
    AlreadyDelivered,
    ConsentExpired,
    ConsentNotFound,
    ConsentNotGranted,
    ConsentNotPending,
    ConsentNotRevocable,
    ConsentRevoked,
)
from consent.ledger import LedgerEvent, ledger
from consent.models import Consent
from consent.notifications import notify_citizen
from consent.receipts import ReceiptFields, issue_receipt
from mydata.db import UnitOfWork, UTCDateTime

REQUESTED, GRANTED, DENIED = "requested", "granted", "denied"
DELIVERED, EXPIRED, REVOKED = "delivered", "expired", "revoked"
DELIVERY_WINDOW = dt.timedelta(minutes=10)  # DESIGN §6.1: default 10 min after grant
PLATFORM = "platform"
#: Dataset outcomes that were delivered: data, or the agency's answer that it holds no record.
DELIVERED_OUTCOMES = frozenset({"ok", "no_record"})


@dataclass(frozen=True)
class ServiceTerms:
    """What the citizen is asked for, as the relying party registered it and the screen shows it."""

    organisation_id: str
    organisation_name: str
    service_id: str
    purpose: str
    retention: str
    level: str
    datasets_required: tuple[str, ...]
    datasets_optional: tuple[str, ...] = ()


_RECORD = insert(Consent)
#: The columns a new request leaves empty: set on the entity, so that reading one needs no statement.
_UNSET = (
    "datasets_granted",
    "citizen_id",
    "amr",
    "delivery_outcomes",
    "document_hashes",
    "receipt",
    "receipt_id",
    "decided_at",
    "window_ends_at",
    "delivered_at",
    "revoked_at",
    "expired_at",
)


def record_request(uow: UnitOfWork, *, client_id: str, terms: ServiceTerms, now: dt.datetime) -> Consent:
    """Record a pushed request as a consent in state `requested`, with its ledger entry."""
    values: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "status": REQUESTED,
        "client_id": client_id,
        "organisation_id": terms.organisation_id,
        "organisation_name": terms.organisation_name,
        "service_id": terms.service_id,
        "purpose": terms.purpose,
        "retention": terms.retention,
        "level": terms.level,
        "datasets_required": list(terms.datasets_required),
        "datasets_optional": list(terms.datasets_optional),
        "delivery_attempts": 0,
        "requested_at": now,
    }
    # Inserted by a statement built once (PAR records one per transaction), not by the ORM's flush;
    # the entity joins the session as the row it inserted, with no second statement.
    uow.run(_RECORD, values)
    consent = Consent(**values, **dict.fromkeys(_UNSET))
    make_transient_to_detached(consent)
    uow.session.add(consent)
    ledger(uow).record(
        LedgerEvent(
            event="consent.requested",
            actor=client_id,
            service=terms.service_id,
            datasets=(*terms.datasets_required, *terms.datasets_optional),
            consent_id=consent.id,
        )
    )
    return consent


def get(uow: UnitOfWork, consent_id: str) -> Consent:
    """Return a consent or raise :class:`ConsentNotFound`."""
    consent = uow.session.get(Consent, consent_id)
    if consent is None:
        raise ConsentNotFound()
    return consent


def grant(
    uow: UnitOfWork,
    consent_id: str,
    *,
    citizen_id: str,
    national_id: str,
    optional_chosen: tuple[str, ...],
    amr: tuple[str, ...],
    now: dt.datetime,
) -> Consent:
    """Record the citizen's approval, its ledger entry and its signed receipt; open the delivery window."""
    consent = _pending(uow, consent_id)
    chosen = [d for d in consent.datasets_optional if d in optional_chosen]
    granted = [*consent.datasets_required, *chosen]
    recorded = ledger(uow).record(
        LedgerEvent(
            event="consent.granted",
            actor="citizen",
            subject_national_id=national_id,
            service=consent.service_id,
            datasets=tuple(granted),
            consent_id=consent.id,
        )
    )
    receipt_id = secrets.token_hex(16)
    receipt = issue_receipt(
        uow,
        ReceiptFields(
            receipt_id=receipt_id,
            consent_id=consent.id,
            consent_time=now,
            controller_id=consent.organisation_id,
            controller_name=consent.organisation_name,
            service=consent.service_id,
            purpose=consent.purpose,
            datasets=tuple(granted),
            retention=consent.retention,
            ledger_entry=recorded,
        ),
    )
    _write(
        uow,
        _GRANT,
        consent,
        status=GRANTED,
        citizen_id=citizen_id,
        amr=list(amr),
        datasets_granted=granted,
        decided_at=now,
        window_ends_at=now + DELIVERY_WINDOW,
        receipt_id=receipt_id,
        receipt=receipt,
    )
    return consent


def deny(uow: UnitOfWork, consent_id: str, *, citizen_id: str, national_id: str, now: dt.datetime) -> Consent:
    """Record the citizen's refusal and its ledger entry."""
    consent = _pending(uow, consent_id)
    consent.status = DENIED
    consent.citizen_id = citizen_id
    consent.decided_at = now
    ledger(uow).record(
        LedgerEvent(
            event="consent.denied",
            actor="citizen",
            subject_national_id=national_id,
            service=consent.service_id,
            datasets=(*consent.datasets_required, *consent.datasets_optional),
            consent_id=consent.id,
        )
    )
    return consent


def revoke(uow: UnitOfWork, consent_id: str, *, citizen_id: str, national_id: str, now: dt.datetime) -> Consent:
    """Withdraw a granted, undelivered consent of this citizen within its window, with its ledger entry."""
    consent = _lock(uow, consent_id)
    if consent.citizen_id != citizen_id:
        raise ConsentNotFound()
    if consent.status != GRANTED or _window_passed(consent, now):
        raise ConsentNotRevocable()
    consent.status = REVOKED
    consent.revoked_at = now
    ledger(uow).record(
        LedgerEvent(
            event="consent.revoked",
            actor="citizen",
            subject_national_id=national_id,
            service=consent.service_id,
            datasets=tuple(consent.datasets_granted or ()),
            consent_id=consent.id,
        )
    )
    return consent


_CLAIM = (
    update(Consent)
    .where(Consent.id == bindparam("consent_id"))
    .values(delivery_attempts=Consent.delivery_attempts + case((Consent.status == GRANTED, 1), else_=0))
    .returning(*Consent.__table__.columns)
)


def claim_for_delivery(uow: UnitOfWork, consent_id: str, *, national_id: str, now: dt.datetime) -> Consent:
    """Lock a consent for its one delivery, or raise why it cannot be delivered (DESIGN §6.2).

    The lock is held until the caller's transaction ends, so of concurrent deliveries of one consent
    exactly one finds it `granted`; the others wait and then find it `delivered`.
    """
    # One statement takes the row lock, counts the attempt of a granted consent and reads the row.
    consent = _locked(uow, _CLAIM, consent_id)
    if consent.status == DELIVERED:
        raise AlreadyDelivered()
    if consent.status == REVOKED:
        raise ConsentRevoked()
    if consent.status == EXPIRED:
        raise ConsentExpired()
    if consent.status != GRANTED:
        raise ConsentNotGranted()
    if _window_passed(consent, now):
        expire(uow, consent, now=now, national_id=national_id)
        uow.commit()  # the expiry stands although this delivery is refused
        raise ConsentExpired()
    return consent


def expire(uow: UnitOfWork, consent: Consent, *, now: dt.datetime, national_id: str | None = None) -> None:
    """Expire a locked consent that can no longer complete, with its one `consent.expired` ledger entry.

    A `granted` consent whose delivery window has passed: its entry commits to the citizen like
    the case's other entries, from *national_id*, or else with the commitment the case already
    has. A `requested` consent nobody answered: no citizen was ever attached to it, so, like its
    `consent.requested` entry, its expiry commits to no subject.
    """
    granted = consent.status == GRANTED
    asked = (*consent.datasets_required, *consent.datasets_optional)
    consent.status = EXPIRED
    consent.expired_at = now
    ledger(uow).record(
        LedgerEvent(
            event="consent.expired",
            actor=PLATFORM,
            subject_national_id=national_id,
            subject_from_case=national_id is None and consent.citizen_id is not None,
            service=consent.service_id,
            datasets=tuple(consent.datasets_granted or ()) if granted else asked,
            consent_id=consent.id,
            outcome="expired",
        )
    )


def complete_delivery(
    uow: UnitOfWork,
    consent: Consent,
    *,
    national_id: str,
    outcomes: dict[str, str],
    document_hashes: dict[str, str],
    now: dt.datetime,
) -> None:
    """Mark a locked consent delivered: outcomes and hashes, its ledger entry, and the citizen's email queued."""
    _write(
        uow,
        _DELIVER,
        consent,
        status=DELIVERED,
        delivered_at=now,
        delivery_outcomes=outcomes,
        document_hashes=document_hashes,
    )
    ledger(uow).record(
        LedgerEvent(
            event="delivery.completed",
            actor=consent.client_id,
            subject_national_id=national_id,
            service=consent.service_id,
            datasets=tuple(consent.datasets_granted or ()),
            consent_id=consent.id,
            document_hashes=document_hashes,
        )
    )
    if consent.citizen_id is not None:
        delivered = [d for d in consent.datasets_granted or () if outcomes.get(d, "ok") in DELIVERED_OUTCOMES]
        notify_citizen(
            uow,
            citizen_id=consent.citizen_id,
            kind="delivery",
            recipient=f"{consent.organisation_name} ({consent.service_id})",
            datasets=delivered,
            now=now,
        )


def record_failed_delivery(uow: UnitOfWork, consent: Consent, *, national_id: str, outcomes: dict[str, str]) -> None:
    """Record a delivery that could not be made; the consent stays `granted` within its window."""
    consent.delivery_outcomes = outcomes
    ledger(uow).record(
        LedgerEvent(
            event="delivery.failed",
            actor=consent.client_id,
            subject_national_id=national_id,
            service=consent.service_id,
            datasets=tuple(consent.datasets_granted or ()),
            consent_id=consent.id,
            outcome="provider_unavailable",
        )
    )


def _pending(uow: UnitOfWork, consent_id: str) -> Consent:
    consent = _lock(uow, consent_id)
    if consent.status != REQUESTED:
        raise ConsentNotPending()
    return consent


_LOCK = (
    update(Consent)
    .where(Consent.id == bindparam("consent_id"))
    .values(delivery_attempts=Consent.delivery_attempts + 0)
    .returning(*Consent.__table__.columns)
)


def _lock(uow: UnitOfWork, consent_id: str) -> Consent:
    """Take the consent's row lock (PostgreSQL) or the write lock (SQLite) for this transaction."""
    # An UPDATE locks on both databases, where SQLite ignores SELECT ... FOR UPDATE; this one changes
    # nothing (claim_for_delivery counts the attempt itself) and reads the row in the same statement.
    return _locked(uow, _LOCK, consent_id)


_TIMES = tuple(column.name for column in Consent.__table__.columns if isinstance(column.type, UTCDateTime))


def _locked(uow: UnitOfWork, statement: Update, consent_id: str) -> Consent:
    """Run a locking *statement* that returns the consent's row; return the session's entity of it.

    The statements of the hot path run past the ORM (decision 0013); the entity callers get is still
    the session's one view of the row: the one it holds, refreshed from the row as the ORM's
    ``populate_existing`` would, or a new one that joins it as loaded, with no statement.
    """
    uow.session.flush()  # as the ORM's autoflush would: the row read includes what is pending (usually nothing)
    row = uow.run(statement, {"consent_id": consent_id}).first()
    if row is None:
        raise ConsentNotFound()
    values = row._asdict()
    for name in _TIMES:
        if values[name] is not None:  # in UTC, as UTCDateTime reads them (the driver: the connection's zone)
            values[name] = values[name].astimezone(dt.UTC)
    consent = uow.session.identity_map.get(uow.session.identity_key(Consent, values["id"]))
    if consent is None:
        consent = Consent(**values)
        make_transient_to_detached(consent)
        uow.session.add(consent)
    else:
        for name, value in values.items():
            set_committed_value(consent, name, value)
    return cast(Consent, consent)


def _setting(*names: str) -> Update:
    """Return the UPDATE of a locked consent that sets these columns from parameters of the same names."""
    return (
        update(Consent)
        .where(Consent.id == bindparam("consent_id"))
        .values({name: bindparam(name, type_=Consent.__table__.c[name].type) for name in names})
    )


# The transitions of the one-shot transaction, built once and run by the unit of work's runner
# (PostgreSQL: the driver) rather than by the ORM's flush (decision 0013).
_GRANT = _setting(
    "status", "citizen_id", "amr", "datasets_granted", "decided_at", "window_ends_at", "receipt_id", "receipt"
)
_DELIVER = _setting("status", "delivered_at", "delivery_outcomes", "document_hashes")


def _write(uow: UnitOfWork, statement: Update, consent: Consent, **values: Any) -> None:
    """Write *values* to a locked consent's row with *statement*, and to the entity as what the row holds.

    The entity stays the session's one view of the row (callers and later statements of the same
    unit of work read it), without the flush writing the row a second time.
    """
    uow.run(statement, {"consent_id": consent.id, **values})
    for name, value in values.items():
        set_committed_value(consent, name, value)


def _window_passed(consent: Consent, now: dt.datetime) -> bool:
    return consent.window_ends_at is not None and now >= consent.window_ends_at
