"""The platform's statistics, computed from the transparency ledger (issue 13: the operator's statistics).

Everything here is counted from the ledger entries (DESIGN §6.3), the record anyone can check,
with the consent rows only for what the ledger does not say: which organisation a case belongs to
and which kind of provider failure a failed delivery met. Nothing personal is read: no subject, no
citizen. The definitions, which the operator's page states too:

* a **transaction** is a consent case, counted on the day of its `consent.requested` entry; its
  datasets are those it asked for; its relying party is the organisation of the consent;
* **outcomes** count the entries of the period: `delivery.completed` (delivered), `consent.denied`,
  `consent.expired`, `consent.revoked` and `delivery.failed` (provider failures);
* **provider failures by kind**: the datasets that were not delivered, by outcome (``timeout``,
  ``unavailable``, ...), as the consent recorded them at its last delivery attempt, for each case
  with a `delivery.failed` or `delivery.completed` entry in the period (an optional dataset that
  failed is delivered without it; a required one fails the delivery);
* **delivery latency**: from a case's `consent.granted` entry to its `delivery.completed` entry,
  for each delivery of the period, as nearest-rank percentiles (p50, p95, p99).

Entries are appended under one lock with the platform's clock, so their times rise with their
sequence numbers: the period's entries are found by bisection over ``seq``, then read in one pass.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from consent.consents import DELIVERED_OUTCOMES
from consent.ledger import parse_rfc3339, read_head
from consent.models import Consent, LedgerEntry
from mydata.db import UnitOfWork

TAIPEI = ZoneInfo("Asia/Taipei")
#: The percentiles of delivery latency the operator watches.
PERCENTILES = (50, 95, 99)
#: The outcomes, in the order the page lists them, and the ledger event each counts.
OUTCOME_EVENTS = {
    "delivered": "delivery.completed",
    "denied": "consent.denied",
    "expired": "consent.expired",
    "revoked": "consent.revoked",
    "provider_failures": "delivery.failed",
}
_READ_BATCH = 1000


@dataclass(frozen=True)
class Period:
    """The local days ``first`` to ``last`` (inclusive) in time zone ``zone`` (Taiwan's, by default)."""

    first: dt.date
    last: dt.date
    zone: ZoneInfo = TAIPEI

    @property
    def start(self) -> dt.datetime:
        """Return the period's first instant."""
        return dt.datetime.combine(self.first, dt.time.min, self.zone)

    @property
    def end(self) -> dt.datetime:
        """Return the instant just after the period (the start of the day after ``last``)."""
        return dt.datetime.combine(self.last + dt.timedelta(days=1), dt.time.min, self.zone)

    def days(self) -> list[dt.date]:
        """Return every day of the period, in order."""
        return [self.first + dt.timedelta(days=n) for n in range((self.last - self.first).days + 1)]


@dataclass(frozen=True)
class Latency:
    """Delivery latency over the period: how many deliveries, and the percentiles in seconds."""

    count: int
    percentiles: dict[int, float]


@dataclass(frozen=True)
class LedgerStatistics:
    """The figures of one period; every list is (key, count), largest first, then by key."""

    period: Period
    transactions: int
    per_day: list[tuple[dt.date, int]]
    per_dataset: list[tuple[str, int]]
    per_organisation: list[tuple[str, int]]
    outcomes: dict[str, int]
    failure_kinds: list[tuple[str, int]]
    latency: Latency


def nearest_rank(values: Sequence[float], percentile: int) -> float:
    """Return the nearest-rank *percentile* of *values*: the smallest value at least *percentile* % of them reach."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    rank = max(1, math.ceil(percentile / 100 * len(ordered)))
    return ordered[rank - 1]


def ledger_statistics(uow: UnitOfWork, period: Period) -> LedgerStatistics:
    """Count the period's transactions, outcomes, provider failures and delivery latency from the ledger."""
    requested: list[dict[str, Any]] = []
    outcome_counts: Counter[str] = Counter()
    delivered: list[dict[str, Any]] = []
    delivery_cases: set[str] = set()
    for entry in _entries_between(uow, period.start, period.end):
        event = entry["event"]
        if event == "consent.requested":
            requested.append(entry)
        for outcome, outcome_event in OUTCOME_EVENTS.items():
            if event == outcome_event:
                outcome_counts[outcome] += 1
        if event == "delivery.completed":
            delivered.append(entry)
        if event in ("delivery.completed", "delivery.failed") and entry["consent_id"]:
            delivery_cases.add(entry["consent_id"])

    per_day: Counter[dt.date] = Counter(parse_rfc3339(e["time"]).astimezone(period.zone).date() for e in requested)
    per_dataset: Counter[str] = Counter(d for e in requested for d in e["datasets"])
    case_ids = {e["consent_id"] for e in requested if e["consent_id"]} | delivery_cases
    consents = _consents(uow, case_ids)
    per_organisation: Counter[str] = Counter(
        consents[e["consent_id"]].organisation_id if e["consent_id"] in consents else e["actor"] for e in requested
    )
    failure_kinds: Counter[str] = Counter(
        outcome
        for case in sorted(delivery_cases)
        if case in consents
        for outcome in (consents[case].delivery_outcomes or {}).values()
        if outcome not in DELIVERED_OUTCOMES
    )
    return LedgerStatistics(
        period=period,
        transactions=len(requested),
        per_day=[(day, per_day[day]) for day in period.days()],
        per_dataset=_ranked(per_dataset),
        per_organisation=_ranked(per_organisation),
        outcomes={outcome: outcome_counts[outcome] for outcome in OUTCOME_EVENTS},
        failure_kinds=_ranked(failure_kinds),
        latency=_latency(uow, delivered),
    )


def _ranked(counts: Counter[str]) -> list[tuple[str, int]]:
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))


