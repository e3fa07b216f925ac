"""An organisation's cases, as its own log shows them (issue 13): its consents and its clerks' counter uses.

Read by the relying-party console and the organisation's transactions API. Each case is named by
its case id and, for a consent, by the pairwise subject the organisation's client knows the citizen
by (OIDC Core §8.1, the `sub` its ID tokens carried); never by name or national ID. Both readers
walk one order, newest first by (time, case id), so that a caller can merge them and continue
after the last case it showed (keyset pagination).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Select, and_, or_, select

from consent.models import Consent, CounterUse
from identity.oauth.clients import list_clients
from identity.oauth.server import Client, ClientRecord, pairwise_subject
from identity.services import get_citizen
from mydata.db import UnitOfWork

_Case = TypeVar("_Case", Consent, CounterUse)


@dataclass(frozen=True)
class CaseWindow:
    """Which cases to read: a time range (``since`` included, ``until`` excluded), a service, a status."""

    since: dt.datetime | None = None
    until: dt.datetime | None = None
    service_id: str | None = None
    status: str | None = None
    after: tuple[dt.datetime, str] | None = None
    """Continue after this (time, case id), newest first."""


def organisation_consents(uow: UnitOfWork, organisation_id: str, window: CaseWindow, limit: int) -> list[Consent]:
    """Return up to *limit* of the organisation's consents in *window*, newest request first."""
    query = select(Consent).where(Consent.organisation_id == organisation_id)
    if window.service_id is not None:
        query = query.where(Consent.service_id == window.service_id)
    if window.status is not None:
        query = query.where(Consent.status == window.status)
    return list(uow.session.scalars(_window(query, Consent.requested_at, Consent.id, window).limit(limit)))


def organisation_counter_uses(
    uow: UnitOfWork, organisation_id: str, window: CaseWindow, limit: int
) -> list[CounterUse]:
    """Return up to *limit* of the counter uses the organisation's clerks claimed in *window*, newest first.

    A counter use belongs to no service: a service filter finds none.
    """
    if window.service_id is not None:
        return []
    query = select(CounterUse).where(CounterUse.organisation_id == organisation_id, CounterUse.claimed_at.is_not(None))
    if window.status is not None:
        query = query.where(CounterUse.status == window.status)
    return list(uow.session.scalars(_window(query, CounterUse.claimed_at, CounterUse.id, window).limit(limit)))


def pairwise_subjects(uow: UnitOfWork, organisation_id: str, cases: Sequence[Consent]) -> dict[str, str]:
    """Return, by consent id, the `sub` the consent's client knows its citizen by (consents with a citizen only)."""
    sectors = {row.client_id: Client(ClientRecord.of(row)).sector for row in list_clients(uow, organisation_id)}
    national_ids: dict[str, str] = {}
    subjects: dict[str, str] = {}
    for case in cases:
        if case.citizen_id is None or case.client_id not in sectors:
            continue
        if case.citizen_id not in national_ids:
            citizen = get_citizen(uow, case.citizen_id)
            if citizen is None:
                continue
            national_ids[case.citizen_id] = citizen.national_id
        subjects[case.id] = pairwise_subject(national_ids[case.citizen_id], sectors[case.client_id])
    return subjects


def _window(query: Select[_Case], time: Any, case_id: Any, window: CaseWindow) -> Select[_Case]:
    if window.since is not None:
        query = query.where(time >= window.since)
    if window.until is not None:
        query = query.where(time < window.until)
    if window.after is not None:
        at, after_id = window.after
        query = query.where(or_(time < at, and_(time == at, case_id < after_id)))
    return query.order_by(time.desc(), case_id.desc())
