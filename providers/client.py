"""The provider protocol client (DESIGN §4.2): fetch a person's datasets from agencies, in parallel.

For each dataset the client signs a query JWT (ES256, the platform's kid), posts it to the
provider, and accepts the answer only if it is a compact JWS signed by a key of the provider's
registered JWKS, about the asked dataset, person and transaction, with ``data`` valid against the
dataset's JSON Schema. Every other answer, or no answer, becomes a named :class:`Outcome`.

Threads: the catalogue, the keys and the schemas are read from the database by the caller
(:func:`providers.services.fetch_datasets`) on its own thread; the worker threads only do HTTP and
cryptography, over one urllib3 pool per process (connections are kept alive between fetches).
Logs name datasets, providers, outcomes and times, never a national ID or a data value.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import email.utils
import json
import logging
import math
import secrets
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, NamedTuple

import jwt
import urllib3
from requests.utils import DEFAULT_CA_BUNDLE_PATH
from urllib3 import exceptions as http_errors

from mydata.clock import Clock
from mydata.keys import SigningKey
from providers import jose
from providers.breaker import CircuitBreakers
from providers.jwks import VerificationKey, verification_keys
from providers.protocol import (
    BREAKER_FAILURES,
    HEALTH_PATH,
    MAX_RESPONSE_BYTES,
    QUERY_PATH,
    REQUEST_ALGORITHM,
    REQUEST_LIFETIME_SECONDS,
    REQUEST_MEDIA_TYPE,
    REQUEST_TYP,
    RESPONSE_ALGORITHMS,
    RESPONSE_CLAIMS,
    RESPONSE_MEDIA_TYPE,
    RESPONSE_TYP,
    FetchResult,
    Outcome,
)
from providers.schema_check import SchemaCheck

log = logging.getLogger(__name__)

#: How long the caller waits for a worker beyond the per-call timeout before it stops waiting.
_GRACE_SECONDS = 0.25
_USER_AGENT = "MyData-platform/1 (provider protocol client)"


@dataclass(frozen=True)
class Route:
    """Where one dataset is fetched from, as the catalogue says at the start of a fetch."""

    dataset: str
    provider: str
    base_url: str
    jwks: dict[str, Any]
    json_schema: dict[str, Any]
    schema_sha256: str
    #: Why the dataset cannot be fetched now (provider or dataset not active), or ``None``.
    unavailable_because: str | None = None


@dataclass(frozen=True)
class HealthCheck:
    """The answer of one provider's health endpoint."""

    ok: bool
    status_code: int | None
    elapsed_ms: int
    result: str


@dataclass(frozen=True)
class _Call:
    """Everything a worker needs for one dataset, prepared on the calling thread."""

    route: Route
    keys: dict[str, VerificationKey]
    schema: SchemaCheck
    signing_key: SigningKey
    claims: dict[str, Any]


class _Answer(NamedTuple):
    """A verified answer: the provider's JWS as received, its data and generated_at."""

    token: str
    data: dict[str, Any]
    generated_at: str


class _Failure(Exception):
    """A fetch ends with this outcome (raised inside a worker, turned into a result)."""

    def __init__(self, outcome: Outcome, detail: str, retry_after: int | None = None) -> None:
        super().__init__(detail)
        self.outcome = outcome
        self.detail = detail
        self.retry_after = retry_after