def _latency(uow: UnitOfWork, delivered: list[dict[str, Any]]) -> Latency:
    """Measure each delivery from its case's grant, which may lie before the period."""
    cases = [e["consent_id"] for e in delivered if e["consent_id"]]
    granted: dict[str, dt.datetime] = {}
    for start in range(0, len(cases), _READ_BATCH):
        rows = uow.session.execute(
            select(LedgerEntry.leaf_input).where(LedgerEntry.consent_id.in_(cases[start : start + _READ_BATCH]))
        )
        for row in rows:
            entry = json.loads(row.leaf_input)
            if entry["event"] == "consent.granted":
                granted[entry["consent_id"]] = parse_rfc3339(entry["time"])
    seconds = [
        (parse_rfc3339(e["time"]) - granted[e["consent_id"]]).total_seconds()
        for e in delivered
        if e["consent_id"] in granted
    ]
    if not seconds:
        return Latency(0, {})
    return Latency(len(seconds), {p: nearest_rank(seconds, p) for p in PERCENTILES})


def _consents(uow: UnitOfWork, case_ids: set[str]) -> dict[str, Consent]:
    ids = sorted(case_ids)
    found: dict[str, Consent] = {}
    for start in range(0, len(ids), _READ_BATCH):
        for consent in uow.session.scalars(select(Consent).where(Consent.id.in_(ids[start : start + _READ_BATCH]))):
            found[consent.id] = consent
    return found


def _entries_between(uow: UnitOfWork, start: dt.datetime, end: dt.datetime) -> Iterator[dict[str, Any]]:
    """Yield the entries whose time is in [start, end), in order."""
    size = read_head(uow.session.connection()).tree_size
    first = _first_at_or_after(uow, start, size)
    seq = first
    while seq < size:
        rows = uow.session.execute(
            select(LedgerEntry.leaf_input)
            .where(LedgerEntry.seq >= seq, LedgerEntry.seq < seq + _READ_BATCH)
            .order_by(LedgerEntry.seq)
        ).all()
        if not rows:
            return
        for row in rows:
            entry = json.loads(row.leaf_input)
            if parse_rfc3339(entry["time"]) >= end:
                return
            yield entry
        seq += _READ_BATCH


def _first_at_or_after(uow: UnitOfWork, moment: dt.datetime, size: int) -> int:
    """Return the first seq whose entry's time is at or after *moment* (``size`` if none)."""
    low, high = 0, size
    while low < high:
        middle = (low + high) // 2
        if _time_of(uow, middle) < moment:
            low = middle + 1
        else:
            high = middle
    return low


def _time_of(uow: UnitOfWork, seq: int) -> dt.datetime:
    leaf = uow.session.execute(select(LedgerEntry.leaf_input).where(LedgerEntry.seq == seq)).scalar_one()
    return parse_rfc3339(json.loads(leaf)["time"])
