"""The relying-party console's management (issue 13): apply, clients (RFC 7591 checks), services, initial access tokens.

A member of one organisation never sees or changes another's: the tests hold two banks, and 王小明
is a developer of the test bank only.
"""

from __future__ import annotations

import io
import json
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from identity.oauth.models import OAuthClient
from identity.services import grant_role, staff_roles
from mydata.clock import FrozenClock
from mydata.db import get_db
from relying_parties import registration, services
from relying_parties.models import PENDING, Organisation, Service
from tests.factories.identity import LoginAs, form_token, make_citizen, text
from tests.factories.oauth import TestRelyingParty
from tests.unit.relying_parties.conftest import BANK, REDIRECT_URI, bearer, make_organisation, make_service

pytestmark = pytest.mark.db

DEVELOPER = "A123456789"  # 王小明
OTHER_BANK = "other-bank"


@pytest.fixture
def banks(app: Flask, clock: FrozenClock, catalogue: None) -> str:
    """Two approved banks with a service and a client each; 王小明 is a developer of the test bank only.

    Return the other bank's client id.
    """
    with app.app_context(), get_db().unit_of_work() as uow:
        make_organisation(uow)
        make_service(uow)
        make_organisation(uow, OTHER_BANK, registration_number="04595257")
        make_service(uow, OTHER_BANK, "mortgages")
        other = registration.register_organisation_client(
            uow,
            OTHER_BANK,
            name="Other bank app",
            jwks=TestRelyingParty(client_id="", redirect_uri=REDIRECT_URI).jwks(),
            redirect_uris=["https://other.example/cb"],
            sandbox=True,
        )
        citizen = make_citizen(uow, DEVELOPER, clock.now())
        grant_role(uow, citizen.id, "rp_developer", BANK, clock.now())
        return other.client_id


def post(client: FlaskClient, path: str, data: dict[str, Any], **kwargs: Any) -> TestResponse:
    """POST a console form with the CSRF token of the console's page."""
    return client.post(path, data={"csrf_token": form_token(client, "/me"), **data}, **kwargs)


def shown_secret(page: str, prefix: str) -> str:
    match = re.search(rf"({prefix}[A-Za-z0-9_-]+)", page)
    assert match, f"no {prefix} token on the page"
    return match.group(1)


def client_form(rp: TestRelyingParty, **changes: Any) -> dict[str, Any]:
    return {
        "client_name": "測試銀行 網路銀行",
        "redirect_uris": f"{REDIRECT_URI}\nhttps://bank.example/second",
        "jwks": json.dumps(rp.jwks()),
        **changes,
    }


# -- applying ---------------------------------------------------------------------------------------


def application_form(**changes: str) -> dict[str, str]:
    return {
        "id": "new-bank",
        "name_zh": "新銀行",
        "name_en": "New Bank",
        "type": "bank",
        "registration_number": "04595257",
        "contact_name": "林經理",
        "contact_email": "mydata@newbank.example",
        "contact_phone": "+886 2 2345 6789",
        **changes,
    }


def test_any_eid_account_may_open_the_application_form(
    app: Flask, client: FlaskClient, login_as: LoginAs, catalogue: None
) -> None:
    login_as("B223456782")
    for lang, words in (("en", "Apply as an organisation"), ("zh_Hant_TW", "申請成為服務提供者")):
        page = client.get(f"/console/rp/apply?lang={lang}")
        assert page.status_code == 200
        assert words in text(page)
        assert 'name="registration_number"' in text(page)


def test_the_application_form_needs_an_eid_login(client: FlaskClient, login_as: LoginAs, catalogue: None) -> None:
    answer = client.get("/console/rp/apply")
    assert answer.status_code == 303
    assert urlsplit(answer.headers["Location"]).path == "/login"
    login_as("B223456782", method="nhi_card")
    answer = client.get("/console/rp/apply")
    assert answer.status_code == 303
    assert parse_qs(urlsplit(answer.headers["Location"]).query)["level"] == ["high"]


