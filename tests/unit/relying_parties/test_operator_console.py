"""The operator console (issue 13): review queues and their decisions with reasons, the audit list,
the ledger's status and the signing-key rotation, each action behind a fresh eID login."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from consent.audit import record_verification
from consent.interfaces import LedgerVerificationFailed
from consent.ledger import sign_tree_head
from identity.oauth.interfaces import InvalidAuthorizationDetails
from identity.services import grant_role
from mydata import decisions
from mydata.clock import FrozenClock
from mydata.db import get_db
from mydata.errors import MydataError
from mydata.keys import key_store
from providers import services as providers_services
from providers.interfaces import DatasetNotFound
from providers.interfaces import NotPending as DatasetNotPending
from providers.models import Dataset, Provider
from relying_parties import services
from relying_parties.interfaces import NotPending, OrganisationNotApproved
from relying_parties.models import Organisation, Service
from relying_parties.registration import register_organisation_client
from tests.factories.identity import LoginAs, make_citizen, make_nhi_card, text
from tests.factories.oauth import TestRelyingParty
from tests.unit.relying_parties.conftest import BANK, REDIRECT_URI, make_organisation, make_service
from tests.unit.relying_parties.test_staff_step_up import eid_login

pytestmark = pytest.mark.db

OPERATOR = "L200000002"  # 趙曉雯
NEW_BANK = "new-bank"
#: A pending item of each queue (the fixture makes them), and the model of its rows.
PENDING_ITEM = {
    "organisations": NEW_BANK,
    "services": f"{BANK}.cards",
    "providers": "test-provider",
    "datasets": "test.records",
}
APPROVED_ITEM = {
    "organisations": BANK,
    "services": f"{BANK}.loans",
    "providers": "nhia",
    "datasets": "household.registration",
}
MODELS: dict[str, Any] = {
    "organisations": Organisation,
    "services": Service,
    "providers": Provider,
    "datasets": Dataset,
}
SUBJECT = {"organisations": "organisation", "services": "service", "providers": "provider", "datasets": "dataset"}


@pytest.fixture
def operator(eid_app: Flask, clock: FrozenClock, catalogue: None) -> str:
    """趙曉雯 the operator; the test bank approved with a service, and one pending item in every queue."""
    with eid_app.app_context(), get_db().unit_of_work() as uow:
        citizen = make_citizen(uow, OPERATOR, clock.now())
        make_nhi_card(uow, citizen, clock.now())
        grant_role(uow, citizen.id, "operator", "platform", clock.now())
        # A running platform has its eID nonce secret. Made here, not by the first login page: that
        # page's request (on the test's one shared connection) would roll its creation back.
        key_store(uow).secret("eid_nonce")
        make_organisation(uow)
        make_service(uow)
        make_organisation(uow, NEW_BANK, status="pending", registration_number="04595257")
        make_service(uow, name="cards", status="pending")
        nhia = providers_services.get_provider(uow, "nhia")
        providers_services.register_provider(
            uow,
            provider_id="test-provider",
            agency_id=nhia.agency_id,
            base_url="https://provider.example",
            jwks=nhia.jwks,
            allow_http=False,
            actor="test",
        )
        providers_services.register_dataset(
            uow,
            dataset_id="test.records",
            provider_id="nhia",
            title_zh="測試紀錄",
            title_en="Test records",
            description_zh="測試用。",
            description_en="For tests.",
            json_schema={"type": "object"},
            min_level="substantial",
            citizen_downloadable=False,
            actor="test",
        )
        return citizen.id


def status_of(app: Flask, kind: str, item_id: str) -> str:
    with app.app_context(), get_db().unit_of_work() as uow:
        row = uow.session.get(MODELS[kind], item_id)
        assert row is not None
        return str(row.status)


def csrf(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found
    return found.group(1)


def decide(
    client: FlaskClient, kind: str, item_id: str, action: str, reason: str = "", lang: str = "en"
) -> TestResponse:
    token = csrf(text(client.get(f"/console/operator/{kind}?lang={lang}")))
    return client.post(
        f"/console/operator/{kind}/{item_id}/decision?lang={lang}",
        data={"csrf_token": token, "action": action, "reason": reason},
    )


def recorded(app: Flask, kind: str, item_id: str) -> list[tuple[str, str, str | None]]:
    with app.app_context(), get_db().unit_of_work() as uow:
        return [
            (d.action, d.actor, d.reason) for d in decisions.recent(uow, subject_type=SUBJECT[kind], subject_id=item_id)
        ]


# -- the queues -----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(PENDING_ITEM))
def test_each_queue_shows_what_is_pending_first_then_the_rest(
    eid_app: Flask, client: FlaskClient, operator: str, login_as: LoginAs, kind: str
) -> None:
    login_as(OPERATOR)
    page = text(client.get(f"/console/operator/{kind}?lang=en"))
    waiting, reviewed = page.split("Waiting for review (1)")[1].split("Reviewed (")
    assert f"<code>{PENDING_ITEM[kind]}</code>" in waiting
    assert f"<code>{APPROVED_ITEM[kind]}</code>" not in waiting
    assert f"<code>{APPROVED_ITEM[kind]}</code>" in reviewed
    assert f'action="/console/operator/{kind}/{PENDING_ITEM[kind]}/decision"' in waiting
    assert 'value="approve"' in waiting
    assert 'value="reject"' in waiting
    assert 'value="suspend"' in reviewed
    zh = text(client.get(f"/console/operator/{kind}?lang=zh_Hant_TW"))
    assert "待審核" in zh


def test_the_index_links_each_queue_with_its_pending_count(
    eid_app: Flask, client: FlaskClient, operator: str, login_as: LoginAs
) -> None:
    login_as(OPERATOR)
    page = text(client.get("/console/operator?lang=en"))
    for kind in PENDING_ITEM:
        assert re.search(rf'href="/console/operator/{kind}">.*?<span class="count">1</span>', page)
    for path in ("/console/operator/decisions", "/console/operator/ledger", "/console/operator/keys"):
        assert f'href="{path}"' in page


def test_the_index_counts_the_schema_versions_waiting_for_review_in_both_languages(
    eid_app: Flask, client: FlaskClient, operator: str, login_as: LoginAs
) -> None:
    login_as(OPERATOR)
    count = r'href="/console/operator/schemas"><span class="count-label">{}</span> <span class="count">{}</span>'
    assert re.search(count.format("Schema versions", 0), text(client.get("/console/operator?lang=en")))
    with eid_app.app_context(), get_db().unit_of_work() as uow:
        dataset = providers_services.get_dataset(uow, "household.registration")
        wider = {**dataset.json_schema, "description": "A proposed version."}
        providers_services.propose_schema(uow, dataset.id, json_schema=wider, actor="officer")
    assert re.search(count.format("Schema versions", 1), text(client.get("/console/operator?lang=en")))
    assert re.search(count.format("結構描述版本", 1), text(client.get("/console/operator?lang=zh_Hant_TW")))


# -- decisions and their reasons ------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(PENDING_ITEM))
def test_a_rejection_needs_a_reason_in_both_languages_and_is_recorded_with_it(
    eid_app: Flask, client: FlaskClient, operator: str, login_as: LoginAs, kind: str
) -> None:
    login_as(OPERATOR)
    item = PENDING_ITEM[kind]
    refused = decide(client, kind, item, "reject", "   ")
    assert refused.status_code == 400
    assert "Give a reason: it is required to reject or suspend." in text(refused)
    assert 'aria-invalid="true"' in text(refused)
    refused_zh = decide(client, kind, item, "reject", "", lang="zh_Hant_TW")
    assert refused_zh.status_code == 400
    assert "請填寫理由：駁回或停權都必須說明理由。" in text(refused_zh)
    assert status_of(eid_app, kind, item) == "pending"
    assert recorded(eid_app, kind, item) == []

    done = decide(client, kind, item, "reject", "Incomplete application.")
    assert done.status_code == 303
    assert done.headers["Location"] == f"/console/operator/{kind}"
    assert status_of(eid_app, kind, item) == "rejected"
    assert recorded(eid_app, kind, item) == [("reject", f"citizen:{operator}", "Incomplete application.")]
    page = text(client.get(f"/console/operator/{kind}?lang=en"))
    assert f"{item} is rejected." in page
    assert 'value="approve"' not in page.split(item)[-1].split("</li>")[0]  # rejected is final here


@pytest.mark.parametrize("kind", list(APPROVED_ITEM))
def test_suspend_needs_a_reason_then_reinstate_brings_the_item_back(
    eid_app: Flask, client: FlaskClient, operator: str, login_as: LoginAs, kind: str
) -> None:
    login_as(OPERATOR)
    item = APPROVED_ITEM[kind]
    before = status_of(eid_app, kind, item)
    assert decide(client, kind, item, "suspend").status_code == 400
    assert status_of(eid_app, kind, item) == before
    assert decide(client, kind, item, "suspend", "Leaked keys.").status_code == 303
    assert status_of(eid_app, kind, item) == "suspended"
    assert decide(client, kind, item, "reinstate").status_code == 303  # no reason needed
    assert status_of(eid_app, kind, item) == before
    actor = f"citizen:{operator}"
    assert recorded(eid_app, kind, item) == [("reinstate", actor, None), ("suspend", actor, "Leaked keys.")]


@pytest.mark.parametrize("kind", list(PENDING_ITEM))
def test_approve_takes_an_optional_reason(
    eid_app: Flask, client: FlaskClient, operator: str, login_as: LoginAs, kind: str
) -> None:
    login_as(OPERATOR)
    item = PENDING_ITEM[kind]
    reason = "Checked by phone." if kind == "organisations" else ""
    assert decide(client, kind, item, "approve", reason).status_code == 303
    assert status_of(eid_app, kind, item) in ("approved", "active")
    assert recorded(eid_app, kind, item) == [("approve", f"citizen:{operator}", reason or None)]


def test_an_action_that_does_not_fit_the_status_changes_nothing(
    eid_app: Flask, client: FlaskClient, operator: str, login_as: LoginAs
) -> None:
    login_as(OPERATOR)
    assert decide(client, "organisations", BANK, "reject", "Too late.").status_code == 409  # approved: suspend it
    assert decide(client, "organisations", BANK, "reinstate").status_code == 409
    assert decide(client, "organisations", BANK, "bless", "x").status_code == 400
    assert decide(client, "organisations", "nobody", "approve").status_code == 404
    assert status_of(eid_app, "organisations", BANK) == "approved"
    assert recorded(eid_app, "organisations", BANK) == []


def test_a_service_of_a_pending_organisation_is_not_approved_and_says_why(
    eid_app: Flask, client: FlaskClient, operator: str, login_as: LoginAs, clock: FrozenClock
) -> None:
    with eid_app.app_context(), get_db().unit_of_work() as uow:
        make_service(uow, NEW_BANK, "loans", status="pending")
    login_as(OPERATOR)
    refused = decide(client, "services", f"{NEW_BANK}.loans", "approve")
    assert refused.status_code == 409
    assert "Approve the organisation first" in text(refused)
    assert status_of(eid_app, "services", f"{NEW_BANK}.loans") == "pending"


def test_someone_without_the_operator_role_cannot_decide(
    eid_app: Flask, client: FlaskClient, operator: str, login_as: LoginAs
) -> None:
    login_as(OPERATOR)
    token = csrf(text(client.get("/console/operator/organisations")))
    login_as("A123456789")
    posted = client.post(
        f"/console/operator/organisations/{NEW_BANK}/decision",
        data={"csrf_token": token, "action": "approve", "reason": ""},
    )
    assert posted.status_code == 403
    assert status_of(eid_app, "organisations", NEW_BANK) == "pending"


# -- a rejected item works nowhere ----------------------------------------------------------------


def test_rejected_items_are_refused_where_they_would_be_used(
    eid_app: Flask, client: FlaskClient, operator: str, clock: FrozenClock
) -> None:
    with eid_app.app_context(), get_db().unit_of_work() as uow:
        services.reject_organisation(uow, NEW_BANK, actor="test", reason="Not a bank.")
        services.reject_service(uow, f"{BANK}.cards", actor="test", reason="Vague purpose.")
        providers_services.reject_provider(uow, "test-provider", actor="test", reason="Unknown system.")
        providers_services.reject_dataset(uow, "test.records", actor="test", reason="Duplicate.")
        # The organisation: no token for client registration, no approval of its services.
        with pytest.raises(OrganisationNotApproved):
            services.issue_initial_access_token(uow, NEW_BANK, actor="test")
        make_service(uow, NEW_BANK, "loans", status="pending")
        with pytest.raises(OrganisationNotApproved):
            services.approve_service(uow, f"{NEW_BANK}.loans", actor="test")
        # The service: refused at PAR (its authorization details).
        relying_party = TestRelyingParty(client_id="bank-web", redirect_uri=REDIRECT_URI)
        register_organisation_client(
            uow, BANK, name="Bank", jwks=relying_party.jwks(), redirect_uris=[REDIRECT_URI], sandbox=False,
            client_id="bank-web",
        )  # fmt: skip
        with pytest.raises(InvalidAuthorizationDetails, match="cards' is rejected"):
            services.resolve_delivery(uow, {"type": "mydata_delivery", "service": f"{BANK}.cards"}, "bank-web")
        # The dataset: not published.
        with pytest.raises(DatasetNotFound):
            providers_services.published_dataset(uow, "test.records")
        # Rejection is for pending items only, and says why.
        with pytest.raises(NotPending):
            services.reject_organisation(uow, BANK, actor="test", reason="x")
        with pytest.raises(DatasetNotPending):
            providers_services.reject_dataset(uow, "tax.income", actor="test", reason="x")
    catalogue = client.get("/api/v1/catalogue").get_data(as_text=True)
    assert "test.records" not in catalogue
    assert "test-provider" not in catalogue
    assert "household.registration" in catalogue


# -- the audit list -------------------------------------------------------------------------------


def test_the_audit_list_names_people_newest_first_and_shows_no_national_id(
    eid_app: Flask, client: FlaskClient, operator: str, login_as: LoginAs, clock: FrozenClock
) -> None:
    login_as(OPERATOR)
    assert decide(client, "organisations", NEW_BANK, "reject", "Not a bank.").status_code == 303
    clock.advance(60)
    with eid_app.app_context(), get_db().unit_of_work() as uow:
        decisions.record(uow, actor="cli", subject_type="dataset", subject_id="tax.income", action="suspend",
                         now=clock.now(), reason="Agency maintenance.")  # fmt: skip
        decisions.record(uow, actor="operator-token:abc123", subject_type="provider", subject_id="nhia",
                         action="reinstate", now=clock.now() + dt.timedelta(seconds=1))  # fmt: skip
        uow.commit()
    page = text(client.get("/console/operator/decisions?lang=en"))
    rows = page.split("<tbody>")[1]
    token_at, cli_at, person_at = (rows.index(s) for s in ("operator token abc123", "command line", "趙曉雯"))
    assert token_at < cli_at < person_at  # newest first
    assert "Not a bank." in page
    assert "Agency maintenance." in page
    assert f"<code>{NEW_BANK}</code>" in page
    assert "rejected organisation" in page
    assert OPERATOR not in page
    assert "citizen:" not in page
    when = clock.now().astimezone(dt.timezone(dt.timedelta(hours=8))).strftime("%Y-%m-%d %H:%M")
    assert when in page  # Taiwan time
    zh = text(client.get("/console/operator/decisions?lang=zh_Hant_TW"))
    assert "命令列" in zh
    assert "已駁回" in zh
    assert OPERATOR not in zh


# -- the ledger -----------------------------------------------------------------------------------


def test_the_ledger_status_shows_the_size_the_newest_tree_head_and_the_latest_verification(
    eid_app: Flask, client: FlaskClient, operator: str, login_as: LoginAs, clock: FrozenClock
) -> None:
    login_as(OPERATOR)
    page = text(client.get("/console/operator/ledger?lang=en"))
    assert "No tree head has been signed yet" in page
    assert "The ledger has not been verified yet." in page
    with eid_app.app_context(), get_db().unit_of_work() as uow:
        signed = sign_tree_head(uow)
        assert signed is not None
        record_verification(uow, at=clock.now(), tree_size=0)
        uow.commit()
    page = text(client.get("/console/operator/ledger?lang=en"))
    assert "Verified: all 0 entries" in page
    assert b64_root(signed.root_hash) in page
    clock.advance(60)
    with eid_app.app_context(), get_db().unit_of_work() as uow:
        failure = LedgerVerificationFailed("seq 7", "leaf hash does not match the stored entry")
        record_verification(uow, at=clock.now(), tree_size=12, failure=failure)
        uow.commit()
    for lang, words in (("en", "FAILED at seq 7: leaf hash"), ("zh_Hant_TW", "驗證失敗，位置 seq 7")):
        page = text(client.get(f"/console/operator/ledger?lang={lang}"))
        assert words in page
        assert 'role="status"' in page
    assert "Verified: all" not in text(client.get("/console/operator/ledger?lang=en"))  # the latest only


def b64_root(root: bytes) -> str:
    from consent.ledger import b64

    return b64(root)


# -- the signing key ------------------------------------------------------------------------------


def active_kid(app: Flask) -> str:
    with app.app_context(), get_db().unit_of_work() as uow:
        return key_store(uow).signing_key().kid


def test_rotating_the_key_needs_a_confirmation_then_changes_the_active_kid_and_keeps_the_old_in_the_jwks(
    eid_app: Flask, client: FlaskClient, operator: str, login_as: LoginAs
) -> None:
    login_as(OPERATOR)
    old = active_kid(eid_app)
    page = text(client.get("/console/operator/keys?lang=en"))
    assert old in page
    assert "it stays published in the JWKS" in page
    refused = client.post("/console/operator/keys/rotate?lang=en", data={"csrf_token": csrf(page)})
    assert refused.status_code == 400
    assert "Tick the box to confirm the rotation." in text(refused)
    assert active_kid(eid_app) == old

    done = client.post("/console/operator/keys/rotate", data={"csrf_token": csrf(page), "confirm": "yes"})
    assert done.status_code == 303
    new = active_kid(eid_app)
    assert new != old
    assert [k["kid"] for k in client.get("/oauth/jwks").get_json()["keys"]] == [new, old]
    assert f"the new key is {new}" in text(client.get("/console/operator/keys?lang=en"))
    with eid_app.app_context(), get_db().unit_of_work() as uow:
        (rotation,) = decisions.recent(uow, subject_type="signing_key")
        assert (rotation.action, rotation.subject_id, rotation.actor) == ("rotate", old, f"citizen:{operator}")


# -- actions need a fresh login -------------------------------------------------------------------


def old_login(client: FlaskClient, login_as: LoginAs, clock: FrozenClock) -> None:
    """Log in with the eID card, then let 16 minutes pass (viewing keeps the session alive)."""
    login_as(OPERATOR)
    clock.advance(8 * 60)
    assert client.get("/console/operator").status_code == 200
    clock.advance(8 * 60)


def test_a_rejection_with_an_old_login_steps_up_and_is_confirmed_with_its_reason(
    eid_app: Flask, client: FlaskClient, operator: str, login_as: LoginAs, clock: FrozenClock
) -> None:
    old_login(client, login_as, clock)
    posted = decide(client, "datasets", "test.records", "reject", "Duplicate of household.registration.")
    assert posted.status_code == 303
    step_up = posted.headers["Location"]
    assert parse_qs(urlsplit(step_up).query)["next"] == ["/console/operator/confirm"]
    assert status_of(eid_app, "datasets", "test.records") == "pending"

    logged_in = eid_login(client, step_up)
    assert logged_in.status_code == 303, text(logged_in)
    assert logged_in.headers["Location"] == "/console/operator/confirm"
    assert status_of(eid_app, "datasets", "test.records") == "pending"  # never carried out unseen
    page = text(client.get("/console/operator/confirm?lang=en"))
    assert "Reject: Test records <code>test.records</code>?" in page
    assert ">Duplicate of household.registration.</textarea>" in page
    done = client.post(
        "/console/operator/datasets/test.records/decision",
        data={"csrf_token": csrf(page), "action": "reject", "reason": "Duplicate of household.registration."},
    )
    assert done.status_code == 303
    assert status_of(eid_app, "datasets", "test.records") == "rejected"
    assert recorded(eid_app, "datasets", "test.records")[0][2] == "Duplicate of household.registration."
    assert client.get("/console/operator/confirm").headers["Location"] == "/console/operator"  # done once


def test_a_rotation_with_an_old_login_steps_up_and_is_confirmed(
    eid_app: Flask, client: FlaskClient, operator: str, login_as: LoginAs, clock: FrozenClock
) -> None:
    old_login(client, login_as, clock)
    old = active_kid(eid_app)
    page = text(client.get("/console/operator/keys"))
    posted = client.post("/console/operator/keys/rotate", data={"csrf_token": csrf(page), "confirm": "yes"})
    assert posted.status_code == 303
    assert active_kid(eid_app) == old
    assert eid_login(client, posted.headers["Location"]).headers["Location"] == "/console/operator/confirm"
    confirm = text(client.get("/console/operator/confirm?lang=en"))
    assert "Nothing has been done yet" in confirm
    assert 'action="/console/operator/keys/rotate"' in confirm
    assert 'value="yes" checked' in confirm  # confirmed before the login: one click now
    done = client.post("/console/operator/keys/rotate", data={"csrf_token": csrf(confirm), "confirm": "yes"})
    assert done.status_code == 303
    assert active_kid(eid_app) != old


def test_the_old_organisations_page_sends_the_browser_to_the_console(
    eid_app: Flask, client: FlaskClient, operator: str
) -> None:
    moved = client.get("/operator/organisations")
    assert moved.status_code == 301
    assert moved.headers["Location"] == "/console/operator/organisations"
    assert client.get("/operator/organisations/confirm").headers["Location"] == "/console/operator/confirm"


def test_the_reject_services_need_a_reason_whatever_calls_them(
    eid_app: Flask, operator: str, clock: FrozenClock
) -> None:
    with eid_app.app_context(), get_db().unit_of_work() as uow:
        for reject, item in (
            (services.reject_organisation, NEW_BANK),
            (services.reject_service, f"{BANK}.cards"),
            (providers_services.reject_provider, "test-provider"),
            (providers_services.reject_dataset, "test.records"),
        ):
            with pytest.raises(MydataError) as raised:
                reject(uow, item, actor="cli", reason="  ")
            assert raised.value.status == 400
            assert "reason" in raised.value.extra["fields"]
        assert decisions.recent(uow) == []
