"""Counter verification services (臨櫃核驗, DESIGN §6.5; issue 12 acceptance 2 and 3), with a fake fetcher.

The pages over real HTTP and in two browsers are in tests/integration/test_counter_pages.py and
tests/e2e/test_counter.py.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select

from consent import counter, downloads, history
from consent.counter import Clerk
from consent.downloads import Citizen, DocumentHeader, Download
from consent.interfaces import (
    CounterCodeRefused,
    CounterConfirmationRefused,
    CounterLocked,
    CounterUseNotFound,
    CounterViewEnded,
)
from consent.ledger import subject_commitment
from consent.models import CounterUse, LedgerEntry
from identity import contacts
from mydata.db import UnitOfWork, get_db
from mydata.keys import key_store
from mydata.models import OutboxMessage
from providers.protocol import Outcome
from providers.sandbox.seed import seed_sandbox_catalogue
from tests.factories.consent import fake_fetcher
from tests.factories.identity import make_citizen

pytestmark = pytest.mark.db

CITIZEN_ID_NUMBER = "A123456789"
CLERK_ID_NUMBER = "E224680132"
DATASETS = ("household.registration", "nhi.enrolment")


@pytest.fixture
def uow(app: Flask, tmp_path: Path) -> Iterator[UnitOfWork]:
    """A unit of work in a request context with the sandbox catalogue and a platform signing key."""
    with app.test_request_context(), get_db().unit_of_work() as unit:
        seed_sandbox_catalogue(unit, keys_dir=tmp_path / "agency-keys", agencies_url="http://localhost/agencies")
        key_store(unit).rotate()
        unit.commit()
        yield unit


@pytest.fixture
def now() -> dt.datetime:
    return dt.datetime(2026, 12, 5, 2, 0, tzinfo=dt.UTC)


@pytest.fixture
def citizen(uow: UnitOfWork, now: dt.datetime) -> Citizen:
    account = make_citizen(uow, CITIZEN_ID_NUMBER, now)
    return Citizen(account.id, CITIZEN_ID_NUMBER, account.name, "high")


@pytest.fixture
def clerk(uow: UnitOfWork, now: dt.datetime) -> Clerk:
    account = make_citizen(uow, CLERK_ID_NUMBER, now)
    uow.commit()
    return Clerk(account.id, "sandbox-bank", "沙盒銀行", "Sandbox Bank")


def offered(uow: UnitOfWork, citizen: Citizen, now: dt.datetime) -> counter.Offer:
    entries = [e for e in counter.catalogue(uow).datasets if e.id in DATASETS]
    made = counter.offer(uow, citizen=citizen, entries=entries, now=now)
    uow.commit()
    return made


def claimed(uow: UnitOfWork, citizen: Citizen, clerk: Clerk, now: dt.datetime) -> tuple[counter.Offer, str]:
    """Offer, let the clerk claim, and return the confirmation code as the citizen's page shows it."""
    made = offered(uow, citizen, now)
    counter.claim(uow, clerk=clerk, code=made.display_code.lower(), now=now)
    uow.commit()
    view = counter.citizen_view(uow, citizen_id=citizen.citizen_id, use_id=made.use.id, page_key=made.page_key, now=now)
    assert view.state == "claimed"
    assert view.confirmation is not None
    return made, view.confirmation


def test_a_code_has_eight_unambiguous_characters_and_lasts_twenty_minutes(
    uow: UnitOfWork, citizen: Citizen, now: dt.datetime
) -> None:
    made = offered(uow, citizen, now)
    assert re.fullmatch(r"[23456789ABCDEFGHJKMNPQRSTUVWXYZ]{8}", made.code)
    assert made.display_code == f"{made.code[:4]}-{made.code[4:]}"
    assert made.use.expires_at == now + dt.timedelta(minutes=20)
    stored = uow.session.get(CounterUse, made.use.id)
    assert stored is not None
    # Only hashes: the code is nowhere in the row.
    assert made.code not in json.dumps({c.name: str(getattr(stored, c.name)) for c in CounterUse.__table__.columns})
    assert "d" not in stored.page_key  # the public half only


