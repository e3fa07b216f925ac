"""The dataset schema check of the protocol client: as strict as the JSON Schema, cheap per answer."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from providers.sandbox.data import dataset_for
from providers.schema_check import SchemaCheck
from providers.schemas import DATASET_IDS, load_schema

WANG = "A123456789"

SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["name", "born", "members"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "minLength": 1},
        "born": {"type": "string", "format": "date"},
        "email": {"type": "string", "format": "email"},
        "members": {"type": "array", "items": {"$ref": "#/$defs/member"}},
    },
    "$defs": {"member": {"type": "object", "required": ["id"], "properties": {"id": {"pattern": "^[A-Z][0-9]{9}$"}}}},
}
VALID = {"name": "王小明", "born": "1990-01-31", "members": [{"id": WANG}]}


@pytest.mark.parametrize("dataset_id", DATASET_IDS)
def test_every_sandbox_answer_passes(dataset_id: str) -> None:
    check = SchemaCheck(load_schema(dataset_id))
    assert check.first_error(dataset_for(WANG, dataset_id)) is None


def test_valid_data_passes() -> None:
    assert SchemaCheck(SCHEMA).first_error(VALID) is None


@pytest.mark.parametrize(
    ("change", "detail"),
    [
        (lambda d: d.pop("name"), "schema:$:required"),
        (lambda d: d.update(extra=1), "schema:$:additionalProperties"),
        (lambda d: d.update(born="1990-02-31"), "schema:$.born:format"),
        (lambda d: d.update(born=19900131), "schema:$.born:type"),
        (lambda d: d["members"][0].update(id="a123"), "schema:$.members[0].id:pattern"),
        (lambda d: d.update(name=""), "schema:$.name:minLength"),
    ],
)
def test_invalid_data_is_refused_naming_the_place_and_the_keyword(change: Any, detail: str) -> None:
    data = copy.deepcopy(VALID)
    change(data)
    assert SchemaCheck(SCHEMA).first_error(data) == detail


def test_the_detail_never_holds_the_value() -> None:
    data = {**copy.deepcopy(VALID), "members": [{"id": "not-a-national-id-" + WANG}]}
    detail = SchemaCheck(SCHEMA).first_error(data)
    assert detail is not None
    assert WANG not in detail


def test_a_remote_reference_is_never_fetched() -> None:
    # Registration refuses such a schema (check_json_schema); the check does not fetch it either.
    schema = {**SCHEMA, "properties": {**SCHEMA["properties"], "name": {"$ref": "https://example.invalid/s.json"}}}
    check = SchemaCheck(json.loads(json.dumps(schema)))
    assert check.first_error(VALID) is not None


def test_a_format_only_jsonschema_rs_checks_is_refused_with_its_place() -> None:
    # jsonschema checks "email" as "contains an @"; jsonschema-rs checks the address: the stricter wins.
    data = {**copy.deepcopy(VALID), "email": "@"}
    assert SchemaCheck(SCHEMA).first_error(data) == "schema:$.email:format"
