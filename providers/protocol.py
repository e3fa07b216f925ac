"""The provider protocol (DESIGN §4.2): paths, media types, token types, outcomes, and a fetch's result.

Both sides use these names: the platform's client (:mod:`providers.client`) and the sandbox agencies
(:mod:`providers.sandbox.agency`). docs/agencies.md describes the protocol for agency engineers.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

#: Paths under a provider's base URL.
QUERY_PATH = "/mydata/v1/query"
HEALTH_PATH = "/mydata/v1/health"

#: Media types of the query (a JWT) and of the answer (a compact JWS).
REQUEST_MEDIA_TYPE = "application/jwt"
RESPONSE_MEDIA_TYPE = "application/jose"

#: Explicit ``typ`` headers, so that neither token can be mistaken for another JWT (RFC 8725 §3.11).
REQUEST_TYP = "mydata-request+jwt"
RESPONSE_TYP = "mydata-response+jwt"

#: The platform signs queries with ES256; providers answer with ES256 or PS256. Never none or HS*.
REQUEST_ALGORITHM = "ES256"
RESPONSE_ALGORITHMS = ("ES256", "PS256")

#: A query is valid for at most this many seconds after ``iat``.
REQUEST_LIFETIME_SECONDS = 60

#: Claims every answer carries (``data`` may be any JSON object the dataset's schema allows).
RESPONSE_CLAIMS = ("dataset", "sub", "txn", "generated_at", "data")

#: The largest answer the platform reads; a bigger one is a protocol error, not a memory problem.
MAX_RESPONSE_BYTES = 2 * 1024 * 1024


class Outcome(StrEnum):
    """What happened to one dataset of a fetch; every failure has a name (DESIGN §4.2)."""

    OK = "ok"
    NO_RECORD = "no_record"
    TIMEOUT = "timeout"
    UNAVAILABLE = "unavailable"
    BAD_SIGNATURE = "bad_signature"
    SCHEMA_VIOLATION = "schema_violation"
    PROTOCOL_ERROR = "protocol_error"

    @property
    def delivered(self) -> bool:
        """Tell whether this outcome is a normal answer (data, or the agency holds no record)."""
        return self in (Outcome.OK, Outcome.NO_RECORD)


#: Outcomes that count as a provider failure for its circuit breaker. A bad signature or a schema
#: violation is a wrong answer, not an absent provider: it may concern one record only.
BREAKER_FAILURES = frozenset({Outcome.TIMEOUT, Outcome.UNAVAILABLE, Outcome.PROTOCOL_ERROR})


@dataclass(frozen=True)
class FetchResult:
    """The result of fetching one dataset for one person.

    ``provider_jws`` is the provider's compact JWS exactly as received (only when ``ok``), ``data``
    its verified ``data`` claim, ``generated_at`` its ``generated_at`` claim. ``retry_after`` is in
    seconds, when the provider or the circuit breaker says when to try again. ``detail`` names the
    reason of a failure for operators; it never holds personal data.
    """

    dataset: str
    provider: str
    outcome: Outcome
    provider_jws: str | None = None
    data: dict[str, Any] | None = None
    generated_at: str | None = None
    elapsed_ms: int = 0
    retry_after: int | None = None
    detail: str | None = None
