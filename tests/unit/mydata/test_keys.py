"""Key store: encrypted at rest, rotation, JWKS (DESIGN §7)."""

from __future__ import annotations

import base64
import os

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from flask import Flask
from sqlalchemy import select, text, update

from mydata import keys
from mydata.clock import FrozenClock
from mydata.db import get_db
from mydata.keys import ACTIVE_KEY_CACHE_SECONDS, ActiveKeyCache, KeyDecryptionFailed, KeyStore, NoSigningKey, key_store
from mydata.models import StoredKey

pytestmark = pytest.mark.db


def test_no_plaintext_private_key_in_the_stored_row(app: Flask) -> None:
    with app.app_context(), get_db().unit_of_work() as uow:
        key = key_store(uow).rotate()
        der = key.private_key.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        raw = uow.session.execute(text("SELECT * FROM mydata_key WHERE kid = :kid"), {"kid": key.kid}).one()._mapping
        stored = b"".join(bytes(v) if isinstance(v, bytes | memoryview) else str(v).encode() for v in raw.values())
        private_scalar = key.private_key.private_numbers().private_value.to_bytes(32, "big")
        assert der not in stored
        assert private_scalar not in stored
        assert base64.urlsafe_b64encode(private_scalar).rstrip(b"=") not in stored
        assert b"PRIVATE KEY" not in stored
        assert '"d"' not in str(raw["public_jwk"])


def test_rotation_publishes_the_new_and_the_retired_key(app: Flask) -> None:
    with app.app_context(), get_db().unit_of_work() as uow:
        store = key_store(uow)
        first = store.rotate()
        second = store.rotate()
        kids = [jwk["kid"] for jwk in store.jwks()["keys"]]
        assert kids == [second.kid, first.kid]
        assert store.signing_key().kid == second.kid
        statuses = dict(uow.session.execute(select(StoredKey.kid, StoredKey.status)).all())
        assert statuses == {first.kid: "retired", second.kid: "active"}


def test_signatures_of_a_retired_key_still_verify_against_the_jwks(app: Flask) -> None:
    with app.app_context(), get_db().unit_of_work() as uow:
        store = key_store(uow)
        old = store.rotate()
        token = jwt.encode({"sub": "x"}, old.private_key, algorithm="ES256", headers={"kid": old.kid})
        store.rotate()
        jwks = jwt.PyJWKSet.from_dict(store.jwks())
        public = next(k for k in jwks.keys if k.key_id == old.kid)
        assert jwt.decode(token, public.key, algorithms=["ES256"])["sub"] == "x"


def test_no_signing_key_is_a_clear_error(app: Flask) -> None:
    with app.app_context(), get_db().unit_of_work() as uow, pytest.raises(NoSigningKey, match="mydata keys rotate"):
        key_store(uow).signing_key()


def test_wrong_master_key_cannot_open_the_keys(app: Flask) -> None:
    with app.app_context(), get_db().unit_of_work() as uow:
        key_store(uow).rotate()
        other = KeyStore(uow, os.urandom(32), FrozenClock())
        with pytest.raises(KeyDecryptionFailed):
            other.signing_key()


def test_a_sealed_key_moved_to_another_row_does_not_open(app: Flask) -> None:
    with app.app_context(), get_db().unit_of_work() as uow:
        store = key_store(uow)
        first = store.rotate()
        second = store.rotate()
        sealed = uow.session.get(StoredKey, first.kid).private_key_encrypted
        uow.session.execute(update(StoredKey).where(StoredKey.kid == second.kid).values(private_key_encrypted=sealed))
        KeyStore._cache.clear()
        with pytest.raises(KeyDecryptionFailed):
            store.signing_key()


def test_secrets_are_stable_and_encrypted(app: Flask) -> None:
    with app.app_context(), get_db().unit_of_work() as uow:
        store = key_store(uow)
        value = store.secret("ledger")
        assert len(value) == 32
        KeyStore._cache.clear()
        assert store.secret("ledger") == value
        assert store.secret("pairwise") != value
        raw = uow.session.execute(text("SELECT value_encrypted FROM mydata_secret WHERE name = 'ledger'")).scalar_one()
        assert value not in bytes(raw)


def test_a_secret_created_in_a_rolled_back_transaction_is_forgotten(app: Flask) -> None:
    with app.app_context(), get_db().unit_of_work() as uow:
        KeyStore._cache.clear()
        first = key_store(uow).secret("pairwise")
        uow.rollback()
        second = key_store(uow).secret("pairwise")
        uow.commit()
        assert key_store(uow).secret("pairwise") == second
        assert second != first


def test_the_active_key_is_read_once_a_minute(app: Flask) -> None:
    ticks = [1000.0]
    app.extensions["mydata.active_key"] = ActiveKeyCache(monotonic=lambda: ticks[0])
    with app.app_context(), get_db().unit_of_work() as uow:
        first = key_store(uow).rotate()
        assert key_store(uow).signing_key().kid == first.kid
        # Another process (`mydata keys rotate`) rotates: this one signs with the retired key a while,
        # which the JWKS still publishes, so that what it signs verifies.
        elsewhere = KeyStore(uow, app.extensions["mydata.master_key"], FrozenClock()).rotate()
        assert key_store(uow).signing_key().kid == first.kid
        assert first.kid in [k["kid"] for k in key_store(uow).jwks()["keys"]]
        ticks[0] += ACTIVE_KEY_CACHE_SECONDS
        assert key_store(uow).signing_key().kid == elsewhere.kid
        # A rotation in this process is seen at once.
        rotated = key_store(uow).rotate()
        assert key_store(uow).signing_key().kid == rotated.kid


def test_an_app_secret_is_created_once_committed_and_then_read_from_memory(app: Flask) -> None:
    KeyStore._cache.clear()
    with app.app_context():
        first = keys.secret("eid_nonce")
        with get_db().unit_of_work() as uow:  # committed by a unit of work of its own
            assert uow.session.execute(text("SELECT name FROM mydata_secret WHERE name = 'eid_nonce'")).scalar_one()
        assert keys.secret("eid_nonce") == first  # read back (a new secret is kept in memory once read)
        assert KeyStore.cached_secret(app.extensions["mydata.master_key"], "eid_nonce") == first
        KeyStore._cache.clear()
        assert KeyStore.cached_secret(app.extensions["mydata.master_key"], "eid_nonce") is None
        assert keys.secret("eid_nonce") == first  # the stored one, read again
