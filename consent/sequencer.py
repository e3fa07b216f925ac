"""The ledger sequencer (docs/decisions/0011): integrates queued leaves in batches, one leader per database.

With ``ledger_sequencing = "sequencer"`` a business transaction only queues its ledger entry (one
insert, no lock on the ledger head, :meth:`consent.ledger.Ledger.queue`). This loop, as Trillian's
sequencer does for a transparency log, takes the committed queue rows oldest first, gives them
contiguous seqs, writes their entries and subtrees, signs one tree head per batch and deletes the
rows, all in one transaction (:meth:`consent.ledger.Ledger.integrate`). Every entry is therefore
under a signed tree head within :data:`consent.ledger.MAX_MERGE_DELAY_SECONDS` of its queueing
while a sequencer runs.

Leader election: on PostgreSQL the sequencer holding the session advisory lock
:data:`LEADER_LOCK` integrates; a second one waits for it (and takes over when its connection
ends). Two integrations could not corrupt the log anyway (each locks the head), the lock only
keeps the standby from contending. SQLite: run one sequencer process (the demo runs it as a thread).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from flask import Flask
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from consent.ledger import SEQUENCER, SEQUENCER_BATCH, Batch, ledger
from mydata.background import start_daemon
from mydata.clock import Clock
from mydata.db import Database, get_db, read_only_connection

log = logging.getLogger(__name__)

LEADER_LOCK = 0x6D79_6461_7461_0001
"""The PostgreSQL advisory lock key (bigint) the leading sequencer holds: "mydata" and 1."""
INTERVAL = 0.1
"""Seconds between batches that do not fill up (Trillian's sequencer interval): well inside the 1 s maximum
merge delay, and long enough that a batch carries several leaves, whose cost (a transaction, a
signed tree head) it shares."""
LEADER_RETRY = 1.0
"""Seconds a standby sequencer waits before it tries to lead again."""


@dataclass
class SequencerReport:
    """What a sequencer did: batches committed, leaves integrated, the oldest wait it saw (seconds)."""

    batches: int = 0
    leaves: int = 0

    def add(self, batch: Batch) -> None:
        """Count one committed batch."""
        if batch.entries:
            self.batches += 1
            self.leaves += len(batch.entries)


def integrate_once(database: Database, *, limit: int = SEQUENCER_BATCH, poll: bool = True) -> Batch:
    """Integrate one batch of queued leaves and sign one tree head over it, in a transaction of its own.

    Call it inside an application context. With *poll*, an empty queue costs one read and no lock;
    without, the queue is read under the head lock at once (when leaves are likely waiting).
    """
    if poll:
        with database.unit_of_work(read_only=True) as uow:
            if not ledger(uow).next_queued():
                return Batch(entries=(), signed_tree_head=None)
    with database.unit_of_work(read_only=False) as uow:
        batch = ledger(uow).integrate(limit, sign=True)
        uow.commit()
    return batch


def drain(database: Database, *, limit: int = SEQUENCER_BATCH) -> SequencerReport:
    """Integrate every queued leaf, batch by batch; return what was done (for `--once` and tests)."""
    report = SequencerReport()
    while True:
        batch = integrate_once(database, limit=limit)
        report.add(batch)
        if len(batch.entries) < limit:
            return report


@contextmanager
def leadership(database: Database) -> Iterator[bool]:
    """Try to become the leading sequencer; yield whether this process leads (until the block ends).

    PostgreSQL: a session advisory lock on a connection held for the whole block. SQLite: always
    leads (one sequencer process per SQLite database).
    """
    if database.dialect != "postgresql":
        yield True
        return
    connection: Connection = database.engine.connect()
    try:
        read_only_connection(connection)
        leads = bool(connection.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": LEADER_LOCK}).scalar())
        connection.commit()  # the session lock outlives the transaction; no transaction stays open
        try:
            yield leads
        finally:
            if leads:
                try:
                    connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": LEADER_LOCK})
                    connection.commit()
                except SQLAlchemyError:  # the connection is gone, and its lock with it
                    pass
    finally:
        connection.close()


def run_sequencer(
    app: Flask,
    clock: Clock,
    *,
    stop: threading.Event,
    interval: float = INTERVAL,
    limit: int = SEQUENCER_BATCH,
    report: SequencerReport | None = None,
) -> SequencerReport:
    """Lead (or wait to lead) and integrate the queue until *stop* is set; a failed pass is logged and retried."""
    del clock  # the ledger reads the app's clock; the signature matches the other background workers
    report = report if report is not None else SequencerReport()
    while not stop.is_set():
        try:
            with app.app_context(), leadership(get_db()) as leads:
                if not leads:
                    log.info("consent:sequencer:another sequencer leads; waiting")
                    stop.wait(LEADER_RETRY)
                    continue
                log.info("consent:sequencer:leading")
                _lead(get_db(), stop, interval, limit, report)
        except SQLAlchemyError as exc:  # the database is away: one line, and the next pass tries again
            reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
            log.warning("consent:sequencer:pass failed: %s: %s", type(exc).__name__, reason)
            stop.wait(LEADER_RETRY)
        except Exception:  # a bug must not end the loop either
            log.exception("consent:sequencer:pass failed")
            stop.wait(LEADER_RETRY)
    return report


def _lead(database: Database, stop: threading.Event, interval: float, limit: int, report: SequencerReport) -> None:
    busy = False
    while not stop.is_set():
        began = time.monotonic()
        # While appends keep coming, the cheap poll would only cost a transaction more per batch.
        batch = integrate_once(database, limit=limit, poll=not busy)
        report.add(batch)
        busy = bool(batch.entries)
        if len(batch.entries) < limit:
            # Not a full batch: the queue is drained; integrate again after the interval.
            stop.wait(max(0.0, interval - (time.monotonic() - began)))


def start_sequencer_thread(app: Flask, clock: Clock, interval: float = INTERVAL) -> threading.Event:
    """Run the sequencer in a daemon thread when the app's ledger is sequenced (for `mydata demo`).

    Return the event that stops it (set at once, with no thread, under inline sequencing).
    """
    if app.config["MYDATA_SETTINGS"].ledger_sequencing != SEQUENCER:
        stop = threading.Event()
        stop.set()
        return stop
    return start_daemon("ledger-sequencer", run_sequencer, app, clock, interval=interval)
