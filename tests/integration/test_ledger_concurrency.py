"""Concurrent appends through the real service, each in its own transaction: no two can take one seq.

These tests commit for real, so they build their own database instead of the rolled-back one.
"""

from __future__ import annotations

import base64
import functools
import os
import secrets
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url

from consent import audit, merkle
from consent.audit import verify_ledger
from consent.ledger import LedgerEvent, ledger
from consent.models import LedgerEntry
from mydata.app import create_app
from mydata.cli import upgrade
from mydata.config import Settings
from mydata.db import get_db
from mydata.keys import key_store
from tests.factories.threads import at_once

POSTGRES_URL = os.environ.get("MYDATA_TEST_DATABASE_URL", "")
CITIZENS = ("A123456789", "B223456782", "F135792464", "E224680132")


@pytest.fixture
def fresh_postgres() -> Iterator[str]:
    """Create an empty PostgreSQL database next to the test database, and drop it afterwards."""
    if not POSTGRES_URL:
        pytest.skip("MYDATA_TEST_DATABASE_URL is not set: concurrent appends are tested on PostgreSQL (CI sets it)")
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    name = f"mydata_ledger_{uuid.uuid4().hex[:8]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


def platform(url: str, instance: Path) -> Flask:
    """Return a platform on a freshly migrated database *url*, with a signing key."""
    settings = Settings(
        instance_path=instance,
        sandbox=True,
        database_url=url,
        issuer="http://platform.test",
        master_key=base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode(),
        secret_key=secrets.token_urlsafe(48),
        ledger_sth_every_entries=250,
    )
    app = create_app(settings)
    upgrade(app)
    with app.app_context(), get_db().unit_of_work() as uow:
        key_store(uow).rotate()
    return app


def thread_event(number: int, n: int) -> LedgerEvent:
    """Return the *n*-th event of thread *number*: its consent id says whose and in which order."""
    return LedgerEvent(
        event="delivery.completed",
        actor=f"client-{number}",
        subject_national_id=CITIZENS[n % len(CITIZENS)],
        datasets=("tax.income",),
        consent_id=f"t{number}-{n:04d}",
    )


def append_concurrently(app: Flask, threads: int, per_thread: int) -> None:
    """Let *threads* threads append *per_thread* entries each, one transaction per entry."""

    def work(number: int) -> None:
        with app.app_context():
            for n in range(per_thread):
                with get_db().unit_of_work() as uow:
                    ledger(uow).append(thread_event(number, n))
                    uow.commit()

    assert at_once(*(functools.partial(work, number) for number in range(threads))) == []


def check_log(app: Flask, expected: int, threads: int) -> None:
    """Check contiguous seqs, each thread's entries in its own order, and a tree that verifies."""
    with app.app_context(), get_db().unit_of_work() as uow:
        rows = uow.session.execute(select(LedgerEntry.seq, LedgerEntry.consent_id).order_by(LedgerEntry.seq)).all()
        assert [seq for seq, _ in rows] == list(range(expected))
        for number in range(threads):
            mine = [consent for _, consent in rows if consent.startswith(f"t{number}-")]
            assert mine == sorted(mine)
            assert len(mine) == expected // threads
        report = verify_ledger(ledger(uow))
        assert report.tree_size == expected
        leaves = [
            entry.leaf_input for start in range(0, expected, 1000) for entry in ledger(uow).entries(start, start + 999)
        ]
        assert merkle.InMemoryTree(leaves).root() == report.root_hash == ledger(uow).tree_head().root_hash
        assert report.signed_tree_heads >= expected // 250


def test_eight_threads_append_4000_entries_on_postgresql(
    fresh_postgres: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = platform(fresh_postgres, tmp_path)
    append_concurrently(app, threads=8, per_thread=500)
    check_log(app, expected=4000, threads=8)
    # The same audit by worker processes, each reading the same exported snapshot.
    monkeypatch.setattr(audit, "RANGE_SIZE", 1024)
    monkeypatch.setattr(audit, "PARALLEL_FROM", 2048)
    with app.app_context(), get_db().unit_of_work() as uow:
        assert verify_ledger(ledger(uow), workers=2).tree_size == 4000
    get_db(app).engine.dispose()


def test_four_threads_append_on_sqlite(tmp_path: Path) -> None:
    app = platform(f"sqlite:///{tmp_path / 'ledger.sqlite'}", tmp_path)
    append_concurrently(app, threads=4, per_thread=100)
    check_log(app, expected=400, threads=4)
    get_db(app).engine.dispose()