def test_an_application_makes_a_pending_organisation_the_applicant_develops(
    app: Flask, client: FlaskClient, login_as: LoginAs, catalogue: None
) -> None:
    authentication = login_as("B223456782")
    answer = post(client, "/console/rp/apply?lang=en", application_form(registration_number=" 04595257 "))
    assert answer.status_code == 303
    assert answer.headers["Location"].endswith("/console/rp")
    with app.app_context(), get_db().unit_of_work() as uow:
        organisation = uow.session.get(Organisation, "new-bank")
        assert organisation is not None
        assert organisation.status == PENDING
        assert organisation.registration_number == "04595257"
        assert organisation.contacts == [
            {"name": "林經理", "email": "mydata@newbank.example", "phone": "+886 2 2345 6789"}
        ]
        roles = staff_roles(uow, authentication.citizen_id)
        assert [(r.role, r.organisation_id) for r in roles] == [("rp_developer", "new-bank")]
    page = text(client.get("/console/rp?lang=en"))
    assert "new-bank" in page
    assert "pending" in page.lower()


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"registration_number": "12345678"}, "registration_number"),
        ({"name_zh": ""}, "name_zh"),
        ({"name_en": "x" * 201}, "name_en"),
        ({"type": "casino"}, "type"),
        ({"id": "Not An Id"}, "id"),
        ({"contact_email": "nobody"}, "contact_email"),
        ({"contact_phone": "call me"}, "contact_phone"),
        ({"contact_name": ""}, "contact_name"),
    ],
)
def test_a_wrong_application_is_answered_with_the_field_to_fix(
    app: Flask, client: FlaskClient, login_as: LoginAs, catalogue: None, changes: dict[str, str], field: str
) -> None:
    login_as("B223456782")
    for lang in ("en", "zh_Hant_TW"):
        answer = post(client, f"/console/rp/apply?lang={lang}", application_form(**changes))
        assert answer.status_code == 400
        page = text(answer)
        # The error is tied to its field: the input says it is invalid and points at the message.
        assert re.search(rf'id="apply-{field}"[^>]*aria-invalid="true"', page, re.S) or re.search(
            rf'aria-invalid="true"[^>]*id="apply-{field}"', page, re.S
        ), page
        assert f'id="apply-{field}-error"' in page
    with app.app_context(), get_db().unit_of_work() as uow:
        assert uow.session.get(Organisation, "new-bank") is None


def test_the_number_check_is_explained_in_both_languages(
    client: FlaskClient, login_as: LoginAs, catalogue: None
) -> None:
    login_as("B223456782")
    en = text(post(client, "/console/rp/apply?lang=en", application_form(registration_number="12345678")))
    assert "not a valid unified business number" in en
    zh = text(post(client, "/console/rp/apply?lang=zh_Hant_TW", application_form(registration_number="12345678")))
    assert "統一編號" in zh
    assert "不正確" in zh


def test_applying_needs_a_fresh_login(
    app: Flask, client: FlaskClient, clock: FrozenClock, login_as: LoginAs, catalogue: None
) -> None:
    login_as("B223456782")
    token = form_token(client, "/me")
    clock.advance(16 * 60)
    answer = client.post("/console/rp/apply", data={"csrf_token": token, **application_form()})
    assert answer.status_code == 303
    assert parse_qs(urlsplit(answer.headers["Location"]).query)["prompt"] == ["login"]
    with app.app_context(), get_db().unit_of_work() as uow:
        assert uow.session.get(Organisation, "new-bank") is None


def test_an_account_with_an_organisation_cannot_apply_again(client: FlaskClient, login_as: LoginAs, banks: str) -> None:
    login_as(DEVELOPER)
    page = client.get("/console/rp/apply?lang=en")
    assert page.status_code == 409
    assert 'name="registration_number"' not in text(page)
    assert "already" in text(page)
    answer = post(client, "/console/rp/apply?lang=en", application_form())
    assert answer.status_code == 409


def test_an_id_taken_already_is_refused(client: FlaskClient, login_as: LoginAs, banks: str) -> None:
    login_as("B223456782")
    answer = post(client, "/console/rp/apply?lang=en", application_form(id=OTHER_BANK))
    assert answer.status_code == 409
    assert 'id="apply-id-error"' in text(answer)


# -- clients ----------------------------------------------------------------------------------------


