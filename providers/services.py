"""Catalogue rules: register and approve agencies, providers and datasets; fetch a person's datasets.

Every function takes a unit of work and plain values, and commits what it changes. The JSON API,
the CLI and the sandbox seeding all go through these functions, so the rules hold however a
provider is registered.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import re
import secrets
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import unquote, urlsplit

from flask import Flask, current_app
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import joinedload

from mydata import canonical_json, decisions
from mydata.clock import clock
from mydata.db import UnitOfWork
from mydata.keys import key_store
from providers.client import HealthCheck, ProviderClient, Route
from providers.interfaces import (
    AlreadyRegistered,
    DatasetFetcher,
    DatasetNotFound,
    InsecureBaseUrl,
    InvalidBaseUrl,
    InvalidInput,
    InvalidLevel,
    InvalidOperatorToken,
    InvalidSchema,
    MissingOperatorToken,
    NotPending,
    OperatorTokenNotFound,
    ProviderNotFound,
    SchemaUnchanged,
    SchemaVersionDecided,
    SchemaVersionNotFound,
    UnknownAgency,
    UnknownDataset,
    UnknownProvider,
)
from providers.jwks import check_provider_jwks
from providers.models import (
    ACTIVE,
    LEVELS,
    PENDING,
    REJECTED,
    SCHEMA_APPROVED,
    SCHEMA_PENDING,
    SCHEMA_REJECTED,
    SUSPENDED,
    Agency,
    Dataset,
    OperatorToken,
    Provider,
    SchemaVersion,
)
from providers.protocol import FetchResult

log = logging.getLogger(__name__)

# Agency and provider ids travel in URLs and JWT audiences: lowercase letters, digits and hyphens.
_PARTY_ID = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
# Dataset ids are dotted names: household.registration, tax.income.
_DATASET_ID = re.compile(r"^[a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)+$")
_DRAFT_2020_12 = ("https://json-schema.org/draft/2020-12/schema", "https://json-schema.org/draft/2020-12/schema#")
MAX_SCHEMA_BYTES = 256 * 1024
OPERATOR_TOKEN_PREFIX = "mdop_"  # noqa: S105 -- a marker that helps secret scanners, not a secret
_Row = TypeVar("_Row", Provider, Dataset)
_DATASET_CHANGES = frozenset(
    {"title_zh", "title_en", "description_zh", "description_en", "json_schema", "min_level", "citizen_downloadable"}
)


# -- catalogue views handed to other packages ------------------------------------------------------


@dataclass(frozen=True)
class DatasetEntry:
    """A dataset as the public catalogue, the consent screen and the portal show it."""

    id: str
    title_zh: str
    title_en: str
    description_zh: str
    description_en: str
    provider: str
    agency: str
    agency_name_zh: str
    agency_name_en: str
    min_level: str
    citizen_downloadable: bool
    schema_version: int


@dataclass(frozen=True)
class ProviderEntry:
    """An active provider and the public keys its answers are signed with."""

    id: str
    agency: str
    agency_name_zh: str
    agency_name_en: str
    jwks: dict[str, Any]


@dataclass(frozen=True)
class Catalogue:
    """The public catalogue: active datasets of active providers, and those providers (DESIGN §4.1)."""

    datasets: tuple[DatasetEntry, ...]
    providers: tuple[ProviderEntry, ...]


@dataclass(frozen=True)
class ProviderHealth:
    """The health of one registered provider, for `mydata providers check`."""

    provider: str
    agency: str
    status: str
    check: HealthCheck


# -- agencies -------------------------------------------------------------------------------------


def register_agency(uow: UnitOfWork, *, agency_id: str, name_zh: str, name_en: str, actor: str) -> Agency:
    """Register an agency (資料提供機關) and commit."""
    _check_party_id("id", agency_id)
    fields = _check_texts(name_zh=name_zh, name_en=name_en)
    session = uow.session
    if session.get(Agency, agency_id) is not None:
        raise AlreadyRegistered(f"An agency is already registered as {agency_id!r}.")
    agency = Agency(id=agency_id, created_at=clock().now(), **fields)
    session.add(agency)
    uow.commit()
    log.info("providers:agency:registered agency=%s actor=%s", agency_id, actor)
    return agency


def list_agencies(uow: UnitOfWork) -> list[Agency]:
    """Return every agency, by id."""
    return list(uow.session.scalars(select(Agency).order_by(Agency.id)))


# -- providers ------------------------------------------------------------------------------------


def register_provider(
    uow: UnitOfWork,
    *,
    provider_id: str,
    agency_id: str,
    base_url: str,
    jwks: object,
    allow_http: bool,
    actor: str,
    status: str = PENDING,
) -> Provider:
    """Register a provider of *agency_id*, pending approval unless *status* says otherwise, and commit."""
    _check_party_id("id", provider_id)
    session = uow.session
    if session.get(Agency, agency_id) is None:
        raise UnknownAgency(f"No agency is registered as {agency_id!r}: register the agency first.")
    if session.get(Provider, provider_id) is not None:
        raise AlreadyRegistered(f"A provider is already registered as {provider_id!r}.")
    now = clock().now()
    provider = Provider(
        id=provider_id,
        agency_id=agency_id,
        base_url=check_base_url(base_url, allow_http=allow_http),
        jwks=check_provider_jwks(jwks),
        status=_check_status(status),
        created_at=now,
        updated_at=now,
    )
    session.add(provider)
    uow.commit()
    log.info("providers:provider:registered provider=%s agency=%s actor=%s", provider_id, agency_id, actor)
    return provider


def update_provider(
    uow: UnitOfWork,
    provider_id: str,
    *,
    base_url: str | None = None,
    jwks: object | None = None,
    allow_http: bool,
    actor: str,
) -> Provider:
    """Change a provider's base URL or JWKS (key rotation) and commit; the new keys apply to the next fetch."""
    provider = get_provider(uow, provider_id)
    changed = []
    if base_url is not None:
        provider.base_url = check_base_url(base_url, allow_http=allow_http)
        changed.append("base_url")
    if jwks is not None:
        provider.jwks = check_provider_jwks(jwks)
        changed.append("jwks")
    if changed:
        provider.updated_at = clock().now()
        uow.commit()
        log.info("providers:provider:updated provider=%s fields=%s actor=%s", provider_id, ",".join(changed), actor)
    return provider


