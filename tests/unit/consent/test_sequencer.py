"""The ledger queue and its sequencer (``consent.sequencer``, docs/decisions/0011).

Under ``ledger_sequencing = "sequencer"`` a business transaction only queues its entry; the
sequencer integrates the queue in batches, one signed tree head per batch. Inline sequencing
integrates at once through the same code. These tests run on the rolled-back test database.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable

import pytest
from flask import Flask
from sqlalchemy import func, select

from consent import consents, sequencer
from consent.audit import verify_ledger
from consent.ledger import INLINE, SEQUENCER, Ledger, LedgerEvent, QueuedEntry, entry_hash_of, ledger
from consent.models import LedgerEntry, LedgerQueued, LedgerTreeHead
from mydata.clock import FrozenClock
from mydata.config import ConfigError, Settings
from mydata.db import UnitOfWork, get_db
from mydata.keys import key_store

pytestmark = pytest.mark.db

EventFactory = Callable[..., LedgerEvent]


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The platform as production runs it: appends queue, the sequencer integrates."""
    return settings.replace(ledger_sequencing=SEQUENCER)


def count(uow: UnitOfWork, table: type[LedgerEntry] | type[LedgerQueued] | type[LedgerTreeHead]) -> int:
    return int(uow.session.scalar(select(func.count()).select_from(table)) or 0)


def test_a_sequenced_append_only_queues_its_entry(uow: UnitOfWork, granted: EventFactory) -> None:
    log = ledger(uow)
    assert log.sequencing == SEQUENCER
    queued = log.record(granted(1))
    assert isinstance(queued, QueuedEntry)
    assert queued.seq is None
    assert (count(uow, LedgerEntry), count(uow, LedgerQueued), log.tree_head().tree_size) == (0, 1, 0)
    body = json.loads(queued.body)
    assert "seq" not in body
    assert body["time"] == queued.time
    assert body["event"] == "consent.granted"


def test_integration_gives_contiguous_seqs_and_signs_one_tree_head_per_batch(
    uow: UnitOfWork, granted: EventFactory
) -> None:
    log = ledger(uow)
    queued = [log.record(granted(n)) for n in range(7)]
    first = log.integrate(limit=5, sign=True)
    assert [e.seq for e in first.entries] == [0, 1, 2, 3, 4]
    assert first.signed_tree_head is not None
    assert first.signed_tree_head.tree_size == 5
    second = log.integrate(limit=5, sign=True)
    assert [e.seq for e in second.entries] == [5, 6]
    assert second.signed_tree_head is not None
    assert second.signed_tree_head.tree_size == 7
    assert count(uow, LedgerTreeHead) == 2  # one per batch, none per entry
    assert count(uow, LedgerQueued) == 0
    empty = log.integrate(sign=True)
    assert (empty.entries, empty.signed_tree_head) == ((), None)
    assert count(uow, LedgerTreeHead) == 2
    # Each entry is its queued body with the seq it was given: what the receipt promised.
    for n, item in enumerate(queued):
        stored = log.entry(n)
        assert stored.entry["seq"] == n
        assert entry_hash_of(stored.leaf_input) == item.entry_hash
    assert verify_ledger(log).tree_size == 7


def test_a_rolled_back_business_transaction_leaves_nothing_queued(
    app: Flask, uow: UnitOfWork, granted: EventFactory
) -> None:
    uow.commit()  # the signing key
    with app.app_context(), get_db().unit_of_work() as business:
        ledger(business).record(granted(1))
        assert count(business, LedgerQueued) == 1
        business.rollback()
    assert count(uow, LedgerQueued) == 0
    assert sequencer.drain(get_db(app)).leaves == 0


def test_inline_sequencing_integrates_what_was_queued_before_it_then_its_own(
    uow: UnitOfWork, granted: EventFactory
) -> None:
    sequenced = ledger(uow)
    sequenced.record(granted(1))
    sequenced.record(granted(2))
    inline = Ledger(uow, keys=sequenced.keys, clock=sequenced.clock, policy=sequenced.policy, sequencing=INLINE)
    recorded = inline.record(granted(3))
    assert recorded.seq == 2
    assert [e.entry["consent_id"] for e in inline.entries(0, 2)] == [
        "consent-000001",
        "consent-000002",
        "consent-000003",
    ]
    assert count(uow, LedgerQueued) == 0


def test_inline_is_the_default_and_appends_at_once(
    app: Flask, uow: UnitOfWork, granted: EventFactory, settings: Settings
) -> None:
    assert Settings(instance_path=settings.instance_path).ledger_sequencing == INLINE
    log = Ledger(uow, keys=key_store(uow), clock=FrozenClock(), policy=ledger(uow).policy)
    assert log.sequencing == INLINE
    assert log.record(granted(1)).seq == 0
    assert count(uow, LedgerQueued) == 0


def test_an_unknown_sequencing_is_refused(settings: Settings) -> None:
    with pytest.raises(ConfigError, match="MYDATA_LEDGER_SEQUENCING"):
        settings.replace(ledger_sequencing="eventually")


