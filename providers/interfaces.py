"""What the providers package promises other packages, and the conditions it reports as errors."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

from mydata.db import UnitOfWork
from mydata.errors import BadRequest, MydataError, NotFound

if TYPE_CHECKING:
    from providers.protocol import FetchResult


class DatasetFetcher(Protocol):
    """Fetch a person's datasets from their providers (the signature of ``services.fetch_datasets``).

    The consent broker and the portal depend on this shape, so that their tests can pass a fake.
    """

    def __call__(
        self, uow: UnitOfWork, *, national_id: str, datasets: Sequence[str], txn: str, purpose: str
    ) -> Mapping[str, FetchResult]:
        """Return one result per dataset, in the order asked, whatever happened to each."""


# -- registration (DESIGN §4.1) -------------------------------------------------------------------


class InvalidInput(BadRequest):
    """A request body or command option does not have the expected shape."""

    code = "invalid_request"
    description = "The request body is invalid; see `fields` for what to change."


class UnknownAgency(BadRequest):
    """A provider names an agency that is not registered."""

    code = "unknown_agency"
    description = "No agency is registered under this id: register the agency first."


class UnknownProvider(BadRequest):
    """A dataset names a provider that is not registered."""

    code = "unknown_provider"
    description = "No provider is registered under this id: register the provider first."


class AlreadyRegistered(MydataError):
    """An agency, provider or dataset with this id exists already."""

    code = "already_registered"
    status = 409
    description = "Something is already registered under this id."


class InvalidBaseUrl(BadRequest):
    """A provider's base URL is not an absolute http(s) URL without credentials, query or fragment."""

    code = "invalid_base_url"
    description = "The base URL must be an absolute https URL without user name, query or fragment."


class InsecureBaseUrl(BadRequest):
    """A provider's base URL is not https outside the sandbox (personal data travels over it)."""

    code = "insecure_base_url"
    description = "The base URL must use https: personal data travels over it."


class InvalidJwks(BadRequest):
    """A provider's JWKS is not a set of public ES256 or PS256 signing keys with unique kids."""

    code = "invalid_jwks"
    description = (
        "The JWKS must hold 1 to 10 public EC P-256 (ES256) or RSA >= 2048 bits (PS256) keys with unique kids."
    )


class PrivateKeyInJwks(InvalidJwks):
    """A JWKS holds private or symmetric key material, which must never leave the agency."""

    code = "private_key_in_jwks"
    description = "The JWKS holds private key material: register the public keys only, and replace the leaked key."


class InvalidSchema(BadRequest):
    """A dataset's JSON Schema is not a valid, self-contained draft 2020-12 schema of an object."""

    code = "invalid_schema"
    description = "The dataset schema must be a valid JSON Schema (draft 2020-12) for an object."


class InvalidLevel(BadRequest):
    """A minimum assurance level is not one of low, substantial, high."""

    code = "invalid_level"
    description = "The minimum level must be low, substantial or high."


class ProviderNotFound(NotFound):
    """No provider is registered under this id."""

    code = "provider_not_found"
    description = "No provider is registered under this id."


class DatasetNotFound(NotFound):
    """No dataset is registered under this id."""

    code = "dataset_not_found"
    description = "No dataset is registered under this id."


class UnknownDataset(BadRequest):
    """A fetch names a dataset that is not in the catalogue."""

    code = "unknown_dataset"
    description = "This dataset is not in the catalogue."


# -- schema versions (issue 13) -------------------------------------------------------------------


class SchemaUnchanged(BadRequest):
    """A proposed schema is the one the dataset publishes already."""

    code = "schema_unchanged"
    description = "This schema is the one the dataset publishes already: change it before proposing it."


class SchemaVersionNotFound(NotFound):
    """No proposed schema version has this id (or it is not one the caller may see)."""

    code = "schema_version_not_found"
    description = "No proposed schema version has this id."


class SchemaVersionDecided(MydataError):
    """A schema version was approved or rejected already; a decision is not taken twice."""

    code = "schema_version_decided"
    status = 409
    description = "This schema version has been decided already."


# -- operator API tokens (docs/decisions/0002-operator-api-tokens.md) -----------------------------


class MissingOperatorToken(MydataError):
    """An operator API request carries no bearer token (RFC 6750 §3.1: no error code)."""

    code = "unauthorized"
    status = 401
    description = "This API needs an operator token: send `Authorization: Bearer <token>`."


class InvalidOperatorToken(MydataError):
    """An operator API request carries a token that is unknown or revoked."""

    code = "invalid_token"
    status = 401
    description = (
        "The operator token is unknown or revoked: issue a new one with `mydata providers issue-operator-token`."
    )


class OperatorTokenNotFound(NotFound):
    """No operator token has this id."""

    code = "operator_token_not_found"
    description = "No operator token has this id."


class NotPending(MydataError):
    """Only a pending provider or dataset can be rejected (an active one is suspended)."""

    code = "not_pending"
    status = 409
    description = "Only a pending provider or dataset can be rejected."
