"""Relying-party tables: organisations, initial access tokens, services, clients' registrations (DESIGN §5.1).

A relying party's OAuth clients are rows of the authorization server (``identity_oauth_client``)
bound to an organisation by ``organisation_id``; they are registered through
:mod:`relying_parties.registration`.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from mydata.db import Base, UTCDateTime

#: Status of an organisation or a service: applied, approved by an operator, taken out of service, or
#: refused by an operator when it applied (a rejected one works nowhere, like a pending one).
PENDING = "pending"
APPROVED = "approved"
SUSPENDED = "suspended"
REJECTED = "rejected"
STATUSES = (PENDING, APPROVED, SUSPENDED, REJECTED)

#: Kinds of organisation (DESIGN §5.1).
ORGANISATION_TYPES = ("bank", "school", "agency", "other")


class Organisation(Base):
    """A relying party (服務提供者): a bank, a school, an agency that receives citizens' data."""

    __tablename__ = "relying_parties_organisation"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name_zh: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(16))
    # The unified business number (統一編號); not unique: an operator sees duplicate applications.
    registration_number: Mapped[str] = mapped_column(String(8), index=True)
    # [{"name": ..., "email": ..., "phone": ...}, ...]: who the operator talks to.
    contacts: Mapped[list[dict[str, str]]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    approved_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    suspended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())

    services: Mapped[list[Service]] = relationship(back_populates="organisation", order_by="Service.id")


class InitialAccessToken(Base):
    """An organisation's initial access token for client registration (RFC 7591 §3); only its SHA-256 is kept."""

    __tablename__ = "relying_parties_initial_access_token"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    organisation_id: Mapped[str] = mapped_column(ForeignKey("relying_parties_organisation.id"), index=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class Service(Base):
    """What an organisation asks citizens for: a purpose and the datasets it needs (DESIGN §5.1)."""

    __tablename__ = "relying_parties_service"

    # "<organisation id>.<name>", e.g. sandbox-bank.credit-card
    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    organisation_id: Mapped[str] = mapped_column(ForeignKey("relying_parties_organisation.id"), index=True)
    name_zh: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200))
    purpose_zh: Mapped[str] = mapped_column(Text)
    purpose_en: Mapped[str] = mapped_column(Text)
    # The specific purpose of the Personal Data Protection Act (個資法特定目的), e.g. "067".
    purpose_code: Mapped[str] = mapped_column(String(16))
    retention_days: Mapped[int] = mapped_column(Integer)
    # The level the service asked for, if above its datasets' (None: the datasets decide).
    requested_level: Mapped[str | None] = mapped_column(String(16))
    # max(requested level, datasets' minimum levels) when the service was defined.
    level: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    approved_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())

    organisation: Mapped[Organisation] = relationship(back_populates="services")
    datasets: Mapped[list[ServiceDataset]] = relationship(
        back_populates="service", order_by="ServiceDataset.position", cascade="all, delete-orphan"
    )

    @property
    def required_datasets(self) -> list[str]:
        """Return the ids of the datasets every request includes, in the service's order."""
        return [d.dataset_id for d in self.datasets if d.required]

    @property
    def optional_datasets(self) -> list[str]:
        """Return the ids of the datasets the citizen may leave out, in the service's order."""
        return [d.dataset_id for d in self.datasets if not d.required]


class ServiceDataset(Base):
    """One dataset of a service, required or optional."""

    __tablename__ = "relying_parties_service_dataset"

    service_id: Mapped[str] = mapped_column(ForeignKey("relying_parties_service.id"), primary_key=True)
    # A dataset of the providers' catalogue (a plain string foreign key across packages, DESIGN §2).
    dataset_id: Mapped[str] = mapped_column(ForeignKey("providers_dataset.id"), primary_key=True, index=True)
    required: Mapped[bool] = mapped_column(Boolean)
    position: Mapped[int] = mapped_column(Integer)

    service: Mapped[Service] = relationship(back_populates="datasets")


class ClientRegistration(Base):
    """A client's registration access token (RFC 7592 §3) for its configuration endpoint; only its SHA-256 is kept."""

    __tablename__ = "relying_parties_client_registration"

    # A client of the authorization server (a plain string foreign key across packages, DESIGN §2).
    client_id: Mapped[str] = mapped_column(ForeignKey("identity_oauth_client.client_id"), primary_key=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    issued_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