def approve_provider(uow: UnitOfWork, provider_id: str, *, actor: str, reason: str | None = None) -> Provider:
    """Let the platform fetch from a provider, and commit."""
    return _set_status(uow, get_provider(uow, provider_id), ACTIVE, actor, reason)


def suspend_provider(uow: UnitOfWork, provider_id: str, *, actor: str, reason: str | None = None) -> Provider:
    """Stop fetching from a provider (its datasets become ``unavailable``), and commit."""
    return _set_status(uow, get_provider(uow, provider_id), SUSPENDED, actor, reason)


def reject_provider(uow: UnitOfWork, provider_id: str, *, actor: str, reason: str) -> Provider:
    """Refuse a pending provider, for *reason* (required): it is served nowhere; commit.

    Raise :class:`NotPending` for a provider that is not pending (suspend an active one).
    """
    return _reject(uow, get_provider(uow, provider_id), actor, reason)


def get_provider(uow: UnitOfWork, provider_id: str) -> Provider:
    """Return a provider; raise :class:`ProviderNotFound`."""
    provider = uow.session.get(Provider, provider_id)
    if provider is None:
        raise ProviderNotFound(f"No provider is registered as {provider_id!r}.")
    return provider


def list_providers(uow: UnitOfWork) -> list[Provider]:
    """Return every provider with its agency, by id."""
    return list(uow.session.scalars(select(Provider).options(joinedload(Provider.agency)).order_by(Provider.id)))


