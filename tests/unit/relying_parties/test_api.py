"""The onboarding JSON API: applying, operator approval (token or staff session), services, /openapi.json."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from identity.services import grant_role
from mydata.clock import FrozenClock
from mydata.db import get_db
from relying_parties import services
from tests.factories.identity import LoginAs, form_token

from .conftest import BANK, application, bearer, client_metadata, register, service_definition

pytestmark = pytest.mark.db


def test_the_onboarding_lifecycle_through_the_api(client: FlaskClient, operator_token: str, catalogue: None) -> None:
    applied = client.post("/api/v1/organisations", json=application())
    assert applied.status_code == 201, applied.json
    assert applied.json["status"] == "pending"
    assert applied.headers["Location"] == f"/api/v1/organisations/{BANK}"
    operator = bearer(operator_token)

    pending = client.get("/api/v1/organisations?status=pending", headers=operator).json["organisations"]
    assert [o["id"] for o in pending] == [BANK]
    refused = client.post(f"/api/v1/organisations/{BANK}/initial-access-token", headers=operator)
    assert refused.status_code == 409
    assert refused.json["error"] == "organisation_not_approved"

    approved = client.post(f"/api/v1/organisations/{BANK}/approve", headers=operator)
    assert approved.json["status"] == "approved"
    assert approved.json["approved_at"]
    issued = client.post(f"/api/v1/organisations/{BANK}/initial-access-token", headers=operator)
    assert issued.status_code == 201
    assert issued.headers["Cache-Control"] == "no-store"
    token = issued.json["initial_access_token"]

    defined = client.post("/api/v1/organisation/services", json=service_definition(), headers=bearer(token))
    assert defined.status_code == 201, defined.json
    assert defined.json["status"] == "pending"
    assert defined.json["level"] == "substantial"
    assert defined.json["organisation"] == BANK
    waiting = client.get("/api/v1/services?status=pending", headers=operator).json["services"]
    assert [s["id"] for s in waiting] == [f"{BANK}.loans"]
    assert client.post(f"/api/v1/services/{BANK}.loans/approve", headers=operator).json["status"] == "approved"

    overview = client.get("/api/v1/organisation", headers=bearer(token)).json
    assert overview["organisation"]["id"] == BANK
    assert [s["status"] for s in overview["services"]] == ["approved"]
    assert overview["clients"] == []

    suspended = client.post(f"/api/v1/organisations/{BANK}/suspend", headers=operator)
    assert suspended.json["status"] == "suspended"
    assert client.get("/api/v1/organisation", headers=bearer(token)).status_code == 401
    assert client.post(f"/api/v1/services/{BANK}.loans/suspend", headers=operator).json["status"] == "suspended"


def test_an_application_is_checked(client: FlaskClient) -> None:
    response = client.post("/api/v1/organisations", json=application(registration_number="22099132"))
    assert response.status_code == 400
    assert response.json["error"] == "invalid_registration_number"
    response = client.post("/api/v1/organisations", json=application(contacts=[{"name": "x"}], type="casino"))
    assert response.status_code == 400
    assert set(response.json["fields"]) == {"contacts", "type"}
    assert client.post("/api/v1/organisations", data="x").status_code == 400
    assert client.post("/api/v1/organisations", json=application()).status_code == 201
    assert client.post("/api/v1/organisations", json=application()).status_code == 409


def test_applications_are_rate_limited(client: FlaskClient) -> None:
    statuses = [client.post("/api/v1/organisations", json={}).status_code for _ in range(11)]
    assert statuses[:10] == [400] * 10
    assert statuses[10] == 429


def test_a_service_naming_what_is_not_in_the_catalogue_is_refused(client: FlaskClient, bank: str) -> None:
    body = service_definition(id=f"{BANK}.cards", required_datasets=["household.registration", "health.records"])
    response = client.post("/api/v1/organisation/services", json=body, headers=bearer(bank))
    assert response.status_code == 400
    assert response.json["error"] == "unknown_dataset"
    assert "health.records" in response.json["error_description"]
    other = client.post(
        "/api/v1/organisation/services", json=service_definition(id="other-bank.cards"), headers=bearer(bank)
    )
    assert other.status_code == 400
    assert "test-bank.<name>" in other.json["fields"]["id"][0]


# -- operator credentials -------------------------------------------------------------------------


def test_operator_routes_need_an_operator(client: FlaskClient, bank: str) -> None:
    response = client.post(f"/api/v1/organisations/{BANK}/approve")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="mydata-operator"'
    wrong = client.get("/api/v1/organisations", headers=bearer("mdop_wrong"))
    assert wrong.status_code == 401
    assert 'error="invalid_token"' in wrong.headers["WWW-Authenticate"]
    # An organisation's own token is not an operator's.
    assert client.get("/api/v1/organisations", headers=bearer(bank)).status_code == 401


def test_a_logged_in_operator_acts_with_the_csrf_token(
    app: Flask, client: FlaskClient, catalogue: None, login_as: LoginAs, clock: FrozenClock
) -> None:
    operator = login_as("L200000002")  # 趙曉雯, the sandbox operator
    with app.app_context(), get_db().unit_of_work() as uow:
        grant_role(uow, operator.citizen_id, "operator", "platform", clock.now())
    csrf = form_token(client, "/me")
    client.post("/api/v1/organisations", json=application())
    assert client.get("/api/v1/organisations").status_code == 200
    refused = client.post(f"/api/v1/organisations/{BANK}/approve")
    assert refused.status_code == 400  # the session cookie alone could be a cross-site request
    approved = client.post(f"/api/v1/organisations/{BANK}/approve", headers={"X-CSRFToken": csrf})
    assert approved.status_code == 200
    assert approved.json["status"] == "approved"


def test_a_logged_in_citizen_without_the_role_is_forbidden(client: FlaskClient, login_as: LoginAs) -> None:
    login_as("A123456789")
    response = client.get("/api/v1/organisations")
    assert response.status_code == 403
    assert response.json["error"] == "forbidden"


def test_unknown_organisations_and_services_are_404(client: FlaskClient, operator_token: str) -> None:
    operator = bearer(operator_token)
    assert client.get("/api/v1/organisations/nobody", headers=operator).json["error"] == "organisation_not_found"
    assert client.post("/api/v1/services/nobody.x/approve", headers=operator).json["error"] == "service_not_found"


def test_the_organisation_sees_its_registered_clients(client: FlaskClient, bank: str, rp: Any) -> None:
    client_id = register(client, bank, client_metadata(rp)).json["client_id"]
    clients = client.get("/api/v1/organisation", headers=bearer(bank)).json["clients"]
    assert [c["client_id"] for c in clients] == [client_id]
    assert clients[0]["redirect_uris"] == [rp.redirect_uri]


def test_the_routes_are_in_the_openapi_document(client: FlaskClient) -> None:
    document = client.get("/openapi.json").json
    paths = document["paths"]
    assert "post" in paths["/oauth/register"]
    assert paths["/oauth/register"]["post"]["security"] == [{"initialAccessToken": []}]
    assert "post" in paths["/api/v1/organisations"]
    assert "get" in paths["/api/v1/organisations"]
    assert "/api/v1/organisations/{organisation_id}/initial-access-token" in paths
    assert "/api/v1/organisation/services" in paths
    assert {"operatorToken", "staffSession", "initialAccessToken"} <= set(document["components"]["securitySchemes"])
    schemas = document["components"]["schemas"]
    assert {"ClientMetadata", "ClientInformation", "OrganisationApplication", "ServiceDefinition"} <= set(schemas)


def test_services_are_listed_for_operators(app: Flask, client: FlaskClient, bank: str, operator_token: str) -> None:
    listed = client.get("/api/v1/services", headers=bearer(operator_token)).json["services"]
    assert [(s["id"], s["required_datasets"], s["optional_datasets"]) for s in listed] == [
        (f"{BANK}.loans", ["household.registration", "tax.income"], ["tax.property"])
    ]
    with app.app_context(), get_db().unit_of_work() as uow:
        assert services.get_service(uow, f"{BANK}.loans").retention_days == 365
