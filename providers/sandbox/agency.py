"""The sandbox agencies' WSGI app: four data providers speaking the provider protocol (DESIGN §4.2-4.3).

One small Flask app (not a blueprint of the platform) serves every sandbox provider under its id::

    POST /<provider id>/mydata/v1/query     a query JWT in, a signed answer (compact JWS) out
    GET  /<provider id>/mydata/v1/health    {"status": "ok", ...}
    GET|PUT|DELETE /sandbox/faults          the sandbox control endpoint (fault injection)

It verifies queries as a real agency must: an ES256 signature by a key of the platform's JWKS
(fetched over HTTP and cached, refetched on an unknown kid), ``iss``, ``aud`` (its provider id),
``exp``/``iat`` and a lifetime of at most 60 s, and ``jti`` never seen before. It answers from
:mod:`providers.sandbox.data`, signed with the agency's key from the instance folder.

The platform mounts it at ``/sandbox/agencies`` in sandbox mode; `mydata sandbox providers --port N`
serves it on its own (see docs/agencies.md).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
import requests
from cryptography.hazmat.primitives.asymmetric import ec
from flask import Flask, Response, jsonify, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException

from mydata.clock import Clock
from mydata.config import ROOT, Settings, env_name
from mydata.errors import ConfigError
from providers import jose
from providers.protocol import (
    REQUEST_ALGORITHM,
    REQUEST_LIFETIME_SECONDS,
    REQUEST_MEDIA_TYPE,
    REQUEST_TYP,
    RESPONSE_MEDIA_TYPE,
    RESPONSE_TYP,
)
from providers.sandbox.catalogue import PROVIDER_DATASETS
from providers.sandbox.data import dataset_for
from providers.sandbox.faults import Fault, FaultKind, FaultTable, InvalidFault, load_faults, parse_fault
from providers.sandbox.keys import AgencyKey, agency_keys_dir, generate_agency_key, load_agency_key

log = logging.getLogger(__name__)

#: Clock skew tolerated on ``iat`` and ``exp`` (RFC 7519 §4.1.4 allows "some small leeway").
LEEWAY_SECONDS = 5
#: Agencies in Taiwan stamp their answers in Taiwan time (UTC+8, no daylight saving).
TAIPEI = dt.timezone(dt.timedelta(hours=8), "Asia/Taipei")
_MAX_QUERY_BYTES = 16 * 1024
_QUERY_CLAIMS = {"iss": str, "aud": str, "sub": str, "dataset": str, "txn": str, "purpose": str, "jti": str}


class QueryRejected(Exception):
    """A query JWT is not acceptable; the sentence says why (it names no personal data)."""


class PlatformJwks:
    """The platform's public signing keys, cached; refetched when a kid is unknown or the copy is old."""

    def __init__(
        self, load: Callable[[], object], *, max_age_seconds: float = 300.0, min_refetch_seconds: float = 1.0
    ) -> None:
        self._load = load
        self.max_age_seconds = max_age_seconds
        self.min_refetch_seconds = min_refetch_seconds
        self._lock = threading.Lock()
        self._keys: dict[str, ec.EllipticCurvePublicKey] = {}
        self._fetched_at: float | None = None

    @classmethod
    def over_http(cls, url: str, *, timeout_seconds: float = 5.0) -> PlatformJwks:
        """Return the JWKS published at *url* (the platform's ``{issuer}/oauth/jwks``)."""

        session = requests.Session()
        # The platform is reached directly, as the platform reaches agencies: no proxy from the environment.
        session.trust_env = False

        def load() -> object:
            response = session.get(url, timeout=timeout_seconds, headers={"Accept": "application/json"})
            response.raise_for_status()
            return response.json()

        return cls(load)

    def key(self, kid: str) -> ec.EllipticCurvePublicKey | None:
        """Return the platform's ES256 key *kid*, refetching the JWKS once if it is not known."""
        with self._lock:
            now = time.monotonic()
            stale = self._fetched_at is None or now - self._fetched_at > self.max_age_seconds
            # An unknown kid may be a freshly rotated platform key; the refetch is rate-limited so
            # that a stream of made-up kids cannot make us hammer the platform.
            may_refetch = self._fetched_at is None or now - self._fetched_at >= self.min_refetch_seconds
            if stale or (kid not in self._keys and may_refetch):
                self._refresh(now)
            return self._keys.get(kid)

    def _refresh(self, now: float) -> None:
        try:
            document = self._load()
        except (requests.RequestException, ValueError):
            log.warning("sandbox agency: the platform JWKS could not be fetched", exc_info=True)
            return
        keys: dict[str, ec.EllipticCurvePublicKey] = {}
        for jwk in document.get("keys", []) if isinstance(document, dict) else []:
            # Queries are ES256 only: other keys of the platform's JWKS are not for us.
            if not isinstance(jwk, dict) or jwk.get("kty") != "EC" or jwk.get("alg", "ES256") != "ES256":
                continue
            try:
                key = jwt.PyJWK(jwk, algorithm="ES256").key
            except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError):
                continue
            if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(jwk.get("kid"), str):
                keys[jwk["kid"]] = key
        self._keys = keys
        self._fetched_at = now