def check_base_url(url: str, *, allow_http: bool) -> str:
    """Return a provider base URL without its trailing slash; https is required outside the sandbox."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- parsing the port is what raises ValueError for a bad one
    except ValueError:
        raise InvalidBaseUrl(f"Not a URL: {url[:100]!r}.") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or len(url) > 500:
        raise InvalidBaseUrl(f"Not an absolute http(s) URL: {url[:100]!r}.")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise InvalidBaseUrl("The base URL must not carry a user name, password, query or fragment.")
    if parts.scheme != "https" and not allow_http:
        raise InsecureBaseUrl(f"The base URL must use https, not {parts.scheme}: personal data travels over it.")
    return url.rstrip("/")


# -- datasets -------------------------------------------------------------------------------------


def register_dataset(
    uow: UnitOfWork,
    *,
    dataset_id: str,
    provider_id: str,
    title_zh: str,
    title_en: str,
    description_zh: str,
    description_en: str,
    json_schema: object,
    min_level: str,
    citizen_downloadable: bool,
    actor: str,
    status: str = PENDING,
) -> Dataset:
    """Register a dataset served by *provider_id*, pending approval (unless *status* says otherwise), and commit."""
    if not _DATASET_ID.match(dataset_id) or len(dataset_id) > 100:
        raise InvalidInput(
            "The dataset id must be a dotted lowercase name such as household.registration.",
            fields={"id": ["Use lowercase letters, digits and underscores, in at least two dotted parts."]},
        )
    session = uow.session
    if session.get(Provider, provider_id) is None:
        raise UnknownProvider(f"No provider is registered as {provider_id!r}: register the provider first.")
    if session.get(Dataset, dataset_id) is not None:
        raise AlreadyRegistered(f"A dataset is already registered as {dataset_id!r}.")
    texts = _check_texts(title_zh=title_zh, title_en=title_en)
    descriptions = _check_texts(description_zh=description_zh, description_en=description_en, limit=5000)
    schema = check_json_schema(json_schema)
    now = clock().now()
    dataset = Dataset(
        id=dataset_id,
        provider_id=provider_id,
        json_schema=schema,
        schema_version=1,
        schema_sha256=schema_digest(schema),
        min_level=_check_level(min_level),
        citizen_downloadable=citizen_downloadable,
        status=_check_status(status),
        created_at=now,
        updated_at=now,
        **texts,
        **descriptions,
    )
    session.add(dataset)
    uow.commit()
    log.info("providers:dataset:registered dataset=%s provider=%s actor=%s", dataset_id, provider_id, actor)
    return dataset


def update_dataset(uow: UnitOfWork, dataset_id: str, *, changes: Mapping[str, Any], actor: str) -> Dataset:
    """Change a dataset's titles, descriptions, schema, minimum level or downloadability, and commit.

    A new schema gets the next schema version at once; the client compiles it on the next fetch.
    This is the operator's own path (operator API, CLI, sandbox seeding); an agency proposes a
    schema with :func:`propose_schema`, which waits for an operator's approval.
    """
    dataset = get_dataset(uow, dataset_id)
    unknown = set(changes) - _DATASET_CHANGES
    if unknown:
        raise InvalidInput(fields={name: ["This field cannot be changed."] for name in sorted(unknown)})
    for name in ("title_zh", "title_en"):
        if name in changes:
            setattr(dataset, name, _check_texts(**{name: changes[name]})[name])
    for name in ("description_zh", "description_en"):
        if name in changes:
            setattr(dataset, name, _check_texts(limit=5000, **{name: changes[name]})[name])
    if "min_level" in changes:
        dataset.min_level = _check_level(changes["min_level"])
    if "citizen_downloadable" in changes:
        dataset.citizen_downloadable = bool(changes["citizen_downloadable"])
    if "json_schema" in changes:
        schema = check_json_schema(changes["json_schema"])
        digest = schema_digest(schema)
        if digest != dataset.schema_sha256:
            dataset.json_schema = schema
            dataset.schema_sha256 = digest
            dataset.schema_version = _next_schema_version(uow, dataset)
    if uow.session.is_modified(dataset):
        dataset.updated_at = clock().now()
        uow.commit()
        log.info(
            "providers:dataset:updated dataset=%s fields=%s actor=%s", dataset_id, ",".join(sorted(changes)), actor
        )
    return dataset


def approve_dataset(uow: UnitOfWork, dataset_id: str, *, actor: str, reason: str | None = None) -> Dataset:
    """Publish a dataset in the catalogue, and commit."""
    return _set_status(uow, get_dataset(uow, dataset_id), ACTIVE, actor, reason)


def suspend_dataset(uow: UnitOfWork, dataset_id: str, *, actor: str, reason: str | None = None) -> Dataset:
    """Take a dataset out of the catalogue (fetches become ``unavailable``), and commit."""
    return _set_status(uow, get_dataset(uow, dataset_id), SUSPENDED, actor, reason)


def reject_dataset(uow: UnitOfWork, dataset_id: str, *, actor: str, reason: str) -> Dataset:
    """Refuse a pending dataset, for *reason* (required): it is served nowhere; commit.

    Raise :class:`NotPending` for a dataset that is not pending (suspend an active one).
    """
    return _reject(uow, get_dataset(uow, dataset_id), actor, reason)


def get_dataset(uow: UnitOfWork, dataset_id: str) -> Dataset:
    """Return a dataset; raise :class:`DatasetNotFound`."""
    dataset = uow.session.get(Dataset, dataset_id)
    if dataset is None:
        raise DatasetNotFound(f"No dataset is registered as {dataset_id!r}.")
    return dataset


def list_datasets(uow: UnitOfWork) -> list[Dataset]:
    """Return every dataset, by id."""
    return list(uow.session.scalars(select(Dataset).order_by(Dataset.id)))


# -- schema versions (issue 13: a schema change needs the operator's approval) --------------------


def propose_schema(uow: UnitOfWork, dataset_id: str, *, json_schema: object, actor: str) -> SchemaVersion:
    """Propose a new schema for a dataset as its next version, pending approval, and commit.

    The published schema does not change until an operator approves (:func:`approve_schema_version`).
    A dataset has at most one pending version: proposing again replaces the pending one's schema.
    """
    dataset = get_dataset(uow, dataset_id)
    schema = check_json_schema(json_schema)
    digest = schema_digest(schema)
    if digest == dataset.schema_sha256:
        raise SchemaUnchanged()
    now = clock().now()
    pending = pending_schema(uow, dataset_id)
    if pending is None:
        pending = SchemaVersion(
            dataset_id=dataset_id, version=_next_schema_version(uow, dataset), status=SCHEMA_PENDING
        )
        uow.session.add(pending)
    pending.json_schema = schema
    pending.schema_sha256 = digest
    pending.proposed_by = actor[:128]
    pending.proposed_at = now
    uow.commit()
    log.info("providers:schema:proposed dataset=%s version=%s actor=%s", dataset_id, pending.version, actor)
    return pending


def pending_schema(uow: UnitOfWork, dataset_id: str) -> SchemaVersion | None:
    """Return the dataset's schema version that waits for an operator, if any."""
    return uow.session.scalars(
        select(SchemaVersion).where(SchemaVersion.dataset_id == dataset_id, SchemaVersion.status == SCHEMA_PENDING)
    ).one_or_none()