def test_a_developer_registers_a_client_with_pasted_jwks_and_sees_its_token_once(
    app: Flask, client: FlaskClient, login_as: LoginAs, banks: str, issuer: str
) -> None:
    login_as(DEVELOPER)
    rp = TestRelyingParty(client_id="", redirect_uri=REDIRECT_URI)
    answer = post(client, "/console/rp/clients?lang=en", client_form(rp))
    assert answer.status_code == 201, text(answer)
    assert answer.headers["Cache-Control"].startswith("no-store")
    page = text(answer)
    assert 'role="status"' in page
    token = shown_secret(page, "mdrat_")
    client_id = shown_secret(page, "c_")
    with app.app_context(), get_db().unit_of_work() as uow:
        row = uow.session.get(OAuthClient, client_id)
        assert row is not None
        assert row.organisation_id == BANK
        assert row.redirect_uris == [REDIRECT_URI, "https://bank.example/second"]
    # The token is the client's registration access token (RFC 7592).
    assert client.get(f"/oauth/register/{client_id}", headers=bearer(token)).status_code == 200
    # Shown once: the list shows the client, not the token.
    listing = text(client.get("/console/rp/clients?lang=en"))
    assert client_id in listing
    assert token not in listing


def test_a_developer_registers_a_client_with_an_uploaded_jwks_file(
    app: Flask, client: FlaskClient, login_as: LoginAs, banks: str
) -> None:
    login_as(DEVELOPER)
    rp = TestRelyingParty(client_id="", redirect_uri=REDIRECT_URI)
    form: dict[str, Any] = client_form(rp, jwks="")
    form["jwks_file"] = (io.BytesIO(json.dumps(rp.jwks()).encode()), "jwks.json", "application/json")
    answer = post(client, "/console/rp/clients?lang=en", form, content_type="multipart/form-data")
    assert answer.status_code == 201, text(answer)
    client_id = shown_secret(text(answer), "c_")
    with app.app_context(), get_db().unit_of_work() as uow:
        row = uow.session.get(OAuthClient, client_id)
        assert row is not None
        assert row.jwks == rp.jwks()


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"redirect_uris": "http://bank.example/cb"}, "must use https"),
        ({"redirect_uris": ""}, "redirect_uris"),
        ({"jwks": "{not json"}, "JSON"),
        ({"jwks": ""}, "jwks is required"),
        ({"jwks": json.dumps({"keys": [{"kty": "EC", "kid": "x", "d": "secret"}]})}, "private key"),
        ({"client_name": ""}, "client_name"),
    ],
)
def test_a_client_is_refused_with_the_checks_of_rfc_7591(
    app: Flask, client: FlaskClient, login_as: LoginAs, banks: str, changes: dict[str, str], words: str
) -> None:
    login_as(DEVELOPER)
    rp = TestRelyingParty(client_id="", redirect_uri=REDIRECT_URI)
    for lang, lead in (("en", "The client was not registered"), ("zh_Hant_TW", "用戶端未註冊")):
        answer = post(client, f"/console/rp/clients?lang={lang}", client_form(rp, **changes))
        assert answer.status_code == 400
        page = text(answer)
        assert lead in page
        assert words in page
        assert 'role="alert"' in page
    with app.app_context(), get_db().unit_of_work() as uow:
        assert services.organisation_clients(uow, BANK) == []


def test_a_pending_organisation_registers_no_client(
    app: Flask, client: FlaskClient, clock: FrozenClock, login_as: LoginAs, banks: str
) -> None:
    with app.app_context(), get_db().unit_of_work() as uow:
        make_organisation(uow, "waiting-bank", status=PENDING, registration_number="53212534")
        citizen = make_citizen(uow, "B223456782", clock.now())
        grant_role(uow, citizen.id, "rp_developer", "waiting-bank", clock.now())
    login_as("B223456782")
    page = text(client.get("/console/rp/clients?lang=en"))
    assert "once an operator approves" in page
    assert 'name="redirect_uris"' not in page
    rp = TestRelyingParty(client_id="", redirect_uri=REDIRECT_URI)
    assert post(client, "/console/rp/clients?lang=en", client_form(rp)).status_code == 409