class ReplayCache:
    """The ``jti`` of every query accepted and not yet expired (RFC 7519 §4.1.7).

    Expired ones are swept at most once a second, so that a query costs the same however many
    others are live (at a few hundred queries a second, thousands are).
    """

    #: How often the expired entries are swept, in seconds.
    SWEEP_SECONDS = 1.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: dict[str, float] = {}
        self._next_sweep = float("-inf")
        self.sweeps = 0

    def __len__(self) -> int:
        return len(self._seen)

    def first_use(self, jti: str, expires_at: float, now: float) -> bool:
        """Remember *jti* until it expires; tell whether this is its first use."""
        with self._lock:
            if now >= self._next_sweep:
                self._seen = {k: exp for k, exp in self._seen.items() if exp + LEEWAY_SECONDS >= now}
                self._next_sweep = now + self.SWEEP_SECONDS
                self.sweeps += 1
            if jti in self._seen:
                return False
            self._seen[jti] = expires_at
            return True


@dataclass
class AgencySettings:
    """What one sandbox agency app needs from its host."""

    platform_issuer: str
    platform_jwks: PlatformJwks
    keys_dir: Path
    faults: FaultTable
    clock: Clock
    #: How long the ``timeout`` fault waits: longer than the platform's per-call timeout.
    timeout_sleep_seconds: float = 30.0


@dataclass
class AgencyState:
    """The running app's keys, replay cache and faults."""

    settings: AgencySettings
    replays: ReplayCache = field(default_factory=ReplayCache)
    # The key behind the bad_signature fault: generated here, registered nowhere.
    unregistered_key: AgencyKey = field(default_factory=lambda: generate_agency_key("unregistered"))
    stopping: threading.Event = field(default_factory=threading.Event)
    _keys: dict[str, AgencyKey] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def signing_key(self, provider_id: str) -> AgencyKey | None:
        """Return the provider's key, read from the instance folder on first use."""
        with self._lock:
            key = self._keys.get(provider_id)
            if key is None:
                key = load_agency_key(self.settings.keys_dir, provider_id)
                if key is not None:
                    self._keys[provider_id] = key
            return key

    def use_key(self, provider_id: str, key: AgencyKey) -> None:
        """Sign the provider's answers with *key* from now on (key rotation)."""
        with self._lock:
            self._keys[provider_id] = key

    def sleep(self, seconds: float) -> None:
        """Wait, unless the app is being stopped."""
        self.stopping.wait(seconds)

    def stop(self) -> None:
        """Wake every sleeping request (for servers shutting down)."""
        self.stopping.set()

    def verify_query(self, token: str, provider_id: str) -> dict[str, Any]:
        """Return the claims of a valid query for *provider_id*; raise :class:`QueryRejected`."""
        try:
            parsed = jose.parse(token)
        except jose.MalformedJws:
            raise QueryRejected("The body is not a JWT.") from None
        header = parsed.header
        # Only ES256: "none" (an unsigned JWT) and HMAC never pass (RFC 8725 §3.1).
        if header.get("alg") != REQUEST_ALGORITHM:
            raise QueryRejected(f"The query must be signed with {REQUEST_ALGORITHM}.")
        if header.get("typ") != REQUEST_TYP:
            raise QueryRejected(f"The query's typ header must be {REQUEST_TYP}.")
        kid = header.get("kid")
        key = self.settings.platform_jwks.key(kid) if isinstance(kid, str) else None
        if key is None:
            raise QueryRejected("The query is signed with a key the platform does not publish.")
        if not jose.verify(parsed, REQUEST_ALGORITHM, key):
            raise QueryRejected("The query's signature does not verify.")
        try:
            claims = json.loads(parsed.payload)
        except ValueError:
            raise QueryRejected("The query is not a well-formed JWS.") from None
        if not isinstance(claims, dict):
            raise QueryRejected("The query's payload is not a JSON object.")
        for name, kind in _QUERY_CLAIMS.items():
            if not isinstance(claims.get(name), kind):
                raise QueryRejected(f"The query lacks the {name} claim.")
        for name in ("iat", "exp"):
            if isinstance(claims.get(name), bool) or not isinstance(claims.get(name), int | float):
                raise QueryRejected(f"The query lacks the {name} claim.")
        if claims["iss"] != self.settings.platform_issuer:
            raise QueryRejected("The query was issued by someone else than the platform.")
        if claims["aud"] != provider_id:
            raise QueryRejected("The query is meant for another provider.")
        now = self.settings.clock.timestamp()
        if now > claims["exp"] + LEEWAY_SECONDS:
            raise QueryRejected("The query has expired.")
        if claims["iat"] > now + LEEWAY_SECONDS:
            raise QueryRejected("The query is issued in the future.")
        if claims["exp"] - claims["iat"] > REQUEST_LIFETIME_SECONDS:
            raise QueryRejected(f"The query is valid for more than {REQUEST_LIFETIME_SECONDS} seconds.")
        # Last, so that a query refused for another reason does not use up its jti.
        if not self.replays.first_use(claims["jti"], claims["exp"], now):
            raise QueryRejected("The query has been used before (jti replayed).")
        return claims


