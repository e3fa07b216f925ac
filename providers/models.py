"""Catalogue tables: agencies, their data providers, the datasets they serve, operator API tokens."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from mydata.db import Base

#: Status of a provider or a dataset: registered, approved by an operator, taken out of service, or
#: refused by an operator when it was registered (a rejected one is served nowhere, like a pending one).
PENDING = "pending"
ACTIVE = "active"
SUSPENDED = "suspended"
REJECTED = "rejected"
STATUSES = (PENDING, ACTIVE, SUSPENDED, REJECTED)

#: Assurance levels in order (DESIGN §3.1); a dataset's minimum level is one of them.
LEVELS = ("low", "substantial", "high")


class Agency(Base):
    """A government agency (資料提供機關) that runs one or more data providers."""

    __tablename__ = "providers_agency"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name_zh: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))

    providers: Mapped[list[Provider]] = relationship(back_populates="agency", order_by="Provider.id")


class Provider(Base):
    """An agency system that answers the provider protocol at a base URL and signs with its JWKS."""

    __tablename__ = "providers_provider"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    agency_id: Mapped[str] = mapped_column(ForeignKey("providers_agency.id"), index=True)
    base_url: Mapped[str] = mapped_column(String(500))
    # Public response-signing keys only (checked at registration): {"keys": [JWK, ...]}.
    jwks: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))

    agency: Mapped[Agency] = relationship(back_populates="providers")
    datasets: Mapped[list[Dataset]] = relationship(back_populates="provider", order_by="Dataset.id")


class Dataset(Base):
    """A kind of personal data one provider serves, with the JSON Schema its ``data`` must meet."""

    __tablename__ = "providers_dataset"

    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    provider_id: Mapped[str] = mapped_column(ForeignKey("providers_provider.id"), index=True)
    title_zh: Mapped[str] = mapped_column(String(200))
    title_en: Mapped[str] = mapped_column(String(200))
    description_zh: Mapped[str] = mapped_column(Text)
    description_en: Mapped[str] = mapped_column(Text)
    json_schema: Mapped[dict[str, Any]] = mapped_column(JSON)
    # The client compiles one validator per schema version; the digest names the version's content.
    schema_version: Mapped[int] = mapped_column(Integer)
    schema_sha256: Mapped[str] = mapped_column(String(64))
    min_level: Mapped[str] = mapped_column(String(16))
    citizen_downloadable: Mapped[bool] = mapped_column(Boolean)
    status: Mapped[str] = mapped_column(String(16), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))

    provider: Mapped[Provider] = relationship(back_populates="datasets")


#: Status of a proposed schema version: waiting for the operator, published, or refused.
SCHEMA_PENDING = "pending"
SCHEMA_APPROVED = "approved"
SCHEMA_REJECTED = "rejected"


class SchemaVersion(Base):
    """A new JSON Schema an agency proposed for a dataset; the published schema changes only when approved.

    A pending version is numbered the dataset's next version; an operator approves it (the dataset's
    schema, version and digest change in the same commit) or rejects it with a reason.
    """

    __tablename__ = "providers_schema_version"
    __table_args__ = (UniqueConstraint("dataset_id", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dataset_id: Mapped[str] = mapped_column(ForeignKey("providers_dataset.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    json_schema: Mapped[dict[str, Any]] = mapped_column(JSON)
    schema_sha256: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), index=True)
    proposed_by: Mapped[str] = mapped_column(String(128))
    proposed_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    decided_by: Mapped[str | None] = mapped_column(String(128))
    decided_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    reason: Mapped[str | None] = mapped_column(Text)

    dataset: Mapped[Dataset] = relationship()


class OperatorToken(Base):
    """A bearer token for the catalogue's operator API; only its SHA-256 is stored (ADR 0002)."""

    __tablename__ = "providers_operator_token"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    label: Mapped[str] = mapped_column(String(200))
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
