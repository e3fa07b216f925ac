"""`mydata sandbox seed`: the six personas, their roles, cards, CA and phones; idempotent."""

from __future__ import annotations

import datetime as dt
import hashlib
import stat
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from flask import Flask
from sqlalchemy import select

from identity import contacts, eid
from identity.interfaces import WrongPin
from identity.models import AccountSettings, Citizen, MobileDevice, NhiCard, StaffRole
from identity.sandbox.card_reader import VirtualCardReader
from identity.sandbox.personas import PERSONAS
from mydata.app import create_app
from mydata.cli import seed
from mydata.config import Settings
from mydata.db import get_db
from tests.factories.identity import production_eid_settings

pytestmark = pytest.mark.db


def snapshot(app: Flask, folder: Path) -> tuple[object, ...]:
    """Everything seeding writes: rows and files."""
    with app.app_context(), get_db().unit_of_work() as uow:
        rows = (
            sorted((c.id, c.national_id, c.name, c.birth_date) for c in uow.session.scalars(select(Citizen))),
            sorted((r.citizen_id, r.role, r.organisation_id) for r in uow.session.scalars(select(StaffRole))),
            sorted((c.card_number, c.citizen_id, c.password_hash) for c in uow.session.scalars(select(NhiCard))),
            sorted((d.id, d.citizen_id, str(d.public_jwk)) for d in uow.session.scalars(select(MobileDevice))),
            sorted((a.citizen_id, a.email, a.updated_at) for a in uow.session.scalars(select(AccountSettings))),
        )
    files = sorted(
        (str(p.relative_to(folder)), hashlib.sha256(p.read_bytes()).hexdigest()) for p in folder.rglob("*.*")
    )
    return (*rows, files)


@pytest.fixture
def seeded(app: Flask, settings: Settings) -> Path:
    with app.app_context():
        seed(app)
    return Path(settings.instance_path) / "sandbox"


def test_six_personas_with_valid_ids_names_and_plausible_birth_dates(app: Flask, seeded: Path) -> None:
    with app.app_context(), get_db().unit_of_work() as uow:
        citizens = {c.national_id: (c.name, c.birth_date) for c in uow.session.scalars(select(Citizen))}
    expected = {
        "A123456789": "王小明",
        "B223456782": "林美華",
        "F135792464": "陳志強",
        "E224680132": "張雅婷",
        "H120000004": "黃建國",
        "L200000002": "趙曉雯",
    }
    assert {k: name for k, (name, _) in citizens.items()} == expected
    birth = citizens["E224680132"][1]
    assert birth is not None
    assert 2026 - birth.year == 25  # persona 4 is 25 in 2026


def test_staff_roles(app: Flask, seeded: Path) -> None:
    with app.app_context(), get_db().unit_of_work() as uow:
        roles = {
            (national_id, role, org)
            for national_id, role, org in uow.session.execute(
                select(Citizen.national_id, StaffRole.role, StaffRole.organisation_id).join(
                    StaffRole, StaffRole.citizen_id == Citizen.id
                )
            )
        }
    assert roles == {
        ("A123456789", "rp_developer", "sandbox-bank"),
        ("F135792464", "agency_officer", "moi-household"),
        ("E224680132", "counter", "sandbox-bank"),
        ("L200000002", "operator", "platform"),
    }


def test_nhi_cards_carry_the_sandbox_password(app: Flask, seeded: Path) -> None:
    with app.app_context(), get_db().unit_of_work() as uow:
        cards = {c.card_number: c.password_hash for c in uow.session.scalars(select(NhiCard))}
    assert sorted(cards) == [p.nhi_card for p in PERSONAS]
    assert PasswordHasher().verify(cards["000011110004"], "Sandbox-2026")


def test_every_persona_has_an_eid_card_that_verifies_against_the_sandbox_ca(app: Flask, seeded: Path) -> None:
    # The sandbox platform's own trust: the seeded CA, its citizen policy and its published CRL.
    reader = VirtualCardReader(seeded / "eid")
    trust = app.extensions["identity.eid_trust"]
    anchors = trust.anchors()
    assert len(anchors.roots) == 1
    assert len(anchors.intermediates) == 1
    assert len(anchors.issuing) == 1
    assert (seeded / "eid" / "ca.crl").is_file()
    now = dt.datetime.now(dt.UTC)
    for persona in PERSONAS:
        card = reader.sign(persona.national_id, "123456", "a nonce")
        verified = eid.verify_card(card, "a nonce", anchors, trust.rules, trust.revocation, now)
        assert (verified.national_id, verified.name) == (persona.national_id, persona.name)
    with pytest.raises(WrongPin):
        reader.sign("A123456789", "654321", "a nonce")
    for key_file in (seeded / "eid").rglob("*.key"):
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


def test_personas_one_to_four_have_a_phone(app: Flask, seeded: Path) -> None:
    with app.app_context(), get_db().unit_of_work() as uow:
        with_phone = set(
            uow.session.scalars(select(Citizen.national_id).join(MobileDevice, MobileDevice.citizen_id == Citizen.id))
        )
    assert with_phone == {"A123456789", "B223456782", "F135792464", "E224680132"}


def test_every_persona_has_a_confirmed_example_address_without_their_national_id(app: Flask, seeded: Path) -> None:
    with app.app_context(), get_db().unit_of_work() as uow:
        citizens = {c.national_id: c.id for c in uow.session.scalars(select(Citizen))}
        found = {
            p.national_id: contacts.notification_contact(uow, citizens[p.national_id], "delivery") for p in PERSONAS
        }
    for persona in PERSONAS:
        contact = found[persona.national_id]
        assert contact is not None
        assert contact.email == persona.email
        assert contact.email.endswith("@example.com")  # RFC 2606: never a real mailbox
        assert persona.national_id.lower() not in contact.email.lower()
        assert contact.name == persona.name


def test_seeding_twice_changes_nothing(app: Flask, seeded: Path) -> None:
    before = snapshot(app, seeded)
    with app.app_context():
        seed(app)
    assert snapshot(app, seeded) == before


def test_demo_notes_name_the_personas_and_the_login_page(app: Flask) -> None:
    notes = "\n".join(app.extensions["mydata.demo_notes"]).format(base="http://127.0.0.1:5000")
    assert "王小明  A123456789  NHI card 000011110001" in notes
    assert "eID PIN 123456, NHI registration password Sandbox-2026" in notes
    assert "http://127.0.0.1:5000/login" in notes


def test_outside_the_sandbox_the_simulators_do_not_exist(settings: Settings, tmp_path: Path) -> None:
    production = create_app(
        settings.replace(
            sandbox=False,
            issuer="https://platform.test",
            **production_eid_settings(tmp_path / "eid"),
            # Never contacted: no route this test calls is rate limited.
            ratelimit_storage_uri="redis://127.0.0.1:6379/15",
        )
    )
    client = production.test_client()
    assert client.post("/sandbox/mobile-id/approve", json={"national_id": "A123456789"}).status_code == 404
    assert client.get("/sandbox/mobile-id").status_code == 404
    assert client.post("/sandbox/card-reader/sign", json={}).status_code == 404
    assert "identity.card_reader" not in production.extensions
    get_db(production).engine.dispose()