def registered_client(app: Flask, organisation: str = BANK) -> str:
    with app.app_context(), get_db().unit_of_work() as uow:
        found = registration.register_organisation_client(
            uow,
            organisation,
            name="Bank app",
            jwks=TestRelyingParty(client_id="", redirect_uri=REDIRECT_URI).jwks(),
            redirect_uris=[REDIRECT_URI],
            sandbox=True,
        )
        return found.client_id


def test_a_developer_edits_redirect_uris_and_keys_with_the_same_checks(
    app: Flask, client: FlaskClient, login_as: LoginAs, banks: str
) -> None:
    client_id = registered_client(app)
    login_as(DEVELOPER)
    page = client.get(f"/console/rp/clients/{client_id}?lang=en")
    assert page.status_code == 200
    assert REDIRECT_URI in text(page)
    new_keys = TestRelyingParty(client_id="", redirect_uri=REDIRECT_URI).jwks()
    form = {"redirect_uris": "https://bank.example/v2/callback", "jwks": json.dumps(new_keys)}
    answer = post(client, f"/console/rp/clients/{client_id}?lang=en", form)
    assert answer.status_code == 303
    with app.app_context(), get_db().unit_of_work() as uow:
        row = uow.session.get(OAuthClient, client_id)
        assert row is not None
        assert row.redirect_uris == ["https://bank.example/v2/callback"]
        assert row.jwks == new_keys
    refused = post(client, f"/console/rp/clients/{client_id}?lang=en", {**form, "redirect_uris": "ftp://x"})
    assert refused.status_code == 400
    assert "must be an absolute http(s) URL" in text(refused)
    with app.app_context(), get_db().unit_of_work() as uow:
        row = uow.session.get(OAuthClient, client_id)
        assert row is not None
        assert row.redirect_uris == ["https://bank.example/v2/callback"]


def test_a_new_registration_access_token_replaces_the_old_one(
    app: Flask, client: FlaskClient, login_as: LoginAs, banks: str
) -> None:
    client_id = registered_client(app)
    with app.app_context(), get_db().unit_of_work() as uow:
        old = registration.issue_registration_access_token(uow, client_id)
    login_as(DEVELOPER)
    answer = post(client, f"/console/rp/clients/{client_id}/token?lang=en", {})
    assert answer.status_code == 201
    assert answer.headers["Cache-Control"].startswith("no-store")
    new = shown_secret(text(answer), "mdrat_")
    assert client.get(f"/oauth/register/{client_id}", headers=bearer(new)).status_code == 200
    assert client.get(f"/oauth/register/{client_id}", headers=bearer(old)).status_code == 401


# -- services ---------------------------------------------------------------------------------------


def service_form(**changes: str) -> dict[str, str]:
    return {
        "name": "cards",
        "name_zh": "信用卡",
        "name_en": "Credit cards",
        "purpose_zh": "審核信用卡申請。",
        "purpose_en": "To assess a credit card application.",
        "purpose_code": "067",
        "retention_days": "180",
        "dataset-household.registration": "required",
        "dataset-tax.income": "optional",
        "dataset-tax.property": "",
        **changes,
    }


def test_a_developer_proposes_a_service_that_waits_for_approval(
    app: Flask, client: FlaskClient, login_as: LoginAs, banks: str
) -> None:
    login_as(DEVELOPER)
    page = text(client.get("/console/rp/services?lang=en"))
    assert "household.registration" in page  # the catalogue's datasets to choose from
    answer = post(client, "/console/rp/services?lang=en", service_form())
    assert answer.status_code == 303
    with app.app_context(), get_db().unit_of_work() as uow:
        service = uow.session.get(Service, f"{BANK}.cards")
        assert service is not None
        assert service.status == PENDING
        assert service.required_datasets == ["household.registration"]
        assert service.optional_datasets == ["tax.income"]
        assert service.retention_days == 180
        assert service.purpose_en == "To assess a credit card application."
    listing = text(client.get("/console/rp/services?lang=en"))
    assert f"{BANK}.cards" in listing
    assert "pending" in listing.lower()


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"dataset-household.registration": "", "dataset-tax.income": ""}, "datasets"),
        ({"retention_days": "0"}, "retention_days"),
        ({"retention_days": "many"}, "retention_days"),
        ({"purpose_zh": ""}, "purpose_zh"),
        ({"purpose_code": "1"}, "purpose_code"),
        ({"name": "Cards!"}, "name"),
        ({"name": "loans"}, "name"),  # taken already
    ],
)
def test_a_wrong_service_is_answered_with_the_field_to_fix(
    app: Flask, client: FlaskClient, login_as: LoginAs, banks: str, changes: dict[str, str], field: str
) -> None:
    login_as(DEVELOPER)
    for lang in ("en", "zh_Hant_TW"):
        answer = post(client, f"/console/rp/services?lang={lang}", service_form(**changes))
        assert answer.status_code in (400, 409)
        assert f'id="service-{field}-error"' in text(answer), text(answer)
    with app.app_context(), get_db().unit_of_work() as uow:
        assert uow.session.get(Service, f"{BANK}.cards") is None


