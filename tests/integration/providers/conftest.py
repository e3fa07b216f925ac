"""Real HTTP between the platform's protocol client and the sandbox agencies (or a rogue provider).

The sandbox agency app runs on a threaded werkzeug server on 127.0.0.1; it fetches the platform's
JWKS over HTTP from a second small server, as it would fetch ``{issuer}/oauth/jwks``. The catalogue
is seeded with the agencies' base URLs on that server. Timeouts are short (0.5 s) so that the
timeout cases stay fast.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from flask import Flask
from werkzeug.serving import make_server

from mydata.clock import FrozenClock
from mydata.config import Settings
from mydata.db import get_db
from mydata.keys import key_store
from providers import services
from providers.protocol import FetchResult
from providers.sandbox.agency import AgencySettings, AgencyState, PlatformJwks, create_agency_app
from providers.sandbox.faults import FaultTable
from providers.sandbox.keys import agency_keys_dir
from providers.sandbox.seed import seed_sandbox_catalogue

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
TIMEOUT_SECONDS = 1.0  # short, yet with room for a loaded 2-core CI machine (0.5 s once timed out there)
BREAKER_THRESHOLD = 3
COOL_DOWN_SECONDS = 30


@contextmanager
def serve(app: WsgiApp) -> Iterator[str]:
    """Serve *app* on a threaded server on a free port of 127.0.0.1; yield its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    # A short poll interval: shutdown() waits for the serving loop to look up.
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@dataclass
class RunningAgencies:
    """The sandbox agency app on a real server: its URL, state and faults, and how often it was called."""

    url: str
    state: AgencyState
    faults: FaultTable
    calls: list[str] = field(default_factory=list)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Sandbox settings with a short per-call timeout and a small circuit breaker threshold."""
    return settings.replace(
        provider_timeout_seconds=TIMEOUT_SECONDS,
        provider_breaker_threshold=BREAKER_THRESHOLD,
        provider_breaker_cool_down_seconds=COOL_DOWN_SECONDS,
        sandbox_faults_file="",
    )


@pytest.fixture
def platform_jwks(app: Flask) -> dict[str, Any]:
    """Give the platform a signing key; return its JWKS (mutable: tests may change what is served)."""
    with app.app_context(), get_db().unit_of_work() as uow:
        key_store(uow).rotate()
        return key_store(uow).jwks()


@pytest.fixture
def jwks_url(platform_jwks: dict[str, Any]) -> Iterator[str]:
    """Serve the platform's JWKS over HTTP, as the platform's /oauth/jwks does."""

    def jwks_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(platform_jwks).encode()]

    with serve(jwks_app) as url:
        yield f"{url}/oauth/jwks"


@pytest.fixture
def agencies(app: Flask, clock: FrozenClock, jwks_url: str) -> Iterator[RunningAgencies]:
    """Serve the sandbox agencies (no faults) and register them in the catalogue at their real URL."""
    faults = FaultTable()
    keys = agency_keys_dir(app.config["MYDATA_SETTINGS"].instance_path)
    agency_app = create_agency_app(
        AgencySettings(
            platform_issuer=app.config["MYDATA_ISSUER"],
            platform_jwks=PlatformJwks.over_http(jwks_url),
            keys_dir=keys,
            faults=faults,
            clock=clock,
            timeout_sleep_seconds=4 * TIMEOUT_SECONDS,
        )
    )
    state: AgencyState = agency_app.extensions["sandbox.agency"]
    calls: list[str] = []

    def counting(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        calls.append(environ["PATH_INFO"])
        return agency_app(environ, start_response)

    with serve(counting) as url:
        with app.app_context(), get_db().unit_of_work() as uow:
            seed_sandbox_catalogue(uow, keys_dir=keys, agencies_url=url)
        yield RunningAgencies(url=url, state=state, faults=faults, calls=calls)
        # Wake requests sleeping in a timeout fault before the server goes away.
        state.stop()


Fetch = Callable[..., dict[str, FetchResult]]


@pytest.fixture
def fetch(app: Flask) -> Iterator[Fetch]:
    """Return a function that fetches datasets through the platform's one entry point."""

    def fetch_(national_id: str, datasets: Sequence[str], txn: str = "txn-test-1") -> dict[str, FetchResult]:
        with app.app_context(), get_db().unit_of_work() as uow:
            return services.fetch_datasets(
                uow, national_id=national_id, datasets=datasets, txn=txn, purpose="測試 (integration test)"
            )

    yield fetch_
    services.provider_client(app).close()
