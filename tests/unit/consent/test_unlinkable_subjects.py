"""Unlinkable ledger subjects (DESIGN §6.3, issue 10 item 1), checked from the outside.

Anyone may read the public ledger, every relying party included, and a relying party knows the ids
of its own consents (the ``txn`` of its packages). These tests read the ledger only through the
public routes, as a relying party would, and the citizen's openings only through their history
API; the commitment is recomputed here from DESIGN §6.3's formula, not with the platform's code.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from consent import consents
from consent.consents import ServiceTerms
from identity.oauth.clients import register_client
from identity.sessions import Authentication
from mydata.clock import FrozenClock
from mydata.db import get_db
from mydata.keys import key_store
from tests.factories.consent import TERMS
from tests.factories.identity import LoginAs
from tests.factories.oauth import TestRelyingParty

pytestmark = pytest.mark.db

NATIONAL_ID = "A123456789"
SCHOOL_TERMS = ServiceTerms(
    organisation_id="sandbox-school",
    organisation_name="沙盒大學",
    service_id="sandbox-school.admission",
    purpose="入學資格審查",
    retention="P6M",
    level="substantial",
    datasets_required=("household.registration",),
)
# Fields whose values are public anyway (what happened, for which public service, with which public
# dataset names), or that every entry of a kind has.
PUBLIC_FIELDS = frozenset({"version", "event", "actor", "service", "datasets", "outcome"})


def _delivered(app: Flask, clock: FrozenClock, citizen: Authentication, client_id: str, terms: ServiceTerms) -> str:
    """Run one consent through request, grant and delivery; return its id (the relying party's txn)."""
    with app.app_context(), get_db().unit_of_work() as uow:
        consent = consents.record_request(uow, client_id=client_id, terms=terms, now=clock.now())
        uow.commit()
        clock.advance(20)
        consents.grant(uow, consent.id, citizen_id=citizen.citizen_id, national_id=NATIONAL_ID,
                       optional_chosen=(), amr=citizen.amr, now=clock.now())  # fmt: skip
        uow.commit()
        clock.advance(3)
        claimed = consents.claim_for_delivery(uow, consent.id, national_id=NATIONAL_ID, now=clock.now())
        hashes = {d: hashlib.sha256(f"{consent.id}/{d}".encode()).hexdigest() for d in terms.datasets_required}
        consents.complete_delivery(uow, claimed, national_id=NATIONAL_ID, outcomes=dict.fromkeys(hashes, "ok"),
                                   document_hashes=hashes, now=clock.now())  # fmt: skip
        uow.commit()
        clock.advance(3600)
        return consent.id


@pytest.fixture
def cases(app: Flask, clock: FrozenClock, login_as: LoginAs) -> dict[str, str]:
    """Give one citizen two delivered consents with the bank (same service) and one with a school."""
    citizen = login_as(NATIONAL_ID, method="eid")
    with app.app_context(), get_db().unit_of_work() as uow:
        key_store(uow).rotate()
        for client_id, organisation in (("sandbox-bank-web", "sandbox-bank"), ("sandbox-school-web", "sandbox-school")):
            rp = TestRelyingParty(client_id=client_id, redirect_uri=f"https://{organisation}.example/cb")
            register_client(uow, clock, name=organisation, jwks=rp.jwks(), redirect_uris=[rp.redirect_uri],
                            sandbox=True, organisation_id=organisation, client_id=client_id)  # fmt: skip
    return {
        "bank-1": _delivered(app, clock, citizen, "sandbox-bank-web", TERMS),
        "bank-2": _delivered(app, clock, citizen, "sandbox-bank-web", TERMS),
        "school": _delivered(app, clock, citizen, "sandbox-school-web", SCHOOL_TERMS),
    }


def _public_entries(app: Flask) -> list[dict[str, Any]]:
    """Read the whole ledger as an outsider: a fresh client, the public routes only."""
    outsider = app.test_client()
    found: list[dict[str, Any]] = []
    while True:
        response = outsider.get(f"/ledger/entries?start={len(found)}&end={len(found) + 999}")
        if response.status_code == 400:  # past the end
            return found
        assert response.status_code == 200, response.json
        found.extend(item["entry"] for item in response.json["entries"])


def _values(value: Any, key: str = "") -> Iterator[tuple[str, Any]]:
    """Yield every scalar value in an entry with the top-level field it sits in."""
    if isinstance(value, dict):
        for name, inner in value.items():
            yield from _values(inner, key or name)
    elif isinstance(value, list):
        for inner in value:
            yield from _values(inner, key)
    elif value is not None:
        yield key, value


def _private_values(entries: list[dict[str, Any]]) -> set[Any]:
    """Return what the entries say beyond public names: the values a linker could look for elsewhere."""
    return {value for entry in entries for field, value in _values(entry) if field not in PUBLIC_FIELDS}


def _case(entries: list[dict[str, Any]], consent_id: str) -> list[dict[str, Any]]:
    found = [entry for entry in entries if entry["consent_id"] == consent_id]
    assert {e["event"] for e in found} == {"consent.requested", "consent.granted", "delivery.completed"}
    return found


def test_two_consents_of_one_citizen_share_only_public_names(app: Flask, cases: dict[str, str]) -> None:
    entries = _public_entries(app)
    first, second = _case(entries, cases["bank-1"]), _case(entries, cases["bank-2"])
    shared = {
        (field, value)
        for field, value in {pair for entry in first for pair in _values(entry)}
        & {pair for entry in second for pair in _values(entry)}
        if field not in PUBLIC_FIELDS
    }
    assert shared == set()
    # Not vacuous: both cases are about a subject, and within one case it is one commitment.
    assert len({e["subject"] for e in first if e["subject"]}) == 1
    assert len({e["subject"] for e in second if e["subject"]}) == 1


def test_a_bank_holding_its_txn_finds_nothing_else_about_the_citizen(app: Flask, cases: dict[str, str]) -> None:
    entries = _public_entries(app)
    txn = cases["bank-1"]
    known = _private_values(_case(entries, txn))
    assert txn in known
    # Every entry carrying anything the bank learnt from its own case is an entry of that case.
    linked = {entry["consent_id"] for entry in entries if known & _private_values([entry])}
    assert linked == {txn}
    # The citizen's other cases are in the log all the same.
    assert all(_case(entries, cases[name]) for name in ("bank-2", "school"))


def _commitment(national_id: str, salt: bytes) -> str:
    """DESIGN §6.3: b64url(SHA-256("mydata-subject-v1" || 0x00 || national_id || 0x00 || salt))."""
    digest = hashlib.sha256(b"mydata-subject-v1" + b"\x00" + national_id.encode("ascii") + b"\x00" + salt).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def test_the_history_gives_openings_that_recompute_each_commitment(
    app: Flask, client: FlaskClient, login_as: LoginAs, cases: dict[str, str]
) -> None:
    login_as(NATIONAL_ID, method="eid")  # the cases took hours: a fresh login
    history = client.get("/api/v1/me/history")
    assert history.status_code == 200, history.json
    events = history.json["events"]
    assert len(events) == 2 * len(cases)  # granted and delivered, per case
    public = {entry["seq"]: entry for entry in _public_entries(app)}
    salts: dict[str, bytes] = {}
    for event in events:
        entry = public[event["seq"]]
        assert entry["version"] == 2
        salt = _unb64url(event["opening"]["salt"])
        assert len(salt) == 32
        assert _commitment(NATIONAL_ID, salt) == entry["subject"] == event["subject"]
        assert _commitment("B123456780", salt) != entry["subject"]
        assert salts.setdefault(entry["consent_id"], salt) == salt  # one opening per case
    assert set(salts) == set(cases.values())
    assert len(set(salts.values())) == len(cases)  # a fresh salt for each case
