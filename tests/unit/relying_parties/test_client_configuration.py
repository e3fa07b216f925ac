"""RFC 7592 client configuration at the registration_client_uri: read, update, delete with its access token."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from identity.oauth.models import OAuthClient
from mydata.db import get_db
from relying_parties import services
from tests.factories.oauth import TestRelyingParty

from .conftest import BANK, REDIRECT_URI, bearer, client_metadata, register

pytestmark = pytest.mark.db


def registered(client: FlaskClient, token: str, rp: TestRelyingParty) -> dict[str, Any]:
    response = register(client, token, client_metadata(rp))
    assert response.status_code == 201, response.json
    body: dict[str, Any] = response.json
    return body


def path_of(body: dict[str, Any], issuer: str) -> str:
    uri = str(body["registration_client_uri"])
    assert uri.startswith(issuer.rstrip("/") + "/oauth/register/")
    return uri[len(issuer.rstrip("/")) :]


def test_registration_answers_a_registration_access_token_and_the_client_configuration_uri(
    client: FlaskClient, bank: str, rp: TestRelyingParty, issuer: str
) -> None:
    body = registered(client, bank, rp)
    assert body["registration_access_token"].startswith("mdrat_")
    assert body["registration_client_uri"] == f"{issuer.rstrip('/')}/oauth/register/{body['client_id']}"


def test_the_client_reads_its_registration(client: FlaskClient, bank: str, rp: TestRelyingParty, issuer: str) -> None:
    body = registered(client, bank, rp)
    answer = client.get(path_of(body, issuer), headers=bearer(body["registration_access_token"]))
    assert answer.status_code == 200, answer.json
    assert answer.headers["Cache-Control"] == "no-store"
    assert answer.json["client_id"] == body["client_id"]
    assert answer.json["redirect_uris"] == [REDIRECT_URI]
    assert answer.json["registration_client_uri"] == body["registration_client_uri"]
    # The token is not repeated when it has not changed (RFC 7592 §3).
    assert "registration_access_token" not in answer.json


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer mdrat_wrong"}, {"Authorization": "Basic eA=="}])
def test_a_missing_or_wrong_token_is_refused_with_401(
    client: FlaskClient, bank: str, rp: TestRelyingParty, issuer: str, headers: dict[str, str]
) -> None:
    body = registered(client, bank, rp)
    path = path_of(body, issuer)
    for method in ("get", "put", "delete"):
        answer = getattr(client, method)(path, headers=headers, json={**client_metadata(rp), "client_id": "x"})
        assert answer.status_code == 401, (method, answer.json)
        assert answer.headers["WWW-Authenticate"].startswith('Bearer realm="mydata-client-configuration"')
        assert answer.json["error"] in ("unauthorized", "invalid_token")


def test_another_clients_token_is_refused(client: FlaskClient, bank: str, rp: TestRelyingParty, issuer: str) -> None:
    first = registered(client, bank, rp)
    second = registered(client, bank, TestRelyingParty(client_id="", redirect_uri=REDIRECT_URI))
    answer = client.get(path_of(first, issuer), headers=bearer(second["registration_access_token"]))
    assert answer.status_code == 401
    assert answer.json["error"] == "invalid_token"
    # The initial access token is not a registration access token either.
    assert client.get(path_of(first, issuer), headers=bearer(bank)).status_code == 401


def test_an_update_replaces_the_metadata_with_the_same_checks_as_registration(
    app: Flask, client: FlaskClient, bank: str, rp: TestRelyingParty, issuer: str
) -> None:
    body = registered(client, bank, rp)
    path, token = path_of(body, issuer), body["registration_access_token"]
    changed = {**client_metadata(rp), "client_id": body["client_id"], "client_name": "新名稱"}
    changed["redirect_uris"] = ["https://bank.example/new/callback"]
    answer = client.put(path, json=changed, headers=bearer(token))
    assert answer.status_code == 200, answer.json
    assert answer.json["client_name"] == "新名稱"
    assert answer.json["redirect_uris"] == ["https://bank.example/new/callback"]
    with app.app_context(), get_db().unit_of_work() as uow:
        row = uow.session.get(OAuthClient, body["client_id"])
        assert row is not None
        assert row.redirect_uris == ["https://bank.example/new/callback"]
        assert row.name == "新名稱"
    # Refused as registration refuses: http redirect URI outside the sandbox's loopback, no encryption key.
    for bad, words in (
        ({"redirect_uris": ["http://bank.example/cb"]}, "must use https"),
        ({"jwks": {"keys": [k for k in rp.jwks()["keys"] if k.get("use") != "enc"]}}, "encryption key"),
        ({"token_endpoint_auth_method": "client_secret_basic"}, "private_key_jwt"),
        ({"jwks_uri": "https://bank.example/jwks"}, "jwks_uri"),
    ):
        refused = client.put(path, json={**changed, **bad}, headers=bearer(token))
        assert refused.status_code == 400, bad
        assert refused.json["error"] in ("invalid_client_metadata", "invalid_redirect_uri")
        assert words in refused.json["error_description"]
    assert client.get(path, headers=bearer(token)).json["client_name"] == "新名稱"


def test_an_update_must_name_the_same_client_and_not_set_the_token(
    client: FlaskClient, bank: str, rp: TestRelyingParty, issuer: str
) -> None:
    body = registered(client, bank, rp)
    path, token = path_of(body, issuer), body["registration_access_token"]
    for bad in (
        client_metadata(rp),  # no client_id (RFC 7592 §2.2: MUST be included)
        {**client_metadata(rp), "client_id": "c_another"},
        {**client_metadata(rp), "client_id": body["client_id"], "registration_access_token": "mdrat_mine"},
    ):
        answer = client.put(path, json=bad, headers=bearer(token))
        assert answer.status_code == 400
        assert answer.json["error"] == "invalid_client_metadata"
    assert client.put(path, data="not json", headers=bearer(token)).status_code == 400


def test_delete_retires_the_client_and_its_token(
    app: Flask, client: FlaskClient, bank: str, rp: TestRelyingParty, issuer: str
) -> None:
    body = registered(client, bank, rp)
    path, token = path_of(body, issuer), body["registration_access_token"]
    answer = client.delete(path, headers=bearer(token))
    assert answer.status_code == 204
    assert answer.get_data() == b""
    assert client.get(path, headers=bearer(token)).status_code == 401
    with app.app_context(), get_db().unit_of_work() as uow:
        row = uow.session.get(OAuthClient, body["client_id"])
        assert row is not None
        assert row.status == "deleted"
        assert services.organisation_clients(uow, BANK) == []
        # Approving the organisation again (after a suspension) does not bring it back.
        services.suspend_organisation(uow, BANK, actor="test")
        services.approve_organisation(uow, BANK, actor="test")
        assert uow.session.get(OAuthClient, body["client_id"]).status == "deleted"  # type: ignore[union-attr]


def test_a_suspended_organisations_clients_cannot_be_configured(
    app: Flask, client: FlaskClient, bank: str, rp: TestRelyingParty, issuer: str
) -> None:
    body = registered(client, bank, rp)
    with app.app_context(), get_db().unit_of_work() as uow:
        services.suspend_organisation(uow, BANK, actor="test")
    answer = client.get(path_of(body, issuer), headers=bearer(body["registration_access_token"]))
    assert answer.status_code == 401
    assert answer.json["error"] == "invalid_token"


def test_the_client_configuration_endpoints_are_in_the_openapi_document(client: FlaskClient) -> None:
    paths = client.get("/openapi.json").json["paths"]
    operations = paths["/oauth/register/{client_id}"]
    assert set(operations) >= {"get", "put", "delete"}
    for method in ("get", "put", "delete"):
        assert "401" in operations[method]["responses"]
    assert "400" in operations["put"]["responses"]
