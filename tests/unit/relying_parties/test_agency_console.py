"""The agency console (issue 13) and the operator's review of schema versions.

An agency officer of moi-household registers providers and datasets, edits them, proposes schema
versions and rotates keys; none of it reaches another agency's providers or datasets. A proposed
schema stays unpublished until an operator approves it; a rejected one never is.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from consent import consents
from consent.consents import ServiceTerms
from identity import sessions
from identity.services import grant_role
from mydata import decisions
from mydata.clock import FrozenClock
from mydata.clock import clock as app_clock
from mydata.db import get_db
from providers import services as providers_services
from providers.models import ACTIVE, PENDING
from tests.factories.identity import LoginAs, make_citizen, text
from tests.factories.oauth import TestRelyingParty
from tests.unit.providers.conftest import OBJECT_SCHEMA, public_jwks
from tests.unit.relying_parties.conftest import client_metadata, register

pytestmark = pytest.mark.db

OFFICER = "F135792464"  # 陳志強, agency_officer of moi-household
OPERATOR = "L200000002"  # 趙曉雯
OURS = "household.registration"
THEIRS = "tax.income"  # mof-fia's


def csrf(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found is not None, page
    return found.group(1)


def grant(app: Flask, clock: FrozenClock, national_id: str, role: str, scope: str) -> None:
    with app.app_context(), get_db().unit_of_work() as uow:
        citizen = make_citizen(uow, national_id, clock.now())
        grant_role(uow, citizen.id, role, scope, clock.now())


def token_of(client: FlaskClient, path: str = "/console/agency/datasets/new") -> str:
    page = client.get(path)
    assert page.status_code == 200, text(page)
    return csrf(page.get_data(as_text=True))


def as_officer(app: Flask, client: FlaskClient, clock: FrozenClock, login_as: LoginAs) -> str:
    grant(app, clock, OFFICER, "agency_officer", "moi-household")
    login_as(OFFICER)
    return token_of(client)


def new_dataset_form(token: str, **changes: Any) -> dict[str, Any]:
    return {
        "csrf_token": token,
        "provider": "moi-household",
        "id": "household.marriage",
        "title_zh": "婚姻狀況",
        "title_en": "Marital status",
        "description_zh": "本人的婚姻狀況。",
        "description_en": "The person's marital status.",
        "min_level": "substantial",
        "citizen_downloadable": "yes",
        "schema": json.dumps(OBJECT_SCHEMA),
        **changes,
    }


def wider_schema() -> dict[str, Any]:
    schema = copy.deepcopy(OBJECT_SCHEMA)
    schema["properties"]["currency"] = {"type": "string"}
    return schema


def propose(client: FlaskClient, token: str, schema: object, dataset: str = OURS) -> Any:
    return client.post(
        f"/console/agency/datasets/{dataset}/schema", data={"csrf_token": token, "schema": json.dumps(schema)}
    )


def published(app: Flask, dataset_id: str) -> tuple[int, str, dict[str, Any]]:
    with app.app_context(), get_db().unit_of_work() as uow:
        dataset = providers_services.get_dataset(uow, dataset_id)
        return dataset.schema_version, dataset.schema_sha256, dict(dataset.json_schema)


# -- what the officer sees ------------------------------------------------------------------------


def test_the_officer_sees_the_agencys_datasets_and_not_anothers(
    app: Flask, client: FlaskClient, clock: FrozenClock, login_as: LoginAs, catalogue: None
) -> None:
    as_officer(app, client, clock, login_as)
    page = text(client.get("/console/agency?lang=en"))
    assert OURS in page
    assert THEIRS not in page
    assert "mof-fia" not in page
    ours = client.get(f"/console/agency/datasets/{OURS}?lang=en")
    assert ours.status_code == 200
    assert "Propose this schema as a new version" in text(ours)
    assert client.get(f"/console/agency/datasets/{THEIRS}").status_code == 404
    assert client.get("/console/agency/datasets/no.such").status_code == 404
    assert client.get("/console/agency/providers/moi-household").status_code == 200
    assert client.get("/console/agency/providers/mof-fia").status_code == 404


def test_another_agencys_dataset_and_provider_cannot_be_changed(
    app: Flask, client: FlaskClient, clock: FrozenClock, login_as: LoginAs, catalogue: None
) -> None:
    token = as_officer(app, client, clock, login_as)
    before = published(app, THEIRS)
    assert propose(client, token, wider_schema(), THEIRS).status_code == 404
    edit = client.post(
        f"/console/agency/datasets/{THEIRS}", data={"csrf_token": token, "title_en": "Mine now", "min_level": "low"}
    )
    assert edit.status_code == 404
    keys = client.post("/console/agency/providers/mof-fia/keys", data={"csrf_token": token, "jwks": "{}"})
    assert keys.status_code == 404
    # Nor may a provider be registered for, or a dataset attached to, another agency.
    for_them = client.post(
        "/console/agency/providers/new",
        data={
            "csrf_token": token,
            "agency": "mof-fia",
            "id": "mof-new",
            "base_url": "https://x.example",
            "jwks": '{"keys": []}',
        },
    )
    assert for_them.status_code == 400
    attached = client.post("/console/agency/datasets/new", data=new_dataset_form(token, provider="mof-fia"))
    assert attached.status_code == 400
    assert published(app, THEIRS) == before
    with app.app_context(), get_db().unit_of_work() as uow:
        assert providers_services.get_dataset(uow, THEIRS).title_en != "Mine now"
        assert all(p.id != "mof-new" for p in providers_services.list_providers(uow))
        assert all(d.id != "household.marriage" for d in providers_services.list_datasets(uow))


# -- registering ----------------------------------------------------------------------------------


def test_the_officer_registers_a_provider_that_waits_for_approval(
    app: Flask, client: FlaskClient, clock: FrozenClock, login_as: LoginAs, catalogue: None
) -> None:
    token = as_officer(app, client, clock, login_as)
    body = {
        "csrf_token": token,
        "agency": "moi-household",
        "id": "moi-household-2",
        "base_url": "https://household.example/api/",
        "jwks": json.dumps(public_jwks("k1")),
    }
    answer = client.post("/console/agency/providers/new", data=body)
    assert answer.status_code == 303
    assert answer.headers["Location"].endswith("/console/agency/providers/moi-household-2")
    with app.app_context(), get_db().unit_of_work() as uow:
        provider = providers_services.get_provider(uow, "moi-household-2")
        assert (provider.status, provider.base_url) == (PENDING, "https://household.example/api")
    again = client.post("/console/agency/providers/new?lang=en", data=body)
    assert again.status_code == 400
    assert "This id is taken already" in text(again)


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("base_url", "ftp://household.example", "absolute https address"),
        ("jwks", "not json", "not valid JSON"),
        ("jwks", '{"keys": []}', "public ES256 or PS256"),
        ("id", "Not An Id", "lowercase letters, digits and hyphens"),
    ],
)
def test_a_bad_provider_is_refused_with_the_field_to_fix(
    app: Flask,
    client: FlaskClient,
    clock: FrozenClock,
    login_as: LoginAs,
    catalogue: None,
    field: str,
    value: str,
    words: str,
) -> None:
    token = as_officer(app, client, clock, login_as)
    body = {
        "csrf_token": token,
        "agency": "moi-household",
        "id": "moi-household-2",
        "base_url": "https://household.example",
        "jwks": json.dumps(public_jwks()),
        field: value,
    }
    answer = client.post("/console/agency/providers/new?lang=en", data=body)
    assert answer.status_code == 400
    page = answer.get_data(as_text=True)
    assert words in page
    assert f'id="field-{field}-error"' in page
    assert 'aria-invalid="true"' in page


def test_the_officer_registers_a_dataset_that_waits_for_approval(
    app: Flask, client: FlaskClient, clock: FrozenClock, login_as: LoginAs, catalogue: None
) -> None:
    token = as_officer(app, client, clock, login_as)
    answer = client.post("/console/agency/datasets/new", data=new_dataset_form(token))
    assert answer.status_code == 303
    with app.app_context(), get_db().unit_of_work() as uow:
        dataset = providers_services.get_dataset(uow, "household.marriage")
        assert (dataset.status, dataset.schema_version, dataset.json_schema) == (PENDING, 1, OBJECT_SCHEMA)
        assert all(d.id != "household.marriage" for d in providers_services.catalogue(uow).datasets)


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("schema", '{"type": "array"}', "JSON Schema (draft 2020-12) of an object"),
        ("schema", "{", "not valid JSON"),
        ("id", "Marriage", "dotted lowercase name"),
        ("title_en", "", "1 to 200 characters"),
        ("min_level", "highest", "Choose a level"),
    ],
)
def test_a_bad_dataset_is_refused_with_the_field_to_fix(
    app: Flask,
    client: FlaskClient,
    clock: FrozenClock,
    login_as: LoginAs,
    catalogue: None,
    field: str,
    value: str,
    words: str,
) -> None:
    token = as_officer(app, client, clock, login_as)
    answer = client.post("/console/agency/datasets/new?lang=en", data=new_dataset_form(token, **{field: value}))
    assert answer.status_code == 400
    assert words in answer.get_data(as_text=True)
    assert f'href="#field-{field}"' in answer.get_data(as_text=True)


# -- editing and rotating -------------------------------------------------------------------------


def test_titles_descriptions_and_level_change_at_once(
    app: Flask, client: FlaskClient, clock: FrozenClock, login_as: LoginAs, catalogue: None
) -> None:
    token = as_officer(app, client, clock, login_as)
    version = published(app, OURS)
    form = {
        "csrf_token": token,
        "title_zh": "戶籍資料（新）",
        "title_en": "Household registration (new)",
        "description_zh": "說明。",
        "description_en": "A description.",
        "min_level": "high",
    }
    assert client.post(f"/console/agency/datasets/{OURS}", data=form).status_code == 303
    with app.app_context(), get_db().unit_of_work() as uow:
        dataset = providers_services.get_dataset(uow, OURS)
        assert (dataset.title_en, dataset.min_level, dataset.citizen_downloadable) == (
            "Household registration (new)",
            "high",
            False,
        )
    assert published(app, OURS) == version  # the schema is untouched
    bad = client.post(f"/console/agency/datasets/{OURS}?lang=en", data={**form, "title_en": " "})
    assert bad.status_code == 400
    assert "1 to 200 characters" in text(bad)


def test_rotating_keys_replaces_the_jwks_and_says_what_the_provider_must_do(
    app: Flask, client: FlaskClient, clock: FrozenClock, login_as: LoginAs, catalogue: None
) -> None:
    token = as_officer(app, client, clock, login_as)
    page = text(client.get("/console/agency/providers/moi-household?lang=en"))
    assert "must sign with the new key from then on" in page
    new = public_jwks("moi-2026-12")
    answer = client.post(
        "/console/agency/providers/moi-household/keys", data={"csrf_token": token, "jwks": json.dumps(new)}
    )
    assert answer.status_code == 303
    with app.app_context(), get_db().unit_of_work() as uow:
        [key] = providers_services.get_provider(uow, "moi-household").jwks["keys"]
        assert (key["kid"], key["x"]) == ("moi-2026-12", new["keys"][0]["x"])
    shown = text(client.get("/console/agency/providers/moi-household?lang=en"))
    assert "must sign its answers with the new key from now on" in shown
    private = {"keys": [{**new["keys"][0], "d": "AAAA"}]}
    refused = client.post(
        "/console/agency/providers/moi-household/keys?lang=en", data={"csrf_token": token, "jwks": json.dumps(private)}
    )
    assert refused.status_code == 400
    assert "private key material" in text(refused)


# -- schema versions ------------------------------------------------------------------------------


def test_a_schema_change_stays_pending_until_the_operator_approves_it(
    app: Flask, client: FlaskClient, clock: FrozenClock, login_as: LoginAs, catalogue: None
) -> None:
    token = as_officer(app, client, clock, login_as)
    version, digest, schema = published(app, OURS)
    assert propose(client, token, wider_schema()).status_code == 303
    assert published(app, OURS) == (version, digest, schema)  # not published yet
    page = text(client.get(f"/console/agency/datasets/{OURS}?lang=en"))
    assert f"Version {version + 1} waits for an operator's approval" in page
    assert client.get(f"/api/v1/catalogue/datasets/{OURS}/schema").json["schema_version"] == version  # type: ignore[index]
    unchanged = propose(client, token, schema)
    assert unchanged.status_code == 400

    operator = app.test_client()
    grant(app, clock, OPERATOR, "operator", "platform")
    _login(app, operator, national_id=OPERATOR)
    review = operator.get("/console/operator/schemas?lang=en")
    assert review.status_code == 200
    assert f"{OURS}@{version + 1}" in text(review)
    version_id = _version_id(app, OURS)
    approved = operator.post(
        f"/console/operator/schemas/{version_id}/approve", data={"csrf_token": csrf(review.get_data(as_text=True))}
    )
    assert approved.status_code == 303
    new_version, new_digest, new_schema = published(app, OURS)
    assert (new_version, new_schema) == (version + 1, wider_schema())
    assert new_digest != digest
    assert client.get(f"/api/v1/catalogue/datasets/{OURS}/schema").json["schema_version"] == version + 1  # type: ignore[index]
    with app.app_context(), get_db().unit_of_work() as uow:
        [decision] = decisions.recent(uow, subject_type="schema")
        assert (decision.subject_id, decision.action) == (f"{OURS}@{version + 1}", "approve")
        assert decision.actor.startswith("citizen:")
    # Decided once only.
    again = operator.post(
        f"/console/operator/schemas/{version_id}/approve", data={"csrf_token": csrf(review.get_data(as_text=True))}
    )
    assert again.status_code == 409


def test_a_rejected_schema_stays_unpublished_and_the_agency_reads_why(
    app: Flask, client: FlaskClient, clock: FrozenClock, login_as: LoginAs, catalogue: None
) -> None:
    token = as_officer(app, client, clock, login_as)
    before = published(app, OURS)
    propose(client, token, wider_schema())
    operator = app.test_client()
    grant(app, clock, OPERATOR, "operator", "platform")
    _login(app, operator, national_id=OPERATOR)
    version_id = _version_id(app, OURS)
    form_token = csrf(operator.get("/console/operator/schemas").get_data(as_text=True))
    no_reason = operator.post(
        f"/console/operator/schemas/{version_id}/reject?lang=en", data={"csrf_token": form_token, "reason": " "}
    )
    assert no_reason.status_code == 400
    assert "Give the reason for the rejection" in text(no_reason)
    rejected = operator.post(
        f"/console/operator/schemas/{version_id}/reject",
        data={"csrf_token": form_token, "reason": "currency must be an ISO 4217 code"},
    )
    assert rejected.status_code == 303
    assert published(app, OURS) == before
    with app.app_context(), get_db().unit_of_work() as uow:
        [decision] = decisions.recent(uow, subject_type="schema")
        assert (decision.action, decision.reason) == ("reject", "currency must be an ISO 4217 code")
    page = text(client.get(f"/console/agency/datasets/{OURS}?lang=en"))
    assert "currency must be an ISO 4217 code" in page
    assert f"Version {before[0] + 1} waits" not in page
    # A new proposal gets a number of its own: a rejected number is not reused.
    propose(client, token, wider_schema())
    with app.app_context(), get_db().unit_of_work() as uow:
        pending = providers_services.pending_schema(uow, OURS)
        assert pending is not None
        assert pending.version == before[0] + 2


def test_the_officer_cannot_review_schemas(
    app: Flask, client: FlaskClient, clock: FrozenClock, login_as: LoginAs, catalogue: None
) -> None:
    token = as_officer(app, client, clock, login_as)
    propose(client, token, wider_schema())
    version_id = _version_id(app, OURS)
    assert client.get("/console/operator/schemas").status_code == 403
    assert client.post(f"/console/operator/schemas/{version_id}/approve", data={"csrf_token": token}).status_code == 403
    assert published(app, OURS)[2] != wider_schema()


def test_an_old_login_must_step_up_before_approving(
    app: Flask, client: FlaskClient, clock: FrozenClock, login_as: LoginAs, catalogue: None
) -> None:
    token = as_officer(app, client, clock, login_as)
    propose(client, token, wider_schema())
    before = published(app, OURS)
    operator = app.test_client()
    grant(app, clock, OPERATOR, "operator", "platform")
    _login(app, operator, national_id=OPERATOR)
    form_token = csrf(operator.get("/console/operator/schemas").get_data(as_text=True))
    clock.advance(8 * 60)
    operator.get("/console/operator/schemas")  # still viewing, the session stays alive
    clock.advance(8 * 60)
    answer = operator.post(
        f"/console/operator/schemas/{_version_id(app, OURS)}/approve", data={"csrf_token": form_token}
    )
    assert answer.status_code == 303
    assert "/login" in answer.headers["Location"]
    assert published(app, OURS) == before


# -- health and usage -----------------------------------------------------------------------------


def test_health_lists_the_agencys_providers_only(
    app: Flask, client: FlaskClient, clock: FrozenClock, login_as: LoginAs, catalogue: None
) -> None:
    as_officer(app, client, clock, login_as)
    page = client.get("/console/agency/health?lang=en")
    assert page.status_code == 200
    assert "moi-household" in text(page)
    assert "mof-fia" not in text(page)
    assert "not healthy" in text(page)  # the fixture's agencies do not run


def test_usage_counts_requests_and_deliveries_by_service_without_personal_data(
    app: Flask, client: FlaskClient, clock: FrozenClock, login_as: LoginAs, bank: str, rp: TestRelyingParty
) -> None:
    registered = register(client, bank, client_metadata(rp))
    assert registered.status_code == 201, registered.json
    client_id = registered.json["client_id"]  # type: ignore[index]
    terms = ServiceTerms(
        organisation_id="test-bank",
        organisation_name="測試銀行",
        service_id="test-bank.loans",
        purpose="p",
        retention="P1Y",
        level="substantial",
        datasets_required=(OURS, THEIRS),
    )
    with app.app_context(), get_db().unit_of_work() as uow:
        old = consents.record_request(uow, client_id=client_id, terms=terms, now=clock.now() - dt.timedelta(days=40))
        recent = [consents.record_request(uow, client_id=client_id, terms=terms, now=clock.now()) for _ in range(3)]
        recent[0].status = "delivered"
        recent[0].delivered_at = clock.now()
        recent[0].datasets_granted = [OURS, THEIRS]
        recent[0].delivery_outcomes = {OURS: "ok", THEIRS: "ok"}
        assert old.id
        uow.commit()
    as_officer(app, client, clock, login_as)
    page = client.get("/console/agency/usage?lang=en")
    assert page.status_code == 200
    row = re.search(r"<tr><td><code>household.registration</code></td>.*?</tr>", page.get_data(as_text=True))
    assert row is not None, page.get_data(as_text=True)
    assert "test-bank.loans" in row.group(0)
    assert re.findall(r"<td>(\d+)</td>", row.group(0)) == ["3", "1"]
    assert THEIRS not in text(page)
    assert "F135792464" not in text(page).replace(OFFICER, "")
    wider = client.get("/console/agency/usage?days=60")
    assert re.findall(r"<td>(\d+)</td>", wider.get_data(as_text=True))[:2] == ["4", "1"]


# -- acceptance 2 ---------------------------------------------------------------------------------


def test_acceptance_2_a_dataset_registered_by_an_officer_appears_in_the_catalogue_once_approved(
    app: Flask, client: FlaskClient, clock: FrozenClock, login_as: LoginAs, catalogue: None, operator_token: str
) -> None:
    token = as_officer(app, client, clock, login_as)
    registered = client.post("/console/agency/datasets/new", data=new_dataset_form(token))
    assert registered.status_code == 303
    assert "household.marriage" not in [d["id"] for d in client.get("/api/v1/catalogue").json["datasets"]]  # type: ignore[index]
    # The operator approves it (the operator's review queue, or its API).
    approved = client.post(
        "/api/v1/datasets/household.marriage/approve", headers={"Authorization": f"Bearer {operator_token}"}
    )
    assert approved.status_code == 200, approved.json
    listed = {d["id"]: d for d in client.get("/api/v1/catalogue").json["datasets"]}  # type: ignore[index]
    assert (listed["household.marriage"]["title_en"], listed["household.marriage"]["provider"]) == (
        "Marital status",
        "moi-household",
    )
    schema = client.get("/api/v1/catalogue/datasets/household.marriage/schema").json
    assert schema["schema"] == OBJECT_SCHEMA  # type: ignore[index]
    with app.app_context(), get_db().unit_of_work() as uow:
        assert providers_services.get_dataset(uow, "household.marriage").status == ACTIVE


# -- helpers --------------------------------------------------------------------------------------


def _login(app: Flask, browser: FlaskClient, *, national_id: str) -> None:
    """Log *national_id* in with the eID card on another browser (the officer keeps his own)."""
    with app.app_context(), get_db().unit_of_work() as uow:
        citizen_id = make_citizen(uow, national_id, app_clock().now()).id
        _authentication, secret = sessions.open_session(uow, citizen_id, "eid", app_clock().now(), None)
    browser.set_cookie(sessions.cookie_name(app), secret)


def _version_id(app: Flask, dataset_id: str) -> int:
    with app.app_context(), get_db().unit_of_work() as uow:
        pending = providers_services.pending_schema(uow, dataset_id)
        assert pending is not None
        return pending.id
