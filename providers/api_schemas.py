"""Marshmallow schemas of the catalogue's JSON API (the package's ``schemas/`` folder holds the datasets' JSON Schemas).

Schemas check the shape of a body; the rules (id formats, https, JWKS, JSON Schema validity) live in
:mod:`providers.services`, so that the CLI and the seeding obey them too.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from marshmallow import Schema, fields, validate

from providers.models import LEVELS, STATUSES

_ID = validate.Length(min=1, max=100)
_TITLE = validate.Length(min=1, max=200)
_DESCRIPTION = validate.Length(min=1, max=5000)


class UtcDateTime(fields.DateTime):
    """An ISO 8601 time in UTC (SQLite hands back naive times; they are UTC)."""

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        if isinstance(value, dt.datetime) and value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return super()._serialize(value, attr, obj, **kwargs)


# -- agencies -------------------------------------------------------------------------------------


class AgencyRegistrationSchema(Schema):
    """An agency to register."""

    id = fields.String(
        required=True,
        validate=_ID,
        metadata={"example": "moea-commerce", "description": "lowercase id, e.g. moi-household"},
    )
    name_zh = fields.String(
        required=True,
        validate=_TITLE,
        metadata={"example": "經濟部商業發展署", "description": "name in Traditional Chinese"},
    )
    name_en = fields.String(
        required=True,
        validate=_TITLE,
        metadata={
            "example": "Administration of Commerce, Ministry of Economic Affairs",
            "description": "name in English",
        },
    )


class AgencySchema(Schema):
    """A registered agency."""

    id = fields.String(required=True, metadata={"example": "moea-commerce"})
    name_zh = fields.String(required=True, metadata={"example": "經濟部商業發展署"})
    name_en = fields.String(
        required=True, metadata={"example": "Administration of Commerce, Ministry of Economic Affairs"}
    )
    created_at = UtcDateTime(required=True)


class AgencyListSchema(Schema):
    """Every registered agency."""

    agencies = fields.List(fields.Nested(AgencySchema), required=True)


# -- providers ------------------------------------------------------------------------------------


class ProviderRegistrationSchema(Schema):
    """A data provider to register (pending until an operator approves it)."""

    id = fields.String(
        required=True,
        validate=_ID,
        metadata={"example": "moea-commerce", "description": "lowercase id; the aud of queries"},
    )
    agency = fields.String(
        required=True, validate=_ID, metadata={"example": "moea-commerce", "description": "id of a registered agency"}
    )
    base_url = fields.String(
        required=True,
        validate=validate.Length(min=1, max=500),
        metadata={
            "example": "https://commerce.example.gov.tw/mydata",
            "description": "https base URL; the platform posts to {base_url}/mydata/v1/query",
        },
    )
    jwks = fields.Dict(
        required=True, metadata={"description": "public JWKS of the response-signing keys (ES256 or PS256)"}
    )


class ProviderUpdateSchema(Schema):
    """Changes to a provider: a new base URL, or a new JWKS (key rotation)."""

    base_url = fields.String(
        validate=validate.Length(min=1, max=500), metadata={"example": "https://commerce.example.gov.tw/mydata"}
    )
    jwks = fields.Dict()


class ProviderSchema(Schema):
    """A registered provider."""

    id = fields.String(required=True, metadata={"example": "moea-commerce"})
    agency = fields.String(required=True, attribute="agency_id", metadata={"example": "moea-commerce"})
    base_url = fields.String(required=True, metadata={"example": "https://commerce.example.gov.tw/mydata"})
    jwks = fields.Dict(required=True)
    status = fields.String(required=True, validate=validate.OneOf(STATUSES))
    created_at = UtcDateTime(required=True)
    updated_at = UtcDateTime(required=True)


class ProviderListSchema(Schema):
    """Every registered provider."""

    providers = fields.List(fields.Nested(ProviderSchema), required=True)


# -- datasets -------------------------------------------------------------------------------------


class DatasetRegistrationSchema(Schema):
    """A dataset to register (pending until an operator approves it)."""

    id = fields.String(
        required=True,
        validate=_ID,
        metadata={"example": "company.registration", "description": "dotted id, e.g. tax.income"},
    )
    provider = fields.String(
        required=True, validate=_ID, metadata={"example": "moea-commerce", "description": "id of a registered provider"}
    )
    title_zh = fields.String(required=True, validate=_TITLE, metadata={"example": "公司登記資料"})
    title_en = fields.String(required=True, validate=_TITLE, metadata={"example": "Company registration"})
    description_zh = fields.String(
        required=True,
        validate=_DESCRIPTION,
        metadata={"example": "您擔任負責人或董事的公司：統一編號、公司名稱、登記地址、資本額及職稱。"},
    )
    description_en = fields.String(
        required=True,
        validate=_DESCRIPTION,
        metadata={
            "example": (
                "The companies you represent or direct: business number, name, registered address, capital "
                "and your position."
            )
        },
    )
    json_schema = fields.Dict(
        required=True, data_key="schema", metadata={"description": "JSON Schema (draft 2020-12) of the data"}
    )
    min_level = fields.String(required=True, validate=validate.OneOf(LEVELS))
    citizen_downloadable = fields.Boolean(required=True)


class DatasetUpdateSchema(Schema):
    """Changes to a dataset; a new schema becomes the next schema version."""

    title_zh = fields.String(validate=_TITLE, metadata={"example": "公司登記資料"})
    title_en = fields.String(validate=_TITLE, metadata={"example": "Company registration"})
    description_zh = fields.String(
        validate=_DESCRIPTION,
        metadata={"example": "您擔任負責人或董事的公司：統一編號、公司名稱、登記地址、資本額及職稱。"},
    )
    description_en = fields.String(
        validate=_DESCRIPTION,
        metadata={
            "example": (
                "The companies you represent or direct: business number, name, registered address, capital "
                "and your position."
            )
        },
    )
    json_schema = fields.Dict(data_key="schema")
    min_level = fields.String(validate=validate.OneOf(LEVELS))
    citizen_downloadable = fields.Boolean()


class DatasetTextsSchema(Schema):
    """A dataset's id and what citizens read of it, in both languages (registered and catalogue alike)."""

    id = fields.String(required=True, metadata={"example": "company.registration"})
    title_zh = fields.String(required=True, metadata={"example": "公司登記資料"})
    title_en = fields.String(required=True, metadata={"example": "Company registration"})
    description_zh = fields.String(
        required=True,
        metadata={"example": "您擔任負責人或董事的公司：統一編號、公司名稱、登記地址、資本額及職稱。"},
    )
    description_en = fields.String(
        required=True,
        metadata={
            "example": (
                "The companies you represent or direct: business number, name, registered address, capital "
                "and your position."
            )
        },
    )


