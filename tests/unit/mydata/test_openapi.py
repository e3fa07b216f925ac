"""/openapi.json documents every JSON route, its errors with the error schema, and what the routes really answer."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from flask_limiter.util import get_qualified_name
from jsonschema import Draft202012Validator

from mydata.db import get_db
from mydata.errors import API_PREFIXES
from mydata.limits import limiter
from mydata.openapi import build_spec, example_of
from providers import services as providers_services

#: The routes that answer pages, redirects, form posts or DER rather than JSON. Every
#: other route is a JSON route and must be in /openapi.json; a new route must be added here or documented.
NON_JSON_ROUTES = {
    "web.index",
    # The staff consoles (issue 13): pages; their JSON APIs are documented.
    "console_home.index",
    "console_operator.index",
    "console_operator.organisations",
    "console_operator.services",
    "console_operator.providers",
    "console_operator.datasets",
    "console_operator.decide",
    "console_operator.confirm",
    "console_operator.audit",
    "console_operator.ledger_status",
    "console_operator.keys",
    "console_operator.rotate",
    "console_agency.index",
    "console_rp.index",
    "console_operator_statistics.index",
    "console_rp_transactions.index",
    # The agency console and the operator's review of schema versions (issue 13).
    "console_agency.new_provider",
    "console_agency.provider",
    "console_agency.rotate_keys",
    "console_agency.new_dataset",
    "console_agency.dataset",
    "console_agency.edit_dataset",
    "console_agency.propose_schema",
    "console_agency.health",
    "console_agency.usage",
    "console_operator_schemas.index",
    "console_operator_schemas.approve",
    "console_operator_schemas.reject",
    "console_rp.clients",
    "console_rp.client",
    "console_rp.client_token",
    "console_rp.services_page",
    "console_rp.initial_access_token",
    "console_rp_apply.apply",
    "static",
    "identity.login",
    "identity.login_eid",
    "identity.login_mobile",
    "identity.mobile_wait",
    "identity.mobile_check",
    "identity.login_nhi",
    "identity.logout",
    # The citizen's portal (issue 11); the consent receipt downloads as application/jose.
    "portal.me",
    "portal.my_consents",
    "portal.confirm_revoke",
    "portal.revoke",
    "portal.receipt",
    "identity_sandbox.phone",
    "identity_sandbox.phone_approve",
    "oauth.authorize",
    "oauth.interaction",
    "relying_parties_console.organisations",
    "relying_parties_console.confirm",
    "data.my_data",
    "data.fetch_data",
    # The downloads answer a JSON document among others: a file for the citizen, not an API.
    "data.download_file",
    "verify.document",
    "verify.compare",
    # The usage history page (its ?format=json export is the page's file download; the API is /api/v1/me/history),
    # an entry's verification page, and its consent receipt (application/jose).
    "history.index",
    "history.entry",
    "history.receipt",
    # The sandbox CA's revocation answers are DER (application/pkix-crl, application/ocsp-response).
    "identity_sandbox.eid_crl",
    "identity_sandbox.eid_ocsp",
    # Notifications (issue 11): the sandbox outbox, account settings and the email confirmation link.
    "mail_sandbox.sandbox_outbox",
    "account_settings.settings",
    "account_settings.confirm_email",
    # The clerk's counter pages (issue 12): the code, the confirmation code, the data and its PDF.
    "counter_desk.entry",
    "counter_desk.claim",
    "counter_desk.use",
    "counter_desk.confirm",
    "counter_desk.data",
    "counter_desk.pdf_file",
    # The citizen's counter page (issue 12); its status answers an HTML fragment for the page's status region.
    "my_counter.choose",
    "my_counter.create",
    "my_counter.page",
    "my_counter.status",
    "my_counter.cancel",
    # The API reference (issue 13): the page that renders /openapi.json, Swagger UI's files and their licence.
    "api_reference.page",
    "api_reference.asset",
}
ERROR_REF = "#/components/schemas/Error"
#: Statuses at or above 400 whose body is not an error: the health check's 503 is its report, for load balancers.
REPORTS = {("get", "/healthz", "503")}
_ARG = re.compile(r"<(?:[a-z_]+:)?([a-z_]+)>")


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """Return every (method, path, operation) of the document."""
    return [(method, path, op) for path, ops in document["paths"].items() for method, op in ops.items()]


def validator(document: dict[str, Any], schema: dict[str, Any]) -> Draft202012Validator:
    """Return a JSON Schema validator of *schema* that resolves the document's $refs."""
    return Draft202012Validator({**schema, "components": document["components"]})


