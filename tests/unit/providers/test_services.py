"""Catalogue rules: registration, approval, key rotation, the public catalogue, operator tokens."""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

import pytest
from sqlalchemy import select, text

from mydata.db import UnitOfWork
from providers import services
from providers.interfaces import (
    AlreadyRegistered,
    DatasetNotFound,
    InsecureBaseUrl,
    InvalidBaseUrl,
    InvalidInput,
    InvalidLevel,
    InvalidOperatorToken,
    InvalidSchema,
    MissingOperatorToken,
    PrivateKeyInJwks,
    ProviderNotFound,
    UnknownAgency,
    UnknownProvider,
)
from providers.models import Dataset, OperatorToken, Provider
from providers.schemas import DATASET_IDS, load_schema

from .conftest import OBJECT_SCHEMA, public_jwks

pytestmark = pytest.mark.db


def test_provider_is_registered_pending_with_a_normalised_base_url(provider: Provider) -> None:
    assert provider.status == "pending"
    assert provider.base_url == "https://provider.example/api"
    assert provider.agency.name_zh == "測試機關"
    assert set(provider.jwks["keys"][0]) == {"kty", "crv", "x", "y", "kid", "alg", "use"}


def test_unknown_agency_is_refused(uow: UnitOfWork) -> None:
    with pytest.raises(UnknownAgency, match="no-such-agency"):
        services.register_provider(
            uow,
            provider_id="p",
            agency_id="no-such-agency",
            base_url="https://p.example",
            jwks=public_jwks(),
            allow_http=False,
            actor="t",
        )


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("http://provider.example", InsecureBaseUrl),
        ("ftp://provider.example", InvalidBaseUrl),
        ("provider.example/path", InvalidBaseUrl),
        ("https://user:pw@provider.example", InvalidBaseUrl),
        ("https://provider.example/?q=1", InvalidBaseUrl),
        ("https://provider.example:99999", InvalidBaseUrl),
    ],
)
def test_base_url_must_be_https_outside_the_sandbox(url: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        services.check_base_url(url, allow_http=False)


def test_plain_http_is_allowed_in_the_sandbox() -> None:
    assert services.check_base_url("http://127.0.0.1:5000/sandbox/agencies/bli/", allow_http=True) == (
        "http://127.0.0.1:5000/sandbox/agencies/bli"
    )


def test_jwks_with_a_private_key_is_refused_and_nothing_is_written(uow: UnitOfWork, provider: Provider) -> None:
    leaked = copy.deepcopy(provider.jwks)
    leaked["keys"][0]["d"] = "c2VjcmV0"
    with pytest.raises(PrivateKeyInJwks):
        services.update_provider(uow, provider.id, jwks=leaked, allow_http=False, actor="t")
    uow.session.expire_all()
    assert "d" not in services.get_provider(uow, provider.id).jwks["keys"][0]


def test_duplicate_ids_are_conflicts(uow: UnitOfWork, provider: Provider, dataset: Dataset) -> None:
    with pytest.raises(AlreadyRegistered):
        services.register_agency(uow, agency_id="test-agency", name_zh="重複", name_en="Again", actor="t")
    with pytest.raises(AlreadyRegistered):
        services.register_provider(
            uow,
            provider_id=provider.id,
            agency_id="test-agency",
            base_url="https://x.example",
            jwks=public_jwks(),
            allow_http=False,
            actor="t",
        )
    with pytest.raises(AlreadyRegistered):
        register(uow, dataset_id=dataset.id)


def register(uow: UnitOfWork, **overrides: Any) -> Dataset:
    values: dict[str, Any] = {
        "dataset_id": "test.other",
        "provider_id": "test-provider",
        "title_zh": "其他",
        "title_en": "Other",
        "description_zh": "說明",
        "description_en": "Description",
        "json_schema": OBJECT_SCHEMA,
        "min_level": "low",
        "citizen_downloadable": False,
        "actor": "t",
    } | overrides
    return services.register_dataset(uow, **values)


@pytest.mark.parametrize(
    ("schema", "reason"),
    [
        ([], "JSON object"),
        ({"type": "objekt"}, "Not a valid JSON Schema"),
        ({"type": "object", "properties": {"a": {"minimum": "zero"}}}, "Not a valid JSON Schema"),
        ({"type": "array"}, '"type": "object"'),
        ({"$schema": "http://json-schema.org/draft-07/schema#", "type": "object"}, "draft 2020-12"),
        ({"type": "object", "properties": {"a": {"$ref": "https://evil.example/s.json"}}}, "Only local references"),
        ({"type": "object", "properties": {"a": {"$ref": "#/$defs/missing"}}}, "points at nothing"),
        ({"type": "object", "properties": {"a": {"$ref": "#nowhere"}}}, "points at nothing"),
    ],
)
def test_invalid_json_schema_is_refused_with_a_reason(
    uow: UnitOfWork, provider: Provider, schema: object, reason: str
) -> None:
    with pytest.raises(InvalidSchema, match=reason):
        register(uow, json_schema=schema)


def test_every_sandbox_schema_is_accepted() -> None:
    for dataset_id in DATASET_IDS:
        assert services.check_json_schema(load_schema(dataset_id))["type"] == "object"


def test_unknown_provider_bad_id_and_bad_level_are_refused(uow: UnitOfWork, provider: Provider) -> None:
    with pytest.raises(UnknownProvider):
        register(uow, provider_id="nobody")
    with pytest.raises(InvalidInput) as raised:
        register(uow, dataset_id="Not An Id")
    assert "id" in raised.value.extra["fields"]
    with pytest.raises(InvalidLevel):
        register(uow, min_level="extreme")
    with pytest.raises(InvalidInput):
        register(uow, title_zh="  ")


def test_a_new_schema_is_the_next_version_and_the_same_schema_is_not(uow: UnitOfWork, dataset: Dataset) -> None:
    assert (dataset.schema_version, dataset.schema_sha256) == (1, services.schema_digest(OBJECT_SCHEMA))
    services.update_dataset(uow, dataset.id, changes={"json_schema": copy.deepcopy(OBJECT_SCHEMA)}, actor="t")
    assert dataset.schema_version == 1
    wider = copy.deepcopy(OBJECT_SCHEMA) | {"description": "now with a description"}
    services.update_dataset(uow, dataset.id, changes={"json_schema": wider, "title_en": "Renamed"}, actor="t")
    assert dataset.schema_version == 2
    assert dataset.title_en == "Renamed"
    with pytest.raises(InvalidInput):
        services.update_dataset(uow, dataset.id, changes={"status": "active"}, actor="t")


def test_a_route_carries_its_schema_with_the_digest_of_that_schema(uow: UnitOfWork, dataset: Dataset) -> None:
    [route] = services.fetch_routes(uow, [dataset.id])
    assert (route.json_schema, route.schema_sha256) == (OBJECT_SCHEMA, services.schema_digest(OBJECT_SCHEMA))
    # A schema changed between the routes' two reads (another operator, another process): the route
    # holds the schema it read with the digest of that schema, never another version's digest.
    wider = copy.deepcopy(OBJECT_SCHEMA) | {"description": "a version this process has not seen"}
    uow.session.execute(
        text("UPDATE providers_dataset SET json_schema = :schema, schema_sha256 = :stale WHERE id = :id"),
        {"schema": json.dumps(wider), "stale": "0" * 64, "id": dataset.id},
    )
    [route] = services.fetch_routes(uow, [dataset.id])
    assert (route.json_schema, route.schema_sha256) == (wider, services.schema_digest(wider))
    [again] = services.fetch_routes(uow, [dataset.id])
    assert (again.json_schema, again.schema_sha256) == (wider, services.schema_digest(wider))


def test_catalogue_lists_only_active_datasets_of_active_providers(
    uow: UnitOfWork, provider: Provider, dataset: Dataset
) -> None:
    assert services.catalogue(uow).datasets == ()
    services.approve_dataset(uow, dataset.id, actor="t")
    assert services.catalogue(uow).datasets == ()  # its provider is still pending
    services.approve_provider(uow, provider.id, actor="t")
    catalogue = services.catalogue(uow)
    assert [d.id for d in catalogue.datasets] == ["test.amount"]
    assert catalogue.datasets[0].agency_name_zh == "測試機關"
    assert [p.id for p in catalogue.providers] == ["test-provider"]
    assert catalogue.providers[0].jwks == provider.jwks
    assert services.published_dataset(uow, dataset.id).json_schema == OBJECT_SCHEMA
    services.suspend_provider(uow, provider.id, actor="t")
    assert services.catalogue(uow) == services.Catalogue(datasets=(), providers=())
    with pytest.raises(DatasetNotFound):
        services.published_dataset(uow, dataset.id)


def test_missing_things_are_not_found(uow: UnitOfWork) -> None:
    with pytest.raises(ProviderNotFound):
        services.approve_provider(uow, "nobody", actor="t")
    with pytest.raises(DatasetNotFound):
        services.dataset_entry(uow, "no.such")


def test_operator_token_is_stored_as_its_sha256_only(uow: UnitOfWork) -> None:
    token, secret = services.issue_operator_token(uow, label="ops on call")
    assert secret.startswith("mdop_")
    assert len(secret) > 40
    stored = uow.session.execute(text("SELECT * FROM providers_operator_token")).one()._mapping
    assert secret not in str(dict(stored))
    assert stored["token_sha256"] == hashlib.sha256(secret.encode()).hexdigest()
    assert services.authenticate_operator(uow, secret).id == token.id


def test_unknown_missing_and_revoked_tokens_are_refused(uow: UnitOfWork) -> None:
    token, secret = services.issue_operator_token(uow, label="temporary")
    with pytest.raises(MissingOperatorToken):
        services.authenticate_operator(uow, None)
    with pytest.raises(InvalidOperatorToken):
        services.authenticate_operator(uow, secret + "x")
    services.revoke_operator_token(uow, token.id)
    with pytest.raises(InvalidOperatorToken):
        services.authenticate_operator(uow, secret)
    assert uow.session.scalars(select(OperatorToken)).one().revoked_at is not None
