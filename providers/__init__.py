"""Providers: agencies, providers, the dataset catalogue, the protocol client, sandbox agencies (DESIGN §4).

Other packages call :func:`providers.services.fetch_datasets` to fetch a person's data, and read the
catalogue through :func:`providers.services.catalogue`; the shapes they rely on are in
:mod:`providers.interfaces` and :mod:`providers.protocol`.
"""

from __future__ import annotations

from flask import Flask
from werkzeug.middleware.dispatcher import DispatcherMiddleware

from mydata.cli import register_seeder, sandbox_cli
from mydata.config import Settings
from mydata.db import UnitOfWork
from mydata.openapi import add_security_scheme
from mydata.security import csrf
from providers import api, cli
from providers.client import ProviderClient


def init_app(app: Flask) -> None:
    """Register this package's blueprints, commands, protocol client and, in the sandbox, its agencies."""
    settings: Settings = app.config["MYDATA_SETTINGS"]
    app.extensions["providers.client"] = ProviderClient(
        issuer=app.config["MYDATA_ISSUER"],
        clock=app.extensions["mydata.clock"],
        timeout_seconds=settings.provider_timeout_seconds,
        max_workers=settings.provider_max_workers,
        breaker_threshold=settings.provider_breaker_threshold,
        breaker_cool_down_seconds=settings.provider_breaker_cool_down_seconds,
    )
    app.register_blueprint(api.public_bp)
    app.register_blueprint(api.operator_bp)
    # Bearer-token API, no cookies: nothing for a cross-site request to ride on.
    csrf.exempt(api.operator_bp)
    add_security_scheme(
        app,
        api.OPERATOR_SECURITY_SCHEME,
        {"type": "http", "scheme": "bearer", "description": "Operator token: `mydata providers issue-operator-token`"},
    )
    app.cli.add_command(cli.providers_cli)
    app.cli.add_command(cli.datasets_cli)
    sandbox_cli.add_command(cli.serve_sandbox_agencies)
    if app.config["MYDATA_SANDBOX"]:
        _mount_sandbox_agencies(app)


def _mount_sandbox_agencies(app: Flask) -> None:
    """Serve the sandbox agencies under /sandbox/agencies in the platform's process, and seed them."""
    from providers.sandbox.agency import agency_settings_for, create_agency_app
    from providers.sandbox.catalogue import MOUNT_PREFIX
    from providers.sandbox.seed import seed_sandbox_catalogue

    agency_settings = agency_settings_for(app)
    agencies = create_agency_app(agency_settings)
    app.extensions["providers.sandbox_agencies"] = agencies
    # A separate WSGI app beside the platform, not a blueprint: it shares nothing with the platform
    # but the process. The demo server is threaded, so the platform can call it while serving a request.
    app.wsgi_app = DispatcherMiddleware(app.wsgi_app, {MOUNT_PREFIX: agencies})  # type: ignore[method-assign]

    def seed(uow: UnitOfWork) -> None:
        seed_sandbox_catalogue(
            uow, keys_dir=agency_settings.keys_dir, agencies_url=app.config["MYDATA_ISSUER"] + MOUNT_PREFIX
        )

    register_seeder(app, "sandbox agencies, providers and datasets", seed)
    app.extensions.setdefault("mydata.demo_notes", []).append(
        "Sandbox agencies: {base}" + MOUNT_PREFIX + "/<provider>/mydata/v1/... "
        "(faults: {base}" + MOUNT_PREFIX + "/sandbox/faults)"
    )
