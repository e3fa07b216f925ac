"""Rate limiting (Flask-Limiter): in memory in the sandbox, Redis in production.

When the store (Redis) fails, the limits are kept in each process's memory until it is back
(docs/decisions/0008-rate-limit-store-outage.md): logins keep working, still limited, and the log
says so once when the store fails and once when it is back; ``/healthz`` says ``rate_limits:
degraded`` meanwhile.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from flask import Flask
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

from mydata.config import Settings

log = logging.getLogger(__name__)

#: Seconds to wait for the store to connect or answer before it counts as failed: a store that
#: hangs (a network partition) must not hang every limited request with it.
STORE_TIMEOUT_SECONDS = 1.0


class FallbackLimiter(Limiter):
    """Flask-Limiter's limiter, which falls back to memory when its store fails, and says so once.

    Flask-Limiter itself switches to its in-memory limiter when a call to the store fails, and back
    when a later check of the store succeeds; it keeps which one it uses in ``_storage_dead``. That
    attribute is a property here, so that every switch, whichever path makes it, is one log line
    (``test_outages`` fails if a version of Flask-Limiter stops going through it).
    """

    def __init__(self, **kwargs: Any) -> None:
        self._degraded = False
        self._switch = threading.Lock()
        super().__init__(**kwargs)

    @property
    def _storage_dead(self) -> bool:
        return self._degraded

    @_storage_dead.setter
    def _storage_dead(self, dead: bool) -> None:
        with self._switch:
            if dead == self._degraded:
                return
            self._degraded = dead
        if dead:
            log.error(
                "rate-limit store unreachable: limits are kept in each process's memory until it is back "
                "(each process allows the full limit)"
            )
        else:
            log.warning("rate-limit store reachable again: limits are shared by every process again")

    def check_store(self) -> bool:
        """Check the store now, switch to memory or back accordingly, and return whether it answers."""
        if not (self.enabled and self.initialized):
            return True
        alive = bool(self.storage.check())
        self._storage_dead = not alive
        return alive

    def start(self) -> None:
        """Begin with the store of a newly bound application (not degraded, and nothing logged)."""
        with self._switch:
            self._degraded = False


#: The application's limiter; packages decorate views with ``limiter.limit("10/minute")``.
limiter = FallbackLimiter(
    key_func=get_remote_address, default_limits=[], headers_enabled=True, in_memory_fallback_enabled=True
)


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
    if settings.ratelimit_storage_uri.startswith(("redis://", "rediss://")):
        app.config.setdefault(
            "RATELIMIT_STORAGE_OPTIONS",
            {"socket_connect_timeout": STORE_TIMEOUT_SECONDS, "socket_timeout": STORE_TIMEOUT_SECONDS},
        )
    # Our own lines say when the store fails and when it is back (FallbackLimiter); Flask-Limiter's
    # would say it a second time. Its errors still show.
    logging.getLogger("flask-limiter").setLevel(logging.ERROR)
    limiter.init_app(app)
    limiter.start()
    hooks = app.before_request_funcs.get(None, [])
    hooks[:] = [hook for hook in hooks if getattr(hook, "__func__", None) is not Limiter._check_request_limit]


def rate_limits_health() -> str:
    """Check the rate-limit store now: ``ok``, or ``degraded`` while limits are kept per process."""
    return "ok" if limiter.check_store() else "degraded"