class ProviderClient:
    """Fetch datasets from providers in parallel, with a timeout and a circuit breaker per provider."""

    def __init__(
        self,
        *,
        issuer: str,
        clock: Clock,
        timeout_seconds: float,
        max_workers: int,
        breaker_threshold: int,
        breaker_cool_down_seconds: float,
    ) -> None:
        self.issuer = issuer
        self.clock = clock
        self.timeout_seconds = timeout_seconds
        self.max_workers = max_workers
        self.breakers = CircuitBreakers(breaker_threshold, breaker_cool_down_seconds, clock)
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None
        # One pool of kept-alive connections per host for the whole process, shared by the workers.
        # Agencies are reached directly: urllib3 takes no proxy or credentials from the environment;
        # https is verified against the same CA bundle as requests'.
        self._http = urllib3.PoolManager(
            num_pools=64,
            maxsize=max_workers,
            headers={"User-Agent": _USER_AGENT},
            retries=False,
            ca_certs=DEFAULT_CA_BUNDLE_PATH,
        )
        # Compiled once per dataset schema version and per provider JWKS, not per call.
        self._schemas: dict[str, tuple[str, SchemaCheck]] = {}
        self._keys: dict[str, tuple[dict[str, Any], dict[str, VerificationKey]]] = {}

    # -- the fetch ----------------------------------------------------------------------------

    def fetch(
        self, routes: Sequence[Route], *, signing_key: SigningKey, national_id: str, txn: str, purpose: str
    ) -> dict[str, FetchResult]:
        """Fetch every routed dataset for *national_id* in parallel; return a result per dataset, in order."""
        results: dict[str, FetchResult] = {}
        pending: dict[str, tuple[_Call, Future[FetchResult]]] = {}
        started = time.perf_counter()
        for route in routes:
            if route.unavailable_because:
                results[route.dataset] = FetchResult(
                    route.dataset, route.provider, Outcome.UNAVAILABLE, detail=route.unavailable_because
                )
                continue
            call = _Call(
                route=route,
                keys=self._verification_keys(route),
                schema=self._schema_check(route),
                signing_key=signing_key,
                claims=self._query_claims(route, national_id=national_id, txn=txn, purpose=purpose),
            )
            # Admitted last: every call the breaker lets through is submitted, and its outcome recorded.
            retry_after = self.breakers[route.provider].admit()
            if retry_after is not None:
                results[route.dataset] = FetchResult(
                    route.dataset, route.provider, Outcome.UNAVAILABLE, retry_after=retry_after, detail="circuit_open"
                )
                continue
            pending[route.dataset] = (call, self._pool().submit(self._call, call))

        futures = [future for _call, future in pending.values()]
        wait(futures, timeout=self.timeout_seconds + _GRACE_SECONDS)
        for dataset, (call, future) in pending.items():
            if future.done():
                result = future.result()
            else:
                # The worker is still waiting on the network; it ends at its own socket timeout.
                elapsed = round((time.perf_counter() - started) * 1000)
                result = FetchResult(
                    dataset, call.route.provider, Outcome.TIMEOUT, elapsed_ms=elapsed, detail="deadline"
                )
            self.breakers[call.route.provider].record(result.outcome not in BREAKER_FAILURES)
            results[dataset] = result
        ordered = {route.dataset: results[route.dataset] for route in routes}
        for result in ordered.values():
            log.info(
                "providers:fetch:%s dataset=%s provider=%s elapsed_ms=%d txn=%s%s",
                result.outcome,
                result.dataset,
                result.provider,
                result.elapsed_ms,
                txn,
                f" detail={result.detail}" if result.detail else "",
            )
        return ordered

    def _query_claims(self, route: Route, *, national_id: str, txn: str, purpose: str) -> dict[str, Any]:
        now = self.clock.timestamp()
        return {
            "iss": self.issuer,
            "aud": route.provider,
            "sub": national_id,
            "dataset": route.dataset,
            "txn": txn,
            "purpose": purpose,
            "iat": now,
            "exp": now + REQUEST_LIFETIME_SECONDS,
            "jti": secrets.token_urlsafe(16),
        }

    def _verification_keys(self, route: Route) -> dict[str, VerificationKey]:
        with self._lock:
            cached = self._keys.get(route.provider)
            # The registered JWKS as read for this fetch: equal to the cached one, or parsed anew.
            if cached is None or cached[0] != route.jwks:
                cached = (route.jwks, verification_keys(route.jwks))
                self._keys[route.provider] = cached
            return cached[1]

    def _schema_check(self, route: Route) -> SchemaCheck:
        with self._lock:
            cached = self._schemas.get(route.dataset)
            if cached is None or cached[0] != route.schema_sha256:
                cached = (route.schema_sha256, SchemaCheck(route.json_schema))
                self._schemas[route.dataset] = cached
            return cached[1]

    # -- one call, on a worker thread ---------------------------------------------------------

    def _call(self, call: _Call) -> FetchResult:
        route = call.route
        started = time.perf_counter()
        try:
            answer = self._query(call, started)
        except _Failure as failure:
            return FetchResult(
                route.dataset,
                route.provider,
                failure.outcome,
                elapsed_ms=_ms_since(started),
                retry_after=failure.retry_after,
                detail=failure.detail,
            )
        except Exception:
            # A bug must not take the other datasets down with it; the trace is logged, the data is not.
            log.exception("providers:fetch:unexpected dataset=%s provider=%s", route.dataset, route.provider)
            return FetchResult(
                route.dataset,
                route.provider,
                Outcome.PROTOCOL_ERROR,
                elapsed_ms=_ms_since(started),
                detail="client_error",
            )
        if answer is None:
            return FetchResult(route.dataset, route.provider, Outcome.NO_RECORD, elapsed_ms=_ms_since(started))
        return FetchResult(
            route.dataset,
            route.provider,
            Outcome.OK,
            provider_jws=answer.token,
            data=answer.data,
            generated_at=answer.generated_at,
            elapsed_ms=_ms_since(started),
        )

    def _query(self, call: _Call, started: float) -> _Answer | None:
        """Post the query; return the verified answer, ``None`` for no record, or raise :class:`_Failure`."""
        route = call.route
        query = jwt.encode(
            call.claims,
            call.signing_key.private_key,
            algorithm=REQUEST_ALGORITHM,
            headers={"kid": call.signing_key.kid, "typ": REQUEST_TYP},
        )
        status, content_type, body, headers = self._post(route.base_url + QUERY_PATH, query, started)
        if status == 200:
            if content_type != RESPONSE_MEDIA_TYPE:
                raise _Failure(Outcome.PROTOCOL_ERROR, f"content_type:{content_type or 'none'}")
            token = body.decode("ascii", errors="replace").strip()
            claims = _verify_answer(token, call.keys)
            generated_at = _check_claims(claims, call.claims, route.provider)
            # The path and the failing keyword locate the problem; the value (personal data) stays out.
            violation = call.schema.first_error(claims["data"])
            if violation is not None:
                raise _Failure(Outcome.SCHEMA_VIOLATION, violation)
            return _Answer(token=token, data=claims["data"], generated_at=generated_at)
        if status == 404 and content_type == "application/json" and _error_code(body) == "no_record":
            return None
        if status in (429, 503):
            raise _Failure(Outcome.UNAVAILABLE, f"http_{status}", self._retry_after(headers.get("Retry-After")))
        if status >= 500:
            raise _Failure(Outcome.UNAVAILABLE, f"http_{status}")
        raise _Failure(Outcome.PROTOCOL_ERROR, f"http_{status}")

    def _post(self, url: str, query: str, started: float) -> tuple[int, str, bytes, Mapping[str, str]]:
        deadline = started + self.timeout_seconds
        try:
            response = self._http.request(
                "POST",
                url,
                body=query.encode("ascii"),
                headers={
                    "Content-Type": REQUEST_MEDIA_TYPE,
                    "Accept": f"{RESPONSE_MEDIA_TYPE}, application/json",
                    # No compression: nothing to inflate, so no decompression bomb either.
                    "Accept-Encoding": "identity",
                },
                timeout=self._timeout(),
                # A redirect could carry the signed query elsewhere: the registered base URL is the only target.
                redirect=False,
                preload_content=False,
            )
            try:
                body = _read_limited(response, deadline)
            finally:
                response.release_conn()
        except http_errors.NewConnectionError:  # before TimeoutError, of which urllib3 makes it a subclass
            raise _Failure(Outcome.UNAVAILABLE, "connection_failed") from None
        except http_errors.TimeoutError:
            raise _Failure(Outcome.TIMEOUT, "timeout") from None
        except http_errors.ProtocolError:
            raise _Failure(Outcome.UNAVAILABLE, "connection_failed") from None
        except http_errors.HTTPError:
            raise _Failure(Outcome.PROTOCOL_ERROR, "http_failed") from None
        if time.perf_counter() > deadline:
            raise _Failure(Outcome.TIMEOUT, "late_answer")
        content_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
        return response.status, content_type, body, response.headers

    def _timeout(self) -> urllib3.Timeout:
        return urllib3.Timeout(connect=self.timeout_seconds, read=self.timeout_seconds)

    def _retry_after(self, value: str | None) -> int | None:
        """Return Retry-After (RFC 9110 §10.2.3: seconds or an HTTP date) as whole seconds."""
        if not value:
            return None
        value = value.strip()
        if value.isdigit():
            return int(value)
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        return max(0, math.ceil((when - self.clock.now()).total_seconds()))

    # -- health -------------------------------------------------------------------------------

    def check_health(self, base_url: str) -> HealthCheck:
        """Call a provider's health endpoint once, with the fetch timeout."""
        started = time.perf_counter()
        try:
            response = self._http.request("GET", base_url + HEALTH_PATH, timeout=self._timeout(), redirect=False)
        except http_errors.NewConnectionError:
            return HealthCheck(False, None, _ms_since(started), "unreachable")
        except http_errors.TimeoutError:
            return HealthCheck(False, None, _ms_since(started), "timeout")
        except http_errors.ProtocolError:
            return HealthCheck(False, None, _ms_since(started), "unreachable")
        except http_errors.HTTPError:
            return HealthCheck(False, None, _ms_since(started), "http error")
        elapsed = _ms_since(started)
        if response.status != 200:
            return HealthCheck(False, response.status, elapsed, f"HTTP {response.status}")
        try:
            status = json.loads(response.data).get("status")
        except (ValueError, AttributeError):
            status = None
        if status != "ok":
            return HealthCheck(False, 200, elapsed, f"status {status!r}")
        return HealthCheck(True, 200, elapsed, "ok")

    def check_health_of(self, base_urls: Sequence[str]) -> list[HealthCheck]:
        """Check several providers' health in parallel."""
        return list(self._pool().map(self.check_health, base_urls))

    # -- resources ----------------------------------------------------------------------------

    def _pool(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(self.max_workers, thread_name_prefix="provider-fetch")
            return self._executor

    def close(self) -> None:
        """Stop the worker threads (waiting for calls in flight)."""
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True)
        self._http.clear()


