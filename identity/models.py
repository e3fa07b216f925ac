"""Identity tables: citizens and their staff roles, authenticators, login sessions and account settings."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, BigInteger, Boolean, CheckConstraint, Date, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from mydata.db import Base, UTCDateTime

ROLES = ("rp_developer", "agency_officer", "counter", "operator")


class Citizen(Base):
    """A person's account (民眾帳號): citizens, and staff acting through their roles."""

    __tablename__ = "identity_citizen"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    national_id: Mapped[str] = mapped_column(String(10), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    # Unknown for an account first created by an eID login: the certificate carries no birth date.
    birth_date: Mapped[dt.date | None] = mapped_column(Date)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class StaffRole(Base):
    """A role an account holds for an organisation (DESIGN §1: staff act through roles)."""

    __tablename__ = "identity_staff_role"
    __table_args__ = (
        CheckConstraint("role IN ('rp_developer', 'agency_officer', 'counter', 'operator')", name="role"),
    )

    citizen_id: Mapped[str] = mapped_column(ForeignKey("identity_citizen.id", ondelete="CASCADE"), primary_key=True)
    role: Mapped[str] = mapped_column(String(32), primary_key=True)
    # A relying party or agency id (plain string: no foreign key across packages, DESIGN §2);
    # "platform" for operators.
    organisation_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    granted_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class NhiCard(Base):
    """An NHI card (健保卡) with its registration password hash and recent failures."""

    __tablename__ = "identity_nhi_card"

    card_number: Mapped[str] = mapped_column(String(12), primary_key=True)
    citizen_id: Mapped[str] = mapped_column(ForeignKey("identity_citizen.id", ondelete="CASCADE"), index=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    # Epoch seconds of the failures of the last 15 minutes (at most five are kept).
    recent_failures: Mapped[list[int]] = mapped_column(JSON, default=list)
    locked_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    registered_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class NhiUnknownCard(Base):
    """The failures and lock of a card number that is not registered: it locks like a real card.

    An attacker learns nothing from the lock (ASVS 5 V6.3.8): a number is answered the same way
    whether a card has it or not. A row is dropped once its failures and lock are long past.
    """

    __tablename__ = "identity_nhi_unknown_card"

    card_number: Mapped[str] = mapped_column(String(12), primary_key=True)
    recent_failures: Mapped[list[int]] = mapped_column(JSON, default=list)
    locked_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)


class MobileDevice(Base):
    """A phone enrolled for mobile ID, known by its device public key."""

    __tablename__ = "identity_mobile_device"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    citizen_id: Mapped[str] = mapped_column(ForeignKey("identity_citizen.id", ondelete="CASCADE"), index=True)
    label: Mapped[str] = mapped_column(String(100))
    public_jwk: Mapped[dict[str, str]] = mapped_column(JSON)
    enrolled_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class MobileRequest(Base):
    """A pending mobile ID authentication: shown on screen, pushed to the phone, approved by it."""

    __tablename__ = "identity_mobile_request"

    id: Mapped[str] = mapped_column(String(43), primary_key=True)
    # None for a national ID without an account or without an enrolled phone: the request looks the
    # same and then expires, since no phone can approve it (an unknown ID is not told apart).
    citizen_id: Mapped[str | None] = mapped_column(
        ForeignKey("identity_citizen.id", ondelete="CASCADE"), index=True, nullable=True
    )
    binding_code: Mapped[str] = mapped_column(String(8))
    nonce: Mapped[str] = mapped_column(String(43))
    # pending -> approved -> completed; pending -> expired
    status: Mapped[str] = mapped_column(String(16), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    approved_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    device_id: Mapped[str | None] = mapped_column(String(36))
    completed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class LoginSession(Base):
    """A server-side login session; the browser holds a random secret whose hash is stored here."""

    __tablename__ = "identity_login_session"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    citizen_id: Mapped[str] = mapped_column(ForeignKey("identity_citizen.id", ondelete="CASCADE"), index=True)
    method: Mapped[str] = mapped_column(String(16))
    level: Mapped[str] = mapped_column(String(16))
    amr: Mapped[list[str]] = mapped_column(JSON)
    auth_time: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    last_seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    end_reason: Mapped[str | None] = mapped_column(String(16))  # logout | idle | expired | replaced


class SeenJti(Base):
    """A single-use identifier already used (assertion or DPoP `jti`, eID nonce), kept while it could be replayed."""

    __tablename__ = "identity_oauth_jti"

    key: Mapped[str] = mapped_column(String(320), primary_key=True)
    expires_at: Mapped[int] = mapped_column(BigInteger, index=True)


class AccountSettings(Base):
    """A citizen's account settings (帳號設定): confirmed email address, language, notifications wanted."""

    __tablename__ = "identity_account_settings"

    citizen_id: Mapped[str] = mapped_column(ForeignKey("identity_citizen.id", ondelete="CASCADE"), primary_key=True)
    email: Mapped[str | None] = mapped_column(String(254))  # only ever a confirmed address
    email_confirmed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    language: Mapped[str] = mapped_column(String(16))
    notify_delivery: Mapped[bool] = mapped_column(Boolean)
    notify_download: Mapped[bool] = mapped_column(Boolean)
    notify_verification: Mapped[bool] = mapped_column(Boolean)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class EmailConfirmation(Base):
    """A single-use link that confirms an address; only the SHA-256 of its token is kept."""

    __tablename__ = "identity_email_confirmation"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    citizen_id: Mapped[str] = mapped_column(ForeignKey("identity_citizen.id", ondelete="CASCADE"), index=True)
    email: Mapped[str] = mapped_column(String(254))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