def test_a_grant_queues_its_entry_and_its_receipt_gets_its_proof_from_the_sequencer(
    app: Flask, uow: UnitOfWork, clock: FrozenClock
) -> None:
    from consent.receipts import receipt_proof, verify_receipt
    from identity.oauth.clients import register_client
    from tests.factories.identity import make_citizen
    from tests.factories.oauth import TestRelyingParty
    from tests.unit.consent.test_consents import requested

    rp = TestRelyingParty(client_id="sandbox-bank-web", redirect_uri="https://bank.example/cb")
    register_client(uow, clock, name="沙盒銀行", jwks=rp.jwks(), redirect_uris=[rp.redirect_uri], sandbox=True,
                    organisation_id="sandbox-bank", client_id=rp.client_id)  # fmt: skip
    citizen = make_citizen(uow, "A123456789")
    consent = requested(uow, clock)
    before = count(uow, LedgerTreeHead)
    consents.grant(uow, consent.id, citizen_id=citizen.id, national_id="A123456789", optional_chosen=(),
                   amr=("sc", "pin", "hwk"), now=clock.now())  # fmt: skip
    uow.commit()
    assert count(uow, LedgerTreeHead) == before  # the grant signs the receipt only
    assert receipt_proof(uow, consent.receipt or "") is None  # promised, not yet integrated
    assert sequencer.drain(get_db(app)).leaves == 2  # the request and the grant
    proof = receipt_proof(uow, consent.receipt or "")
    assert proof is not None
    assert proof.seq == 1
    assert verify_receipt(uow, consent.receipt or "").tree_size == 2


def test_only_one_sequencer_leads(app: Flask, backend: str) -> None:
    database = get_db(app)
    with sequencer.leadership(database) as first, sequencer.leadership(database) as second:
        assert first
        # PostgreSQL: the advisory lock is taken; SQLite runs one sequencer process and always leads.
        assert second is (backend == "sqlite")
    with sequencer.leadership(database) as again:
        assert again  # released when the leader stops


def test_the_sequencer_loop_integrates_until_stopped(app: Flask, uow: UnitOfWork, granted: EventFactory) -> None:
    log = ledger(uow)
    for n in range(3):
        log.record(granted(n))
    uow.commit()
    stop = threading.Event()
    report = sequencer.SequencerReport()
    worker = threading.Thread(
        target=sequencer.run_sequencer, args=(app, FrozenClock()), kwargs={"stop": stop, "report": report}
    )
    worker.start()
    try:
        for _ in range(200):
            if report.leaves == 3:
                break
            stop.wait(0.02)
    finally:
        stop.set()
        worker.join(timeout=10)
    assert (report.leaves, report.batches) == (3, 1)


def test_the_sequencer_command_integrates_the_queue(app: Flask, uow: UnitOfWork, granted: EventFactory) -> None:
    log = ledger(uow)
    for n in range(4):
        log.record(granted(n))
    uow.commit()
    result = app.test_cli_runner().invoke(args=["ledger", "sequencer", "--once", "--batch-size", "3"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "ledger sequencer: integrated 4 entries in 2 batches"
    assert ledger(uow).tree_head().tree_size == 4
    again = app.test_cli_runner().invoke(args=["ledger", "sequencer", "--once"])
    assert again.output.strip() == "ledger sequencer: integrated 0 entries in 0 batches"


def test_the_demo_runs_the_sequencer(app: Flask) -> None:
    assert sequencer.start_sequencer_thread in app.extensions["mydata.demo_workers"]
    assert any("within 1 s" in note for note in app.extensions["mydata.demo_notes"])
    stop = sequencer.start_sequencer_thread(app, FrozenClock(), interval=0.05)
    assert not stop.is_set()
    (thread,) = [t for t in threading.enumerate() if t.name == "ledger-sequencer"]
    stop.set()
    thread.join(timeout=10)
    assert not thread.is_alive()


def test_an_inline_platform_starts_no_sequencer(app: Flask, settings: Settings) -> None:
    from mydata.app import create_app

    inline = create_app(settings.replace(ledger_sequencing=INLINE))
    assert sequencer.start_sequencer_thread(inline, FrozenClock()).is_set()
    get_db(inline).engine.dispose()


def test_a_queued_entry_carries_its_case_commitment_and_refuses_another_citizen(
    uow: UnitOfWork, granted: EventFactory
) -> None:
    from consent.interfaces import LedgerEventInvalid

    log = ledger(uow)
    first = json.loads(log.record(granted(1)).body)
    again = json.loads(log.record(granted(1)).body)  # the case has its opening now: the same commitment
    assert first["subject"] == again["subject"]
    assert json.loads(log.record(granted(2)).body)["subject"] != first["subject"]  # a new case, a new salt
    with pytest.raises(LedgerEventInvalid, match="about another citizen"):
        log.record(granted(1, citizen="B223456782"))
