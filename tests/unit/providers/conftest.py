"""Fixtures for the providers package: a unit of work in an app context, keys, a registered provider."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from flask import Flask
from jwt.algorithms import ECAlgorithm
from sqlalchemy.orm import sessionmaker

from mydata.app import create_app
from mydata.clock import FrozenClock
from mydata.config import Settings
from mydata.db import UnitOfWork, get_db
from providers import services
from providers.models import Dataset, Provider
from tests.factories.identity import production_eid_settings

OBJECT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["amount"],
    "properties": {"amount": {"$ref": "#/$defs/money"}},
    "$defs": {"money": {"type": "integer", "minimum": 0}},
}


def public_jwks(kid: str = "test-key-1") -> dict[str, Any]:
    """Return a JWKS with one fresh public EC P-256 key."""
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    return {"keys": [{**json.loads(ECAlgorithm.to_jwk(key)), "kid": kid}]}


@pytest.fixture
def uow(app: Flask) -> Iterator[UnitOfWork]:
    """Return a unit of work inside an application context."""
    with app.app_context(), get_db().unit_of_work() as unit:
        yield unit


@pytest.fixture
def provider(uow: UnitOfWork) -> Provider:
    """Register an agency and its pending provider."""
    services.register_agency(uow, agency_id="test-agency", name_zh="測試機關", name_en="Test Agency", actor="test")
    return services.register_provider(
        uow,
        provider_id="test-provider",
        agency_id="test-agency",
        base_url="https://provider.example/api/",
        jwks=public_jwks(),
        allow_http=False,
        actor="test",
    )


@pytest.fixture
def dataset(uow: UnitOfWork, provider: Provider) -> Dataset:
    """Register a pending dataset of the test provider."""
    return services.register_dataset(
        uow,
        dataset_id="test.amount",
        provider_id=provider.id,
        title_zh="測試資料",
        title_en="Test data",
        description_zh="測試用。",
        description_en="For tests.",
        json_schema=OBJECT_SCHEMA,
        min_level="substantial",
        citizen_downloadable=True,
        actor="test",
    )


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
