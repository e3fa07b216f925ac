"""Relying-party rules: organisations apply and are approved, get an initial access token, define services.

Every function takes a unit of work and plain values, and commits what it changes. The JSON API, the
CLI and the sandbox seeding all go through these functions. Other packages reach this one through
the authorization server: :func:`resolve_delivery` is the validator of `mydata_delivery`
authorization details (registered by :func:`relying_parties.init_app`), and what it returns, as
:class:`identity.oauth.interfaces.ResolvedDetails`, is what the consent screen shows.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload

from consent.counter import Clerk
from consent.interfaces import ServiceName
from identity.oauth import clients as oauth_clients
from identity.oauth.interfaces import InvalidAuthorizationDetails, ResolvedDetails
from identity.oauth.models import OAuthClient
from identity.oauth.services import validate_delivery_detail
from identity.services import has_role, staff_roles
from mydata import decisions
from mydata.clock import clock
from mydata.db import UnitOfWork
from providers import services as providers_services
from providers.models import ACTIVE as DATASET_ACTIVE
from providers.models import LEVELS, Agency, Dataset, Provider
from relying_parties import business_number
from relying_parties.interfaces import (
    AlreadyRegistered,
    ClientHasNoEncryptionKey,
    CounterClosed,
    InvalidInitialAccessToken,
    InvalidInput,
    InvalidLevel,
    InvalidRegistrationNumber,
    MissingInitialAccessToken,
    MissingOperatorCredentials,
    NoCounterRole,
    NotAnOperator,
    NotPending,
    OrganisationNotApproved,
    OrganisationNotFound,
    ServiceNotFound,
    UnknownDataset,
)
from relying_parties.models import (
    APPROVED,
    ORGANISATION_TYPES,
    PENDING,
    REJECTED,
    STATUSES,
    SUSPENDED,
    InitialAccessToken,
    Organisation,
    Service,
    ServiceDataset,
)

log = logging.getLogger(__name__)

# Organisation ids travel in service ids, pairwise subjects and URLs: lowercase letters, digits, hyphens.
_ORGANISATION_ID = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
# A service id is its organisation's id, a dot, and a name of the same alphabet.
_SERVICE_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,33}[a-z0-9])?$")
# Personal Data Protection Act specific purposes (個人資料保護法之特定目的) are numbered 001, 002, ...
_PURPOSE_CODE = re.compile(r"^[0-9]{3}$")
_EMAIL = re.compile(r"^[^@\s]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,63}$")
_PHONE = re.compile(r"^\+?[0-9][0-9 ()#-]{5,29}$")
MAX_CONTACTS = 5
MAX_DATASETS = 20
MAX_RETENTION_DAYS = 30 * 365  # long enough for any statutory record-keeping period
INITIAL_ACCESS_TOKEN_PREFIX = "mdiat_"  # noqa: S105 -- a marker that helps secret scanners, not a secret
OPERATOR_ROLE = "operator"
COUNTER_ROLE = "counter"

# -- organisations ----------------------------------------------------------------------------------


def register_organisation(
    uow: UnitOfWork,
    *,
    organisation_id: str,
    name_zh: str,
    name_en: str,
    organisation_type: str,
    registration_number: str,
    contacts: Sequence[Mapping[str, object]],
    actor: str,
    status: str = PENDING,
) -> Organisation:
    """Record an organisation's application, pending an operator's approval (unless *status* says otherwise); commit."""
    if not _ORGANISATION_ID.match(organisation_id):
        raise InvalidInput(
            f"Not a valid organisation id: {organisation_id[:100]!r}.",
            fields={"id": ["Use 1 to 64 lowercase letters, digits and hyphens (sandbox-bank)."]},
        )
    names = _check_texts(name_zh=name_zh, name_en=name_en)
    if organisation_type not in ORGANISATION_TYPES:
        raise InvalidInput(fields={"type": [f"Use one of {', '.join(ORGANISATION_TYPES)}."]})
    number = business_number.normalize(registration_number)
    if not business_number.is_valid(number):
        raise InvalidRegistrationNumber(
            f"{number[:20]!r} is not a valid unified business number (統一編號): "
            "8 digits whose weighted check (1,2,1,2,1,2,4,1) is divisible by 5."
        )
    checked_contacts = _check_contacts(contacts)
    if status not in STATUSES:
        raise InvalidInput(fields={"status": [f"Use one of {', '.join(STATUSES)}."]})
    session = uow.session
    if session.get(Organisation, organisation_id) is not None:
        raise AlreadyRegistered(f"An organisation is already registered as {organisation_id!r}.")
    _check_number_is_free(uow, number, organisation_id)
    now = clock().now()
    organisation = Organisation(
        id=organisation_id,
        type=organisation_type,
        registration_number=number,
        contacts=checked_contacts,
        status=status,
        created_at=now,
        updated_at=now,
        approved_at=now if status == APPROVED else None,
        **names,
    )
    session.add(organisation)
    _commit_new(uow, f"An organisation is already registered as {organisation_id!r}.")
    log.info("relying_parties:organisation:applied organisation=%s status=%s actor=%s", organisation_id, status, actor)
    return organisation


def _check_number_is_free(uow: UnitOfWork, number: str, organisation_id: str) -> None:
    """Refuse a registration number an approved organisation (other than this one) holds."""
    holder = uow.session.scalars(
        select(Organisation.id).where(
            Organisation.registration_number == number,
            Organisation.status == APPROVED,
            Organisation.id != organisation_id,
        )
    ).first()
    if holder is not None:
        # One legal entity, one organisation: its staff ask the operator rather than apply again.
        raise AlreadyRegistered(
            f"The approved organisation {holder!r} holds the registration number {number}: "
            "ask the platform operator to add what you need to it."
        )


def _commit_new(uow: UnitOfWork, conflict: str) -> None:
    """Commit a new row; another request that created the same id first makes it a 409, not a 500."""
    try:
        uow.commit()
    except IntegrityError:
        uow.rollback()
        raise AlreadyRegistered(conflict) from None


def get_organisation(uow: UnitOfWork, organisation_id: str) -> Organisation:
    """Return an organisation; raise :class:`OrganisationNotFound`."""
    organisation = uow.session.get(Organisation, organisation_id)
    if organisation is None:
        raise OrganisationNotFound(f"No organisation is registered as {organisation_id!r}.")
    return organisation


def list_organisations(uow: UnitOfWork, status: str | None = None) -> list[Organisation]:
    """Return every organisation (of one status, if given), by id."""
    query = select(Organisation).order_by(Organisation.id)
    if status is not None:
        query = query.where(Organisation.status == status)
    return list(uow.session.scalars(query))


def approve_organisation(
    uow: UnitOfWork, organisation_id: str, *, actor: str, reason: str | None = None
) -> Organisation:
    """Approve an organisation (again, after a suspension: its clients work again), and commit."""
    organisation = get_organisation(uow, organisation_id)
    if organisation.status != APPROVED:
        _check_number_is_free(uow, organisation.registration_number, organisation_id)
        now = clock().now()
        action = "reinstate" if organisation.status == SUSPENDED else "approve"
        organisation.status, organisation.updated_at, organisation.approved_at = APPROVED, now, now
        organisation.suspended_at = None
        decisions.record(
            uow,
            actor=actor,
            subject_type="organisation",
            subject_id=organisation_id,
            action=action,
            now=now,
            reason=reason,
        )
        # The record goes first: the clients' change commits the unit of work.
        oauth_clients.set_organisation_clients_status(uow, organisation_id, "active")
        uow.commit()
        log.info("relying_parties:organisation:approved organisation=%s actor=%s", organisation_id, actor)
    return organisation


def suspend_organisation(
    uow: UnitOfWork, organisation_id: str, *, actor: str, reason: str | None = None
) -> Organisation:
    """Suspend an organisation: its clients stop working and its token is refused; commit."""
    organisation = get_organisation(uow, organisation_id)
    if organisation.status != SUSPENDED:
        now = clock().now()
        organisation.status, organisation.updated_at, organisation.suspended_at = SUSPENDED, now, now
        decisions.record(
            uow,
            actor=actor,
            subject_type="organisation",
            subject_id=organisation_id,
            action="suspend",
            now=now,
            reason=reason,
        )
        # The record goes first: the clients' change commits the unit of work.
        oauth_clients.set_organisation_clients_status(uow, organisation_id, "suspended")
        uow.commit()
        log.info("relying_parties:organisation:suspended organisation=%s actor=%s", organisation_id, actor)
    return organisation


def reject_organisation(uow: UnitOfWork, organisation_id: str, *, actor: str, reason: str) -> Organisation:
    """Refuse a pending organisation's application, for *reason* (required): it works nowhere; commit.

    Raise :class:`NotPending` for an organisation that is not pending (suspend an approved one).
    """
    organisation = get_organisation(uow, organisation_id)
    reason = _check_reason(reason)
    if organisation.status != PENDING:
        raise NotPending(
            f"The organisation {organisation_id!r} is {organisation.status}: only a pending one is rejected."
        )
    now = clock().now()
    organisation.status, organisation.updated_at = REJECTED, now
    decisions.record(
        uow,
        actor=actor,
        subject_type="organisation",
        subject_id=organisation_id,
        action="reject",
        now=now,
        reason=reason,
    )
    # The record goes first: the clients' change commits the unit of work.
    # A pending organisation registers no clients; should one exist, it stops working too.
    oauth_clients.set_organisation_clients_status(uow, organisation_id, "suspended")
    uow.commit()
    log.info("relying_parties:organisation:rejected organisation=%s actor=%s", organisation_id, actor)
    return organisation


def _check_reason(reason: str | None) -> str:
    """Return *reason* stripped; raise :class:`InvalidInput` when it is empty (a rejection says why)."""
    text = (reason or "").strip()
    if not text:
        raise InvalidInput(fields={"reason": ["Say why: a reason is required."]})
    return text


def organisation_clients(uow: UnitOfWork, organisation_id: str) -> list[OAuthClient]:
    """Return the OAuth clients of an organisation (not those it deleted), oldest first."""
    return [c for c in oauth_clients.list_clients(uow, organisation_id) if c.status != oauth_clients.DELETED]


# -- initial access tokens (RFC 7591 §3) ------------------------------------------------------------


def issue_initial_access_token(uow: UnitOfWork, organisation_id: str, *, actor: str) -> tuple[InitialAccessToken, str]:
    """Give an approved organisation a fresh initial access token, revoking its previous ones; commit.

    Return the token row and its secret, which is shown once only: the platform keeps its SHA-256.
    The token may be used for several registrations (RFC 7591 §3 leaves this to the server) until
    it is re-issued or the organisation is suspended.
    """
    organisation = get_organisation(uow, organisation_id)
    if organisation.status != APPROVED:
        raise OrganisationNotApproved(
            f"The organisation {organisation_id!r} is {organisation.status}: "
            "only an approved organisation gets an initial access token."
        )
    now = clock().now()
    for live in uow.session.scalars(
        select(InitialAccessToken).where(
            InitialAccessToken.organisation_id == organisation_id, InitialAccessToken.revoked_at.is_(None)
        )
    ):
        live.revoked_at = now
    # 32 random bytes: 256 bits, beyond guessing (RFC 6750 §5.2, RFC 7591 §3).
    secret = INITIAL_ACCESS_TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = InitialAccessToken(
        id=secrets.token_hex(8), organisation_id=organisation_id, token_sha256=_digest(secret), created_at=now
    )
    uow.session.add(token)
    uow.commit()
    log.info(
        "relying_parties:initial_access_token:issued organisation=%s token=%s actor=%s",
        organisation_id,
        token.id,
        actor,
    )
    return token, secret


def authenticate_organisation(uow: UnitOfWork, secret: str | None) -> Organisation:
    """Return the approved organisation whose live initial access token is *secret*; raise a 401 error otherwise."""
    if not secret:
        raise MissingInitialAccessToken()
    # Looked up by digest: the secret itself is never stored, and never compared byte by byte.
    token = uow.session.scalars(
        select(InitialAccessToken).where(InitialAccessToken.token_sha256 == _digest(secret))
    ).one_or_none()
    if token is None or token.revoked_at is not None:
        raise InvalidInitialAccessToken()
    organisation = get_organisation(uow, token.organisation_id)
    if organisation.status != APPROVED:
        raise InvalidInitialAccessToken(
            f"The organisation {organisation.id!r} is {organisation.status}: its token is refused until it is approved."
        )
    return organisation


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


# -- operators ------------------------------------------------------------------------------------


def authenticate_operator(uow: UnitOfWork, *, bearer_token: str | None, citizen_id: str | None) -> str:
    """Return who acts for an operator request: an operator API token, else a staff account with the operator role.

    The token is the catalogue's operator token (ADR 0002); the account is a logged-in citizen's
    (ADR 0004). Raise a 401 error without either, 403 for an account that is not an operator.
    """
    if bearer_token is not None:
        token = providers_services.authenticate_operator(uow, bearer_token)
        return f"operator-token:{token.id}"
    if citizen_id is None:
        raise MissingOperatorCredentials()
    if not has_role(uow, citizen_id, OPERATOR_ROLE):
        raise NotAnOperator()
    return f"citizen:{citizen_id}"


def counter_clerk(uow: UnitOfWork, citizen_id: str) -> Clerk:
    """Return whom the account enters citizens' codes for: its ``counter`` role of an approved organisation.

    With the role for several approved organisations, the first by id (the page names it). Raise
    :class:`NoCounterRole` without the role, :class:`CounterClosed` when none of its organisations
    is approved (pending or suspended).
    """
    ids = [role.organisation_id for role in staff_roles(uow, citizen_id) if role.role == COUNTER_ROLE]
    organisations = [o for o in (uow.session.get(Organisation, i) for i in sorted(ids)) if o is not None]
    if not organisations:
        raise NoCounterRole()
    for organisation in organisations:
        if organisation.status == APPROVED:
            return Clerk(citizen_id, organisation.id, organisation.name_zh, organisation.name_en)
    closed = organisations[0]
    raise CounterClosed(
        organisation_id=closed.id,
        name_zh=closed.name_zh,
        name_en=closed.name_en,
        organisation_status=closed.status,
    )


# -- services ---------------------------------------------------------------------------------------


def define_service(
    uow: UnitOfWork,
    *,
    organisation_id: str,
    service_id: str,
    name_zh: str,
    name_en: str,
    purpose_zh: str,
    purpose_en: str,
    purpose_code: str,
    required_datasets: Sequence[str],
    optional_datasets: Sequence[str] = (),
    retention_days: int,
    level: str | None = None,
    actor: str,
    status: str = PENDING,
) -> Service:
    """Define a service of an organisation, pending an operator's approval (unless *status* says otherwise); commit.

    Its level is the highest minimum level of its datasets, or *level* if that is higher (DESIGN §3.1).
    """
    organisation = get_organisation(uow, organisation_id)
    prefix = f"{organisation_id}."
    if not service_id.startswith(prefix) or not _SERVICE_NAME.match(service_id[len(prefix) :]):
        raise InvalidInput(
            f"Not a valid service id: {service_id[:100]!r}.",
            fields={"id": [f"Use {prefix}<name>, the name in lowercase letters, digits and hyphens ({prefix}loans)."]},
        )
    names = _check_texts(name_zh=name_zh, name_en=name_en)
    purposes = _check_texts(limit=2000, purpose_zh=purpose_zh, purpose_en=purpose_en)
    if not _PURPOSE_CODE.match(purpose_code):
        raise InvalidInput(
            fields={"purpose_code": ["Give the 3-digit specific purpose of the Personal Data Protection Act (067)."]}
        )
    if isinstance(retention_days, bool) or not isinstance(retention_days, int):
        raise InvalidInput(fields={"retention_days": ["Give a whole number of days."]})
    if not 1 <= retention_days <= MAX_RETENTION_DAYS:
        raise InvalidInput(fields={"retention_days": [f"Give 1 to {MAX_RETENTION_DAYS} days."]})
    if level is not None and level not in LEVELS:
        raise InvalidLevel(f"The level must be one of {', '.join(LEVELS)}, not {str(level)[:50]!r}.")
    if status not in STATUSES:
        raise InvalidInput(fields={"status": [f"Use one of {', '.join(STATUSES)}."]})
    if status == APPROVED and organisation.status != APPROVED:
        raise OrganisationNotApproved(f"The organisation {organisation_id!r} is {organisation.status}.")
    required, optional = list(required_datasets), list(optional_datasets)
    _check_dataset_lists(required, optional)
    published = {d.id: d for d in providers_services.catalogue(uow).datasets}
    missing = [d for d in (*required, *optional) if d not in published]
    if missing:
        raise UnknownDataset(
            f"Not in the catalogue: {', '.join(missing)}. GET /api/v1/catalogue lists the datasets.",
            fields={"datasets": missing},
        )
    session = uow.session
    if session.get(Service, service_id) is not None:
        raise AlreadyRegistered(f"A service is already registered as {service_id!r}.")
    levels = [published[d].min_level for d in (*required, *optional)] + ([level] if level else [])
    now = clock().now()
    service = Service(
        id=service_id,
        organisation_id=organisation_id,
        purpose_code=purpose_code,
        retention_days=retention_days,
        requested_level=level,
        level=max(levels, key=LEVELS.index),
        status=status,
        created_at=now,
        updated_at=now,
        approved_at=now if status == APPROVED else None,
        datasets=[
            ServiceDataset(dataset_id=dataset_id, required=dataset_id in required, position=position)
            for position, dataset_id in enumerate((*required, *optional))
        ],
        **names,
        **purposes,
    )
    session.add(service)
    _commit_new(uow, f"A service is already registered as {service_id!r}.")
    log.info(
        "relying_parties:service:defined service=%s organisation=%s status=%s actor=%s",
        service_id,
        organisation_id,
        status,
        actor,
    )
    return service


def _check_dataset_lists(required: list[str], optional: list[str]) -> None:
    if not required or not all(isinstance(d, str) and d for d in (*required, *optional)):
        raise InvalidInput(fields={"required_datasets": ["Name at least one dataset id that every request includes."]})
    everything = [*required, *optional]
    if len(everything) > MAX_DATASETS:
        raise InvalidInput(fields={"optional_datasets": [f"A service has at most {MAX_DATASETS} datasets."]})
    repeated = sorted({d for d in everything if everything.count(d) > 1})
    if repeated:
        raise InvalidInput(
            f"Each dataset is either required or optional, once: {', '.join(repeated)}.",
            fields={"optional_datasets": [f"Repeated: {', '.join(repeated)}."]},
        )


def get_service(uow: UnitOfWork, service_id: str) -> Service:
    """Return a service with its datasets; raise :class:`ServiceNotFound`."""
    service = uow.session.get(Service, service_id)
    if service is None:
        raise ServiceNotFound(f"No service is registered as {service_id!r}.")
    return service


def list_services(uow: UnitOfWork, *, organisation_id: str | None = None, status: str | None = None) -> list[Service]:
    """Return every service (of one organisation, of one status), by id."""
    query = select(Service).options(joinedload(Service.datasets)).order_by(Service.id)
    if organisation_id is not None:
        query = query.where(Service.organisation_id == organisation_id)
    if status is not None:
        query = query.where(Service.status == status)
    return list(uow.session.scalars(query).unique())


def approve_service(uow: UnitOfWork, service_id: str, *, actor: str, reason: str | None = None) -> Service:
    """Approve a service of an approved organisation: citizens may now be asked for it; commit."""
    service = get_service(uow, service_id)
    organisation = service.organisation
    if organisation.status != APPROVED:
        raise OrganisationNotApproved(
            f"The organisation {organisation.id!r} is {organisation.status}: approve it before its services."
        )
    if service.status != APPROVED:
        now = clock().now()
        action = "reinstate" if service.status == SUSPENDED else "approve"
        service.status, service.updated_at, service.approved_at = APPROVED, now, now
        decisions.record(
            uow, actor=actor, subject_type="service", subject_id=service_id, action=action, now=now, reason=reason
        )
        uow.commit()
        log.info("relying_parties:service:approved service=%s actor=%s", service_id, actor)
    return service


def suspend_service(uow: UnitOfWork, service_id: str, *, actor: str, reason: str | None = None) -> Service:
    """Suspend a service: new requests for it are refused at PAR; commit."""
    service = get_service(uow, service_id)
    if service.status != SUSPENDED:
        now = clock().now()
        service.status, service.updated_at = SUSPENDED, now
        decisions.record(
            uow, actor=actor, subject_type="service", subject_id=service_id, action="suspend", now=now, reason=reason
        )
        uow.commit()
        log.info("relying_parties:service:suspended service=%s actor=%s", service_id, actor)
    return service


def reject_service(uow: UnitOfWork, service_id: str, *, actor: str, reason: str) -> Service:
    """Refuse a pending service, for *reason* (required): citizens are never asked for it; commit.

    Raise :class:`NotPending` for a service that is not pending (suspend an approved one).
    """
    service = get_service(uow, service_id)
    reason = _check_reason(reason)
    if service.status != PENDING:
        raise NotPending(f"The service {service_id!r} is {service.status}: only a pending one is rejected.")
    now = clock().now()
    service.status, service.updated_at = REJECTED, now
    decisions.record(
        uow, actor=actor, subject_type="service", subject_id=service_id, action="reject", now=now, reason=reason
    )
    uow.commit()
    log.info("relying_parties:service:rejected service=%s actor=%s", service_id, actor)
    return service


# -- what a client may ask for (RFC 9396, DESIGN §3.3) ---------------------------------------------


@dataclass(frozen=True)
class RequestedDataset:
    """A dataset of a delivery request, as the consent screen shows it."""

    id: str
    required: bool
    title_zh: str
    title_en: str
    description_zh: str
    description_en: str
    provider: str
    agency: str
    agency_name_zh: str
    agency_name_en: str
    min_level: str


@dataclass(frozen=True)
class DeliveryRequest:
    """A `mydata_delivery` authorization detail resolved to an approved service of the client's organisation."""

    client_id: str
    organisation_id: str
    organisation_name_zh: str
    organisation_name_en: str
    organisation_type: str
    service_id: str
    service_name_zh: str
    service_name_en: str
    purpose_zh: str
    purpose_en: str
    purpose_code: str
    retention_days: int
    level: str
    datasets: tuple[RequestedDataset, ...]

    @property
    def dataset_ids(self) -> list[str]:
        """Return the ids of the requested datasets: the required ones, then the optional ones asked for."""
        return [d.id for d in self.datasets]

    def detail(self) -> dict[str, Any]:
        """Return the authorization detail with its datasets spelt out (RFC 9396 §7: as the server understood it)."""
        return {"type": "mydata_delivery", "service": self.service_id, "datasets": self.dataset_ids}

    def summary(self) -> dict[str, Any]:
        """Return everything the consent screen shows, as JSON values (DESIGN §6.1).

        ``service`` is the service id and ``datasets`` the requested dataset ids;
        ``required_datasets`` and ``optional_datasets`` split them (optional ones are the citizen's
        checkboxes), and ``dataset_details`` has each one's titles, description, provider and agency.
        """
        # Every field is a str, bool or int: a shallow copy (asdict would deep-copy, four times a transaction).
        summary = {name: getattr(self, name) for name in _REQUEST_FIELDS if name != "datasets"}
        summary["service"] = summary.pop("service_id")
        summary["organisation"] = summary.pop("organisation_id")
        summary["datasets"] = self.dataset_ids
        summary["required_datasets"] = [d.id for d in self.datasets if d.required]
        summary["optional_datasets"] = [d.id for d in self.datasets if not d.required]
        summary["dataset_details"] = [{name: getattr(d, name) for name in _DATASET_FIELDS} for d in self.datasets]
        return summary


