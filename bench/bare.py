"""The bare Flask app the transaction is compared with (bench/transaction.py): one view, a short text.

A module of its own, so that the server's workers import Flask and nothing of the platform.
"""

from __future__ import annotations

from flask import Flask


def bare_app() -> Flask:
    """Return the bare Flask app: one view returning a short text."""
    app = Flask("bare")

    @app.get("/")
    def index() -> str:
        return "ok"

    return app
