"""Tables of the authorization server. Times are epoch seconds, as in the JWTs they mirror."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from mydata.db import Base


class OAuthClient(Base):
    """A registered relying-party client: its keys, redirect URIs and owner."""

    __tablename__ = "identity_oauth_client"

    client_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    organisation_id: Mapped[str | None] = mapped_column(String(64), index=True)
    jwks: Mapped[dict[str, Any]] = mapped_column(JSON)
    redirect_uris: Mapped[list[str]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="active")  # active | suspended | deleted
    created_at: Mapped[int] = mapped_column(BigInteger)


class PushedRequest(Base):
    """An authorization request pushed to the PAR endpoint (RFC 9126), usable once within 90 s."""

    __tablename__ = "identity_oauth_par"

    request_uri_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(ForeignKey("identity_oauth_client.client_id"), index=True)
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    dpop_jkt: Mapped[str | None] = mapped_column(String(64))
    transaction_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger)
    used_at: Mapped[int | None] = mapped_column(BigInteger)


class Interaction(Base):
    """A pushed request in progress in the citizen's browser: login, step-up, approval."""

    __tablename__ = "identity_oauth_interaction"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(ForeignKey("identity_oauth_client.client_id"), index=True)
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    dpop_jkt: Mapped[str | None] = mapped_column(String(64))
    transaction_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger)
    completed_at: Mapped[int | None] = mapped_column(BigInteger)


class AuthorizationCode(Base):
    """An authorization code: 60 s, single use; a second use revokes what it issued."""

    __tablename__ = "identity_oauth_code"

    code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(ForeignKey("identity_oauth_client.client_id"), index=True)
    citizen_id: Mapped[str] = mapped_column(ForeignKey("identity_citizen.id"), index=True)
    subject: Mapped[str] = mapped_column(String(64))  # the pairwise `sub` for the client's sector
    redirect_uri: Mapped[str] = mapped_column(Text)
    scope: Mapped[str] = mapped_column(String(200))
    nonce: Mapped[str | None] = mapped_column(String(255))
    code_challenge: Mapped[str] = mapped_column(String(128))
    code_challenge_method: Mapped[str] = mapped_column(String(8))
    acr: Mapped[str] = mapped_column(String(64))
    amr: Mapped[list[str]] = mapped_column(JSON)
    auth_time: Mapped[int] = mapped_column(BigInteger)
    authorization_details: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    dpop_jkt: Mapped[str | None] = mapped_column(String(64))
    transaction_id: Mapped[str] = mapped_column(String(64))
    issued_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger)
    used_at: Mapped[int | None] = mapped_column(BigInteger)


class AccessToken(Base):
    """An opaque DPoP-bound access token, stored as its SHA-256 only."""

    __tablename__ = "identity_oauth_token"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(ForeignKey("identity_oauth_client.client_id"), index=True)
    citizen_id: Mapped[str] = mapped_column(ForeignKey("identity_citizen.id"), index=True)
    subject: Mapped[str] = mapped_column(String(64))
    code_hash: Mapped[str] = mapped_column(String(64), index=True)
    jkt: Mapped[str] = mapped_column(String(64))
    scope: Mapped[str] = mapped_column(String(200))
    acr: Mapped[str] = mapped_column(String(64))
    amr: Mapped[list[str]] = mapped_column(JSON)
    auth_time: Mapped[int] = mapped_column(BigInteger)
    authorization_details: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    transaction_id: Mapped[str] = mapped_column(String(64))
    issued_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger)
    revoked_at: Mapped[int | None] = mapped_column(BigInteger)