def create_agency_app(settings: AgencySettings) -> Flask:
    """Build the sandbox agencies' WSGI app."""
    app = Flask("providers.sandbox.agency")
    app.config.update(MAX_CONTENT_LENGTH=_MAX_QUERY_BYTES)
    app.json.ensure_ascii = False  # type: ignore[attr-defined]  # error sentences may be Chinese
    state = AgencyState(settings)
    app.extensions["sandbox.agency"] = state

    @app.post("/<provider_id>/mydata/v1/query")
    def query(provider_id: str) -> ResponseReturnValue:
        """Answer a query for one person's dataset with a signed document."""
        if provider_id not in PROVIDER_DATASETS:
            return _error(404, "not_found", "No sandbox provider has this id.")
        if request.mimetype != REQUEST_MEDIA_TYPE:
            return _error(415, "unsupported_media_type", f"Send the query JWT as {REQUEST_MEDIA_TYPE}.")
        try:
            claims = state.verify_query(request.get_data(as_text=True).strip(), provider_id)
        except QueryRejected as rejected:
            log.info("sandbox agency %s: query rejected: %s", provider_id, rejected)
            return _error(401, "invalid_query", str(rejected))
        dataset = claims["dataset"]
        if dataset not in PROVIDER_DATASETS[provider_id]:
            return _error(400, "unknown_dataset", "This provider does not serve that dataset.")
        return _answer(state, provider_id, claims)

    @app.get("/<provider_id>/mydata/v1/health")
    def health(provider_id: str) -> ResponseReturnValue:
        """Tell the platform's health check that the provider answers."""
        if provider_id not in PROVIDER_DATASETS:
            return _error(404, "not_found", "No sandbox provider has this id.")
        body = {"status": "ok", "provider": provider_id, "datasets": list(PROVIDER_DATASETS[provider_id])}
        if state.signing_key(provider_id) is None:
            return jsonify(body | {"status": "unavailable", "reason": "not seeded: run `mydata sandbox seed`"}), 503
        return jsonify(body)

    @app.get("/sandbox/faults")
    def list_faults() -> ResponseReturnValue:
        """List the faults in force."""
        return jsonify({"faults": [f.to_dict() for f in settings.faults.all()]})

    @app.put("/sandbox/faults")
    def put_fault() -> ResponseReturnValue:
        """Set one fault (for a person and a dataset, either of them "*")."""
        if not request.is_json:
            return _error(415, "unsupported_media_type", "Send the fault as application/json.")
        try:
            fault = parse_fault(request.get_json(silent=True))
        except InvalidFault as exc:
            return _error(400, "invalid_fault", str(exc))
        settings.faults.put(fault)
        return jsonify(fault.to_dict())

    @app.delete("/sandbox/faults")
    def delete_faults() -> ResponseReturnValue:
        """Remove the fault of ?national_id=&dataset=, or every fault when neither is given."""
        national_id = request.args.get("national_id")
        dataset = request.args.get("dataset")
        if national_id is None and dataset is None:
            settings.faults.clear()
        elif national_id is None or dataset is None:
            return _error(
                400, "invalid_request", "Give both national_id and dataset, or neither to remove every fault."
            )
        elif not settings.faults.remove(national_id, dataset):
            return _error(404, "not_found", "No fault is set for this national_id and dataset.")
        return jsonify({"faults": [f.to_dict() for f in settings.faults.all()]})

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> ResponseReturnValue:
        return _error(error.code or 500, str(error.name).lower().replace(" ", "_"), error.description or "")

    @app.errorhandler(Exception)
    def unexpected(error: Exception) -> ResponseReturnValue:
        log.exception("sandbox agency: unexpected error on %s %s", request.method, request.path)
        return _error(500, "server_error", "The sandbox agency had an unexpected problem.")

    return app


