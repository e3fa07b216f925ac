"""Security headers on every response, CSRF tokens on every form, JSON bodies that cannot exhaust the parser."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask, Response, request
from flask.json.provider import DefaultJSONProvider
from flask.sessions import SecureCookieSessionInterface
from flask_wtf.csrf import CSRFProtect
from itsdangerous import URLSafeTimedSerializer

csrf = CSRFProtect()
F = TypeVar("F", bound=Callable[..., Any])


def csrf_exempt(view: F) -> F:
    """Exempt a view that is not cookie-authenticated (client assertions, bearer or DPoP tokens)."""
    csrf.exempt(view)
    return view


# No inline script or style anywhere: every script and stylesheet is a file under /static.
# form-action is left open on purpose: the consent form's 303 goes to the relying party's
# registered redirect URI, which Chromium checks against form-action.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ]
)

SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
}

HSTS = "max-age=63072000; includeSubDomains"

#: Paths (and everything under them) whose answers carry personal data or tokens: the citizen's
#: APIs, the delivery API, the authorization server and the portal. No browser or cache may keep
#: them, error answers included. A route may still say otherwise itself (the public JWKS does).
NEVER_STORED = ("/api/v1/me", "/api/v1/delivery", "/oauth", "/me", "/login", "/logout", "/verify")
#: OAuth answers also say `Pragma: no-cache`, as RFC 6749 §5.1 asks of token responses.
OAUTH = "/oauth"


def never_stored(path: str) -> bool:
    """Tell whether answers at *path* must never be stored (``Cache-Control: no-store``)."""
    return any(path == prefix or path.startswith(prefix + "/") for prefix in NEVER_STORED)


def add_security_headers(response: Response) -> Response:
    """Add the security headers; HSTS only where the request came over https."""
    headers = response.headers
    present = {name.lower() for name in headers.keys()}  # noqa: SIM118 (Headers iterates pairs)
    wanted = list(SECURITY_HEADERS.items())
    if request.is_secure:
        wanted.append(("Strict-Transport-Security", HSTS))
    if response.mimetype == "text/html" or never_stored(request.path):
        wanted.append(("Cache-Control", "no-store"))
        if request.path.startswith(OAUTH + "/"):
            wanted.append(("Pragma", "no-cache"))
    headers.extend([(name, value) for name, value in wanted if name.lower() not in present])
    return response


class BoundedJSONProvider(DefaultJSONProvider):
    """Flask's JSON, where a document nested deeper than the parser can go is invalid JSON.

    ``json.loads`` raises RecursionError, not ValueError, on such a document, so every
    ``request.get_json`` would answer it with a 500. As a ValueError it is the 400 of any bad body.
    """

    ensure_ascii = False  # Chinese stays readable in JSON (UTF-8)

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        """Parse *s*; raise ValueError for a document nested too deep."""
        try:
            return super().loads(s, **kwargs)
        except RecursionError:
            raise ValueError("The JSON document is nested too deep.") from None


class SessionCookies(SecureCookieSessionInterface):
    """Flask's signed session cookie, with its signing serializer built once per set of keys.

    Flask builds the serializer (and checks what its JSON serializer returns) for every request
    that reads or writes the cookie; the keys change only when the configuration does. The cookie
    is the same.
    """

    def __init__(self) -> None:
        self._serializers: dict[tuple[object, ...], URLSafeTimedSerializer] = {}

    def get_signing_serializer(self, app: Flask) -> URLSafeTimedSerializer | None:
        """Return the serializer of the app's current keys."""
        keys = (app.secret_key, *(app.config["SECRET_KEY_FALLBACKS"] or ()))
        serializer = self._serializers.get(keys)
        if serializer is None:
            serializer = super().get_signing_serializer(app)
            if serializer is None:
                return None
            self._serializers = {keys: serializer}  # the previous keys' serializer is not needed again
        return serializer


def init_app(app: Flask) -> None:
    """Install CSRF protection, the headers, the session cookie and the bounded JSON parser."""
    app.session_interface = SessionCookies()
    app.json = BoundedJSONProvider(app)
    csrf.init_app(app)
    app.after_request(add_security_headers)
