"""Relying parties: organisations, clients, services, onboarding, the delivery API and the sandbox RPs (DESIGN §5)."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register this package's blueprints, commands and sandbox seeding steps."""
    from relying_parties import delivery

    app.register_blueprint(delivery.bp)
