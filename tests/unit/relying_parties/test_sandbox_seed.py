"""`mydata sandbox seed`: the sandbox bank and school, their services, clients and key files."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from flask import Flask
from joserfc import jwe
from joserfc.jwk import ECKey

from identity.oauth.models import OAuthClient
from mydata.db import UnitOfWork, get_db
from relying_parties import services
from relying_parties.models import APPROVED, Organisation, Service
from relying_parties.sandbox.keys import client_keys_dir, key_file, load_client_keys
from relying_parties.sandbox.seed import seed_sandbox_relying_parties

pytestmark = pytest.mark.db


def seed(app: Flask, issuer: str = "http://localhost") -> None:
    with app.app_context(), get_db().unit_of_work() as uow:
        seed_sandbox_relying_parties(uow, keys_dir=keys(app), issuer=issuer)


def keys(app: Flask) -> Path:
    return client_keys_dir(Path(app.instance_path))


def snapshot(uow: UnitOfWork) -> list[object]:
    rows: list[object] = []
    for model in (Organisation, Service, OAuthClient):
        for row in uow.session.query(model).all():
            rows.append({c.name: getattr(row, c.key) for c in row.__table__.columns})  # type: ignore[attr-defined]
    return rows


def test_seeding_creates_the_bank_and_the_school_and_is_idempotent(app: Flask, catalogue: None) -> None:
    seed(app)
    with app.app_context(), get_db().unit_of_work() as uow:
        bank = services.get_organisation(uow, "sandbox-bank")
        school = services.get_organisation(uow, "sandbox-school")
        assert (bank.name_zh, bank.type, bank.status) == ("沙盒銀行", "bank", APPROVED)
        assert (school.name_zh, school.type, school.status) == ("沙盒高中", "school", APPROVED)
        card = services.get_service(uow, "sandbox-bank.credit-card")
        assert card.name_zh == "信用卡線上申辦"
        assert card.required_datasets == ["household.registration", "tax.income", "labor.insurance"]
        assert card.optional_datasets == []
        waiver = services.get_service(uow, "sandbox-school.tuition-waiver")
        assert waiver.name_en == "Tuition waiver for low-income households"
        assert waiver.required_datasets == ["household.registration", "tax.income"]
        assert waiver.optional_datasets == ["tax.property"]
        assert {card.status, waiver.status} == {APPROVED}
        assert {card.level, waiver.level} == {"substantial"}
        bank_web = uow.session.get(OAuthClient, "sandbox-bank-web")
        assert bank_web is not None
        assert bank_web.organisation_id == "sandbox-bank"
        assert bank_web.redirect_uris == ["http://localhost/sandbox/bank/callback"]
        school_web = uow.session.get(OAuthClient, "sandbox-school-web")
        assert school_web is not None
        assert school_web.redirect_uris == ["http://localhost/sandbox/school/callback"]
        before = snapshot(uow)
    seed(app)
    with app.app_context(), get_db().unit_of_work() as uow:
        assert snapshot(uow) == before


def test_key_files_are_private_and_hold_the_registered_keys(app: Flask, catalogue: None) -> None:
    seed(app)
    for organisation, client_id in (("sandbox-bank", "sandbox-bank-web"), ("sandbox-school", "sandbox-school-web")):
        path = key_file(keys(app), organisation)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        document = json.loads(path.read_text())
        assert [(k["use"], k["alg"], k["crv"]) for k in document["keys"]] == [
            ("sig", "ES256", "P-256"),
            ("enc", "ECDH-ES+A256KW", "P-256"),
        ]
        assert all("d" in k for k in document["keys"])
        loaded = load_client_keys(keys(app), organisation)
        assert loaded is not None
        with app.app_context(), get_db().unit_of_work() as uow:
            registered = uow.session.get(OAuthClient, client_id)
            assert registered is not None
            assert registered.jwks == loaded.public_jwks()
            assert not any("d" in k for k in registered.jwks["keys"])
            # What the platform encrypts to this client's key, the sandbox RP decrypts with its file.
            public = ECKey.import_key(services.client_encryption_key(uow, client_id))
        token = jwe.encrypt_compact({"alg": "ECDH-ES+A256KW", "enc": "A256GCM"}, b"package", public)
        assert jwe.decrypt_compact(token, loaded.encryption_key).plaintext == b"package"


def test_redirect_uris_and_keys_follow_the_issuer_and_the_key_files(app: Flask, catalogue: None) -> None:
    seed(app)
    key_file(keys(app), "sandbox-school").unlink()
    seed(app, issuer="http://127.0.0.1:8000")
    with app.app_context(), get_db().unit_of_work() as uow:
        bank_web = uow.session.get(OAuthClient, "sandbox-bank-web")
        school_web = uow.session.get(OAuthClient, "sandbox-school-web")
        assert bank_web is not None
        assert school_web is not None
        assert bank_web.redirect_uris == ["http://127.0.0.1:8000/sandbox/bank/callback"]
        new_keys = load_client_keys(keys(app), "sandbox-school")
        assert new_keys is not None
        assert school_web.jwks == new_keys.public_jwks()


def test_operators_decisions_survive_reseeding(app: Flask, catalogue: None) -> None:
    seed(app)
    with app.app_context(), get_db().unit_of_work() as uow:
        services.suspend_service(uow, "sandbox-bank.credit-card", actor="operator")
    seed(app)
    with app.app_context(), get_db().unit_of_work() as uow:
        assert services.get_service(uow, "sandbox-bank.credit-card").status == "suspended"


def test_the_seeding_step_runs_after_the_catalogue_and_the_demo_names_the_start_pages(app: Flask) -> None:
    names = [name for name, _seeder in app.extensions["mydata.seeders"]]
    assert names.index("sandbox relying parties, services and clients") > names.index(
        "sandbox agencies, providers and datasets"
    )
    notes = "\n".join(app.extensions["mydata.demo_notes"]).format(base="http://127.0.0.1:5000")
    assert "http://127.0.0.1:5000/sandbox/bank/" in notes
    assert "http://127.0.0.1:5000/sandbox/school/" in notes
    assert "mydata rp issue-token sandbox-bank" in notes
    assert "http://127.0.0.1:5000/counter (張雅婷 E224680132" in notes
