"""Rate limiting (Flask-Limiter): in memory in the sandbox, Redis in production."""

from __future__ import annotations

from flask import Flask
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

from mydata.config import Settings

#: The application's limiter; packages decorate views with ``limiter.limit("10/minute")``.
limiter = Limiter(key_func=get_remote_address, default_limits=[], headers_enabled=True)


def init_app(app: Flask, settings: Settings) -> None:
    """Bind the limiter to its storage.

    Every limit here is a decorator on its view, and a decorated view checks its own limits when it
    is called. Flask-Limiter's ``before_request`` hook, which looks for application-wide, default
    and blueprint limits, would find none on every request of every page: it is taken off (a
    quarter of a millisecond per request). ``test_limits`` checks that decorated limits hold and
    that no limit of another kind is declared.
    """
    app.config["RATELIMIT_STORAGE_URI"] = settings.ratelimit_storage_uri
    app.config.setdefault("RATELIMIT_KEY_PREFIX", "mydata")
    limiter.init_app(app)
    hooks = app.before_request_funcs.get(None, [])
    hooks[:] = [hook for hook in hooks if getattr(hook, "__func__", None) is not Limiter._check_request_limit]