def test_the_clerk_gets_the_use_and_the_citizens_page_the_confirmation(
    uow: UnitOfWork, citizen: Citizen, clerk: Clerk, now: dt.datetime
) -> None:
    made, confirmation = claimed(uow, citizen, clerk, now)
    assert re.fullmatch(r"[0-9]{6}", confirmation)
    use = uow.session.get(CounterUse, made.use.id)
    assert use is not None
    assert use.organisation_id == "sandbox-bank"
    assert confirmation not in (use.confirmation_sha256 or "")
    assert confirmation not in (use.confirmation_jwe or "")
    # Another browser (without the page key, or with another use's) does not see the code.
    stranger = counter.citizen_view(uow, citizen_id=citizen.citizen_id, use_id=made.use.id, page_key=None, now=now)
    assert stranger.confirmation is None


def test_the_confirmation_opens_fifteen_minutes_of_data_recorded_in_the_uses_own_case(
    uow: UnitOfWork, citizen: Citizen, clerk: Clerk, now: dt.datetime
) -> None:
    made, confirmation = claimed(uow, citizen, clerk, now)
    counter.confirm(uow, clerk=clerk, use_id=made.use.id, confirmation=confirmation, now=now + dt.timedelta(seconds=90))
    uow.commit()
    fetcher = fake_fetcher()
    shown_at = now + dt.timedelta(minutes=2)
    download = counter.fetch_for_clerk(uow, clerk=clerk, use_id=made.use.id, fetcher=fetcher, now=shown_at)
    uow.commit()
    assert download.delivered == list(DATASETS)
    assert fetcher.calls == [  # type: ignore[attr-defined]
        {
            "national_id": CITIZEN_ID_NUMBER,
            "datasets": list(DATASETS),
            "txn": made.use.id,
            "purpose": "counter-verification",
        }
    ]
    entry = uow.session.scalars(select(LedgerEntry).order_by(LedgerEntry.seq.desc()).limit(1)).one()
    published = json.loads(entry.leaf_input)
    assert published["event"] == "counter.verified"
    assert published["actor"] == "counter:sandbox-bank"
    assert published["consent_id"] == made.use.id
    assert sorted(published["datasets"]) == sorted(DATASETS)
    # No personal data, and the subject commitment of this case's own opening.
    text = entry.leaf_input.decode()
    assert CITIZEN_ID_NUMBER not in text
    assert "王小明" not in text
    events = history.usage_history(uow, CITIZEN_ID_NUMBER)
    mine = next(e for e in events if e.consent_id == made.use.id)
    assert mine.opening is not None
    assert subject_commitment(CITIZEN_ID_NUMBER, mine.opening.salt) == published["subject"]
    assert mine.recipient == "sandbox-bank"
    assert mine.recipient_name == "沙盒銀行"

    # After 15 minutes, the view has ended: only a new code reopens it.
    with pytest.raises(CounterViewEnded):
        counter.fetch_for_clerk(
            uow, clerk=clerk, use_id=made.use.id, fetcher=fetcher, now=now + dt.timedelta(minutes=16, seconds=31)
        )


def test_the_pdf_carries_a_verification_code_like_a_self_download(
    uow: UnitOfWork, citizen: Citizen, clerk: Clerk, now: dt.datetime
) -> None:
    made, confirmation = claimed(uow, citizen, clerk, now)
    counter.confirm(uow, clerk=clerk, use_id=made.use.id, confirmation=confirmation, now=now)
    uow.commit()

    def render(download: Download, header: DocumentHeader) -> bytes:
        return f"{header.display_code} {','.join(download.delivered)}".encode()

    _, issued = counter.issue_pdf(uow, clerk=clerk, use_id=made.use.id, fetcher=fake_fetcher(), render=render, now=now)
    uow.commit()
    assert issued is not None
    verified = downloads.verify_document(uow, issued.header.code, now=now, uploaded=issued.body)
    assert verified.matches is True
    entries = [json.loads(e.leaf_input) for e in uow.session.scalars(select(LedgerEntry).order_by(LedgerEntry.seq))]
    shown = [e for e in entries if e["event"] == "counter.verified"]
    assert shown[-1]["document_hashes"]["document"] == issued.sha256

    # A dataset that fails: no document, the showing still recorded with its outcome.
    _, none = counter.issue_pdf(
        uow,
        clerk=clerk,
        use_id=made.use.id,
        fetcher=fake_fetcher({"nhi.enrolment": Outcome.TIMEOUT}),
        render=render,
        now=now,
    )
    assert none is None