def list_schema_versions(
    uow: UnitOfWork, *, status: str | None = None, dataset_ids: Collection[str] | None = None
) -> list[SchemaVersion]:
    """Return proposed schema versions (of one status, of some datasets, if given), oldest proposal first."""
    query = (
        select(SchemaVersion)
        .options(joinedload(SchemaVersion.dataset))
        .order_by(SchemaVersion.proposed_at, SchemaVersion.id)
    )
    if status is not None:
        query = query.where(SchemaVersion.status == status)
    if dataset_ids is not None:
        query = query.where(SchemaVersion.dataset_id.in_(list(dataset_ids)))
    return list(uow.session.scalars(query))


def get_schema_version(uow: UnitOfWork, version_id: int) -> SchemaVersion:
    """Return a proposed schema version; raise :class:`SchemaVersionNotFound`."""
    version = uow.session.get(SchemaVersion, version_id)
    if version is None:
        raise SchemaVersionNotFound()
    return version


def approve_schema_version(uow: UnitOfWork, version_id: int, *, actor: str) -> SchemaVersion:
    """Publish a pending schema version as the dataset's schema, record the decision, and commit."""
    version = _undecided(uow, version_id)
    dataset = version.dataset
    now = clock().now()
    if version.version <= dataset.schema_version:
        # The operator changed the schema in place meanwhile: this one comes after it.
        version.version = _next_schema_version(uow, dataset)
    dataset.json_schema = version.json_schema
    dataset.schema_sha256 = version.schema_sha256
    dataset.schema_version = version.version
    dataset.updated_at = now
    _decide(uow, version, SCHEMA_APPROVED, actor=actor, now=now, reason=None)
    return version


def reject_schema_version(uow: UnitOfWork, version_id: int, *, actor: str, reason: str) -> SchemaVersion:
    """Refuse a pending schema version with a reason the agency reads, record the decision, and commit."""
    reason = _check_texts(limit=decisions.MAX_REASON, reason=reason)["reason"]
    version = _undecided(uow, version_id)
    _decide(uow, version, SCHEMA_REJECTED, actor=actor, now=clock().now(), reason=reason)
    return version


def _undecided(uow: UnitOfWork, version_id: int) -> SchemaVersion:
    version = get_schema_version(uow, version_id)
    if version.status != SCHEMA_PENDING:
        raise SchemaVersionDecided(f"Schema version {version.dataset_id}@{version.version} is {version.status}.")
    return version


