"""Notifications (DESIGN §6.4, issue 11 acceptance 5): an email after a delivery, in the citizen's
language, naming the recipient and the datasets and nothing else about the citizen but their name;
a mail server that is down never breaks the delivery, and the mail goes out once it is back.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterator

import pytest
from flask import Flask
from sqlalchemy import select

from consent import consents
from consent.notifications import notify_citizen
from identity import contacts
from identity.models import Citizen
from identity.oauth.clients import register_client
from mydata import mail
from mydata.clock import FrozenClock
from mydata.config import Settings
from mydata.db import UnitOfWork, get_db
from mydata.keys import key_store
from mydata.models import OutboxMessage
from tests.factories.consent import TERMS
from tests.factories.identity import make_citizen, persona
from tests.factories.oauth import TestRelyingParty
from tests.factories.smtp import SmtpServer, body

pytestmark = pytest.mark.db

NATIONAL_ID = "A123456789"
ADDRESS = "wang.xiaoming@example.com"


@pytest.fixture
def uow(app: Flask, clock: FrozenClock) -> Iterator[UnitOfWork]:
    """A unit of work in an app context: a platform key, the bank's client, the sandbox catalogue (titles)."""
    with app.test_request_context(), get_db().unit_of_work() as unit:
        key_store(unit).rotate()
        bank = TestRelyingParty(client_id="sandbox-bank-web", redirect_uri="https://sandbox-bank.example/cb")
        register_client(unit, clock, name="sandbox-bank", jwks=bank.jwks(), redirect_uris=[bank.redirect_uri],
                        sandbox=True, organisation_id="sandbox-bank", client_id=bank.client_id)  # fmt: skip
        seeders = dict(app.extensions["mydata.seeders"])
        seeders["sandbox agencies, providers and datasets"](unit)
        unit.commit()
        yield unit


def _citizen(uow: UnitOfWork, clock: FrozenClock, language: str, wanted: tuple[str, ...] = contacts.KINDS) -> Citizen:
    citizen = make_citizen(uow, NATIONAL_ID, clock.now())
    contacts.set_confirmed_address(uow, citizen.id, ADDRESS, clock.now())
    uow.commit()
    contacts.save_settings(
        uow, citizen.id, email=ADDRESS, language=language, notifications=wanted, link_base="http://x", now=clock.now()
    )
    return citizen


def _deliver(uow: UnitOfWork, clock: FrozenClock, citizen: Citizen) -> str:
    """Request, grant and deliver one consent of the sandbox bank, as the broker does; return its id."""
    consent = consents.record_request(uow, client_id="sandbox-bank-web", terms=TERMS, now=clock.now())
    uow.commit()
    consents.grant(uow, consent.id, citizen_id=citizen.id, national_id=NATIONAL_ID,
                   optional_chosen=("tax.property",), amr=("hwk", "pin"), now=clock.now())  # fmt: skip
    uow.commit()
    claimed = consents.claim_for_delivery(uow, consent.id, national_id=NATIONAL_ID, now=clock.now())
    hashes = {d: hashlib.sha256(d.encode()).hexdigest() for d in TERMS.datasets_required}
    outcomes = {**dict.fromkeys(hashes, "ok"), "tax.property": "timeout"}
    consents.complete_delivery(uow, claimed, national_id=NATIONAL_ID, outcomes=outcomes,
                               document_hashes=hashes, now=clock.now())  # fmt: skip
    uow.commit()
    return consent.id


def _sender(app: Flask, clock: FrozenClock, server: SmtpServer) -> mail.Sender:
    settings: Settings = app.config["MYDATA_SETTINGS"]
    transport = mail.transport_from(dataclasses.replace(settings, **server.settings()))
    assert transport is not None
    return mail.Sender(get_db(app), transport, clock)


