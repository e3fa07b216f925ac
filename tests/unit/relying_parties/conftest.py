"""Fixtures for the relying_parties package: the sandbox catalogue, organisations, services, tokens, clients."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import sessionmaker

from mydata.app import create_app
from mydata.clock import FrozenClock
from mydata.config import Settings
from mydata.db import UnitOfWork, get_db
from mydata.keys import key_store
from providers import services as providers_services
from providers.sandbox.seed import seed_sandbox_catalogue
from relying_parties import services
from relying_parties.models import APPROVED, Organisation, Service
from tests.factories.identity import production_eid_settings
from tests.factories.oauth import TestRelyingParty

BANK = "test-bank"
REDIRECT_URI = "https://bank.example/mydata/callback"


def contact() -> dict[str, str]:
    """Return a contact person."""
    return {"name": "王經理", "email": "mydata@bank.example", "phone": "+886 2 2345 6789"}


def application(organisation_id: str = BANK, **changes: Any) -> dict[str, Any]:
    """Return an organisation's application body."""
    return {
        "id": organisation_id,
        "name_zh": "測試銀行",
        "name_en": "Test Bank",
        "type": "bank",
        "registration_number": "22099131",
        "contacts": [contact()],
        **changes,
    }


def make_organisation(
    uow: UnitOfWork, organisation_id: str = BANK, status: str = APPROVED, registration_number: str = "22099131"
) -> Organisation:
    """Register an organisation (approved unless told otherwise)."""
    body = application(organisation_id, registration_number=registration_number)
    return services.register_organisation(
        uow,
        organisation_id=organisation_id,
        name_zh=body["name_zh"],
        name_en=body["name_en"],
        organisation_type=body["type"],
        registration_number=body["registration_number"],
        contacts=body["contacts"],
        actor="test",
        status=status,
    )


def make_service(
    uow: UnitOfWork,
    organisation_id: str = BANK,
    name: str = "loans",
    *,
    status: str = APPROVED,
    required: tuple[str, ...] = ("household.registration", "tax.income"),
    optional: tuple[str, ...] = ("tax.property",),
    level: str | None = None,
) -> Service:
    """Define a service of an organisation (approved unless told otherwise)."""
    return services.define_service(
        uow,
        organisation_id=organisation_id,
        service_id=f"{organisation_id}.{name}",
        name_zh="房屋貸款",
        name_en="Mortgage",
        purpose_zh="審核房屋貸款申請。",
        purpose_en="To assess a mortgage application.",
        purpose_code="088",
        required_datasets=required,
        optional_datasets=optional,
        retention_days=365,
        level=level,
        actor="test",
        status=status,
    )


def service_definition(organisation_id: str = BANK, **changes: Any) -> dict[str, Any]:
    """Return a service definition body."""
    return {
        "id": f"{organisation_id}.loans",
        "name_zh": "房屋貸款",
        "name_en": "Mortgage",
        "purpose_zh": "審核房屋貸款申請。",
        "purpose_en": "To assess a mortgage application.",
        "purpose_code": "088",
        "required_datasets": ["household.registration", "tax.income"],
        "optional_datasets": ["tax.property"],
        "retention_days": 365,
        **changes,
    }


def bearer(token: str) -> dict[str, str]:
    """Return the Authorization header of a bearer token."""
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def issuer(app: Flask) -> str:
    """Return the issuer identifier; the test client's URLs are under it."""
    return str(app.config["MYDATA_ISSUER"])


@pytest.fixture
def uow(app: Flask) -> Iterator[UnitOfWork]:
    """Return a unit of work inside an application context."""
    with app.app_context(), get_db().unit_of_work() as unit:
        yield unit


@pytest.fixture
def catalogue(app: Flask, tmp_path: Path) -> None:
    """Register the sandbox agencies' catalogue (the five datasets) and a platform signing key."""
    with app.app_context(), get_db().unit_of_work() as unit:
        seed_sandbox_catalogue(unit, keys_dir=tmp_path / "agency-keys", agencies_url="http://localhost/agencies")
        key_store(unit).rotate()


@pytest.fixture
def operator_token(app: Flask) -> str:
    """Return a live operator API token (the catalogue's, ADR 0002)."""
    with app.app_context(), get_db().unit_of_work() as unit:
        _token, secret = providers_services.issue_operator_token(unit, label="test operator")
    return secret


@pytest.fixture
def bank(app: Flask, catalogue: None) -> str:
    """Register the approved test bank with an approved service; return its initial access token."""
    with app.app_context(), get_db().unit_of_work() as unit:
        make_organisation(unit)
        make_service(unit)
        _token, secret = services.issue_initial_access_token(unit, BANK, actor="test")
    return secret


@pytest.fixture
def rp() -> TestRelyingParty:
    """Return a relying party's keys (not registered yet)."""
    return TestRelyingParty(client_id="", redirect_uri=REDIRECT_URI)


def client_metadata(rp: TestRelyingParty, **changes: Any) -> dict[str, Any]:
    """Return RFC 7591 client metadata for *rp*; a None change removes the member."""
    metadata = {"client_name": "測試銀行 網路銀行", "redirect_uris": [rp.redirect_uri], "jwks": rp.jwks(), **changes}
    return {k: v for k, v in metadata.items() if v is not None}


def register(client: FlaskClient, token: str, metadata: dict[str, Any]) -> Any:
    """POST client metadata to the registration endpoint with an initial access token."""
    return client.post("/oauth/register", json=metadata, headers=bearer(token))


@pytest.fixture
def production_app(settings: Settings, clock: FrozenClock, db_connection: object, tmp_path: Path) -> Iterator[Flask]:
    """Return an application with sandbox mode off, sharing the test's rolled-back transaction."""
    production = settings.replace(
        sandbox=False,
        **production_eid_settings(tmp_path),
        issuer="https://platform.test",
        secret_key="s" * 48,
        # Never contacted: no route these tests call is rate limited.
        ratelimit_storage_uri="redis://127.0.0.1:6379/15",
    )
    application = create_app(production, clock_=clock)
    application.config.update(TESTING=True)
    database = get_db(application)
    database.session_factory = sessionmaker(
        bind=db_connection, join_transaction_mode="create_savepoint", expire_on_commit=False
    )
    yield application
    database.engine.dispose()


@pytest.fixture
def production_bank(production_app: Flask) -> str:
    """Register the approved test bank on the production app; return its initial access token."""
    with production_app.app_context(), get_db().unit_of_work() as unit:
        make_organisation(unit)
        _token, secret = services.issue_initial_access_token(unit, BANK, actor="test")
    return secret