def _decide(
    uow: UnitOfWork, version: SchemaVersion, status: str, *, actor: str, now: dt.datetime, reason: str | None
) -> None:
    version.status = status
    version.decided_by = actor[:128]
    version.decided_at = now
    version.reason = reason
    action = "approve" if status == SCHEMA_APPROVED else "reject"
    subject = f"{version.dataset_id}@{version.version}"
    decisions.record(uow, actor=actor, subject_type="schema", subject_id=subject, action=action, now=now, reason=reason)
    uow.commit()
    log.info("providers:schema:%s schema=%s actor=%s", status, subject, actor)


def _next_schema_version(uow: UnitOfWork, dataset: Dataset) -> int:
    # A number names one proposal for good: a rejected version's number is not used again.
    proposed = uow.session.scalar(select(func.max(SchemaVersion.version)).where(SchemaVersion.dataset_id == dataset.id))
    return max(dataset.schema_version, proposed or 0) + 1


# -- what an agency officer may see and change (issue 13) -----------------------------------------


def agency_providers(uow: UnitOfWork, agencies: Collection[str]) -> list[Provider]:
    """Return the providers of *agencies*, by id."""
    return list(
        uow.session.scalars(select(Provider).where(Provider.agency_id.in_(list(agencies))).order_by(Provider.id))
    )


def agency_datasets(uow: UnitOfWork, agencies: Collection[str]) -> list[Dataset]:
    """Return the datasets of the providers of *agencies*, by id."""
    return list(
        uow.session.scalars(
            select(Dataset).join(Dataset.provider).where(Provider.agency_id.in_(list(agencies))).order_by(Dataset.id)
        )
    )


def agency_provider(uow: UnitOfWork, provider_id: str, agencies: Collection[str]) -> Provider:
    """Return a provider of one of *agencies*; another agency's is as unknown as a missing one (404)."""
    provider = uow.session.get(Provider, provider_id)
    if provider is None or provider.agency_id not in agencies:
        raise ProviderNotFound(f"None of your agencies has a provider {provider_id!r}.")
    return provider


def agency_dataset(uow: UnitOfWork, dataset_id: str, agencies: Collection[str]) -> Dataset:
    """Return a dataset of one of *agencies*' providers; another agency's is as unknown as a missing one (404)."""
    dataset = uow.session.get(Dataset, dataset_id)
    if dataset is None or dataset.provider.agency_id not in agencies:
        raise DatasetNotFound(f"None of your agencies has a dataset {dataset_id!r}.")
    return dataset


def check_json_schema(schema: object) -> dict[str, Any]:
    """Return *schema* if it is a valid, self-contained JSON Schema (draft 2020-12) of an object."""
    if not isinstance(schema, dict):
        raise InvalidSchema("The dataset schema must be a JSON object (a JSON Schema, draft 2020-12).")
    if len(json.dumps(schema, ensure_ascii=False).encode()) > MAX_SCHEMA_BYTES:
        raise InvalidSchema(f"The dataset schema is larger than {MAX_SCHEMA_BYTES // 1024} KiB.")
    declared = schema.get("$schema", _DRAFT_2020_12[0])
    if declared not in _DRAFT_2020_12:
        raise InvalidSchema(
            f"The dataset schema must be draft 2020-12 ({_DRAFT_2020_12[0]}), not {str(declared)[:100]!r}."
        )
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as error:
        raise InvalidSchema(f"Not a valid JSON Schema at {error.json_path}: {error.message[:200]}") from None
    if schema.get("type") != "object":
        raise InvalidSchema('The dataset schema must describe a JSON object ("type": "object"): data is an object.')
    anchors = set(_keyword_values(schema, "$anchor"))
    for ref in _keyword_values(schema, "$ref"):
        # The platform never fetches a schema from the network while it validates personal data.
        if not ref.startswith("#"):
            raise InvalidSchema(f"Only local references (#/...) are allowed in a dataset schema, not {ref[:100]!r}.")
        if not _resolves(schema, ref, anchors):
            raise InvalidSchema(f"The reference {ref[:100]!r} points at nothing in the schema.")
    return schema


def schema_digest(schema: Mapping[str, Any]) -> str:
    """Return the SHA-256 of the schema's canonical JSON (RFC 8785): the identity of a schema version."""
    return hashlib.sha256(canonical_json.dumps(schema)).hexdigest()


