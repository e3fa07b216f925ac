"""Onboarding rules: applying, approval, initial access tokens, services, and what a client may ask for."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from identity.oauth.clients import register_client
from identity.oauth.interfaces import InvalidAuthorizationDetails
from identity.oauth.models import OAuthClient
from mydata.clock import FrozenClock
from mydata.db import UnitOfWork
from providers import services as providers_services
from relying_parties import services
from relying_parties.interfaces import (
    AlreadyRegistered,
    ClientHasNoEncryptionKey,
    InvalidInitialAccessToken,
    InvalidInput,
    InvalidLevel,
    InvalidRegistrationNumber,
    MissingInitialAccessToken,
    OrganisationNotApproved,
    UnknownDataset,
)
from relying_parties.models import APPROVED, PENDING, SUSPENDED
from relying_parties.registration import register_organisation_client
from tests.factories.oauth import TestRelyingParty
from tests.factories.statements import recorded_statements

from .conftest import BANK, REDIRECT_URI, application, contact, make_organisation, make_service

pytestmark = pytest.mark.db


def apply(uow: UnitOfWork, **changes: Any) -> Any:
    body = {**application(), **changes}
    return services.register_organisation(
        uow,
        organisation_id=body["id"],
        name_zh=body["name_zh"],
        name_en=body["name_en"],
        organisation_type=body["type"],
        registration_number=body["registration_number"],
        contacts=body["contacts"],
        actor="test",
    )


# -- organisations ----------------------------------------------------------------------------------


def test_an_application_waits_for_approval_then_gets_a_token(uow: UnitOfWork, clock: FrozenClock) -> None:
    organisation = apply(uow)
    assert organisation.status == PENDING
    assert organisation.approved_at is None
    with pytest.raises(OrganisationNotApproved, match="pending"):
        services.issue_initial_access_token(uow, BANK, actor="test")

    clock.advance(60)
    approved = services.approve_organisation(uow, BANK, actor="test")
    assert approved.status == APPROVED
    assert approved.approved_at == clock.now()
    _token, secret = services.issue_initial_access_token(uow, BANK, actor="test")
    assert services.authenticate_organisation(uow, secret).id == BANK

    services.suspend_organisation(uow, BANK, actor="test")
    with pytest.raises(InvalidInitialAccessToken, match="suspended"):
        services.authenticate_organisation(uow, secret)
    with pytest.raises(OrganisationNotApproved):
        services.issue_initial_access_token(uow, BANK, actor="test")
    services.approve_organisation(uow, BANK, actor="test")
    assert services.authenticate_organisation(uow, secret).id == BANK


def test_a_token_is_long_random_stored_hashed_and_reissuing_revokes_the_old_one(uow: UnitOfWork) -> None:
    make_organisation(uow)
    first_row, first = services.issue_initial_access_token(uow, BANK, actor="test")
    second_row, second = services.issue_initial_access_token(uow, BANK, actor="test")
    assert first != second
    assert first.startswith("mdiat_")
    assert len(first.removeprefix("mdiat_")) >= 43  # 32 bytes of base64url: 256 bits
    assert first not in (first_row.token_sha256, first_row.id)
    with pytest.raises(InvalidInitialAccessToken):
        services.authenticate_organisation(uow, first)
    assert services.authenticate_organisation(uow, second).id == BANK
    assert second_row.revoked_at is None
    with pytest.raises(MissingInitialAccessToken):
        services.authenticate_organisation(uow, None)
    with pytest.raises(InvalidInitialAccessToken):
        services.authenticate_organisation(uow, "mdiat_guess")


@pytest.mark.parametrize(
    ("changes", "error", "field"),
    [
        ({"id": "Test Bank"}, InvalidInput, "id"),
        ({"name_zh": " "}, InvalidInput, "name_zh"),
        ({"type": "casino"}, InvalidInput, "type"),
        ({"registration_number": "22099132"}, InvalidRegistrationNumber, None),
        ({"registration_number": "2209913"}, InvalidRegistrationNumber, None),
        ({"contacts": []}, InvalidInput, "contacts"),
        ({"contacts": [{**contact(), "email": "not-an-address"}]}, InvalidInput, "contacts"),
        ({"contacts": [{**contact(), "phone": "call me"}]}, InvalidInput, "contacts"),
    ],
)
def test_an_application_is_checked(
    uow: UnitOfWork, changes: dict[str, Any], error: type[Exception], field: str
) -> None:
    with pytest.raises(error) as raised:
        apply(uow, **changes)
    if field:
        assert field in raised.value.extra["fields"]  # type: ignore[attr-defined]


def test_registration_numbers_follow_the_ministry_of_finance_check(uow: UnitOfWork) -> None:
    # 04595257 is a real number; 12345675 passes only by the rule for a seventh digit 7 (28 -> 1).
    for organisation_id, number in (("a", "04595257"), ("b", "12345675")):
        assert apply(uow, id=organisation_id, registration_number=number).registration_number == number


def test_one_id_and_one_approved_holder_of_a_number(uow: UnitOfWork) -> None:
    apply(uow)
    with pytest.raises(AlreadyRegistered, match="test-bank"):
        apply(uow)
    # Pending duplicates are the operator's to sort out; once one is approved, the number is taken.
    apply(uow, id="test-bank-2")
    services.approve_organisation(uow, "test-bank-2", actor="test")
    with pytest.raises(AlreadyRegistered, match="test-bank-2"):
        apply(uow, id="test-bank-3")
    with pytest.raises(AlreadyRegistered, match="test-bank-2"):
        services.approve_organisation(uow, BANK, actor="test")


def test_suspending_an_organisation_suspends_its_clients_and_approval_restores_them(
    uow: UnitOfWork, catalogue: None
) -> None:
    make_organisation(uow)
    relying_party = TestRelyingParty(client_id="bank-web", redirect_uri=REDIRECT_URI)
    register_organisation_client(
        uow,
        BANK,
        name="Bank",
        jwks=relying_party.jwks(),
        redirect_uris=[REDIRECT_URI],
        sandbox=False,
        client_id="bank-web",
    )
    services.suspend_organisation(uow, BANK, actor="test")
    assert uow.session.get(OAuthClient, "bank-web").status == "suspended"  # type: ignore[union-attr]
    services.approve_organisation(uow, BANK, actor="test")
    assert uow.session.get(OAuthClient, "bank-web").status == "active"  # type: ignore[union-attr]


def test_a_pending_organisation_registers_no_client(uow: UnitOfWork) -> None:
    make_organisation(uow, status=PENDING)
    relying_party = TestRelyingParty(client_id="bank-web", redirect_uri=REDIRECT_URI)
    with pytest.raises(OrganisationNotApproved):
        register_organisation_client(
            uow, BANK, name="Bank", jwks=relying_party.jwks(), redirect_uris=[REDIRECT_URI], sandbox=False
        )


# -- services -------------------------------------------------------------------------------------


def test_a_service_level_is_its_highest_dataset_level_or_more_if_asked(uow: UnitOfWork, catalogue: None) -> None:
    make_organisation(uow)
    assert make_service(uow, name="low", required=("nhi.enrolment",), optional=()).level == "low"
    assert make_service(uow, name="mixed", required=("nhi.enrolment",), optional=("tax.income",)).level == "substantial"
    assert make_service(uow, name="high", required=("nhi.enrolment",), optional=(), level="high").level == "high"
    service = make_service(uow, name="loans", level="low")
    assert service.level == "substantial"
    assert service.required_datasets == ["household.registration", "tax.income"]
    assert service.optional_datasets == ["tax.property"]


@pytest.mark.parametrize(
    ("changes", "error", "reason"),
    [
        ({"service_id": "other-bank.loans"}, InvalidInput, "Not a valid service id"),
        ({"service_id": "test-bank.Loans"}, InvalidInput, "Not a valid service id"),
        ({"purpose_code": "loans"}, InvalidInput, None),
        ({"retention_days": 0}, InvalidInput, None),
        ({"retention_days": 100_000}, InvalidInput, None),
        ({"required_datasets": ()}, InvalidInput, None),
        ({"optional_datasets": ("tax.income",)}, InvalidInput, "once: tax.income"),
        ({"required_datasets": ("health.records",)}, UnknownDataset, "health.records"),
        ({"level": "extreme"}, InvalidLevel, "extreme"),
    ],
)
def test_a_service_definition_is_checked(
    uow: UnitOfWork, catalogue: None, changes: dict[str, Any], error: type[Exception], reason: str | None
) -> None:
    make_organisation(uow)
    arguments: dict[str, Any] = {
        "organisation_id": BANK,
        "service_id": f"{BANK}.loans",
        "name_zh": "房屋貸款",
        "name_en": "Mortgage",
        "purpose_zh": "審核。",
        "purpose_en": "To assess.",
        "purpose_code": "088",
        "required_datasets": ("household.registration", "tax.income"),
        "optional_datasets": (),
        "retention_days": 30,
        "actor": "test",
        **changes,
    }
    with pytest.raises(error, match=reason):
        services.define_service(uow, **arguments)


def test_a_suspended_dataset_cannot_go_into_a_new_service(uow: UnitOfWork, catalogue: None) -> None:
    make_organisation(uow)
    providers_services.suspend_dataset(uow, "tax.property", actor="test")
    with pytest.raises(UnknownDataset, match=r"tax\.property"):
        make_service(uow)


def test_services_of_an_unapproved_organisation_cannot_be_approved(uow: UnitOfWork, catalogue: None) -> None:
    make_organisation(uow, status=PENDING)
    service = make_service(uow, status=PENDING)
    with pytest.raises(OrganisationNotApproved):
        services.approve_service(uow, service.id, actor="test")
    services.approve_organisation(uow, BANK, actor="test")
    assert services.approve_service(uow, service.id, actor="test").status == APPROVED
    assert services.suspend_service(uow, service.id, actor="test").status == SUSPENDED
    assert [s.id for s in services.list_services(uow, status=SUSPENDED)] == [service.id]


# -- resolving `mydata_delivery` authorization details ------------------------------------------------


@pytest.fixture
def client_id(app: Flask, uow: UnitOfWork, catalogue: None) -> str:
    """Register the approved bank, its approved service `test-bank.loans`, and its client."""
    make_organisation(uow)
    make_service(uow)
    relying_party = TestRelyingParty(client_id="bank-web", redirect_uri=REDIRECT_URI)
    register_organisation_client(
        uow,
        BANK,
        name="Bank",
        jwks=relying_party.jwks(),
        redirect_uris=[REDIRECT_URI],
        sandbox=False,
        client_id="bank-web",
    )
    return "bank-web"


def delivery(service: str = f"{BANK}.loans", datasets: list[str] | None = None) -> dict[str, Any]:
    detail: dict[str, Any] = {"type": "mydata_delivery", "service": service}
    if datasets is not None:
        detail["datasets"] = datasets
    return detail


def test_without_datasets_a_request_is_for_every_dataset_of_the_service(uow: UnitOfWork, client_id: str) -> None:
    request = services.resolve_delivery(uow, delivery(), client_id)
    assert request.dataset_ids == ["household.registration", "tax.income", "tax.property"]
    assert request.detail() == {
        "type": "mydata_delivery",
        "service": "test-bank.loans",
        "datasets": ["household.registration", "tax.income", "tax.property"],
    }
    assert request.level == "substantial"
    summary = services.delivery_details(uow, delivery(), client_id).summary
    assert summary["service"] == "test-bank.loans"
    assert summary["service_name_zh"] == "房屋貸款"
    assert summary["organisation"] == BANK
    assert summary["organisation_type"] == "bank"
    assert summary["purpose_en"] == "To assess a mortgage application."
    assert summary["retention_days"] == 365
    assert summary["required_datasets"] == ["household.registration", "tax.income"]
    assert summary["optional_datasets"] == ["tax.property"]
    property_ = summary["dataset_details"][2]
    assert property_["id"] == "tax.property"
    assert property_["required"] is False
    assert property_["agency_name_zh"] == "財政部財政資訊中心"


def test_a_request_is_resolved_in_one_statement_without_reading_the_schemas(
    uow: UnitOfWork, client_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # PAR, both interaction pages and the decision each resolve the request: the client, its
    # organisation, the service and its datasets with the catalogue's texts, in one statement.
    uow.session.expunge_all()
    with recorded_statements(uow, monkeypatch) as statements:
        request = services.resolve_delivery(uow, delivery(), client_id)
    assert request.dataset_ids == ["household.registration", "tax.income", "tax.property"]
    assert len(statements) == 1, statements
    assert not any("json_schema" in s for s in statements)


def test_named_datasets_are_the_required_ones_and_the_optional_ones_chosen(uow: UnitOfWork, client_id: str) -> None:
    assert services.resolve_delivery(
        uow, delivery(datasets=["tax.income", "household.registration"]), client_id
    ).dataset_ids == ["household.registration", "tax.income"]


@pytest.mark.parametrize(
    ("detail", "reason"),
    [
        (delivery(datasets=["tax.income"]), "required datasets: missing household.registration"),
        (delivery(datasets=["household.registration", "tax.income", "labor.insurance"]), "does not include labor"),
        (delivery(datasets=["household.registration", "tax.income", "tax.income"]), "twice"),
        (delivery("test-bank.unknown"), "has no service"),
        (delivery("other-bank.loans"), "has no service"),
        ({"type": "mydata_delivery", "service": "x", "purpose": "y"}, "Unknown"),
    ],
)
def test_what_the_service_does_not_offer_is_refused(
    uow: UnitOfWork, client_id: str, detail: dict[str, Any], reason: str
) -> None:
    with pytest.raises(InvalidAuthorizationDetails, match=reason):
        services.resolve_delivery(uow, detail, client_id)


def test_another_organisations_service_is_refused_like_an_unknown_one(uow: UnitOfWork, client_id: str) -> None:
    make_organisation(uow, "other-bank", registration_number="04595257")
    make_service(uow, "other-bank")
    with pytest.raises(InvalidAuthorizationDetails, match=r"'test-bank' has no service 'other-bank\.loans'"):
        services.resolve_delivery(uow, delivery("other-bank.loans"), client_id)


@pytest.mark.parametrize("status", [PENDING, SUSPENDED])
def test_a_service_not_approved_cannot_be_requested(uow: UnitOfWork, client_id: str, status: str) -> None:
    make_service(uow, name="cards", status=status)
    with pytest.raises(InvalidAuthorizationDetails, match=f"test-bank.cards' is {status}.*approval"):
        services.resolve_delivery(uow, delivery("test-bank.cards"), client_id)


def test_a_suspended_organisation_requests_nothing(uow: UnitOfWork, client_id: str) -> None:
    services.suspend_organisation(uow, BANK, actor="test")
    with pytest.raises(InvalidAuthorizationDetails, match="not approved"):
        services.resolve_delivery(uow, delivery(), client_id)


def test_a_client_without_organisation_or_encryption_key_requests_nothing(
    uow: UnitOfWork, client_id: str, clock: FrozenClock
) -> None:
    relying_party = TestRelyingParty(client_id="loose", redirect_uri=REDIRECT_URI)
    register_client(
        uow, clock, name="x", jwks=relying_party.jwks(), redirect_uris=[REDIRECT_URI], sandbox=False, client_id="loose"
    )
    with pytest.raises(InvalidAuthorizationDetails, match="no relying-party organisation"):
        services.resolve_delivery(uow, delivery(), "loose")
    signature_only = {"keys": relying_party.jwks()["keys"][:1]}
    register_client(
        uow,
        clock,
        name="x",
        jwks=signature_only,
        redirect_uris=[REDIRECT_URI],
        sandbox=False,
        organisation_id=BANK,
        client_id="no-enc",
    )
    with pytest.raises(InvalidAuthorizationDetails, match="no encryption key"):
        services.resolve_delivery(uow, delivery(), "no-enc")
    with pytest.raises(ClientHasNoEncryptionKey):
        services.client_encryption_key(uow, "no-enc")
    assert services.client_encryption_key(uow, client_id)["kid"] == "rp-enc-1"


def test_an_unavailable_optional_dataset_is_not_offered_unless_named(uow: UnitOfWork, client_id: str) -> None:
    providers_services.suspend_dataset(uow, "tax.property", actor="test")
    assert services.resolve_delivery(uow, delivery(), client_id).dataset_ids == ["household.registration", "tax.income"]
    with pytest.raises(InvalidAuthorizationDetails, match=r"tax\.property is not available"):
        services.resolve_delivery(
            uow, delivery(datasets=["household.registration", "tax.income", "tax.property"]), client_id
        )
    providers_services.suspend_dataset(uow, "tax.income", actor="test")
    with pytest.raises(InvalidAuthorizationDetails, match=r"tax\.income is not available"):
        services.resolve_delivery(uow, delivery(), client_id)


def test_a_dataset_level_raised_after_approval_raises_the_request_level(uow: UnitOfWork, client_id: str) -> None:
    providers_services.update_dataset(uow, "tax.property", changes={"min_level": "high"}, actor="test")
    assert services.resolve_delivery(uow, delivery(), client_id).level == "high"
    assert services.resolve_delivery(
        uow, delivery(datasets=["household.registration", "tax.income"]), client_id
    ).level == ("substantial")
