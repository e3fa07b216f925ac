"""Ledger migrations keep the log: consent_0003 converts consent_0001's subtree layout, consent_0004 adds
the private case openings of entry version 2 and leaves version 1 entries as they are; consent_0008 adds
the queue of entries waiting for the sequencer and will not drop queued entries."""

from __future__ import annotations

import base64
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import rfc8785
from alembic import command
from flask import Flask
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from consent import merkle, sequencer
from consent.audit import verify_ledger
from consent.history import usage_history
from consent.ledger import LedgerEvent, ledger, rfc3339
from mydata.app import create_app
from mydata.cli import alembic_config
from mydata.clock import FrozenClock
from mydata.config import Settings
from mydata.db import get_db
from mydata.keys import key_store

POSTGRES_URL = os.environ.get("MYDATA_TEST_DATABASE_URL", "")
SIZE = 77


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Return the URL of an empty database of each backend (PostgreSQL when configured)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ledger.sqlite'}"
        return
    if not POSTGRES_URL:
        pytest.skip("MYDATA_TEST_DATABASE_URL is not set (CI sets it)")
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    name = f"mydata_ledger_migration_{uuid.uuid4().hex[:8]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


def platform(url: str, tmp_path: Path, **settings: Any) -> Flask:
    """Return the platform on the database at *url* (a new master key), with these *settings* besides."""
    return create_app(
        Settings(
            instance_path=tmp_path / "instance",
            sandbox=True,
            database_url=url,
            master_key=base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode(),
            secret_key="s" * 48,
            **settings,
        )
    )


def _migrate(url: str, action: str, revision: str) -> None:
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            config = alembic_config(url)
            config.attributes["connection"] = connection
            getattr(command, action)(config, revision)
    finally:
        engine.dispose()


def test_the_subtree_key_migration_keeps_the_ledger(empty_database: str, tmp_path: Path) -> None:
    url = empty_database
    _migrate(url, "upgrade", "consent_0002")
    time = rfc3339(FrozenClock().now())
    entries = [
        rfc8785.dumps(LedgerEvent(event="consent.requested", actor="client-a", consent_id=f"c{n}").entry(n, time, None))
        for n in range(SIZE)
    ]
    tree = merkle.InMemoryTree(entries)
    old_rows = sorted(
        (start + size - 1, size.bit_length() - 1, digest) for (start, size), digest in tree.blocks.items()
    )
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(
            text("INSERT INTO consent_ledger_entry (seq, leaf_input, subject, consent_id) VALUES (:s, :b, NULL, :c)"),
            [{"s": n, "b": entry, "c": f"c{n}"} for n, entry in enumerate(entries)],
        )
        connection.execute(
            text("INSERT INTO consent_ledger_node (last_seq, level, hash) VALUES (:s, :l, :h)"),
            [{"s": s, "l": level, "h": digest} for s, level, digest in old_rows],
        )
        connection.execute(
            text("UPDATE consent_ledger_head SET tree_size = :n, frontier = :f"),
            {"n": SIZE, "f": b"".join(tree.frontier.hashes)},
        )
    engine.dispose()

    _migrate(url, "upgrade", "heads")
    app = platform(url, tmp_path)
    with app.app_context(), get_db().unit_of_work() as uow:
        report = verify_ledger(ledger(uow))
        assert (report.tree_size, report.root_hash) == (SIZE, tree.root())
        for seq in (0, 31, SIZE - 1):
            assert list(ledger(uow).inclusion_proof(seq, SIZE).audit_path) == tree.inclusion_proof(seq)
    get_db(app).engine.dispose()

    _migrate(url, "downgrade", "consent_0002")
    engine = create_engine(url)
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT last_seq, level, hash FROM consent_ledger_node ORDER BY 1, 2")).all()
    engine.dispose()
    assert [(s, level, bytes(digest)) for s, level, digest in rows] == old_rows


def test_the_case_openings_migration_keeps_version_1_entries(empty_database: str, tmp_path: Path) -> None:
    url = empty_database
    _migrate(url, "upgrade", "consent_0003")
    app = platform(url, tmp_path)
    citizen = "A123456789"

    def granted(case: str) -> LedgerEvent:
        return LedgerEvent(event="consent.granted", actor="client-a", subject_national_id=citizen,
                           service="bank.loan", datasets=("tax.income",), consent_id=case)  # fmt: skip

    # The log as version 1 appends left it: the citizen's keyed hash as the subject of every case.
    with app.app_context(), get_db().unit_of_work() as uow:
        key_store(uow).rotate()
        log = ledger(uow)
        key = log.subject_key(citizen)
        for n in range(5):
            entry = {**granted(f"old-{n}").entry(n, rfc3339(FrozenClock().now()), key), "version": 1}
            log.append_raw(rfc8785.dumps(entry), subject=key, consent_id=f"old-{n}")
        uow.commit()
        old_entries = log.entries(0, 4)
    get_db(app).engine.dispose()

    _migrate(url, "upgrade", "heads")
    _migrate(url, "downgrade", "consent_0003")  # nothing to lose yet
    _migrate(url, "upgrade", "heads")
    with app.app_context(), get_db().unit_of_work() as uow:
        log = ledger(uow)
        for n in range(3):
            log.append(granted(f"new-{n}"))
        uow.commit()
        assert log.entries(0, 4) == old_entries  # append-only: version 1 entries stay as they are
        assert verify_ledger(log).tree_size == 8
        found = usage_history(uow, citizen)
        assert [(e.version, e.opening is None) for e in found] == [(2, False)] * 3 + [(1, True)] * 5
    get_db(app).engine.dispose()

    # The salts are the only openings of the commitments in the log: a downgrade must not drop them.
    with pytest.raises(RuntimeError, match="openings of 3 cases"):
        _migrate(url, "downgrade", "consent_0003")
    engine = create_engine(url)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM consent_case_opening")).scalar_one() == 3
    engine.dispose()


def test_the_queue_migration_will_not_drop_queued_entries(empty_database: str, tmp_path: Path) -> None:
    url = empty_database
    _migrate(url, "upgrade", "heads")
    app = platform(url, tmp_path, ledger_sequencing="sequencer")
    with app.app_context(), get_db().unit_of_work() as uow:
        key_store(uow).rotate()
        ledger(uow).record(LedgerEvent(event="consent.requested", actor="client-a", consent_id="queued-0"))
        uow.commit()
    get_db(app).engine.dispose()
    with pytest.raises(RuntimeError, match="holds 1 entries not yet in the ledger"):
        _migrate(url, "downgrade", "consent_0007_ops")
    with app.app_context():
        assert sequencer.drain(get_db()).leaves == 1
    get_db(app).engine.dispose()
    _migrate(url, "downgrade", "consent_0007_ops")  # nothing queued: nothing to lose
    _migrate(url, "upgrade", "heads")
