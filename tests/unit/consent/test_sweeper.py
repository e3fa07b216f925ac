"""The sweeper expires stranded consents, each once, with its ledger entry (issue 14 item 3, DESIGN §6.1).

The clock is the app's FrozenClock: a test moves it past a window or a request's lifetime and sweeps.
Concurrent sweepers, each in transactions of its own, are in tests/integration/test_consent_sweep.py.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import delete

from consent import consents, sweeper
from consent.flow import ConsentScreen
from consent.interfaces import ConsentExpired
from consent.ledger import ledger
from consent.models import CaseOpening, Consent
from identity.models import Citizen
from mydata.app import create_app
from mydata.clock import FrozenClock
from mydata.config import Settings
from mydata.db import UnitOfWork, get_db
from tests.unit.consent.test_consents import citizen, requested, uow

__all__ = ["citizen", "uow"]  # fixtures of these tests
pytestmark = pytest.mark.db


def entries(uow: UnitOfWork, consent_id: str) -> list[dict[str, Any]]:
    """Return the ledger entries of one consent, in order."""
    log = ledger(uow)
    size = log.tree_head().tree_size
    return [e.entry for e in log.entries(0, size - 1) if e.entry["consent_id"] == consent_id]


def granted(uow: UnitOfWork, citizen: Citizen, clock: FrozenClock) -> Consent:
    """Grant a consent, committed."""
    consent = requested(uow, clock)
    consents.grant(uow, consent.id, citizen_id=citizen.id, national_id="A123456789",
                   optional_chosen=("tax.property",), amr=("sc",), now=clock.now())  # fmt: skip
    uow.commit()
    return consent


def sweep(clock: FrozenClock, batch: int = sweeper.BATCH) -> sweeper.SweepReport:
    """Run one sweep, in transactions of its own, as the command and the demo thread do."""
    return sweeper.sweep(get_db(), clock, batch=batch)


def test_a_granted_consent_expires_when_its_window_ends(uow: UnitOfWork, citizen: Citizen, clock: FrozenClock) -> None:
    consent = granted(uow, citizen, clock)
    clock.advance(599)
    assert sweep(clock) == sweeper.SweepReport(granted=0, requested=0)
    assert uow.session.get(Consent, consent.id, populate_existing=True).status == "granted"

    clock.advance(1)  # the window is [grant, grant + 10 min): at its end the consent can no longer be delivered
    assert sweep(clock) == sweeper.SweepReport(granted=1, requested=0)
    swept = uow.session.get(Consent, consent.id, populate_existing=True)
    assert swept.status == "expired"
    assert swept.expired_at == clock.now()
    recorded = entries(uow, consent.id)
    assert [e["event"] for e in recorded] == ["consent.requested", "consent.granted", "consent.expired"]
    expiry = recorded[-1]
    assert expiry["actor"] == "platform"
    assert expiry["outcome"] == "expired"
    assert expiry["datasets"] == ["household.registration", "tax.income", "tax.property"]  # as granted
    # The case's own commitment: the citizen's history finds it, and the opening opens it.
    assert expiry["subject"] == recorded[1]["subject"]
    assert expiry["subject"] is not None


def test_an_expiry_is_recorded_once_however_often_the_sweeper_runs(
    uow: UnitOfWork, citizen: Citizen, clock: FrozenClock
) -> None:
    consent = granted(uow, citizen, clock)
    clock.advance(601)
    assert sweep(clock).total == 1
    for _ in range(3):
        clock.advance(3600)
        assert sweep(clock).total == 0
    assert [e["event"] for e in entries(uow, consent.id)].count("consent.expired") == 1
    # Nor does a late delivery attempt expire it a second time: it is refused as expired.
    with pytest.raises(ConsentExpired):
        consents.claim_for_delivery(uow, consent.id, national_id="A123456789", now=clock.now())
    uow.rollback()
    assert [e["event"] for e in entries(uow, consent.id)].count("consent.expired") == 1


def test_a_request_nobody_answered_expires_after_the_request_lifetime(uow: UnitOfWork, clock: FrozenClock) -> None:
    consent = requested(uow, clock)
    # A citizen can answer until the pushed request (90 s) and then the login and consent
    # interaction (10 min) have run out; the sweeper leaves the request alone until then and a margin.
    assert dt.timedelta(seconds=90 + 600) < sweeper.REQUEST_LIFETIME <= dt.timedelta(minutes=30)
    clock.advance(sweeper.REQUEST_LIFETIME.total_seconds() - 1)
    assert sweep(clock).total == 0
    clock.advance(1)
    assert sweep(clock) == sweeper.SweepReport(granted=0, requested=1)
    swept = uow.session.get(Consent, consent.id, populate_existing=True)
    assert (swept.status, swept.expired_at, swept.citizen_id) == ("expired", clock.now(), None)
    recorded = entries(uow, consent.id)
    assert [e["event"] for e in recorded] == ["consent.requested", "consent.expired"]
    # No citizen was ever attached: like its request, the expiry commits to no subject.
    assert recorded[0]["subject"] is None
    assert recorded[1]["subject"] is None
    assert recorded[1]["actor"] == "platform"
    assert recorded[1]["datasets"] == ["household.registration", "tax.income", "tax.property"]  # as asked
    assert uow.session.get(CaseOpening, consent.id) is None


def test_decided_and_ended_consents_are_left_alone(uow: UnitOfWork, citizen: Citizen, clock: FrozenClock) -> None:
    denied = requested(uow, clock)
    consents.deny(uow, denied.id, citizen_id=citizen.id, national_id="A123456789", now=clock.now())
    revoked = granted(uow, citizen, clock)
    consents.revoke(uow, revoked.id, citizen_id=citizen.id, national_id="A123456789", now=clock.now())
    delivered = granted(uow, citizen, clock)
    claimed = consents.claim_for_delivery(uow, delivered.id, national_id="A123456789", now=clock.now())
    consents.complete_delivery(uow, claimed, national_id="A123456789", outcomes={"tax.income": "ok"},
                               document_hashes={"tax.income": "a" * 64}, now=clock.now())  # fmt: skip
    uow.commit()
    size = ledger(uow).tree_head().tree_size
    clock.advance(86_400)
    assert sweep(clock).total == 0
    statuses = {
        c: uow.session.get(Consent, c, populate_existing=True).status for c in (denied.id, revoked.id, delivered.id)
    }
    assert statuses == {denied.id: "denied", revoked.id: "revoked", delivered.id: "delivered"}
    assert ledger(uow).tree_head().tree_size == size


def test_a_sweep_works_through_every_batch(uow: UnitOfWork, citizen: Citizen, clock: FrozenClock) -> None:
    stale = [requested(uow, clock).id for _ in range(3)] + [granted(uow, citizen, clock).id for _ in range(2)]
    clock.advance(sweeper.REQUEST_LIFETIME.total_seconds())
    assert sweep(clock, batch=2) == sweeper.SweepReport(granted=2, requested=3)
    for consent_id in stale:
        assert uow.session.get(Consent, consent_id, populate_existing=True).status == "expired"
        assert [e["event"] for e in entries(uow, consent_id)].count("consent.expired") == 1


def test_a_case_granted_before_per_case_commitments_gets_one(
    uow: UnitOfWork, citizen: Citizen, clock: FrozenClock
) -> None:
    # A consent granted before issue 10 has version 1 entries and no opening: its expiry is
    # committed to the citizen like any later event of such a case (as a delivery attempt would).
    consent = granted(uow, citizen, clock)
    uow.session.execute(delete(CaseOpening).where(CaseOpening.case_id == consent.id))
    uow.commit()
    clock.advance(600)
    assert sweep(clock).granted == 1
    opening = uow.session.get(CaseOpening, consent.id)
    assert opening is not None
    assert entries(uow, consent.id)[-1]["subject"] == opening.commitment


def test_the_expiry_entry_carries_no_personal_data(uow: UnitOfWork, citizen: Citizen, clock: FrozenClock) -> None:
    consent = granted(uow, citizen, clock)
    clock.advance(600)
    sweep(clock)
    published = json.dumps(entries(uow, consent.id)[-1], ensure_ascii=False)
    for private in ("A123456789", citizen.name, citizen.id, consent.purpose, consent.organisation_name):
        assert private not in published
    assert set(json.loads(published)) == {"version", "seq", "time", "event", "subject", "actor", "service",
                                          "datasets", "outcome", "consent_id", "document_hashes"}  # fmt: skip


def test_a_swept_consent_ends_its_tokens_like_a_passed_window(
    uow: UnitOfWork, citizen: Citizen, clock: FrozenClock
) -> None:
    consent = granted(uow, citizen, clock)
    ends_at = clock.timestamp() + 600
    unswept = ConsentScreen().window(uow, consent.id)
    assert unswept is not None
    clock.advance(600)
    sweep(clock)
    uow.session.expire_all()  # as a request's own session would read it
    swept = ConsentScreen().window(uow, consent.id)
    assert swept is not None
    assert swept.ended == "expired"
    # The delivery API refuses the token with the same answer as before the sweep: 401 invalid_token, expired.
    assert swept.refusal(ends_at) == unswept.refusal(ends_at)
    assert swept.refusal(ends_at - 1) == unswept.refusal(ends_at)  # and from the moment it was swept


def test_the_command_sweeps_once_and_says_how_many(
    app: Flask, uow: UnitOfWork, citizen: Citizen, clock: FrozenClock
) -> None:
    requested(uow, clock)
    granted(uow, citizen, clock)
    clock.advance(sweeper.REQUEST_LIFETIME.total_seconds())
    result = app.test_cli_runner().invoke(args=["consents", "sweep", "--once"])
    assert result.exit_code == 0, result.output
    assert "Expired 2 consents: 1 granted past the delivery window, 1 requested and never answered." in result.output
    again = app.test_cli_runner().invoke(args=["consents", "sweep", "--once"])
    assert again.exit_code == 0, again.output
    assert "Expired 0 consents" in again.output


def test_the_demo_runs_the_sweeper(app: Flask) -> None:
    # `mydata demo` starts every registered worker beside its server (tests/integration/test_consent_sweep.py
    # runs the thread; tests/integration/test_start_up.py the demo).
    assert sweeper.start_sweeper_thread in app.extensions["mydata.demo_workers"]
    assert any("mydata consents sweep" in note for note in app.extensions["mydata.demo_notes"])


def test_the_command_says_in_one_line_when_the_database_cannot_be_reached(settings: Settings, tmp_path: Path) -> None:
    unreachable = dataclasses.replace(settings, database_url=f"sqlite:///{tmp_path / 'missing' / 'x.sqlite'}")
    result = create_app(unreachable).test_cli_runner().invoke(args=["consents", "sweep", "--once"])
    assert result.exit_code == 2
    assert result.output.startswith("consents sweep: cannot run (unable to open database file)")
    assert "Traceback" not in result.output