# -- initial access tokens --------------------------------------------------------------------------


def test_a_developer_issues_an_initial_access_token_shown_once(
    client: FlaskClient, login_as: LoginAs, banks: str
) -> None:
    login_as(DEVELOPER)
    assert client.get("/console/rp/initial-access-token?lang=en").status_code == 200
    answer = post(client, "/console/rp/initial-access-token?lang=en", {})
    assert answer.status_code == 201
    assert answer.headers["Cache-Control"].startswith("no-store")
    token = shown_secret(text(answer), "mdiat_")
    own = client.get("/api/v1/organisation", headers=bearer(token))
    assert own.status_code == 200
    assert own.json["organisation"]["id"] == BANK
    assert token not in text(client.get("/console/rp/initial-access-token?lang=en"))


def test_issuing_a_token_needs_a_fresh_login(
    client: FlaskClient, clock: FrozenClock, login_as: LoginAs, banks: str
) -> None:
    login_as(DEVELOPER)
    token = form_token(client, "/me")
    clock.advance(16 * 60)
    answer = client.post("/console/rp/initial-access-token", data={"csrf_token": token})
    assert answer.status_code == 303
    assert parse_qs(urlsplit(answer.headers["Location"]).query)["prompt"] == ["login"]


def test_a_pending_organisation_gets_no_initial_access_token(
    app: Flask, client: FlaskClient, clock: FrozenClock, login_as: LoginAs, banks: str
) -> None:
    with app.app_context(), get_db().unit_of_work() as uow:
        make_organisation(uow, "waiting-bank", status=PENDING, registration_number="53212534")
        citizen = make_citizen(uow, "B223456782", clock.now())
        grant_role(uow, citizen.id, "rp_developer", "waiting-bank", clock.now())
    login_as("B223456782")
    answer = post(client, "/console/rp/initial-access-token?lang=en", {})
    assert answer.status_code == 409
    assert "mdiat_" not in text(answer)


# -- one organisation never sees or changes another's -------------------------------------------------


def test_a_developer_never_sees_or_changes_another_organisations_things(
    app: Flask, client: FlaskClient, login_as: LoginAs, banks: str
) -> None:
    other_client = banks
    login_as(DEVELOPER)
    for path in ("/console/rp/clients", "/console/rp/services", "/console/rp/initial-access-token"):
        page = text(client.get(f"{path}?lang=en"))
        assert OTHER_BANK not in page
        assert other_client not in page
        assert client.get(f"{path}?organisation={OTHER_BANK}").status_code == 403
        assert post(client, f"{path}?organisation={OTHER_BANK}", {}).status_code == 403
    assert client.get(f"/console/rp/clients/{other_client}").status_code == 404
    edit = {"redirect_uris": "https://evil.example/cb", "jwks": ""}
    assert post(client, f"/console/rp/clients/{other_client}", edit).status_code == 404
    assert post(client, f"/console/rp/clients/{other_client}/token", {}).status_code == 404
    assert post(client, "/console/rp/services", {**service_form(), "organisation": OTHER_BANK}).status_code == 403
    with app.app_context(), get_db().unit_of_work() as uow:
        row = uow.session.get(OAuthClient, other_client)
        assert row is not None
        assert row.redirect_uris == ["https://other.example/cb"]
        assert uow.session.get(Service, f"{OTHER_BANK}.cards") is None