def _read_limited(response: urllib3.BaseHTTPResponse, deadline: float) -> bytes:
    """Read the body as it arrives, within the size limit and the call's deadline.

    ``read1`` returns whatever has arrived, so that a provider sending its answer a byte at a time
    (each byte within the socket timeout) still cannot hold a worker past the deadline.
    """
    chunks: list[bytes] = []
    size = 0
    while chunk := response.read1(64 * 1024):
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            raise _Failure(Outcome.PROTOCOL_ERROR, "answer_too_large")
        if time.perf_counter() > deadline:
            raise _Failure(Outcome.TIMEOUT, "timeout")
        chunks.append(chunk)
    return b"".join(chunks)


def _unverified_header(token: str) -> dict[str, Any]:
    """Read the header of a compact JWS, to choose the key, without reading the payload.

    An answer's payload holds the datasets (kilobytes): only the header is read here, and only to
    pick the key; :func:`providers.jose.parse` then reads the whole token strictly.
    """
    segment = token.split(".", 1)[0]
    try:
        header = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (ValueError, binascii.Error):
        raise _Failure(Outcome.PROTOCOL_ERROR, "jws_header") from None
    if not isinstance(header, dict):
        raise _Failure(Outcome.PROTOCOL_ERROR, "jws_header")
    return header