def _keyword_values(node: object, keyword: str) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == keyword and isinstance(value, str):
                yield value
            else:
                yield from _keyword_values(value, keyword)
    elif isinstance(node, list):
        for item in node:
            yield from _keyword_values(item, keyword)


def _resolves(schema: dict[str, Any], ref: str, anchors: set[str]) -> bool:
    fragment = unquote(ref[1:])
    if fragment and not fragment.startswith("/"):
        return fragment in anchors
    node: object = schema
    for token in fragment.split("/")[1:]:
        token = token.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node = node[int(token)]
        else:
            return False
    return True


# -- the public catalogue -------------------------------------------------------------------------


def catalogue(uow: UnitOfWork) -> Catalogue:
    """Return the active datasets of active providers, and the active providers with their JWKS."""
    providers = uow.session.scalars(
        select(Provider).options(joinedload(Provider.agency)).where(Provider.status == ACTIVE).order_by(Provider.id)
    ).all()
    datasets = uow.session.scalars(
        select(Dataset)
        .join(Dataset.provider)
        .options(joinedload(Dataset.provider).joinedload(Provider.agency))
        .where(Dataset.status == ACTIVE, Provider.status == ACTIVE)
        .order_by(Dataset.id)
    ).all()
    return Catalogue(
        datasets=tuple(_dataset_entry(d) for d in datasets),
        providers=tuple(
            ProviderEntry(
                id=p.id,
                agency=p.agency_id,
                agency_name_zh=p.agency.name_zh,
                agency_name_en=p.agency.name_en,
                jwks=dict(p.jwks),
            )
            for p in providers
        ),
    )


def published_dataset(uow: UnitOfWork, dataset_id: str) -> Dataset:
    """Return a dataset of the public catalogue (active, of an active provider); raise :class:`DatasetNotFound`."""
    dataset = uow.session.get(Dataset, dataset_id)
    if dataset is None or dataset.status != ACTIVE or dataset.provider.status != ACTIVE:
        raise DatasetNotFound(f"No active dataset is published as {dataset_id!r}.")
    return dataset


def dataset_entry(uow: UnitOfWork, dataset_id: str) -> DatasetEntry:
    """Return one dataset of the catalogue as other packages see it; raise :class:`DatasetNotFound`."""
    return _dataset_entry(get_dataset(uow, dataset_id))


def _dataset_entry(dataset: Dataset) -> DatasetEntry:
    agency = dataset.provider.agency
    return DatasetEntry(
        id=dataset.id,
        title_zh=dataset.title_zh,
        title_en=dataset.title_en,
        description_zh=dataset.description_zh,
        description_en=dataset.description_en,
        provider=dataset.provider_id,
        agency=agency.id,
        agency_name_zh=agency.name_zh,
        agency_name_en=agency.name_en,
        min_level=dataset.min_level,
        citizen_downloadable=dataset.citizen_downloadable,
        schema_version=dataset.schema_version,
    )


# -- fetching (DESIGN §4.2) -----------------------------------------------------------------------


def fetch_datasets(
    uow: UnitOfWork, *, national_id: str, datasets: Sequence[str], txn: str, purpose: str
) -> dict[str, FetchResult]:
    """Fetch a person's datasets from their providers in parallel; return a result per dataset, in order.

    This is the one entry point of the consent broker and the portal. It reads the catalogue and the
    platform's signing key here, on the calling thread; the worker threads only do HTTP and crypto.
    Raise :class:`UnknownDataset` for an id not in the catalogue; everything else is an outcome.
    """
    routes = fetch_routes(uow, datasets)
    signing_key = key_store(uow).signing_key()
    return provider_client().fetch(routes, signing_key=signing_key, national_id=national_id, txn=txn, purpose=purpose)


if TYPE_CHECKING:
    # mypy checks that the entry point keeps the shape other packages depend on.
    _fetcher: DatasetFetcher = fetch_datasets


#: Each dataset schema the process has read, by its SHA-256 (the digest names the content: never stale).
_SCHEMAS: dict[str, dict[str, Any]] = {}
#: Where a unit of work keeps the catalogue rows it read (Session.info), for the email's titles.
_READ_ROWS = "providers.catalogue_rows"


@dataclass(frozen=True)
class _RouteRow:
    dataset: str
    dataset_status: str
    schema_sha256: str
    title_zh: str
    title_en: str
    provider: str
    provider_status: str
    base_url: str
    jwks: dict[str, Any]