def test_a_code_is_single_use(uow: UnitOfWork, citizen: Citizen, clerk: Clerk, now: dt.datetime) -> None:
    made, _ = claimed(uow, citizen, clerk, now)
    with pytest.raises(CounterCodeRefused) as refused:
        counter.claim(uow, clerk=clerk, code=made.code, now=now)
    assert refused.value.reason == "used"
    assert refused.value.attempts_left == 4


def test_an_expired_or_cancelled_code_is_refused(
    uow: UnitOfWork, citizen: Citizen, clerk: Clerk, now: dt.datetime
) -> None:
    made = offered(uow, citizen, now)
    with pytest.raises(CounterCodeRefused) as refused:
        counter.claim(uow, clerk=clerk, code=made.code, now=now + dt.timedelta(minutes=20))
    assert refused.value.reason == "expired"
    view = counter.citizen_view(
        uow,
        citizen_id=citizen.citizen_id,
        use_id=made.use.id,
        page_key=made.page_key,
        now=now + dt.timedelta(minutes=20),
    )
    assert view.state == "expired"

    again = offered(uow, citizen, now)
    counter.cancel(uow, citizen_id=citizen.citizen_id, use_id=again.use.id, now=now)
    uow.commit()
    with pytest.raises(CounterCodeRefused) as cancelled:
        counter.claim(uow, clerk=clerk, code=again.code, now=now)
    assert cancelled.value.reason == "cancelled"


def test_a_new_code_cancels_the_citizens_open_one(uow: UnitOfWork, citizen: Citizen, now: dt.datetime) -> None:
    first = offered(uow, citizen, now)
    offered(uow, citizen, now)
    stored = uow.session.get(CounterUse, first.use.id)
    uow.session.refresh(stored)
    assert stored is not None
    assert stored.status == "cancelled"


def test_a_wrong_confirmation_counts_and_a_late_one_voids_the_use(
    uow: UnitOfWork, citizen: Citizen, clerk: Clerk, now: dt.datetime
) -> None:
    made, confirmation = claimed(uow, citizen, clerk, now)
    wrong = "000000" if confirmation != "000000" else "111111"
    with pytest.raises(CounterConfirmationRefused) as refused:
        counter.confirm(uow, clerk=clerk, use_id=made.use.id, confirmation=wrong, now=now)
    assert (refused.value.reason, refused.value.attempts_left) == ("wrong", 4)
    with pytest.raises(CounterConfirmationRefused) as late:
        counter.confirm(
            uow, clerk=clerk, use_id=made.use.id, confirmation=confirmation, now=now + dt.timedelta(minutes=2)
        )
    assert late.value.reason == "late"
    with pytest.raises(CounterViewEnded):
        counter.fetch_for_clerk(uow, clerk=clerk, use_id=made.use.id, fetcher=fake_fetcher(), now=now)
    view = counter.citizen_view(uow, citizen_id=citizen.citizen_id, use_id=made.use.id, page_key=made.page_key, now=now)
    assert view.state == "void"


