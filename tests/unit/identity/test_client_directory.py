"""The client directory: each process keeps what it read of a client for 30 seconds."""

from __future__ import annotations

import pytest
from flask import Flask
from sqlalchemy import update

from identity.oauth.clients import register_client, set_organisation_clients_status, update_client
from identity.oauth.models import OAuthClient
from identity.oauth.server import CLIENT_CACHE_SECONDS, ClientDirectory, client_directory, query_client
from mydata.clock import FrozenClock
from mydata.db import get_db, session
from tests.factories.oauth import TestRelyingParty
from tests.factories.ticks import Ticks

pytestmark = pytest.mark.db

REDIRECT_URI = "https://rp.example/callback"


@pytest.fixture
def ticks(app: Flask) -> Ticks:
    ticks = Ticks()
    app.extensions["identity.oauth_clients"] = ClientDirectory(monotonic=ticks)
    return ticks


@pytest.fixture
def registered(app: Flask, clock: FrozenClock) -> TestRelyingParty:
    relying_party = TestRelyingParty(client_id="cached-bank", redirect_uri=REDIRECT_URI)
    with app.app_context(), get_db().unit_of_work() as uow:
        register_client(
            uow, clock, name="Cached bank", jwks=relying_party.jwks(), redirect_uris=[REDIRECT_URI], sandbox=True,
            organisation_id="cached-org", client_id=relying_party.client_id,
        )  # fmt: skip
    return relying_party


def test_a_client_is_read_once_then_kept(app: Flask, ticks: Ticks, registered: TestRelyingParty) -> None:
    with app.test_request_context():
        first = query_client("cached-bank")
        assert first is not None
        assert first.name == "Cached bank"
        assert first.sector == "cached-org"
        assert query_client("cached-bank") is first
        assert first.signing_keys() is first.signing_keys()  # the JWKS is imported once


def test_a_change_in_this_process_is_seen_at_once(
    app: Flask, ticks: Ticks, registered: TestRelyingParty, clock: FrozenClock
) -> None:
    with app.test_request_context():
        assert query_client("cached-bank") is not None
        with get_db().unit_of_work() as uow:
            update_client(uow, "cached-bank", redirect_uris=["https://rp.example/other"], sandbox=True)
        changed = query_client("cached-bank")
        assert changed is not None
        assert changed.check_redirect_uri("https://rp.example/other")
        assert not changed.check_redirect_uri(REDIRECT_URI)
        with get_db().unit_of_work() as uow:
            set_organisation_clients_status(uow, "cached-org", "suspended")
        assert query_client("cached-bank") is None


def test_a_change_by_another_process_is_seen_within_the_cache_time(
    app: Flask, ticks: Ticks, registered: TestRelyingParty
) -> None:
    with app.test_request_context():
        assert query_client("cached-bank") is not None
        # Another process (a worker, the CLI) suspends the client behind this one's back.
        session().execute(update(OAuthClient).values(status="suspended"))
        session().commit()
        ticks.now += CLIENT_CACHE_SECONDS - 1
        assert query_client("cached-bank") is not None
        ticks.now += 1
        assert query_client("cached-bank") is None


def test_unknown_clients_are_not_remembered(app: Flask, ticks: Ticks, clock: FrozenClock) -> None:
    with app.test_request_context():
        assert query_client("later-bank") is None
        relying_party = TestRelyingParty(client_id="later-bank", redirect_uri=REDIRECT_URI)
        # Registered elsewhere: no cache invalidation reaches this process, yet the client works at once.
        session().add(
            OAuthClient(
                client_id="later-bank", name="Later", organisation_id=None, jwks=relying_party.jwks(),
                redirect_uris=[REDIRECT_URI], status="active", created_at=0,
            )
        )  # fmt: skip
        session().commit()
        found = query_client("later-bank")
        assert found is not None
        assert found.sector == "client:later-bank"
        assert client_directory() is app.extensions["identity.oauth_clients"]