class DatasetSchema(DatasetTextsSchema):
    """A registered dataset."""

    provider = fields.String(required=True, attribute="provider_id", metadata={"example": "moea-commerce"})
    min_level = fields.String(required=True, validate=validate.OneOf(LEVELS))
    citizen_downloadable = fields.Boolean(required=True)
    status = fields.String(required=True, validate=validate.OneOf(STATUSES))
    schema_version = fields.Integer(required=True)
    schema_sha256 = fields.String(
        required=True, metadata={"example": "3f1c2e9a8b7d6c5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e"}
    )
    created_at = UtcDateTime(required=True)
    updated_at = UtcDateTime(required=True)


class DatasetDetailSchema(DatasetSchema):
    """A registered dataset with its JSON Schema."""

    json_schema = fields.Dict(required=True, data_key="schema")


class DatasetListSchema(Schema):
    """Every registered dataset."""

    datasets = fields.List(fields.Nested(DatasetSchema), required=True)


# -- the public catalogue -------------------------------------------------------------------------


class CatalogueDatasetSchema(DatasetTextsSchema):
    """An active dataset of the public catalogue."""

    provider = fields.String(required=True, metadata={"example": "moea-commerce"})
    agency = fields.String(required=True, metadata={"example": "moea-commerce"})
    min_level = fields.String(required=True, validate=validate.OneOf(LEVELS))
    citizen_downloadable = fields.Boolean(required=True)
    schema_version = fields.Integer(required=True)


class CatalogueProviderSchema(Schema):
    """An active provider and the public keys that verify its signed answers (``provider_jws``)."""

    id = fields.String(required=True, metadata={"example": "moea-commerce"})
    agency = fields.String(required=True, metadata={"example": "moea-commerce"})
    agency_name_zh = fields.String(required=True, metadata={"example": "經濟部商業發展署"})
    agency_name_en = fields.String(
        required=True, metadata={"example": "Administration of Commerce, Ministry of Economic Affairs"}
    )
    jwks = fields.Dict(required=True)


class CatalogueSchema(Schema):
    """The public dataset catalogue: active datasets and active providers with their JWKS."""

    datasets = fields.List(fields.Nested(CatalogueDatasetSchema), required=True)
    providers = fields.List(fields.Nested(CatalogueProviderSchema), required=True)


class DatasetJsonSchemaSchema(Schema):
    """The JSON Schema (draft 2020-12) that an active dataset's ``data`` meets."""

    dataset = fields.String(required=True, metadata={"example": "company.registration"})
    schema_version = fields.Integer(required=True)
    json_schema = fields.Dict(required=True, data_key="schema")