def test_five_wrong_entries_lock_the_clerk_for_fifteen_minutes(
    uow: UnitOfWork, citizen: Citizen, clerk: Clerk, now: dt.datetime
) -> None:
    made = offered(uow, citizen, now)
    for left in (4, 3, 2, 1):
        with pytest.raises(CounterCodeRefused) as refused:
            counter.claim(uow, clerk=clerk, code="ZZZZ-ZZZZ", now=now)
        assert refused.value.attempts_left == left
    with pytest.raises(CounterLocked) as locked:
        counter.claim(uow, clerk=clerk, code="ZZZZZZZZ", now=now + dt.timedelta(minutes=1))
    assert locked.value.until == now + dt.timedelta(minutes=16)
    # The sixth, even the right code, is refused while the lock lasts, and the code is not spent.
    with pytest.raises(CounterLocked):
        counter.claim(uow, clerk=clerk, code=made.code, now=now + dt.timedelta(minutes=15))
    assert counter.latest_use(uow, citizen.citizen_id).status == "offered"  # type: ignore[union-attr]
    # After the lock, the entry works again.
    counter.claim(uow, clerk=clerk, code=made.code, now=now + dt.timedelta(minutes=16))


def test_failures_older_than_fifteen_minutes_do_not_count(
    uow: UnitOfWork, citizen: Citizen, clerk: Clerk, now: dt.datetime
) -> None:
    for minute in (0, 1, 2, 3):
        with pytest.raises(CounterCodeRefused):
            counter.claim(uow, clerk=clerk, code="ZZZZZZZZ", now=now + dt.timedelta(minutes=minute))
    with pytest.raises(CounterCodeRefused) as refused:
        counter.claim(uow, clerk=clerk, code="ZZZZZZZZ", now=now + dt.timedelta(minutes=15, seconds=1))
    # The first failure (15 min 1 s ago) no longer counts: the fifth entry leaves one, not a lock.
    assert refused.value.attempts_left == 1


def test_a_clerk_sees_only_their_own_uses_and_a_citizen_only_theirs(
    uow: UnitOfWork, citizen: Citizen, clerk: Clerk, now: dt.datetime
) -> None:
    made, _ = claimed(uow, citizen, clerk, now)
    other = Clerk(citizen.citizen_id, "sandbox-school", "沙盒學校", "Sandbox School")
    with pytest.raises(CounterUseNotFound):
        counter.confirm(uow, clerk=other, use_id=made.use.id, confirmation="123456", now=now)
    with pytest.raises(CounterUseNotFound):
        counter.citizen_view(uow, citizen_id=clerk.citizen_id, use_id=made.use.id, page_key=None, now=now)


def test_the_confirmation_code_is_emailed_to_a_confirmed_address(
    uow: UnitOfWork, citizen: Citizen, clerk: Clerk, now: dt.datetime
) -> None:
    contacts.set_confirmed_address(uow, citizen.citizen_id, "wang@example.com", now)
    uow.commit()
    _, confirmation = claimed(uow, citizen, clerk, now)
    sent = uow.session.scalars(select(OutboxMessage).where(OutboxMessage.recipient == "wang@example.com")).all()
    assert len(sent) == 1
    assert confirmation in sent[0].body
    assert "沙盒銀行" in sent[0].body
    assert CITIZEN_ID_NUMBER not in sent[0].body


def test_the_citizen_is_told_which_organisation_saw_their_data(
    uow: UnitOfWork, citizen: Citizen, clerk: Clerk, now: dt.datetime
) -> None:
    contacts.set_confirmed_address(uow, citizen.citizen_id, "wang@example.com", now)
    uow.commit()
    made, confirmation = claimed(uow, citizen, clerk, now)
    counter.confirm(uow, clerk=clerk, use_id=made.use.id, confirmation=confirmation, now=now)
    counter.fetch_for_clerk(uow, clerk=clerk, use_id=made.use.id, fetcher=fake_fetcher(), now=now)
    uow.commit()
    subjects = uow.session.scalars(
        select(OutboxMessage.subject).where(OutboxMessage.recipient == "wang@example.com")
    ).all()
    assert "MyData：您的資料已在沙盒銀行臨櫃出示" in subjects