def _answer(state: AgencyState, provider_id: str, claims: dict[str, Any]) -> ResponseReturnValue:
    settings = state.settings
    national_id, dataset = claims["sub"], claims["dataset"]
    fault = settings.faults.find(national_id, dataset)
    if fault is not None:
        if fault.delay_ms:
            state.sleep(fault.delay_ms / 1000)
        if fault.kind is FaultKind.TIMEOUT:
            state.sleep(settings.timeout_sleep_seconds)
        elif fault.kind is FaultKind.ERROR:
            return _error(500, "server_error", "The sandbox agency failed (injected fault).")
        elif fault.kind is FaultKind.BUSY:
            response = _error(503, "temporarily_unavailable", "The sandbox agency is busy (injected fault).")
            response.headers["Retry-After"] = str(fault.retry_after)
            return response
    key = state.signing_key(provider_id)
    if key is None:
        return _error(503, "temporarily_unavailable", "The sandbox agency has no key yet: run `mydata sandbox seed`.")
    data = dataset_for(national_id, dataset)
    if data is None:
        return _error(404, "no_record", "The agency holds no record of this dataset for this person.")
    if fault is not None and fault.kind is FaultKind.INVALID_DATA:
        # Drop a required member and add one no schema allows: invalid against every dataset schema.
        data.pop(next(iter(data)))
        data["sandbox_fault"] = "schema-invalid data (injected fault)"
    if fault is not None and fault.kind is FaultKind.BAD_SIGNATURE:
        # Same kid as the registered key, other key material: only a real signature check catches it.
        key = AgencyKey(kid=key.kid, private_key=state.unregistered_key.private_key)
    now = settings.clock.now()
    answer = {
        "iss": provider_id,
        "iat": int(now.timestamp()),
        "dataset": dataset,
        "sub": national_id,
        "txn": claims["txn"],
        "generated_at": now.astimezone(TAIPEI).isoformat(timespec="seconds"),
        "data": data,
    }
    token = jwt.encode(answer, key.private_key, algorithm="ES256", headers={"kid": key.kid, "typ": RESPONSE_TYP})
    return Response(token, mimetype=RESPONSE_MEDIA_TYPE)


def _error(status: int, code: str, description: str) -> Response:
    response = jsonify({"error": code, "error_description": description})
    response.status_code = status
    return response


def agency_settings_for(platform: Flask) -> AgencySettings:
    """Return the settings of the sandbox agencies that serve *platform* (its issuer, instance folder, clock)."""
    settings: Settings = platform.config["MYDATA_SETTINGS"]
    issuer: str = platform.config["MYDATA_ISSUER"]
    faults: list[Fault] = []
    if settings.sandbox_faults_file:
        path = Path(settings.sandbox_faults_file)
        try:
            faults = load_faults(path if path.is_absolute() else ROOT / path)
        except InvalidFault as exc:
            raise ConfigError(env_name("sandbox_faults_file"), str(exc)) from None
    return AgencySettings(
        platform_issuer=issuer,
        # The platform publishes its keys at /oauth/jwks (DESIGN §3.3); the agency fetches them
        # over HTTP like a real agency would, also when it is mounted in the platform's process.
        platform_jwks=PlatformJwks.over_http(f"{issuer}/oauth/jwks"),
        keys_dir=agency_keys_dir(settings.instance_path),
        faults=FaultTable(faults),
        clock=platform.extensions["mydata.clock"],
    )
