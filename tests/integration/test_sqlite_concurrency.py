"""Eight threads grant and deliver consents at once on an SQLite file: none sees "database is locked".

A unit of work that reads and then writes (the authorization flow reads the pending request before
the grant; the delivery API reads the token before it claims the consent) used to begin with a
deferred ``BEGIN``: its snapshot went stale when another writer committed, and its first write then
failed at once with "database is locked" (issue 10, item 12). These tests commit for real, so they
build their own database instead of the rolled-back one.
"""

from __future__ import annotations

import base64
import functools
import os
import secrets
from pathlib import Path

from flask import Flask
from sqlalchemy import func, select

from consent import consents
from consent.audit import verify_ledger
from consent.ledger import ledger
from consent.models import Consent
from identity.models import Citizen
from identity.oauth.clients import register_client
from mydata.app import create_app
from mydata.cli import upgrade
from mydata.clock import clock
from mydata.config import Settings
from mydata.db import get_db
from mydata.keys import key_store
from tests.factories.consent import TERMS
from tests.factories.identity import make_citizen
from tests.factories.oauth import TestRelyingParty
from tests.factories.threads import at_once

THREADS = 8
PER_THREAD = 6
CITIZENS = ("A123456789", "B223456782", "F135792464", "E224680132")
CLIENT_ID = "sandbox-bank-web"


def platform(tmp_path: Path) -> Flask:
    """Return a platform on a fresh SQLite file, with a signing key, a client and four citizens."""
    settings = Settings(
        instance_path=tmp_path / "instance",
        sandbox=True,
        database_url=f"sqlite:///{tmp_path / 'mydata.sqlite'}",
        issuer="http://platform.test",
        master_key=base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode(),
        secret_key=secrets.token_urlsafe(48),
    )
    app = create_app(settings)
    upgrade(app)
    with app.app_context(), get_db().unit_of_work() as uow:
        key_store(uow).rotate()
        rp = TestRelyingParty(client_id=CLIENT_ID, redirect_uri="https://bank.example/cb")
        register_client(uow, clock(), name="沙盒銀行", jwks=rp.jwks(), redirect_uris=[rp.redirect_uri], sandbox=True,
                        organisation_id="sandbox-bank", client_id=CLIENT_ID)  # fmt: skip
        for national_id in CITIZENS:
            make_citizen(uow, national_id)
        uow.commit()
    return app


def grant_and_deliver(app: Flask, number: int) -> None:
    """Request, grant and deliver PER_THREAD consents, each step in its own unit of work."""
    with app.app_context():
        for n in range(PER_THREAD):
            national_id = CITIZENS[(number + n) % len(CITIZENS)]
            with get_db().unit_of_work() as uow:
                consent_id = consents.record_request(uow, client_id=CLIENT_ID, terms=TERMS, now=clock().now()).id
                uow.commit()
            with get_db().unit_of_work() as uow:
                # As the authorization endpoint does: read the citizen and the pending request, then decide.
                citizen = uow.session.scalars(select(Citizen).where(Citizen.national_id == national_id)).one()
                assert consents.get(uow, consent_id).status == consents.REQUESTED
                consents.grant(uow, consent_id, citizen_id=citizen.id, national_id=national_id,
                               optional_chosen=("tax.property",), amr=("sc",), now=clock().now())  # fmt: skip
                uow.commit()
            with get_db().unit_of_work() as uow:
                # As the delivery API does: read what the token is for, then claim and deliver.
                assert consents.get(uow, consent_id).status == consents.GRANTED
                consent = consents.claim_for_delivery(uow, consent_id, national_id=national_id, now=clock().now())
                consents.complete_delivery(uow, consent, national_id=national_id, outcomes={},
                                           document_hashes={}, now=clock().now())  # fmt: skip
                uow.commit()


def test_eight_threads_grant_and_deliver_on_sqlite(tmp_path: Path) -> None:
    app = platform(tmp_path)
    errors = at_once(*(functools.partial(grant_and_deliver, app, number) for number in range(THREADS)))
    assert [str(error) for error in errors] == []
    with app.app_context(), get_db().unit_of_work() as uow:
        delivered = uow.session.scalar(select(func.count()).where(Consent.status == consents.DELIVERED))
        assert delivered == THREADS * PER_THREAD
        # requested, granted and delivery.completed for each, in a log that verifies.
        assert verify_ledger(ledger(uow)).tree_size == 3 * THREADS * PER_THREAD
    get_db(app).engine.dispose()
