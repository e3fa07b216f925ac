"""The delivery broker: fetch the granted datasets, package, sign, encrypt, deliver once (DESIGN §6.2).

The package is built at delivery time and never stored: the platform keeps only the per-dataset
outcomes and the SHA-256 of each agency document, in the consent and in the ledger.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import Any

import jwt
from joserfc import jwe
from joserfc.jwk import ECKey, RSAKey

from consent import consents
from consent.interfaces import ProviderUnavailable
from consent.models import Consent
from mydata.db import UnitOfWork
from mydata.keys import key_store
from providers.protocol import FetchResult, Outcome
from providers.services import fetch_datasets

#: The client's `enc` key decides the key management algorithm; content is always A256GCM.
KEY_ALGORITHMS = {"EC": "ECDH-ES+A256KW", "RSA": "RSA-OAEP-256"}
CONTENT_ENCRYPTION = "A256GCM"
PACKAGE_TYP = "mydata-package+jwt"


@dataclass(frozen=True)
class Recipient:
    """The client the package is for: its id, the pairwise subject it knows, its encryption key."""

    client_id: str
    subject: str
    encryption_jwk: dict[str, Any]


def encryption_key(jwks: dict[str, Any]) -> dict[str, Any]:
    """Return the client's one `enc` key."""
    keys = [k for k in jwks.get("keys", []) if k.get("use") == "enc"]
    if len(keys) != 1:
        raise ValueError("the client has no single encryption key (use enc)")
    return dict(keys[0])


def deliver(
    uow: UnitOfWork, *, consent_id: str, national_id: str, recipient: Recipient, issuer: str, now: dt.datetime
) -> str:
    """Deliver a consent's package once; return it as a compact JWE, or raise why it cannot be.

    A required dataset that fails leaves the consent `granted` (the relying party may retry within
    the window), records `delivery.failed` and raises :class:`ProviderUnavailable`; an optional one
    that fails is delivered as `unavailable`.
    """
    consent = consents.claim_for_delivery(uow, consent_id, national_id=national_id, now=now)
    granted = list(consent.datasets_granted or ())
    results = fetch_datasets(uow, national_id=national_id, datasets=granted, txn=consent.id, purpose=consent.purpose)
    outcomes = {dataset: str(result.outcome) for dataset, result in results.items()}
    failed_required = {
        d: outcomes[d] for d in consent.datasets_required if d in results and not results[d].outcome.delivered
    }
    if failed_required:
        consents.record_failed_delivery(uow, consent, national_id=national_id, outcomes=outcomes)
        uow.commit()
        waits = [r.retry_after for r in results.values() if r.retry_after]
        raise ProviderUnavailable(datasets=outcomes, retry_after=max(waits) if waits else 30)

    package = build_package(consent, results, recipient=recipient, issuer=issuer, now=now)
    sealed = seal(package, recipient.encryption_jwk, uow)
    hashes = {
        dataset: hashlib.sha256(result.provider_jws.encode()).hexdigest()
        for dataset, result in results.items()
        if result.provider_jws
    }
    consents.complete_delivery(
        uow, consent, national_id=national_id, outcomes=outcomes, document_hashes=hashes, now=now
    )
    uow.commit()
    return sealed


def build_package(
    consent: Consent, results: dict[str, FetchResult], *, recipient: Recipient, issuer: str, now: dt.datetime
) -> dict[str, Any]:
    """Return the package claims of DESIGN §6.2."""
    datasets: dict[str, Any] = {}
    for dataset, result in results.items():
        if result.outcome == Outcome.OK:
            datasets[dataset] = {
                "provider": result.provider,
                "status": "ok",
                "generated_at": result.generated_at,
                "provider_jws": result.provider_jws,
                "data": result.data,
            }
        elif result.outcome == Outcome.NO_RECORD:
            datasets[dataset] = {"provider": result.provider, "status": "no_record"}
        else:  # an optional dataset that failed (required failures never get here)
            datasets[dataset] = {"provider": result.provider, "status": "unavailable"}
    return {
        "iss": issuer,
        "aud": recipient.client_id,
        "iat": int(now.timestamp()),
        "txn": consent.id,
        "sub": recipient.subject,
        "service": consent.service_id,
        "purpose": consent.purpose,
        "datasets": datasets,
        "receipt": consent.receipt_id,
    }


def seal(package: dict[str, Any], encryption_jwk: dict[str, Any], uow: UnitOfWork) -> str:
    """Sign the package (JWS, ES256, platform kid) and encrypt it to the client (JWE, RFC 7516)."""
    key = key_store(uow).signing_key()
    signed = jwt.encode(package, key.private_key, algorithm="ES256", headers={"kid": key.kid, "typ": PACKAGE_TYP})
    algorithm = KEY_ALGORITHMS[encryption_jwk["kty"]]
    public = {k: v for k, v in encryption_jwk.items() if k not in ("alg", "use", "key_ops")}
    recipient_key = ECKey.import_key(public) if encryption_jwk["kty"] == "EC" else RSAKey.import_key(public)
    protected = {"alg": algorithm, "enc": CONTENT_ENCRYPTION, "cty": "JWT", "kid": encryption_jwk.get("kid", "")}
    return jwe.encrypt_compact(protected, signed.encode(), recipient_key, algorithms=[algorithm, CONTENT_ENCRYPTION])
