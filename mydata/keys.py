"""Key store: ES256 signing keys and named secrets, encrypted at rest, with rotation and a JWKS.

Private keys never leave the database in the clear: each is stored as PKCS#8 DER sealed with
AES-256-GCM under the master key, with the key id as associated data so that a ciphertext cannot be
moved to another row. Rotation creates a new active key and keeps the previous one as *retired*:
its public half stays in the JWKS so that what it signed still verifies (OIDC Core §10.1.1).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from jwt.algorithms import ECAlgorithm
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from mydata.clock import Clock
from mydata.db import UnitOfWork, get_db
from mydata.errors import MydataError
from mydata.models import StoredKey, StoredSecret

ACTIVE = "active"
RETIRED = "retired"
_NONCE_BYTES = 12
#: How long a process signs with the key it last read as active (see :class:`ActiveKeyCache`).
ACTIVE_KEY_CACHE_SECONDS = 60


class NoSigningKey(MydataError):
    """The key store holds no active signing key yet."""

    code = "server_error"
    status = 503
    description = "The platform has no signing key yet: run `mydata keys rotate` (or `mydata sandbox seed`)."


class KeyDecryptionFailed(MydataError):
    """A stored key could not be decrypted: wrong master key or a tampered row."""

    code = "server_error"
    status = 500
    description = "A stored key could not be decrypted with the configured master key."


@dataclass(frozen=True)
class SigningKey:
    """An active private signing key, ready to sign."""

    kid: str
    alg: str
    private_key: ec.EllipticCurvePrivateKey

    def public_jwk(self) -> dict[str, str]:
        """Return the public JWK of this key."""
        return public_jwk(self.private_key.public_key(), self.kid, self.alg)


def public_jwk(public_key: ec.EllipticCurvePublicKey, kid: str, alg: str = "ES256") -> dict[str, str]:
    """Return a public JWK with ``kid``, ``alg`` and ``use``."""
    jwk = json.loads(ECAlgorithm.to_jwk(public_key))
    return {"kty": jwk["kty"], "crv": jwk["crv"], "x": jwk["x"], "y": jwk["y"], "kid": kid, "alg": alg, "use": "sig"}


def thumbprint(jwk: dict[str, str]) -> str:
    """Return the RFC 7638 SHA-256 thumbprint of an EC or RSA JWK, base64url."""
    members = ("crv", "kty", "x", "y") if jwk["kty"] == "EC" else ("e", "kty", "n")
    canonical = json.dumps({m: jwk[m] for m in members}, separators=(",", ":"), sort_keys=True)
    digest = hashlib.sha256(canonical.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


class ActiveKeyCache:
    """Which key is active, as one process last read it: kept :data:`ACTIVE_KEY_CACHE_SECONDS`.

    Signing is on the path of every token, so the active key is not read from the database each
    time. A rotation in this process is seen at once; one by another process (``mydata keys
    rotate``) within the cache time, during which the previous key, now retired but still in the
    JWKS, goes on signing: what it signs still verifies.
    """

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.monotonic = monotonic
        self._entry: tuple[float, SigningKey] | None = None

    def get(self) -> SigningKey | None:
        """Return the cached active key, if still fresh."""
        entry = self._entry
        if entry is None or self.monotonic() - entry[0] >= ACTIVE_KEY_CACHE_SECONDS:
            return None
        return entry[1]

    def put(self, key: SigningKey | None) -> None:
        """Remember *key* as the active one (None forgets)."""
        self._entry = None if key is None else (self.monotonic(), key)


class KeyStore:
    """Platform keys and secrets in the database, sealed under the master key."""

    # Decrypted keys and secrets never change for a given id, so they are cached per process.
    _cache: ClassVar[dict[tuple[bytes, str], object]] = {}
    _cache_lock = threading.Lock()

    def __init__(
        self, uow: UnitOfWork, master_key: bytes, clock: Clock, active_key: ActiveKeyCache | None = None
    ) -> None:
        self.uow = uow
        self._aead, self._master_id = _sealing(master_key)
        self.clock = clock
        self._active_key = active_key or ActiveKeyCache()

    # -- signing keys -------------------------------------------------------------------------

    def rotate(self) -> SigningKey:
        """Create a new active ES256 key, retire the current one, and commit."""
        session = self.uow.session
        now = self.clock.now()
        for old in session.scalars(select(StoredKey).where(StoredKey.status == ACTIVE)):
            old.status = RETIRED
            old.retired_at = now
        private_key = ec.generate_private_key(ec.SECP256R1())
        jwk = public_jwk(private_key.public_key(), kid="", alg="ES256")
        kid = thumbprint(jwk)[:16] + "-" + now.strftime("%Y%m%d")
        der = private_key.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        session.add(
            StoredKey(
                kid=kid,
                alg="ES256",
                use="sig",
                status=ACTIVE,
                public_jwk=public_jwk(private_key.public_key(), kid, "ES256"),
                private_key_encrypted=self._seal(der, f"mydata_key:{kid}"),
                created_at=now,
            )
        )
        self.uow.commit()
        self._active_key.put(None)
        return SigningKey(kid=kid, alg="ES256", private_key=private_key)

    def signing_key(self) -> SigningKey:
        """Return the active signing key; raise :class:`NoSigningKey` when there is none."""
        cached = self._active_key.get()
        if cached is not None:
            return cached
        row = self.uow.session.scalars(
            select(StoredKey).where(StoredKey.status == ACTIVE).order_by(StoredKey.created_at.desc()).limit(1)
        ).first()
        if row is None:
            raise NoSigningKey()
        cache_key = (self._master_id, "key:" + row.kid)
        private_key = self._cache.get(cache_key)
        if private_key is None:
            der = self._open(row.private_key_encrypted, f"mydata_key:{row.kid}")
            private_key = serialization.load_der_private_key(der, password=None)
            with self._cache_lock:
                self._cache[cache_key] = private_key
        assert isinstance(private_key, ec.EllipticCurvePrivateKey)
        key = SigningKey(kid=row.kid, alg=row.alg, private_key=private_key)
        self._active_key.put(key)
        return key

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        """Return the public JWKS: the active key first, then the retired ones, newest first."""
        rows = self.uow.session.scalars(
            select(StoredKey)
            .where(StoredKey.status.in_((ACTIVE, RETIRED)))
            .order_by(StoredKey.status, StoredKey.created_at.desc())
        )
        return {"keys": [dict(row.public_jwk) for row in rows]}

    # -- secrets ------------------------------------------------------------------------------

    @classmethod
    def cached_secret(cls, master_key: bytes, name: str) -> bytes | None:
        """Return the secret called *name* if this process has read it already, without the database."""
        cached = cls._cache.get((_sealing(master_key)[1], "secret:" + name))
        return cached if isinstance(cached, bytes) else None

    def secret(self, name: str) -> bytes:
        """Return the 32-byte secret called *name*, creating it on first use."""
        cached = self._cache.get((self._master_id, "secret:" + name))
        if isinstance(cached, bytes):
            return cached
        cache_key = (self._master_id, "secret:" + name)
        row = self.uow.session.get(StoredSecret, name)
        if row is None:
            # Not cached until committed: if the caller's transaction rolls back, this process must
            # not go on using a secret that no other process will ever see.
            created = self._create_secret(name)
            return self._open(created.value_encrypted, f"mydata_secret:{name}")
        value = self._open(row.value_encrypted, f"mydata_secret:{name}")
        with self._cache_lock:
            self._cache[cache_key] = value
        return value

    def _create_secret(self, name: str) -> StoredSecret:
        # Two processes may create the same secret at once: the primary key lets one win, and
        # the loser reads the winner's row (inside a savepoint so the caller's work survives).
        session = self.uow.session
        row = StoredSecret(
            name=name, value_encrypted=self._seal(os.urandom(32), f"mydata_secret:{name}"), created_at=self.clock.now()
        )
        try:
            with session.begin_nested():
                session.add(row)
        except IntegrityError:
            existing = session.get(StoredSecret, name)
            assert existing is not None
            return existing
        return row

    # -- sealing ------------------------------------------------------------------------------

    def _seal(self, plaintext: bytes, aad: str) -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, plaintext, aad.encode())

    def _open(self, sealed: bytes, aad: str) -> bytes:
        try:
            return self._aead.decrypt(sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:], aad.encode())
        except InvalidTag:
            raise KeyDecryptionFailed() from None


@functools.lru_cache(maxsize=8)
def _sealing(master_key: bytes) -> tuple[AESGCM, bytes]:
    """Return the cipher that seals under *master_key* and the key's id (its SHA-256), built once per key."""
    return AESGCM(master_key), hashlib.sha256(master_key).digest()


def secret(name: str) -> bytes:
    """Return the current application's secret *name*: from this process's memory once read.

    The first time, a unit of work of its own reads it (creating and committing it if it does not
    exist yet), so that the caller's transaction is never touched.
    """
    from flask import current_app

    cached = KeyStore.cached_secret(current_app.extensions["mydata.master_key"], name)
    if cached is not None:
        return cached
    with get_db().unit_of_work() as uow:
        value = key_store(uow).secret(name)
        uow.commit()
    return value


def key_store(uow: UnitOfWork) -> KeyStore:
    """Return the current application's key store over *uow*."""
    from flask import current_app

    from mydata.clock import clock

    active_key = current_app.extensions.setdefault("mydata.active_key", ActiveKeyCache())
    return KeyStore(uow, current_app.extensions["mydata.master_key"], clock(), active_key)
