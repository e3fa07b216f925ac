"""A JSON body nested too deep for the parser is bad input (400), on every JSON API (issue 10 item 15)."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from mydata.db import get_db
from providers import services as providers_services

#: Deeper than CPython's recursion limit: ``json.loads`` raises RecursionError, not ValueError.
DEEP = "[" * 50_000 + "]" * 50_000


@pytest.fixture
def operator_token(app: Flask) -> str:
    with app.app_context(), get_db().unit_of_work() as uow:
        return providers_services.issue_operator_token(uow, label="json bodies test")[1]


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/organisations",  # an organisation applies (no credentials)
        "/api/v1/mobile-id/approvals",  # a phone approves a login (no credentials)
        "/api/v1/agencies",  # the catalogue's operator API
        "/api/v1/providers",
        "/api/v1/datasets",
    ],
)
def test_a_body_nested_too_deep_is_refused_as_bad_input(client: FlaskClient, operator_token: str, path: str) -> None:
    response = client.post(
        path, data=DEEP, content_type="application/json", headers={"Authorization": f"Bearer {operator_token}"}
    )
    assert response.status_code == 400, response.get_data(as_text=True)[:300]
    assert response.json is not None
    assert response.json["error"]
