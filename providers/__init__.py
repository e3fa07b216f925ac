"""Providers: agencies, providers, the dataset catalogue, the protocol client, sandbox agencies (DESIGN §4)."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register this package's blueprints, commands and sandbox seeding steps."""