_REQUEST_FIELDS = tuple(f.name for f in fields(DeliveryRequest))
_DATASET_FIELDS = tuple(f.name for f in fields(RequestedDataset))


#: What resolving a request reads, in one statement built once (building one costs as much as running
#: it): the client's organisation and keys, the organisation, the service and, one row each in the
#: service's order, its datasets with the texts and statuses a request needs from the catalogue
#: (not the schemas: kilobytes of JSON each). A dataset the catalogue lacks has no agency.
_REQUEST_ROWS = (
    select(
        OAuthClient.organisation_id.label("client_organisation"),
        OAuthClient.jwks,
        Organisation.id.label("organisation_id"),
        Organisation.status.label("organisation_status"),
        Organisation.name_zh.label("organisation_name_zh"),
        Organisation.name_en.label("organisation_name_en"),
        Organisation.type.label("organisation_type"),
        Service.id.label("service_id"),
        Service.organisation_id.label("service_organisation"),
        Service.status.label("service_status"),
        Service.name_zh.label("service_name_zh"),
        Service.name_en.label("service_name_en"),
        Service.purpose_zh,
        Service.purpose_en,
        Service.purpose_code,
        Service.retention_days,
        Service.level,
        ServiceDataset.dataset_id,
        ServiceDataset.required,
        Dataset.status.label("dataset_status"),
        Dataset.title_zh,
        Dataset.title_en,
        Dataset.description_zh,
        Dataset.description_en,
        Dataset.provider_id,
        Dataset.min_level,
        Provider.status.label("provider_status"),
        Agency.id.label("agency_id"),
        Agency.name_zh.label("agency_name_zh"),
        Agency.name_en.label("agency_name_en"),
    )
    .outerjoin(Organisation, Organisation.id == OAuthClient.organisation_id)
    .outerjoin(Service, Service.id == bindparam("service"))
    .outerjoin(ServiceDataset, ServiceDataset.service_id == Service.id)
    .outerjoin(Dataset, Dataset.id == ServiceDataset.dataset_id)
    .outerjoin(Provider, Provider.id == Dataset.provider_id)
    .outerjoin(Agency, Agency.id == Provider.agency_id)
    .where(OAuthClient.client_id == bindparam("client_id"))
    .order_by(ServiceDataset.position)
)


