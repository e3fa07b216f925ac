"""Usage history (使用紀錄): every ledger entry about a citizen, newest first (DESIGN §6.4).

The history is read from the ledger itself, so what the citizen sees is exactly what anyone can
verify; the consents add the relying party's name and the purpose. The citizen's entries are found
privately: version 1 entries carry the citizen's subject key, version 2 entries the commitment of
one of the citizen's cases (:class:`consent.models.CaseOpening`), and each of those comes with its
opening so that the citizen can check the commitment is theirs.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

from sqlalchemy import LargeBinary, cast, null, select, union_all

from consent.ledger import SubjectOpening, ledger, parse_rfc3339
from consent.models import CaseOpening, Consent, LedgerEntry
from mydata.db import UnitOfWork

MAX_EVENTS = 1000


@dataclass(frozen=True)
class HistoryEvent:
    """One thing that happened to a citizen's data, with the ledger entry that proves it."""

    seq: int
    version: int
    time: dt.datetime
    subject: str | None
    opening: SubjectOpening | None
    """The opening of a version 2 entry's subject commitment; None for version 1 (a keyed hash)."""
    event: str
    actor: str
    service: str | None
    datasets: tuple[str, ...]
    outcome: str
    consent_id: str | None
    recipient: str | None
    purpose: str | None


@dataclass(frozen=True)
class HistoryFilter:
    """What the citizen narrows the history to; empty fields do not filter."""

    since: dt.datetime | None = None
    until: dt.datetime | None = None
    recipient: str | None = None
    dataset: str | None = None
    event: str | None = None


def usage_history(uow: UnitOfWork, national_id: str, wanted: HistoryFilter = HistoryFilter()) -> list[HistoryEvent]:
    """Return the citizen's events, newest first, filtered (at most 1,000)."""
    key = ledger(uow).subject_key(national_id)
    columns = (LedgerEntry.seq, LedgerEntry.leaf_input, LedgerEntry.consent_id)
    # Both halves go through the index on the entries' subject (and that on the openings' key).
    version_1 = select(*columns, cast(null(), LargeBinary).label("salt")).where(LedgerEntry.subject == key)
    version_2 = (
        select(*columns, CaseOpening.salt)
        .join(
            CaseOpening,
            (CaseOpening.commitment == LedgerEntry.subject) & (CaseOpening.case_id == LedgerEntry.consent_id),
        )
        .where(CaseOpening.subject_key == key)
    )
    found = union_all(version_1, version_2).subquery()
    rows = uow.session.execute(select(found).order_by(found.c.seq.desc())).all()
    consent_ids = {row.consent_id for row in rows if row.consent_id}
    consents = {
        c.id: c for c in uow.session.scalars(select(Consent).where(Consent.id.in_(consent_ids)))
    } if consent_ids else {}  # fmt: skip
    events = []
    for row in rows:
        entry = json.loads(row.leaf_input)
        consent = consents.get(row.consent_id or "")
        event = HistoryEvent(
            seq=row.seq,
            version=entry["version"],
            time=parse_rfc3339(entry["time"]),
            subject=entry["subject"],
            opening=None if row.salt is None else SubjectOpening(bytes(row.salt)),
            event=entry["event"],
            actor=entry["actor"],
            service=entry.get("service"),
            datasets=tuple(entry.get("datasets", ())),
            outcome=entry.get("outcome", "ok"),
            consent_id=row.consent_id,
            recipient=consent.organisation_id if consent else None,
            purpose=consent.purpose if consent else None,
        )
        if _matches(event, wanted):
            events.append(event)
        if len(events) == MAX_EVENTS:
            break
    return events


def _matches(event: HistoryEvent, wanted: HistoryFilter) -> bool:
    if wanted.since and event.time < wanted.since:
        return False
    if wanted.until and event.time > wanted.until:
        return False
    if wanted.recipient and event.recipient != wanted.recipient:
        return False
    if wanted.dataset and wanted.dataset not in event.datasets:
        return False
    return not (wanted.event and event.event != wanted.event)


def citizen_consents(uow: UnitOfWork, citizen_id: str) -> list[Consent]:
    """Return a citizen's consents, newest first."""
    return list(
        uow.session.scalars(
            select(Consent).where(Consent.citizen_id == citizen_id).order_by(Consent.requested_at.desc())
        )
    )
