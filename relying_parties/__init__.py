"""Relying parties: organisations, clients, services, onboarding, the delivery API and the sandbox RPs (DESIGN §5).

The authorization server learns about services through one seam: the validator of `mydata_delivery`
authorization details registered here (:func:`relying_parties.services.delivery_details`), which
resolves each request to an approved service of the client's organisation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Flask

from identity.oauth.interfaces import ResolvedDetails
from identity.oauth.services import publish_endpoint, register_details_type
from mydata.cli import register_seeder, sandbox_cli
from mydata.config import Settings
from mydata.db import UnitOfWork, unit_of_work
from mydata.openapi import add_security_scheme
from mydata.security import csrf
from relying_parties import (
    agency_console,
    api,
    cli,
    consoles,
    counter_views,
    delivery,
    operator_console,
    operator_schemas,
    operator_statistics,
    rp_console,
    rp_transactions,
    services,
    transactions_api,
    views,
)
from relying_parties.sandbox.serving import mount_sandbox_relying_parties, serve_sandbox_relying_party


def _validate_delivery_detail(detail: dict[str, Any], client_id: str) -> ResolvedDetails:
    """Resolve a `mydata_delivery` entry on the current request's session (PAR and the consent screen)."""
    return services.delivery_details(unit_of_work(), detail, client_id)


def init_app(app: Flask) -> None:
    """Register this package's blueprints, commands, the delivery-details validator and sandbox seeding."""
    # Replaces the authorization server's shape-only check (identity registers it first).
    register_details_type(app, "mydata_delivery", _validate_delivery_detail)
    publish_endpoint(app, "registration_endpoint", "/oauth/register")
    publish_endpoint(app, "mydata_delivery_endpoint", delivery.PATH)
    for blueprint in (api.public_bp, api.operator_bp, api.organisation_bp, api.client_configuration_bp):
        app.register_blueprint(blueprint)
        # No cookie authenticates these routes, except an operator's login session, which the
        # operator blueprint checks for a CSRF token itself.
        csrf.exempt(blueprint)
    add_security_scheme(
        app,
        api.OPERATOR_SECURITY_SCHEME,
        {"type": "http", "scheme": "bearer", "description": "Operator token: `mydata providers issue-operator-token`"},
    )
    add_security_scheme(
        app,
        api.STAFF_SESSION_SECURITY_SCHEME,
        {
            "type": "apiKey",
            "in": "cookie",
            "name": "mydata_login",
            "description": "The login session of an account with the operator role, at level high (eID); "
            "writes also need X-CSRFToken and a login of the last 15 minutes, else 401 "
            "insufficient_user_authentication with a step_up URL (RFC 9470).",
        },
    )
    add_security_scheme(
        app,
        api.ORGANISATION_SECURITY_SCHEME,
        {
            "type": "http",
            "scheme": "bearer",
            "description": "The organisation's initial access token (RFC 7591 §3): `mydata rp issue-token ORG`",
        },
    )
    add_security_scheme(
        app,
        api.CLIENT_CONFIGURATION_SECURITY_SCHEME,
        {
            "type": "http",
            "scheme": "bearer",
            "description": "A client's registration access token (RFC 7592 §3), from its registration's answer",
        },
    )
    app.register_blueprint(delivery.bp)
    transactions_api.init_app(app)
    from consent.history import register_service_directory  # the usage history names services through it

    register_service_directory(app, services.service_names)
    # HTML forms: CSRFProtect checks them, like every other page.
    app.register_blueprint(views.bp)
    consoles_and_sections = (
        consoles.home,
        operator_console.bp,
        operator_statistics.bp,
        operator_schemas.bp,
        agency_console.bp,
        rp_console.bp,
        rp_console.apply_bp,
        rp_transactions.bp,
    )
    for console in consoles_and_sections:
        app.register_blueprint(console)

    # The counter (臨櫃核驗): the clerk's pages at /counter.
    app.config.setdefault("COUNTER_RATE_LIMIT", counter_views.COUNTER_RATE)
    app.register_blueprint(counter_views.bp)
    app.cli.add_command(cli.rp_cli)
    sandbox_cli.add_command(serve_sandbox_relying_party)
    if app.config["MYDATA_SANDBOX"]:
        _seed_sandbox(app)
        # The sandbox bank and school, at /sandbox/bank and /sandbox/school (relying_parties.sandbox.serving).
        mount_sandbox_relying_parties(app)


def _seed_sandbox(app: Flask) -> None:
    """Seed the sandbox bank and school after the agencies' catalogue, and name their start pages."""
    from relying_parties.sandbox.keys import client_keys_dir
    from relying_parties.sandbox.seed import RELYING_PARTIES, seed_sandbox_relying_parties

    settings: Settings = app.config["MYDATA_SETTINGS"]
    keys_dir = client_keys_dir(Path(settings.instance_path))

    def seed(uow: UnitOfWork) -> None:
        # The issuer as it is when seeding runs: the clients' redirect URIs follow it.
        seed_sandbox_relying_parties(uow, keys_dir=keys_dir, issuer=str(app.config["MYDATA_ISSUER"]))

    register_seeder(app, "sandbox relying parties, services and clients", seed)
    notes = app.extensions.setdefault("mydata.demo_notes", [])
    for party in RELYING_PARTIES:
        notes.append(f"Sandbox relying party {party.name_en} ({party.service.name_en}): {{base}}{party.start_path}")
    notes.append(
        "Operator console: {base}/console/operator (趙曉雯 L200000002 with her eID card; "
        "approving needs a login of the last 15 minutes)"
    )
    notes.append("Counter verification, the clerk's side: {base}/counter (張雅婷 E224680132 with her eID card)")
    notes.append(
        "Register your own client: TOKEN=$(mydata rp issue-token sandbox-bank), then POST {base}/oauth/register "
        "with Authorization: Bearer $TOKEN (docs/integrators.md)"
    )
