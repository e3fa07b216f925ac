"""Kernel tables: the key store's encrypted keys and named secrets."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from mydata.db import Base, UTCDateTime


class StoredKey(Base):
    """A platform signing key pair; the private half is AES-GCM encrypted under the master key."""

    __tablename__ = "mydata_key"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    alg: Mapped[str] = mapped_column(String(16))
    use: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(16), index=True)  # active | retired
    public_jwk: Mapped[dict[str, str]] = mapped_column(JSON)
    private_key_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    retired_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class StoredSecret(Base):
    """A named symmetric secret (ledger pseudonyms, pairwise subjects), encrypted at rest."""

    __tablename__ = "mydata_secret"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
