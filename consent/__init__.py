"""Consent: the consent lifecycle, the transparency ledger, receipts, usage history, delivery broker (DESIGN §6)."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register this package's blueprints, commands and sandbox seeding steps."""
    from consent.flow import ConsentScreen
    from identity.oauth.services import register_consent_flow

    register_consent_flow(app, ConsentScreen())