def _personal_data() -> list[str]:
    p = persona(NATIONAL_ID)
    birth = p.birth_date
    roc = f"{birth.year - 1911}/{birth.month:02d}/{birth.day:02d}"
    return [NATIONAL_ID, NATIONAL_ID.lower(), birth.isoformat(), birth.strftime("%Y/%m/%d"), roc, p.nhi_card,
            "臺北市", "台北市", "Taipei"]  # fmt: skip


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        (
            "zh_Hant_TW",
            ["王小明 您好", "沙盒銀行", "戶籍資料", "綜合所得稅各類所得資料", "http://localhost/me/history"],
        ),
        (
            "en",
            ["Dear 王小明", "沙盒銀行", "Household registration", "Income data for individual income tax",
             "http://localhost/me/history"],
        ),
    ],
)  # fmt: skip
def test_a_delivery_sends_one_email_in_the_citizens_language_without_personal_data(
    app: Flask, uow: UnitOfWork, clock: FrozenClock, smtp_server: SmtpServer, language: str, expected: list[str]
) -> None:
    citizen = _citizen(uow, clock, language)
    _deliver(uow, clock, citizen)
    assert _sender(app, clock, smtp_server).send_due() == mail.SendReport(sent=1, failed=0)
    [received] = smtp_server.inbox.messages
    assert received["To"] == ADDRESS
    text = f"{received['Subject']}\n{body(received)}"
    for wanted in expected:
        assert wanted in text
    assert ("資料已交付" if language == "zh_Hant_TW" else "delivered") in received["Subject"]
    assert "財產歸屬資料" not in text  # the optional dataset timed out: it was not delivered
    assert "Property holdings" not in text
    for personal in _personal_data():
        assert personal not in str(received), personal


def test_no_email_without_a_confirmed_address_or_when_the_citizen_does_not_want_it(
    app: Flask, uow: UnitOfWork, clock: FrozenClock
) -> None:
    citizen = _citizen(uow, clock, "en", wanted=("download", "verification"))
    _deliver(uow, clock, citizen)
    assert uow.session.scalars(select(OutboxMessage)).all() == []
    other = make_citizen(uow, "B223456782", clock.now())
    assert not notify_citizen(
        uow, citizen_id=other.id, kind="delivery", recipient="沙盒銀行", datasets=["tax.income"], now=clock.now()
    )


@pytest.mark.parametrize(
    ("kind", "subject", "phrase"),
    [
        ("download", "Your data was downloaded", "you downloaded your data"),
        ("verification", "Someone verified a document of yours", "someone verified a document you downloaded"),
    ],
)
def test_downloads_and_verifications_are_named_as_such(
    uow: UnitOfWork, clock: FrozenClock, kind: str, subject: str, phrase: str
) -> None:
    citizen = _citizen(uow, clock, "en")
    assert notify_citizen(
        uow, citizen_id=citizen.id, kind=kind, recipient=None, datasets=["labor.insurance"], now=clock.now()
    )
    uow.commit()
    [message] = uow.session.scalars(select(OutboxMessage)).all()
    assert message.subject == subject
    assert phrase in message.body
    assert "Labour insurance enrolment" in message.body


def test_an_unknown_kind_is_a_programming_error(uow: UnitOfWork, clock: FrozenClock) -> None:
    citizen = _citizen(uow, clock, "en")
    with pytest.raises(ValueError, match="kind"):
        notify_citizen(uow, citizen_id=citizen.id, kind="spam", recipient=None, datasets=[], now=clock.now())


def test_with_the_mail_server_down_the_delivery_succeeds_and_the_mail_goes_out_once_it_is_back(
    app: Flask, uow: UnitOfWork, clock: FrozenClock, smtp_server: SmtpServer
) -> None:
    smtp_server.stop()
    citizen = _citizen(uow, clock, "zh_Hant_TW")
    consent_id = _deliver(uow, clock, citizen)
    assert consents.get(uow, consent_id).status == consents.DELIVERED
    sender = _sender(app, clock, smtp_server)
    assert sender.send_due() == mail.SendReport(sent=0, failed=1)
    [queued] = uow.session.scalars(select(OutboxMessage).execution_options(populate_existing=True)).all()
    assert queued.status == "queued"
    assert queued.last_error
    smtp_server.start()
    clock.advance(mail.backoff(1).total_seconds())
    assert sender.send_due() == mail.SendReport(sent=1, failed=0)
    clock.advance(mail.LEASE.total_seconds() * 2)
    assert sender.send_due() == mail.SendReport(sent=0, failed=0)
    assert len(smtp_server.inbox.messages) == 1