def resolve_delivery(uow: UnitOfWork, detail: dict[str, Any], client_id: str) -> DeliveryRequest:
    """Resolve a `mydata_delivery` entry to an approved service of the client's organisation.

    Without ``datasets`` the request is for every dataset of the service; with ``datasets`` it must
    name every required dataset and may add optional ones (nothing else). What is requested is the
    required datasets, then the optional ones asked for, in the service's order; the citizen may
    still leave optional ones out at the consent screen. Raise
    :class:`~identity.oauth.interfaces.InvalidAuthorizationDetails` with the reason otherwise.
    """
    validate_delivery_detail(detail, client_id)
    # One statement, plain rows (one per dataset of the service), read by the unit of work's runner,
    # past the ORM: nothing this request has pending concerns these tables.
    rows = uow.read(_REQUEST_ROWS, {"client_id": client_id, "service": detail["service"]}).all()
    found = rows[0] if rows else None
    if found is None or found.client_organisation is None:
        raise InvalidAuthorizationDetails(
            "This client belongs to no relying-party organisation, so it cannot ask for data deliveries."
        )
    if oauth_clients.encryption_key(found.jwks) is None:
        raise InvalidAuthorizationDetails(
            "This client has no encryption key (use `enc`) to receive a data package: register one first."
        )
    if found.organisation_id is None or found.organisation_status != APPROVED:
        raise InvalidAuthorizationDetails(
            f"The organisation {found.client_organisation!r} is not approved: it cannot ask for data deliveries."
        )
    if found.service_id is None or found.service_organisation != found.organisation_id:
        # The same answer for another organisation's service: its existence is not this client's business.
        raise InvalidAuthorizationDetails(
            f"The organisation {found.organisation_id!r} has no service {str(detail['service'])[:100]!r}."
        )
    if found.service_status != APPROVED:
        raise InvalidAuthorizationDetails(
            f"The service {found.service_id!r} is {found.service_status}: a service needs an operator's approval "
            "before citizens can be asked for it."
        )
    required = [row.dataset_id for row in rows if row.dataset_id is not None and row.required]
    optional = [row.dataset_id for row in rows if row.dataset_id is not None and not row.required]
    asked: list[str] | None = detail.get("datasets")
    if asked is None:
        wanted = [*required, *optional]
    else:
        if len(set(asked)) != len(asked):
            raise InvalidAuthorizationDetails("mydata_delivery `datasets` names a dataset twice.")
        foreign = [d for d in asked if d not in required and d not in optional]
        if foreign:
            raise InvalidAuthorizationDetails(
                f"The service {found.service_id!r} does not include {', '.join(foreign)}; "
                f"its datasets are {', '.join((*required, *optional))}."
            )
        left_out = [d for d in required if d not in asked]
        if left_out:
            raise InvalidAuthorizationDetails(
                "mydata_delivery `datasets` must include the service's required datasets: "
                f"missing {', '.join(left_out)}."
            )
        wanted = [*required, *(d for d in optional if d in asked)]
    catalogue = {row.dataset_id: row for row in rows if row.agency_id is not None}
    datasets = []
    for dataset_id in wanted:
        row = catalogue.get(dataset_id)
        available = row is not None and row.dataset_status == DATASET_ACTIVE and row.provider_status == DATASET_ACTIVE
        if not available:
            if dataset_id in required or asked is not None:
                raise InvalidAuthorizationDetails(
                    f"The dataset {dataset_id} is not available at the moment; try again later."
                )
            continue  # an optional dataset not asked for by name is simply not offered
        assert row is not None
        datasets.append(
            RequestedDataset(
                id=row.dataset_id,
                required=dataset_id in required,
                title_zh=row.title_zh,
                title_en=row.title_en,
                description_zh=row.description_zh,
                description_en=row.description_en,
                provider=row.provider_id,
                agency=row.agency_id,
                agency_name_zh=row.agency_name_zh,
                agency_name_en=row.agency_name_en,
                min_level=row.min_level,
            )
        )
    # The datasets' levels may have been raised since the service was approved: the higher one holds.
    level = max([found.level, *(d.min_level for d in datasets)], key=LEVELS.index)
    return DeliveryRequest(
        client_id=client_id,
        organisation_id=found.organisation_id,
        organisation_name_zh=found.organisation_name_zh,
        organisation_name_en=found.organisation_name_en,
        organisation_type=found.organisation_type,
        service_id=found.service_id,
        service_name_zh=found.service_name_zh,
        service_name_en=found.service_name_en,
        purpose_zh=found.purpose_zh,
        purpose_en=found.purpose_en,
        purpose_code=found.purpose_code,
        retention_days=found.retention_days,
        level=level,
        datasets=tuple(datasets),
    )


