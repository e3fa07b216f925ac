"""Concurrent appenders that only queue, and two sequencers beside them, on PostgreSQL: one log, within the delay.

These tests commit for real, so they build their own database instead of the rolled-back one.
"""

from __future__ import annotations

import functools
import threading
import time
from pathlib import Path

from flask import Flask
from sqlalchemy import func, select

from consent import sequencer
from consent.ledger import MAX_MERGE_DELAY_SECONDS, SEQUENCER, ledger, parse_rfc3339
from consent.models import LedgerEntry, LedgerQueued, LedgerTreeHead
from mydata.app import create_app
from mydata.clock import Clock
from mydata.db import get_db
from tests.factories.threads import at_once
from tests.integration.test_ledger_concurrency import check_log, fresh_postgres, platform, thread_event

__all__ = ["fresh_postgres"]  # the fixture, imported for these tests

THREADS = 4
PER_THREAD = 250


def queue_concurrently(app: Flask) -> None:
    """Let THREADS threads queue PER_THREAD entries each, one transaction per entry."""

    def work(number: int) -> None:
        with app.app_context():
            for n in range(PER_THREAD):
                with get_db().unit_of_work() as uow:
                    queued = ledger(uow).record(thread_event(number, n))
                    uow.commit()
                assert queued.seq is None

    assert at_once(*(functools.partial(work, number) for number in range(THREADS))) == []


def test_queued_appends_are_integrated_by_one_leading_sequencer_within_the_delay(
    fresh_postgres: str, tmp_path: Path
) -> None:
    plain = platform(fresh_postgres, tmp_path)
    app = create_app(plain.config["MYDATA_SETTINGS"].replace(ledger_sequencing=SEQUENCER))
    stop = threading.Event()
    reports = [sequencer.SequencerReport(), sequencer.SequencerReport()]
    # Two sequencers, as two nodes would run them: one leads, the other waits.
    sequencers = [
        threading.Thread(
            target=sequencer.run_sequencer,
            args=(app, Clock()),
            kwargs={"stop": stop, "report": report, "interval": 0.01},
        )
        for report in reports
    ]
    for thread in sequencers:
        thread.start()
    try:
        queue_concurrently(app)
        expected = THREADS * PER_THREAD
        deadline = time.monotonic() + 30
        while sum(r.leaves for r in reports) < expected and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        stop.set()
        for thread in sequencers:
            thread.join(timeout=30)
    assert sorted(r.leaves for r in reports) == [0, expected]  # only the leader integrated
    check_log(app, expected=expected, threads=THREADS)
    with app.app_context(), get_db().unit_of_work() as uow:
        assert uow.session.scalar(select(func.count()).select_from(LedgerQueued)) == 0
        heads = uow.session.scalar(select(func.count()).select_from(LedgerTreeHead))
        leader = max(reports, key=lambda r: r.leaves)
        assert heads is not None
        assert heads <= leader.batches + 1  # one per batch (and the first append's, if any)
        assert leader.batches < expected  # batches, not one per entry
        # Every entry is under a signed tree head whose time is within the delay of the entry's time.
        sth = uow.session.execute(
            select(LedgerTreeHead.tree_size, LedgerTreeHead.timestamp).order_by(LedgerTreeHead.id)
        ).all()
        worst = 0.0
        for seq in uow.session.scalars(select(LedgerEntry.seq).order_by(LedgerEntry.seq)):
            covering = next(ts for size, ts in sth if size > seq)
            entry_time = ledger(uow).entry(seq).entry["time"]
            worst = max(worst, (parse_rfc3339(covering) - parse_rfc3339(entry_time)).total_seconds())
        assert worst <= MAX_MERGE_DELAY_SECONDS
    get_db(app).engine.dispose()
    get_db(plain).engine.dispose()
