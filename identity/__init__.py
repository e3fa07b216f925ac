"""Identity: accounts, eID / mobile ID / NHI card login, assurance levels, sessions, OIDC (DESIGN §3)."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register this package's blueprints, commands and sandbox seeding steps."""
    from identity import oauth

    oauth.init_app(app)