#: What a fetch reads of the catalogue (built once: building a statement costs as much as running it).
_ROUTE_ROWS = (
    select(
        Dataset.id,
        Dataset.status,
        Dataset.schema_sha256,
        Dataset.title_zh,
        Dataset.title_en,
        Provider.id,
        Provider.status,
        Provider.base_url,
        Provider.jwks,
    )
    .join(Provider, Dataset.provider_id == Provider.id)
    .where(Dataset.id.in_(bindparam("ids", expanding=True)))
)


def fetch_routes(uow: UnitOfWork, dataset_ids: Sequence[str]) -> list[Route]:
    """Return where each dataset is fetched from (once per id, in order); raise :class:`UnknownDataset`.

    One statement reads what a fetch needs of the catalogue, as it is now (an operator's change
    applies to the next fetch), but not the schemas themselves: a schema is read once per process
    and version (its digest), by a second statement only when a version is new to the process.
    """
    wanted = list(dict.fromkeys(dataset_ids))
    # On the session's connection, past the ORM: a fetch has nothing pending for the catalogue.
    found = uow.session.connection().execute(_ROUTE_ROWS, {"ids": wanted}).all()
    by_id = {row[0]: _RouteRow(*row) for row in found}
    uow.session.info.setdefault(_READ_ROWS, {}).update(by_id)
    missing = [d for d in wanted if d not in by_id]
    if missing:
        raise UnknownDataset(f"Not in the catalogue: {', '.join(missing)}.")
    # The schemas of versions new to this process, named by the digest of what was read: a version
    # changed between the two reads is never cached under another version's digest.
    schemas = {
        row.dataset: (row.schema_sha256, _SCHEMAS[row.schema_sha256])
        for row in by_id.values()
        if row.schema_sha256 in _SCHEMAS
    }
    unknown = [dataset_id for dataset_id in by_id if dataset_id not in schemas]
    if unknown:
        for dataset_id, schema in uow.session.execute(
            select(Dataset.id, Dataset.json_schema).where(Dataset.id.in_(unknown))
        ):
            digest = schema_digest(schema)
            _SCHEMAS[digest] = schema
            schemas[dataset_id] = (digest, schema)
    routes = []
    for dataset_id in wanted:
        row = by_id[dataset_id]
        unavailable = None
        if row.provider_status != ACTIVE:
            unavailable = f"provider_{row.provider_status}"
        elif row.dataset_status != ACTIVE:
            unavailable = f"dataset_{row.dataset_status}"
        routes.append(
            Route(
                dataset=row.dataset,
                provider=row.provider,
                base_url=row.base_url,
                jwks=row.jwks,
                json_schema=schemas[dataset_id][1],
                schema_sha256=schemas[dataset_id][0],
                unavailable_because=unavailable,
            )
        )
    return routes


def dataset_titles(uow: UnitOfWork, dataset_ids: Sequence[str]) -> dict[str, tuple[str, str]]:
    """Return the (Chinese, English) titles of the datasets that exist among *dataset_ids*.

    The catalogue rows this unit of work has already read (a delivery's routes) answer without a
    statement; the others are read in one.
    """
    read: dict[str, _RouteRow] = uow.session.info.get(_READ_ROWS, {})
    titles = {d: (read[d].title_zh, read[d].title_en) for d in dataset_ids if d in read}
    missing = [d for d in dict.fromkeys(dataset_ids) if d not in titles]
    if missing:
        rows = uow.session.execute(
            select(Dataset.id, Dataset.title_zh, Dataset.title_en).where(Dataset.id.in_(missing))
        )
        titles.update({dataset_id: (zh, en) for dataset_id, zh, en in rows})
    return titles


def check_providers(uow: UnitOfWork, agencies: Collection[str] | None = None) -> list[ProviderHealth]:
    """Call every registered provider's (or *agencies*' providers') health endpoint in parallel."""
    providers = list_providers(uow)
    if agencies is not None:
        providers = [p for p in providers if p.agency_id in agencies]
    checks = provider_client().check_health_of([p.base_url for p in providers])
    return [
        ProviderHealth(provider=p.id, agency=p.agency_id, status=p.status, check=check)
        for p, check in zip(providers, checks, strict=True)
    ]


def provider_client(app: Flask | None = None) -> ProviderClient:
    """Return the application's provider protocol client."""
    return (app or current_app).extensions["providers.client"]  # type: ignore[no-any-return]