def _verify_answer(token: str, keys: dict[str, VerificationKey]) -> dict[str, Any]:
    """Verify the answer's signature against the provider's registered keys; return its claims."""
    if token.count(".") != 2:
        raise _Failure(Outcome.PROTOCOL_ERROR, "not_compact_jws")
    header = _unverified_header(token)
    alg = header.get("alg")
    if alg not in RESPONSE_ALGORITHMS:
        # none, HS* and anything else never verify an answer (RFC 8725 §3.1).
        raise _Failure(Outcome.BAD_SIGNATURE, f"alg:{str(alg)[:16]}")
    key = keys.get(str(header.get("kid")))
    if key is None:
        raise _Failure(Outcome.BAD_SIGNATURE, "unknown_kid")
    if key.alg != alg:
        raise _Failure(Outcome.BAD_SIGNATURE, "alg_does_not_match_key")
    try:
        parsed = jose.parse(token)
    except jose.MalformedJws:
        raise _Failure(Outcome.PROTOCOL_ERROR, "jws") from None
    if parsed.header.get("alg") != alg:  # the header read strictly says what the lenient read said
        raise _Failure(Outcome.PROTOCOL_ERROR, "jws")
    if not jose.verify(parsed, alg, key.key):
        raise _Failure(Outcome.BAD_SIGNATURE, "signature")
    if parsed.header.get("typ") != RESPONSE_TYP:
        raise _Failure(Outcome.PROTOCOL_ERROR, "typ")
    try:
        claims = json.loads(parsed.payload)
    except ValueError:
        raise _Failure(Outcome.PROTOCOL_ERROR, "payload_not_json") from None
    if not isinstance(claims, dict):
        raise _Failure(Outcome.PROTOCOL_ERROR, "payload_not_object")
    return claims


def _check_claims(claims: dict[str, Any], query: dict[str, Any], provider: str) -> str:
    """Check that the answer is about what was asked; return its ``generated_at``."""
    for name in RESPONSE_CLAIMS:
        if name not in claims:
            raise _Failure(Outcome.PROTOCOL_ERROR, f"missing_claim:{name}")
    # An answer about another dataset, person or transaction is never accepted, even well signed.
    for name in ("dataset", "sub", "txn"):
        if claims[name] != query[name]:
            raise _Failure(Outcome.PROTOCOL_ERROR, f"claim_mismatch:{name}")
    if "iss" in claims and claims["iss"] != provider:
        raise _Failure(Outcome.PROTOCOL_ERROR, "claim_mismatch:iss")
    generated_at = claims["generated_at"]
    try:
        parsed = dt.datetime.fromisoformat(generated_at) if isinstance(generated_at, str) else None
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise _Failure(Outcome.PROTOCOL_ERROR, "generated_at")
    assert isinstance(generated_at, str)
    return generated_at


def _error_code(body: bytes) -> str | None:
    try:
        document = json.loads(body)
    except ValueError:
        return None
    return document.get("error") if isinstance(document, dict) else None


def _ms_since(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)