def test_every_json_route_is_documented(app: Flask) -> None:
    document = build_spec(app)
    documented = {(method, path) for method, path, _op in operations(document)}
    missing = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint in NON_JSON_ROUTES:
            continue
        path = _ARG.sub(r"{\1}", rule.rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            if (method.lower(), path) not in documented:
                missing.append(f"{method} {rule.rule} ({rule.endpoint})")
    assert missing == []


def test_the_browser_routes_answer_no_json(app: Flask, client: FlaskClient) -> None:
    # The list above is not a way around the documentation: each of its routes answers a page, a redirect or DER.
    rules = [rule for rule in app.url_map.iter_rules() if rule.endpoint in NON_JSON_ROUTES]
    assert {rule.endpoint for rule in rules} == NON_JSON_ROUTES
    for rule in rules:
        path = _ARG.sub("x", rule.rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            response = client.open(path, method=method)
            if response.status_code >= 400 and path.startswith(API_PREFIXES):
                continue  # an error (unknown id, no CSRF token) takes the form of its path
            assert response.mimetype != "application/json", f"{method} {path}"


def test_every_error_response_is_documented_with_the_error_schema(app: Flask) -> None:
    document = build_spec(app)
    wrong = []
    for method, path, op in operations(document):
        responses = op["responses"]
        for status, response in responses.items():
            if int(status) >= 400 and (method, path, status) not in REPORTS:
                schema = response.get("content", {}).get("application/json", {}).get("schema", {})
                target = document["components"]["schemas"].get(schema.get("$ref", "").rsplit("/", 1)[-1], {})
                if schema.get("$ref") != ERROR_REF and "error" not in target.get("required", []):
                    wrong.append(f"{method} {path} {status}: not an error body")
        expected = set()
        if "requestBody" in op or any(p["in"] == "query" for p in op.get("parameters", [])):
            expected.add("400")  # a body or a query that does not load
        if op.get("security"):
            expected.add("401")
        if any(p["in"] == "path" for p in op.get("parameters", [])):
            expected.add("404")
        view = app.view_functions[_endpoint(app, method, path)]
        with app.app_context():  # a limit may read its rate from the app's config
            if limiter.limit_manager.decorated_limits(get_qualified_name(view)):
                expected.add("429")
        wrong += [f"{method} {path} {status}: not documented" for status in sorted(expected - set(responses))]
    assert wrong == []


def _endpoint(app: Flask, method: str, path: str) -> str:
    return next(
        rule.endpoint
        for rule in app.url_map.iter_rules()
        if _ARG.sub(r"{\1}", rule.rule) == path and method.upper() in (rule.methods or ())
    )


def test_the_citizen_api_declares_its_session(app: Flask) -> None:
    document = build_spec(app)
    citizen = [op for _m, path, op in operations(document) if path.startswith("/api/v1/me/")]
    assert citizen
    assert all(op.get("security") == [{"citizenSession": []}] for op in citizen)
    assert document["components"]["securitySchemes"]["citizenSession"]["in"] == "cookie"


def test_the_discovery_documents_meet_their_schema(app: Flask, client: FlaskClient) -> None:
    document = build_spec(app)
    for path in ("/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"):
        schema = document["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
        body = client.get(path).json
        assert list(validator(document, schema).iter_errors(body)) == [], path
        assert body["pushed_authorization_request_endpoint"].endswith("/oauth/par")


@pytest.mark.db
def test_a_400_naming_the_fields_to_fix_meets_the_error_schema(app: Flask, client: FlaskClient) -> None:
    with app.app_context(), get_db().unit_of_work() as uow:
        token = providers_services.issue_operator_token(uow, label="openapi test")[1]
    response = client.post("/api/v1/agencies", json={"id": "x"}, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 400
    assert response.json["fields"]["name_zh"] == ["Missing data for required field."]
    document = build_spec(app)
    schema = document["paths"]["/api/v1/agencies"]["post"]["responses"]["400"]["content"]["application/json"]
    assert list(validator(document, schema["schema"]).iter_errors(response.json)) == []
    # The schema still refuses what an error body never holds.
    assert list(validator(document, schema["schema"]).iter_errors({**response.json, "trace": "..."}))


def test_the_openapi_document_describes_itself(client: FlaskClient) -> None:
    document = client.get("/openapi.json").json
    assert document["paths"]["/openapi.json"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]


def media_types(op: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """Return every (where, content type, media type object) of an operation: its body, then each answer."""
    found = [("request body", ctype, media) for ctype, media in op.get("requestBody", {}).get("content", {}).items()]
    for status, response in op["responses"].items():
        found += [(status, ctype, media) for ctype, media in response.get("content", {}).items()]
    return found


def test_every_request_body_and_answer_has_an_example(app: Flask) -> None:
    # Success answers and bodies from the schemas' field examples; error answers as the kernel words them,
    # or (409, 410, OAuth) as the route gives them.
    document = build_spec(app)
    missing = []
    for method, path, op in operations(document):
        missing += [
            f"{method} {path} {where} {ctype}" for where, ctype, media in media_types(op) if "example" not in media
        ]
    assert missing == []


def test_every_example_meets_its_schema(app: Flask) -> None:
    document = build_spec(app)
    wrong, checked = [], 0
    for method, path, op in operations(document):
        for where, ctype, media in media_types(op):
            if "example" in media and "schema" in media:
                checked += 1
                errors = [e.message for e in validator(document, media["schema"]).iter_errors(media["example"])]
                if errors:
                    wrong.append(f"{method} {path} {where} {ctype}: {errors}")
    assert wrong == []
    assert checked > 100  # bodies, answers and the error answers the kernel words itself


def test_a_generic_error_answer_shows_what_the_kernel_answers(app: Flask, client: FlaskClient) -> None:
    document = build_spec(app)
    not_found = document["paths"]["/api/v1/catalogue/datasets/{dataset_id}/schema"]["get"]["responses"]["404"]
    assert not_found["content"]["application/json"]["example"]["error"].endswith("not_found")
    # A werkzeug 404 of an API path, worded by the kernel, has the same form.
    answer = client.get("/api/v1/no-such-thing")
    assert answer.status_code == 404
    assert set(answer.json) == {"error", "error_description"}


def test_the_delivery_answer_is_a_compact_jwe(app: Flask) -> None:
    document = build_spec(app)
    ok = document["paths"]["/api/v1/delivery"]["get"]["responses"]["200"]
    jose = ok["content"]["application/jose"]
    assert jose["schema"]["type"] == "string"
    assert jose["example"].count(".") == 4  # header.key.iv.ciphertext.tag (RFC 7516, 7.1)


def test_an_example_made_from_a_schema_meets_its_limits() -> None:
    components = {"Item": {"type": "object", "properties": {"n": {"type": "integer", "minimum": 3}}, "required": ["n"]}}
    schema = {
        "type": "object",
        "properties": {
            "code": {"type": "string", "minLength": 10, "maxLength": 12},
            "kind": {"type": ["string", "null"], "enum": ["b", "a"]},
            "items": {"type": "array", "items": {"$ref": "#/components/schemas/Item"}, "minItems": 2},
            "when": {"type": "string", "format": "date-time"},
            "flags": {"type": "object", "additionalProperties": {"type": "boolean"}},
            "given": {"type": "string", "pattern": "^[0-9]{3}$", "example": "067"},
        },
        "required": ["code", "kind", "items", "when", "flags", "given"],
        "additionalProperties": False,
    }
    value = example_of(schema, components)
    assert list(Draft202012Validator({**schema, "components": {"schemas": components}}).iter_errors(value)) == []
    assert value["items"] == [{"n": 3}, {"n": 3}]
    assert (value["kind"], value["given"]) == ("b", "067")