# -- operator API tokens (docs/decisions/0002-operator-api-tokens.md) -----------------------------


def issue_operator_token(uow: UnitOfWork, *, label: str) -> tuple[OperatorToken, str]:
    """Create an operator API token and commit; return it with its secret, which is shown once only."""
    label = _check_texts(label=label)["label"]
    secret = OPERATOR_TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = OperatorToken(
        id=secrets.token_hex(8), label=label, token_sha256=_token_digest(secret), created_at=clock().now()
    )
    uow.session.add(token)
    uow.commit()
    log.info("providers:operator_token:issued token=%s label=%s", token.id, label)
    return token, secret


def authenticate_operator(uow: UnitOfWork, secret: str | None) -> OperatorToken:
    """Return the live operator token whose secret is *secret*; raise a 401 error otherwise."""
    if not secret:
        raise MissingOperatorToken()
    # Looked up by digest: the secret itself is never stored, and never compared byte by byte.
    token = uow.session.scalars(
        select(OperatorToken).where(OperatorToken.token_sha256 == _token_digest(secret))
    ).one_or_none()
    if token is None or token.revoked_at is not None:
        raise InvalidOperatorToken()
    return token


def revoke_operator_token(uow: UnitOfWork, token_id: str) -> OperatorToken:
    """Revoke an operator token at once, and commit."""
    token = uow.session.get(OperatorToken, token_id)
    if token is None:
        raise OperatorTokenNotFound(f"No operator token has the id {token_id!r}.")
    if token.revoked_at is None:
        token.revoked_at = clock().now()
        uow.commit()
        log.info("providers:operator_token:revoked token=%s", token_id)
    return token


def list_operator_tokens(uow: UnitOfWork) -> list[OperatorToken]:
    """Return every operator token (without secrets), oldest first."""
    return list(uow.session.scalars(select(OperatorToken).order_by(OperatorToken.created_at, OperatorToken.id)))


def _token_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


# -- shared checks --------------------------------------------------------------------------------


_DECIDED = {SUSPENDED: ("suspend", "suspended"), REJECTED: ("reject", "rejected")}


def _reject(uow: UnitOfWork, row: _Row, actor: str, reason: str) -> _Row:
    text = (reason or "").strip()
    if not text:
        raise InvalidInput(fields={"reason": ["Say why: a reason is required."]})
    if row.status != PENDING:
        kind = "provider" if isinstance(row, Provider) else "dataset"
        raise NotPending(f"The {kind} {row.id!r} is {row.status}: only a pending one is rejected.")
    return _set_status(uow, row, REJECTED, actor, text)


def _set_status(uow: UnitOfWork, row: _Row, status: str, actor: str, reason: str | None = None) -> _Row:
    if row.status != status:
        kind = "provider" if isinstance(row, Provider) else "dataset"
        now = clock().now()
        if status == ACTIVE:
            action, event = ("reinstate" if row.status == SUSPENDED else "approve"), "approved"
        else:
            action, event = _DECIDED[status]
        row.status = status
        row.updated_at = now
        decisions.record(uow, actor=actor, subject_type=kind, subject_id=row.id, action=action, now=now, reason=reason)
        uow.commit()
        log.info("providers:%s:%s %s=%s actor=%s", kind, event, kind, row.id, actor)
    return row


def _check_party_id(field: str, value: str) -> None:
    if not _PARTY_ID.match(value):
        raise InvalidInput(
            f"Not a valid id: {value[:100]!r}.",
            fields={field: ["Use 1 to 64 lowercase letters, digits and hyphens (moi-household)."]},
        )


def _check_texts(limit: int = 200, **texts: object) -> dict[str, str]:
    checked = {}
    for name, value in texts.items():
        if not isinstance(value, str) or not value.strip() or len(value) > limit:
            raise InvalidInput(fields={name: [f"Give a text of 1 to {limit} characters."]})
        checked[name] = value.strip()
    return checked


def _check_level(level: object) -> str:
    if level not in LEVELS:
        raise InvalidLevel(f"The minimum level must be one of {', '.join(LEVELS)}, not {str(level)[:50]!r}.")
    assert isinstance(level, str)
    return level


def _check_status(status: str) -> str:
    if status not in (PENDING, ACTIVE, SUSPENDED):
        raise InvalidInput(fields={"status": ["Use pending, active or suspended."]})
    return status