def delivery_details(uow: UnitOfWork, detail: dict[str, Any], client_id: str) -> ResolvedDetails:
    """Validate a `mydata_delivery` entry for the authorization server: the detail, its level, its summary."""
    request = resolve_delivery(uow, detail, client_id)
    return ResolvedDetails(detail=request.detail(), level=request.level, summary=request.summary())


def client_encryption_key(uow: UnitOfWork, client_id: str) -> dict[str, Any]:
    """Return the public JWK a client's data packages are encrypted to (``kid``, ``alg`` included)."""
    client = uow.session.get(OAuthClient, client_id)
    key = oauth_clients.encryption_key(client.jwks) if client is not None else None
    if key is None:
        raise ClientHasNoEncryptionKey(f"The client {client_id!r} has no encryption key.")
    return key


# -- shared checks ----------------------------------------------------------------------------------


def _check_texts(limit: int = 200, **texts: object) -> dict[str, str]:
    checked = {}
    for name, value in texts.items():
        if not isinstance(value, str) or not value.strip() or len(value.strip()) > limit:
            raise InvalidInput(fields={name: [f"Give a text of 1 to {limit} characters."]})
        checked[name] = value.strip()
    return checked


def _check_contacts(contacts: Sequence[Mapping[str, object]]) -> list[dict[str, str]]:
    if not isinstance(contacts, Sequence) or isinstance(contacts, str) or not 1 <= len(contacts) <= MAX_CONTACTS:
        raise InvalidInput(fields={"contacts": [f"Give 1 to {MAX_CONTACTS} contacts."]})
    checked = []
    for index, contact in enumerate(contacts):
        if not isinstance(contact, Mapping):
            raise InvalidInput(fields={"contacts": {index: ["Give name, email and phone."]}})
        name = _check_texts(name=contact.get("name"))["name"]
        email = str(contact.get("email") or "").strip()
        phone = str(contact.get("phone") or "").strip()
        if not _EMAIL.match(email):
            raise InvalidInput(fields={"contacts": {index: {"email": ["Give an email address."]}}})
        if not _PHONE.match(phone):
            raise InvalidInput(fields={"contacts": {index: {"phone": ["Give a phone number (+886 2 1234 5678)."]}}})
        checked.append({"name": name, "email": email, "phone": phone})
    return checked


def service_names(uow: UnitOfWork, service_ids: Collection[str]) -> dict[str, ServiceName]:
    """Return the names of these services and their organisations, in both languages (for the usage history)."""
    found = uow.session.scalars(
        select(Service).options(joinedload(Service.organisation)).where(Service.id.in_(list(service_ids)))
    )
    return {s.id: ServiceName(s.organisation.name_zh, s.organisation.name_en, s.name_zh, s.name_en) for s in found}
