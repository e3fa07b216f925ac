"""Rate limiting (Flask-Limiter): in memory in the sandbox, Redis in production."""

from __future__ import annotations

from flask import Flask
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

from mydata.config import Settings

#: The application's limiter; packages decorate views with ``limiter.limit("10/minute")``.
limiter = Limiter(key_func=get_remote_address, default_limits=[], headers_enabled=True)


def init_app(app: Flask, settings: Settings) -> None:
    """Bind the limiter to its storage."""
    app.config["RATELIMIT_STORAGE_URI"] = settings.ratelimit_storage_uri
    app.config.setdefault("RATELIMIT_KEY_PREFIX", "mydata")
    limiter.init_app(app)
