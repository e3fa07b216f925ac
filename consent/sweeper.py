"""The consent sweeper: expires consents that can no longer complete, so that none stays stranded (DESIGN §6.1).

Without it a consent leaves `granted` only when its relying party tries to deliver it, and a
request nobody answers stays `requested` forever. The sweeper expires both kinds, each in the
same way as any transition: status `expired`, `expired_at`, and one `consent.expired` ledger
entry in the same transaction (:func:`consent.consents.expire`).

* a `granted` consent whose delivery window has ended (``window_ends_at <= now``: from then on
  :func:`consent.consents.claim_for_delivery` refuses it and its tokens are refused);
* a `requested` consent older than :data:`REQUEST_LIFETIME`, which nobody can answer any more.

It runs without anyone remembering to: `mydata consents sweep` (a loop, or `--once` from a timer),
and a thread of `mydata demo`. Several sweepers may run at once, on one node or many: each batch
locks the consents it expires, PostgreSQL skipping rows another transaction holds (``FOR UPDATE
SKIP LOCKED``: another sweeper's batch, or a delivery in progress, which the next pass sees again),
and re-checking a row's status once it has the lock, so a consent committed as expired by
another sweeper is not taken again. SQLite has one writer: a unit of work that writes begins
IMMEDIATE (:mod:`mydata.db`), so sweepers take turns and each sees the other's expiries.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from dataclasses import dataclass

from flask import Flask
from sqlalchemy import or_, select
from sqlalchemy.exc import SQLAlchemyError

from consent import consents
from consent.consents import GRANTED, REQUESTED
from consent.models import CaseOpening, Consent
from identity.oauth.services import INTERACTION_LIFETIME, REQUEST_URI_LIFETIME
from identity.services import get_citizen
from mydata.background import start_daemon
from mydata.clock import Clock
from mydata.db import Database, UnitOfWork, get_db

log = logging.getLogger(__name__)

BATCH = 100
"""Consents expired per transaction. A batch holds the ledger's head from its first append to its
commit, and every other append (a grant, a delivery) waits for it meanwhile: at 2 to 4 ms an expiry
on PostgreSQL (2 shared cores), 100 keep that wait under about half a second, where 500 would take
one to two seconds. A large backlog (a first sweep) runs as many such short transactions."""
INTERVAL = 60.0
"""Seconds between two passes of the loop: a consent is expired within a minute of its end."""
CLOCK_MARGIN = dt.timedelta(minutes=5)
REQUEST_LIFETIME = dt.timedelta(seconds=REQUEST_URI_LIFETIME + INTERACTION_LIFETIME) + CLOCK_MARGIN
"""How long after its request a `requested` consent is expired, never answered: 16.5 minutes.

A request can be answered only through its browser interaction: the pushed request's
`request_uri` must be redeemed within 90 seconds (:data:`identity.oauth.services.REQUEST_URI_LIFETIME`),
and the interaction it opens, where the citizen logs in and answers, lasts 10 minutes from then
(:data:`identity.oauth.services.INTERACTION_LIFETIME`). So no answer can come 11.5 minutes after
the request, whatever the login session. The 5-minute margin covers clocks of app nodes that
disagree (the request's time is the node's that recorded it); nothing is lost by waiting: the
consent has no citizen, no data and no token yet.
"""


@dataclass(frozen=True)
class SweepReport:
    """How many consents a sweep expired, of each kind."""

    granted: int = 0
    """`granted` consents whose delivery window had ended, never delivered."""
    requested: int = 0
    """`requested` consents nobody answered within :data:`REQUEST_LIFETIME`."""

    @property
    def total(self) -> int:
        """Return how many consents were expired."""
        return self.granted + self.requested

    def __add__(self, other: SweepReport) -> SweepReport:
        return SweepReport(self.granted + other.granted, self.requested + other.requested)

    def describe(self) -> str:
        """Say what the sweep did, in one line."""
        consents_ = "consent" if self.total == 1 else "consents"
        return (
            f"Expired {self.total} {consents_}: {self.granted} granted past the delivery window, "
            f"{self.requested} requested and never answered."
        )


def expire_stale(uow: UnitOfWork, *, now: dt.datetime, limit: int = BATCH) -> SweepReport:
    """Expire up to *limit* stranded consents in the caller's transaction, each with its ledger entry.

    The caller commits. Consents that another transaction holds are skipped (PostgreSQL); a later
    pass takes them if they are still stranded then.
    """
    stale = or_(
        (Consent.status == GRANTED) & (Consent.window_ends_at <= now),
        (Consent.status == REQUESTED) & (Consent.requested_at <= now - REQUEST_LIFETIME),
    )
    found = uow.session.scalars(
        select(Consent)
        .where(stale)
        .limit(limit)
        .with_for_update(skip_locked=True)  # PostgreSQL; SQLite's write lock is already this transaction's
        .execution_options(populate_existing=True)
    ).all()
    cited = [c.id for c in found if c.status == GRANTED]
    opened = set(uow.session.scalars(select(CaseOpening.case_id).where(CaseOpening.case_id.in_(cited))))
    granted = requested = 0
    for consent in found:
        national_id = None
        if consent.status == GRANTED:
            granted += 1
            if consent.id not in opened:
                # Granted before per-case commitments (ledger entry version 1): the case has no
                # commitment yet, so the expiry makes one for the citizen, as a delivery attempt would.
                national_id = _national_id(uow, consent)
        else:
            requested += 1
        consents.expire(uow, consent, now=now, national_id=national_id)
    return SweepReport(granted=granted, requested=requested)


def _national_id(uow: UnitOfWork, consent: Consent) -> str | None:
    citizen = get_citizen(uow, consent.citizen_id) if consent.citizen_id is not None else None
    return None if citizen is None else citizen.national_id


def sweep(database: Database, clock: Clock, *, batch: int = BATCH) -> SweepReport:
    """Expire every stranded consent, *batch* per transaction; return how many of each kind.

    Call it inside an application context (the ledger signs with the app's keys and settings).
    """
    total = SweepReport()
    while True:
        with database.unit_of_work(read_only=False) as uow:
            report = expire_stale(uow, now=clock.now(), limit=batch)
            uow.commit()
        total += report
        if report.total < batch:
            return total


def run_sweeper(app: Flask, clock: Clock, *, interval: float, stop: threading.Event, batch: int = BATCH) -> None:
    """Sweep every *interval* seconds until *stop* is set; a failed pass is logged and the next one tries again."""
    while not stop.is_set():
        try:
            with app.app_context():
                report = sweep(get_db(), clock, batch=batch)
        except SQLAlchemyError as exc:  # the database is away: one line, and the next pass tries again
            reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
            log.warning("consent:sweeper:pass failed: %s: %s", type(exc).__name__, reason)
        except Exception:  # a bug must not end the loop either
            log.exception("consent:sweeper:pass failed")
        else:
            if report.total:
                log.info(
                    "consent:sweeper:expired %d granted past their window, %d requests never answered",
                    report.granted,
                    report.requested,
                )
        stop.wait(interval)


def start_sweeper_thread(app: Flask, clock: Clock, interval: float = INTERVAL) -> threading.Event:
    """Run the sweeper in a daemon thread (for `mydata demo`); return the event that stops it."""
    return start_daemon("consent-sweeper", run_sweeper, app, clock, interval=interval)
