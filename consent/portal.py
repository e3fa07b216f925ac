"""The citizen's portal (DESIGN §6.4, §6.5): what the dashboard and My consents show.

Functions take plain values and a unit of work, like the rest of the package; the pages in
:mod:`consent.portal_views` only render what these return.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

from sqlalchemy import select

from consent.consents import GRANTED
from consent.history import HistoryEvent, citizen_consents, usage_history
from consent.interfaces import ConsentNotFound, ConsentNotRevocable
from consent.models import Consent, LedgerEntry
from identity import services as identity_services
from mydata.db import UnitOfWork
from providers import services as catalogue_services
from providers.services import DatasetEntry

RECENT_EVENTS = 5


@dataclass(frozen=True)
class MyConsents:
    """A citizen's consents: those still waiting for delivery (revocable) and the past ones."""

    waiting: list[Consent]
    past: list[Consent]
    grant_seqs: dict[str, int]
    """The seq of each granted consent's ``consent.granted`` entry, once integrated into the ledger:
    the entry page shows its inclusion proof, which the receipt promised (docs/decisions/0011)."""

    def named(self, consent_id: str) -> Consent | None:
        """Return one of these consents by id, if it is the citizen's."""
        return next((c for c in (*self.waiting, *self.past) if c.id == consent_id), None)


@dataclass(frozen=True)
class Dashboard:
    """The dashboard (/me): the last events, the consents waiting for delivery, the staff roles."""

    recent: list[HistoryEvent]
    waiting: list[Consent]
    recipients: dict[str, str]
    """The recipient's name by consent id, for the events that belong to a consent."""
    staff_roles: list[tuple[str, str]]


def waiting_for_delivery(consent: Consent, now: dt.datetime) -> bool:
    """Tell whether a consent is granted and its delivery window still open (so it can be revoked)."""
    return consent.status == GRANTED and (consent.window_ends_at is None or now < consent.window_ends_at)


def my_consents(uow: UnitOfWork, citizen_id: str, now: dt.datetime) -> MyConsents:
    """Return the citizen's consents, newest first, split into waiting and past."""
    found = citizen_consents(uow, citizen_id)
    return MyConsents(
        waiting=[c for c in found if waiting_for_delivery(c, now)],
        past=[c for c in found if not waiting_for_delivery(c, now)],
        grant_seqs=grant_seqs(uow, [c.id for c in found if c.receipt]),
    )


def grant_seqs(uow: UnitOfWork, consent_ids: list[str]) -> dict[str, int]:
    """Return the seq of each consent's integrated ``consent.granted`` entry (none while it is queued)."""
    if not consent_ids:
        return {}
    rows = uow.session.execute(
        select(LedgerEntry.seq, LedgerEntry.consent_id, LedgerEntry.leaf_input).where(
            LedgerEntry.consent_id.in_(consent_ids)
        )
    )
    return {
        row.consent_id: row.seq for row in rows if json.loads(bytes(row.leaf_input)).get("event") == "consent.granted"
    }


def dashboard(uow: UnitOfWork, *, citizen_id: str, national_id: str, now: dt.datetime) -> Dashboard:
    """Return what the citizen's dashboard shows."""
    consents = citizen_consents(uow, citizen_id)
    return Dashboard(
        recent=usage_history(uow, national_id)[:RECENT_EVENTS],
        waiting=[c for c in consents if waiting_for_delivery(c, now)],
        recipients={c.id: c.organisation_name for c in consents},
        staff_roles=[(r.role, r.organisation_id) for r in identity_services.staff_roles(uow, citizen_id)],
    )


def revocable_consent(uow: UnitOfWork, consent_id: str, *, citizen_id: str, now: dt.datetime) -> Consent:
    """Return the citizen's consent that can still be revoked; raise why not."""
    consent = _own(uow, consent_id, citizen_id)
    if not waiting_for_delivery(consent, now):
        raise ConsentNotRevocable()
    return consent


def consent_receipt(uow: UnitOfWork, consent_id: str, *, citizen_id: str) -> str:
    """Return the signed receipt (JWS) of the citizen's consent; raise :class:`ConsentNotFound` if none."""
    receipt = _own(uow, consent_id, citizen_id).receipt
    if receipt is None:
        raise ConsentNotFound()
    return receipt


def datasets_by_id(uow: UnitOfWork) -> dict[str, DatasetEntry]:
    """Return the public catalogue's datasets by id (their titles in both languages)."""
    return {d.id: d for d in catalogue_services.catalogue(uow).datasets}


def _own(uow: UnitOfWork, consent_id: str, citizen_id: str) -> Consent:
    consent = uow.session.get(Consent, consent_id)
    if consent is None or consent.citizen_id != citizen_id:
        raise ConsentNotFound()  # another citizen's consent is not found either (no enumeration)
    return consent
