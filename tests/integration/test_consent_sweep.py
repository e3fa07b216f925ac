"""Two sweepers at once, and late deliveries racing them: every stranded consent is expired exactly once.

These tests commit for real, so they build their own database instead of the rolled-back one: an
SQLite file (one writer: the sweepers take turns), and a fresh PostgreSQL database when
MYDATA_TEST_DATABASE_URL is set (where each sweeper skips the consents another one holds).
"""

from __future__ import annotations

import base64
import os
import secrets
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url

from consent import consents, sweeper
from consent.audit import verify_ledger
from consent.interfaces import ConsentExpired
from consent.ledger import ledger
from consent.models import Consent, LedgerEntry
from identity.oauth.clients import register_client
from mydata.app import create_app
from mydata.cli import upgrade
from mydata.clock import FrozenClock
from mydata.config import Settings
from mydata.db import get_db
from mydata.keys import key_store
from tests.factories.consent import TERMS
from tests.factories.identity import make_citizen
from tests.factories.oauth import TestRelyingParty
from tests.factories.threads import at_once

POSTGRES_URL = os.environ.get("MYDATA_TEST_DATABASE_URL", "")
GRANTED, REQUESTED = 40, 40
NATIONAL_ID = "A123456789"


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Return the URL of an empty database of its own, dropped afterwards."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'sweep.sqlite'}"
        return
    if not POSTGRES_URL:
        pytest.skip("MYDATA_TEST_DATABASE_URL is not set")
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    name = f"mydata_sweep_{uuid.uuid4().hex[:8]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


def platform(url: str, instance: Path, clock: FrozenClock) -> Flask:
    """Return a platform on a freshly migrated database, with a signing key, the bank's client and persona 1."""
    settings = Settings(
        instance_path=instance,
        sandbox=True,
        database_url=url,
        issuer="http://platform.test",
        master_key=base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode(),
        secret_key=secrets.token_urlsafe(48),
    )
    app = create_app(settings, clock_=clock)
    upgrade(app)
    with app.app_context(), get_db().unit_of_work() as uow:
        key_store(uow).rotate()
        rp = TestRelyingParty(client_id="sandbox-bank-web", redirect_uri="https://bank.example/cb")
        register_client(uow, clock, name="沙盒銀行", jwks=rp.jwks(), redirect_uris=[rp.redirect_uri], sandbox=True,
                        organisation_id="sandbox-bank", client_id=rp.client_id)  # fmt: skip
        make_citizen(uow, NATIONAL_ID)
        uow.commit()
    return app


def strand(app: Flask, clock: FrozenClock) -> tuple[list[str], list[str]]:
    """Grant some consents and leave others unanswered; return the ids of each."""
    with app.app_context(), get_db().unit_of_work() as uow:
        citizen_id = make_citizen(uow, NATIONAL_ID).id
        asked = [consents.record_request(uow, client_id="sandbox-bank-web", terms=TERMS, now=clock.now()).id
                 for _ in range(GRANTED + REQUESTED)]  # fmt: skip
        for consent_id in asked[:GRANTED]:
            consents.grant(uow, consent_id, citizen_id=citizen_id, national_id=NATIONAL_ID, optional_chosen=(),
                           amr=("sc",), now=clock.now())  # fmt: skip
        uow.commit()
    return asked[:GRANTED], asked[GRANTED:]


def test_two_sweepers_and_late_deliveries_expire_each_consent_once(
    database: str, tmp_path: Path, clock: FrozenClock
) -> None:
    app = platform(database, tmp_path / "instance", clock)
    granted, requested = strand(app, clock)
    clock.advance(sweeper.REQUEST_LIFETIME.total_seconds())
    reports: list[sweeper.SweepReport] = []

    def sweep() -> None:
        with app.app_context():
            reports.append(sweeper.sweep(get_db(), clock, batch=7))

    def deliver_late() -> None:
        # A relying party that comes back after the window: each attempt is refused as expired,
        # and expires the consent itself if no sweeper got there first.
        with app.app_context():
            for consent_id in reversed(granted):
                with get_db().unit_of_work() as uow, pytest.raises(ConsentExpired):
                    consents.claim_for_delivery(uow, consent_id, national_id=NATIONAL_ID, now=clock.now())

    assert at_once(sweep, sweep, deliver_late) == []
    swept = sum(reports, sweeper.SweepReport())
    assert swept.requested == REQUESTED
    assert swept.granted <= GRANTED  # the late deliveries expired the others

    with app.app_context(), get_db().unit_of_work(read_only=True) as uow:
        statuses = Counter(uow.session.scalars(select(Consent.status)))
        assert statuses == {"expired": GRANTED + REQUESTED}
        expiries = Counter(
            entry.consent_id
            for entry in uow.session.scalars(select(LedgerEntry))
            if b'"event":"consent.expired"' in bytes(entry.leaf_input)
        )
        assert expiries == dict.fromkeys(granted + requested, 1)
        report = verify_ledger(ledger(uow))
        assert report.tree_size == 3 * GRANTED + 2 * REQUESTED  # requested, granted, expired; requested, expired
    with app.app_context():  # and a sweep afterwards finds nothing left
        assert sweeper.sweep(get_db(), clock).total == 0
    get_db(app).engine.dispose()


def test_the_demo_thread_expires_what_is_stranded(tmp_path: Path, clock: FrozenClock) -> None:
    app = platform(f"sqlite:///{tmp_path / 'demo.sqlite'}", tmp_path / "instance", clock)
    granted, requested = strand(app, clock)
    clock.advance(sweeper.REQUEST_LIFETIME.total_seconds())
    stop = sweeper.start_sweeper_thread(app, clock, interval=0.05)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with app.app_context(), get_db().unit_of_work(read_only=True) as uow:
                left = uow.session.scalar(select(Consent.id).where(Consent.status != "expired").limit(1))
            if left is None:
                break
            time.sleep(0.05)
    finally:
        stop.set()
    with app.app_context(), get_db().unit_of_work(read_only=True) as uow:
        assert Counter(uow.session.scalars(select(Consent.status))) == {"expired": len(granted) + len(requested)}
    get_db(app).engine.dispose()
