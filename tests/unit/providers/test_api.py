"""The catalogue's JSON API: operator bearer tokens, registration with reasons, the public catalogue."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from openapi_spec_validator import validate

from mydata.db import get_db
from providers import services
from providers.schemas import load_schema

from .conftest import OBJECT_SCHEMA, public_jwks

pytestmark = pytest.mark.db


@pytest.fixture
def token(app: Flask) -> str:
    """Issue an operator token."""
    with app.app_context(), get_db().unit_of_work() as uow:
        return services.issue_operator_token(uow, label="api test")[1]


@pytest.fixture
def operator(client: FlaskClient, token: str) -> Iterator[FlaskClient]:
    """Return a client that sends the operator token."""
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    return client


def agency_body(agency_id: str = "moi-test") -> dict[str, Any]:
    return {"id": agency_id, "name_zh": "內政部測試司", "name_en": "Test Department"}


def provider_body(**overrides: Any) -> dict[str, Any]:
    return {
        "id": "moi-test",
        "agency": "moi-test",
        "base_url": "https://moi.example/mydata",
        "jwks": public_jwks(),
    } | overrides


def dataset_body(**overrides: Any) -> dict[str, Any]:
    return {
        "id": "test.amount",
        "provider": "moi-test",
        "title_zh": "測試資料",
        "title_en": "Test data",
        "description_zh": "測試用。",
        "description_en": "For tests.",
        "schema": OBJECT_SCHEMA,
        "min_level": "low",
        "citizen_downloadable": True,
    } | overrides


@pytest.mark.parametrize("header", [None, "Basic b3A6b3A=", "Bearer "])
def test_operator_routes_need_a_bearer_token(client: FlaskClient, header: str | None) -> None:
    headers = {"Authorization": header} if header else {}
    response = client.post("/api/v1/agencies", json=agency_body(), headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="mydata-operator"'
    assert response.json["error"] == "unauthorized"
    assert "Authorization: Bearer" in response.json["error_description"]


def test_unknown_or_revoked_token_is_invalid_token(app: Flask, client: FlaskClient, token: str) -> None:
    response = client.get("/api/v1/providers", headers={"Authorization": "Bearer mdop_not-a-token"})
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
    assert response.json["error"] == "invalid_token"
    with app.app_context(), get_db().unit_of_work() as uow:
        token_id = services.list_operator_tokens(uow)[0].id
        services.revoke_operator_token(uow, token_id)
    assert client.get("/api/v1/providers", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_register_approve_and_publish(operator: FlaskClient, client: FlaskClient) -> None:
    assert operator.post("/api/v1/agencies", json=agency_body()).status_code == 201
    created = operator.post("/api/v1/providers", json=provider_body())
    assert created.status_code == 201
    assert created.headers["Location"] == "/api/v1/providers/moi-test"
    assert created.json["status"] == "pending"
    assert created.json["agency"] == "moi-test"
    dataset = operator.post("/api/v1/datasets", json=dataset_body())
    assert dataset.status_code == 201, dataset.json
    assert dataset.json["schema"] == OBJECT_SCHEMA
    assert dataset.json["schema_version"] == 1
    assert client.get("/api/v1/catalogue").json == {"datasets": [], "providers": []}

    assert operator.post("/api/v1/providers/moi-test/approve").json["status"] == "active"
    assert operator.post("/api/v1/datasets/test.amount/approve").json["status"] == "active"
    del client.environ_base["HTTP_AUTHORIZATION"]  # the catalogue is public
    catalogue = client.get("/api/v1/catalogue")
    assert catalogue.status_code == 200
    assert [d["id"] for d in catalogue.json["datasets"]] == ["test.amount"]
    assert catalogue.json["datasets"][0]["min_level"] == "low"
    assert catalogue.json["providers"][0]["jwks"]["keys"][0]["alg"] == "ES256"
    schema = client.get("/api/v1/catalogue/datasets/test.amount/schema").json
    assert schema == {"dataset": "test.amount", "schema_version": 1, "schema": OBJECT_SCHEMA}


def test_listing_showing_and_updating(operator: FlaskClient) -> None:
    operator.post("/api/v1/agencies", json=agency_body())
    operator.post("/api/v1/providers", json=provider_body())
    operator.post("/api/v1/datasets", json=dataset_body())
    assert [a["id"] for a in operator.get("/api/v1/agencies").json["agencies"]] == ["moi-test"]
    assert [p["id"] for p in operator.get("/api/v1/providers").json["providers"]] == ["moi-test"]
    assert [d["id"] for d in operator.get("/api/v1/datasets").json["datasets"]] == ["test.amount"]
    rotated = public_jwks(kid="next")
    patched = operator.patch("/api/v1/providers/moi-test", json={"jwks": rotated})
    assert patched.status_code == 200
    assert patched.json["jwks"]["keys"][0]["kid"] == "next"
    assert operator.get("/api/v1/providers/moi-test").json["jwks"]["keys"][0]["kid"] == "next"
    changed = operator.patch(
        "/api/v1/datasets/test.amount", json={"min_level": "high", "schema": load_schema("tax.income")}
    )
    assert changed.json["min_level"] == "high"
    assert changed.json["schema_version"] == 2
    assert operator.post("/api/v1/datasets/test.amount/suspend").json["status"] == "suspended"
    assert operator.post("/api/v1/providers/moi-test/suspend").json["status"] == "suspended"
    assert operator.get("/api/v1/datasets/test.amount").json["schema"]["$id"].endswith("tax.income.json")


@pytest.mark.parametrize(
    ("path", "body", "code", "reason"),
    [
        ("/api/v1/providers", provider_body(id="other", agency="no-such-agency"), "unknown_agency", "no-such-agency"),
        (
            "/api/v1/providers",
            provider_body(id="other", jwks={"keys": [{**public_jwks()["keys"][0], "d": "c2VjcmV0"}]}),
            "private_key_in_jwks",
            "private key material",
        ),
        ("/api/v1/providers", provider_body(id="other", jwks={"keys": []}), "invalid_jwks", "between 1 and 10"),
        ("/api/v1/providers", provider_body(id="other", base_url="ftp://x.example"), "invalid_base_url", "http(s)"),
        ("/api/v1/datasets", dataset_body(schema={"type": "objekt"}), "invalid_schema", "Not a valid JSON Schema"),
        ("/api/v1/datasets", dataset_body(provider="nobody"), "unknown_provider", "nobody"),
        ("/api/v1/datasets", dataset_body(min_level="extreme"), "invalid_request", ""),
        ("/api/v1/datasets", {"id": "x.y"}, "invalid_request", ""),
    ],
)
def test_registration_says_why_it_refuses(
    operator: FlaskClient, path: str, body: dict[str, Any], code: str, reason: str
) -> None:
    operator.post("/api/v1/agencies", json=agency_body())
    operator.post("/api/v1/providers", json=provider_body())
    response = operator.post(path, json=body)
    assert response.status_code == 400, response.json
    assert response.json["error"] == code
    assert reason in response.json["error_description"]


def test_marshmallow_errors_name_the_fields(operator: FlaskClient) -> None:
    response = operator.post("/api/v1/datasets", json={"id": "x.y", "min_level": "extreme", "surprise": 1})
    assert response.status_code == 400
    fields = response.json["fields"]
    assert {"provider", "min_level", "surprise"} <= set(fields)
    not_json = operator.post("/api/v1/agencies", data="id=x", content_type="application/x-www-form-urlencoded")
    assert not_json.status_code == 400
    assert "JSON object" in not_json.json["error_description"]


def test_conflicts_and_missing_things(operator: FlaskClient) -> None:
    operator.post("/api/v1/agencies", json=agency_body())
    again = operator.post("/api/v1/agencies", json=agency_body())
    assert again.status_code == 409
    assert again.json["error"] == "already_registered"
    assert operator.get("/api/v1/providers/nobody").status_code == 404
    assert operator.get("/api/v1/datasets/no.such").json["error"] == "dataset_not_found"
    assert operator.get("/api/v1/catalogue/datasets/no.such/schema").status_code == 404


def test_registration_accepts_plain_http_in_the_sandbox(operator: FlaskClient) -> None:
    operator.post("/api/v1/agencies", json=agency_body())
    response = operator.post("/api/v1/providers", json=provider_body(base_url="http://127.0.0.1:5001/moi-test"))
    assert response.status_code == 201


def test_openapi_documents_the_routes_and_the_operator_token(client: FlaskClient) -> None:
    document = client.get("/openapi.json").json
    validate(document)
    assert document["components"]["securitySchemes"]["operatorToken"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "Operator token: `mydata providers issue-operator-token`",
    }
    assert "security" not in document["paths"]["/api/v1/catalogue"]["get"]
    for path, method in [
        ("/api/v1/agencies", "post"),
        ("/api/v1/providers", "post"),
        ("/api/v1/providers/{provider_id}", "patch"),
        ("/api/v1/providers/{provider_id}/approve", "post"),
        ("/api/v1/datasets", "post"),
        ("/api/v1/datasets/{dataset_id}/suspend", "post"),
    ]:
        operation = document["paths"][path][method]
        assert operation["security"] == [{"operatorToken": []}]
        assert "401" in operation["responses"]
    body = document["paths"]["/api/v1/datasets"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body["$ref"].endswith("DatasetRegistration")
    assert json.dumps(document["components"]["schemas"]["DatasetRegistration"]).count("schema") >= 1


def test_production_refuses_plain_http_base_urls(production_app: Flask) -> None:
    with production_app.app_context(), get_db().unit_of_work() as uow:
        token = services.issue_operator_token(uow, label="production test")[1]
    operator = production_app.test_client()
    operator.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    assert operator.post("/api/v1/agencies", json=agency_body()).status_code == 201
    response = operator.post("/api/v1/providers", json=provider_body(base_url="http://127.0.0.1:5001/moi-test"))
    assert response.status_code == 400
    assert response.json["error"] == "insecure_base_url"
    assert "must use https" in response.json["error_description"]
    assert operator.post("/api/v1/providers", json=provider_body()).status_code == 201
