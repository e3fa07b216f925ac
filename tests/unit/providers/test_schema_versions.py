"""Schema versions (issue 13): an agency's schema change waits for an operator; the published one stays."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from mydata import decisions
from mydata.db import UnitOfWork
from providers import services
from providers.interfaces import InvalidInput, InvalidSchema, SchemaUnchanged, SchemaVersionDecided
from providers.models import Dataset
from tests.unit.providers.conftest import OBJECT_SCHEMA

pytestmark = pytest.mark.db


def wider(name: str = "currency") -> dict[str, Any]:
    schema = copy.deepcopy(OBJECT_SCHEMA)
    schema["properties"][name] = {"type": "string"}
    return schema


def test_a_proposal_waits_and_one_pending_version_is_replaced_not_doubled(uow: UnitOfWork, dataset: Dataset) -> None:
    first = services.propose_schema(uow, dataset.id, json_schema=wider(), actor="officer")
    assert (first.version, first.status) == (2, "pending")
    assert (dataset.schema_version, dataset.json_schema) == (1, OBJECT_SCHEMA)
    second = services.propose_schema(uow, dataset.id, json_schema=wider("note"), actor="officer")
    assert second.id == first.id
    assert second.json_schema == wider("note")
    assert len(services.list_schema_versions(uow, dataset_ids=[dataset.id])) == 1


def test_a_proposal_is_checked_like_a_registration(uow: UnitOfWork, dataset: Dataset) -> None:
    with pytest.raises(InvalidSchema):
        services.propose_schema(uow, dataset.id, json_schema={"type": "array"}, actor="officer")
    with pytest.raises(SchemaUnchanged):
        services.propose_schema(uow, dataset.id, json_schema=copy.deepcopy(OBJECT_SCHEMA), actor="officer")
    assert services.pending_schema(uow, dataset.id) is None


def test_approval_publishes_and_records_it_once(uow: UnitOfWork, dataset: Dataset) -> None:
    version = services.propose_schema(uow, dataset.id, json_schema=wider(), actor="officer")
    old_digest = dataset.schema_sha256
    services.approve_schema_version(uow, version.id, actor="citizen:op")
    assert (dataset.schema_version, dataset.json_schema) == (2, wider())
    assert dataset.schema_sha256 == services.schema_digest(wider()) != old_digest
    [decision] = decisions.recent(uow, subject_type="schema")
    assert (decision.subject_id, decision.action, decision.actor) == (f"{dataset.id}@2", "approve", "citizen:op")
    with pytest.raises(SchemaVersionDecided):
        services.reject_schema_version(uow, version.id, actor="citizen:op", reason="too late")


def test_rejection_needs_a_reason_and_publishes_nothing(uow: UnitOfWork, dataset: Dataset) -> None:
    version = services.propose_schema(uow, dataset.id, json_schema=wider(), actor="officer")
    with pytest.raises(InvalidInput):
        services.reject_schema_version(uow, version.id, actor="citizen:op", reason="  ")
    services.reject_schema_version(
        uow, version.id, actor="citizen:op", reason="name the currency field amount_currency"
    )
    assert (dataset.schema_version, dataset.json_schema) == (1, OBJECT_SCHEMA)
    [decision] = decisions.recent(uow, subject_type="schema")
    assert (decision.action, decision.reason) == ("reject", "name the currency field amount_currency")
    assert services.propose_schema(uow, dataset.id, json_schema=wider(), actor="officer").version == 3


def test_an_operators_change_in_place_meanwhile_goes_before_the_pending_version(
    uow: UnitOfWork, dataset: Dataset
) -> None:
    version = services.propose_schema(uow, dataset.id, json_schema=wider(), actor="officer")
    services.update_dataset(uow, dataset.id, changes={"json_schema": wider("note")}, actor="operator")
    assert dataset.schema_version == 3  # version 2 is the pending proposal's number
    services.approve_schema_version(uow, version.id, actor="citizen:op")
    assert (dataset.schema_version, dataset.json_schema) == (4, wider())
    assert version.version == 4
