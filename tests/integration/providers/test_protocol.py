"""The platform fetches from the sandbox agencies over real HTTP, with real signatures (DESIGN §4.2-4.3)."""

from __future__ import annotations

import logging
from typing import Any

import jwt
import pytest
from flask import Flask
from jsonschema import Draft202012Validator

from mydata.clock import FrozenClock
from mydata.config import ROOT
from mydata.db import get_db
from providers import services
from providers.interfaces import UnknownDataset
from providers.protocol import FetchResult, Outcome
from providers.sandbox.data import DATASET_IDS, SANDBOX_NATIONAL_IDS, dataset_for
from providers.sandbox.faults import Fault, FaultKind, load_faults
from providers.sandbox.keys import generate_agency_key

from .conftest import BREAKER_THRESHOLD, COOL_DOWN_SECONDS, Fetch, RunningAgencies

pytestmark = pytest.mark.db

WANG, LIN, CHEN, CHANG, HUANG, CHAO = SANDBOX_NATIONAL_IDS


def catalogue_of(app: Flask) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return the registered schemas by dataset and JWKS by provider, as a relying party reads them."""
    with app.app_context(), get_db().unit_of_work() as uow:
        schemas = {d.id: d.json_schema for d in services.list_datasets(uow)}
        jwks = {p.id: p.jwks for p in services.list_providers(uow)}
    return schemas, jwks


def test_every_persona_and_dataset_validates_against_the_registered_schema(
    app: Flask, agencies: RunningAgencies, fetch: Fetch
) -> None:
    schemas, jwks = catalogue_of(app)
    for national_id in SANDBOX_NATIONAL_IDS:
        results = fetch(national_id, DATASET_IDS, txn=f"txn-{national_id}")
        assert list(results) == list(DATASET_IDS)
        for dataset_id, result in results.items():
            if (national_id, dataset_id) == (CHAO, "labor.insurance"):
                assert result.outcome is Outcome.NO_RECORD
                assert result.data is None
                assert result.provider_jws is None
                continue
            assert result.outcome is Outcome.OK, (national_id, dataset_id, result.detail)
            assert result.data == dataset_for(national_id, dataset_id)
            Draft202012Validator(schemas[dataset_id], format_checker=Draft202012Validator.FORMAT_CHECKER).validate(
                result.data
            )
            # What a relying party does with provider_jws: verify it with the catalogue's JWKS.
            assert result.provider_jws is not None
            header = jwt.get_unverified_header(result.provider_jws)
            keys = {k["kid"]: k for k in jwks[result.provider]["keys"]}
            key = jwt.PyJWK(keys[header["kid"]]).key
            claims = jwt.decode(result.provider_jws, key, algorithms=["ES256"])
            assert claims["data"] == result.data
            assert claims["txn"] == f"txn-{national_id}"
            assert result.generated_at == claims["generated_at"]
            assert result.generated_at.endswith("+08:00")


def test_persona_5_default_faults_give_timeout_unavailable_and_bad_signature(
    agencies: RunningAgencies, fetch: Fetch
) -> None:
    for fault in load_faults(ROOT / "config" / "sandbox-faults.toml"):
        agencies.faults.put(fault)
    results = fetch(HUANG, DATASET_IDS)
    assert {d: r.outcome for d, r in results.items()} == {
        "household.registration": Outcome.TIMEOUT,
        "tax.income": Outcome.UNAVAILABLE,
        "tax.property": Outcome.OK,
        "labor.insurance": Outcome.BAD_SIGNATURE,
        "nhi.enrolment": Outcome.OK,
    }
    assert results["tax.income"].detail == "http_500"
    assert results["labor.insurance"].data is None
    assert results["labor.insurance"].provider_jws is None
    # The other personas are not affected.
    assert all(r.outcome is Outcome.OK for r in fetch(WANG, DATASET_IDS).values())


@pytest.mark.parametrize(
    ("kind", "outcome", "detail"),
    [
        (FaultKind.TIMEOUT, Outcome.TIMEOUT, None),
        (FaultKind.ERROR, Outcome.UNAVAILABLE, "http_500"),
        (FaultKind.BAD_SIGNATURE, Outcome.BAD_SIGNATURE, "signature"),
        (FaultKind.INVALID_DATA, Outcome.SCHEMA_VIOLATION, None),
        (FaultKind.DELAY, Outcome.OK, None),
    ],
)
def test_each_injected_fault_has_its_outcome(
    agencies: RunningAgencies, fetch: Fetch, kind: FaultKind, outcome: Outcome, detail: str | None
) -> None:
    delay = 100 if kind is FaultKind.DELAY else 0
    agencies.faults.put(Fault(national_id=LIN, dataset="tax.income", kind=kind, delay_ms=delay))
    result = fetch(LIN, ["tax.income", "nhi.enrolment"])
    assert result["tax.income"].outcome is outcome
    assert result["nhi.enrolment"].outcome is Outcome.OK
    if detail:
        assert result["tax.income"].detail == detail
    if outcome is not Outcome.OK:
        assert result["tax.income"].data is None


def test_schema_violation_names_the_place_not_the_value(agencies: RunningAgencies, fetch: Fetch) -> None:
    agencies.faults.put(Fault(national_id=WANG, dataset="household.registration", kind=FaultKind.INVALID_DATA))
    result = fetch(WANG, ["household.registration"])["household.registration"]
    assert result.outcome is Outcome.SCHEMA_VIOLATION
    assert result.detail is not None
    assert result.detail.startswith("schema:$")
    assert WANG not in result.detail


def test_busy_agency_is_unavailable_with_its_retry_after(agencies: RunningAgencies, fetch: Fetch) -> None:
    agencies.faults.put(Fault(national_id="*", dataset="nhi.enrolment", kind=FaultKind.BUSY, retry_after=120))
    result = fetch(CHANG, ["nhi.enrolment"])["nhi.enrolment"]
    assert result.outcome is Outcome.UNAVAILABLE
    assert result.retry_after == 120
    assert result.detail == "http_503"


def test_circuit_opens_after_repeated_failures_and_closes_after_the_cool_down(
    agencies: RunningAgencies, fetch: Fetch, clock: FrozenClock
) -> None:
    agencies.faults.put(Fault(national_id="*", dataset="tax.income", kind=FaultKind.ERROR))
    for _ in range(BREAKER_THRESHOLD):
        assert fetch(WANG, ["tax.income"])["tax.income"].detail == "http_500"
    calls = len(agencies.calls)

    refused = fetch(WANG, ["tax.income", "nhi.enrolment"])
    assert refused["tax.income"].outcome is Outcome.UNAVAILABLE
    assert refused["tax.income"].detail == "circuit_open"
    assert refused["tax.income"].retry_after == COOL_DOWN_SECONDS
    # The open circuit made no network call for mof-fia; nhia, another provider, was called.
    assert len(agencies.calls) == calls + 1
    assert refused["nhi.enrolment"].outcome is Outcome.OK
    # The breaker is per provider: tax.property (also mof-fia) is refused as well.
    assert fetch(WANG, ["tax.property"])["tax.property"].detail == "circuit_open"

    clock.advance(COOL_DOWN_SECONDS - 1)
    assert fetch(WANG, ["tax.income"])["tax.income"].retry_after == 1
    assert len(agencies.calls) == calls + 1

    agencies.faults.clear()
    clock.advance(1)
    assert fetch(WANG, ["tax.income"])["tax.income"].outcome is Outcome.OK  # the half-open trial
    assert fetch(WANG, ["tax.property"])["tax.property"].outcome is Outcome.OK  # closed again
    assert len(agencies.calls) == calls + 3


def test_rotated_provider_key_keeps_working_and_the_removed_key_stops_verifying(
    app: Flask, agencies: RunningAgencies, fetch: Fetch
) -> None:
    old = agencies.state.signing_key("bli")
    assert old is not None
    new = generate_agency_key("bli")

    def register(*keys: Any) -> None:
        with app.app_context(), get_db().unit_of_work() as uow:
            jwks = {"keys": [k.public_jwk() for k in keys]}
            services.update_provider(uow, "bli", jwks=jwks, allow_http=True, actor="test")

    register(old, new)  # 1. publish the new key beside the old one
    assert fetch(WANG, ["labor.insurance"])["labor.insurance"].outcome is Outcome.OK
    agencies.state.use_key("bli", new)  # 2. sign with the new key
    assert fetch(WANG, ["labor.insurance"])["labor.insurance"].outcome is Outcome.OK
    register(new)  # 3. retire the old key
    assert fetch(WANG, ["labor.insurance"])["labor.insurance"].outcome is Outcome.OK

    agencies.state.use_key("bli", old)  # an answer signed with the removed key
    result = fetch(WANG, ["labor.insurance"])["labor.insurance"]
    assert result.outcome is Outcome.BAD_SIGNATURE
    assert result.detail == "unknown_kid"


def test_suspended_provider_and_dataset_are_unavailable_without_a_call(
    app: Flask, agencies: RunningAgencies, fetch: Fetch
) -> None:
    with app.app_context(), get_db().unit_of_work() as uow:
        services.suspend_provider(uow, "nhia", actor="test")
        services.suspend_dataset(uow, "tax.property", actor="test")
    results = fetch(WANG, ["nhi.enrolment", "tax.property", "tax.income"])
    assert results["nhi.enrolment"].outcome is Outcome.UNAVAILABLE
    assert results["nhi.enrolment"].detail == "provider_suspended"
    assert results["tax.property"].detail == "dataset_suspended"
    assert results["tax.income"].outcome is Outcome.OK
    assert agencies.calls == ["/mof-fia/mydata/v1/query"]


def test_unknown_dataset_is_refused_before_any_call(agencies: RunningAgencies, fetch: Fetch) -> None:
    with pytest.raises(UnknownDataset, match=r"no\.such"):
        fetch(WANG, ["tax.income", "no.such"])
    assert agencies.calls == []


def test_each_dataset_is_fetched_once_in_the_order_asked(agencies: RunningAgencies, fetch: Fetch) -> None:
    results = fetch(WANG, ["nhi.enrolment", "tax.income", "nhi.enrolment"])
    assert list(results) == ["nhi.enrolment", "tax.income"]
    assert isinstance(results["tax.income"], FetchResult)
    assert sorted(agencies.calls) == ["/mof-fia/mydata/v1/query", "/nhia/mydata/v1/query"]


def test_logs_carry_no_personal_data(agencies: RunningAgencies, fetch: Fetch, caplog: pytest.LogCaptureFixture) -> None:
    agencies.faults.put(Fault(national_id=WANG, dataset="tax.property", kind=FaultKind.INVALID_DATA))
    agencies.faults.put(Fault(national_id=WANG, dataset="labor.insurance", kind=FaultKind.BAD_SIGNATURE))
    with caplog.at_level(logging.DEBUG):
        results = fetch(WANG, DATASET_IDS)
    assert "providers:fetch:ok dataset=household.registration provider=moi-household" in caplog.text
    household = results["household.registration"].data
    assert household is not None
    for secret in (WANG, "王小明", household["household_number"]):
        assert secret not in caplog.text
