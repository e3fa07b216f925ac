"""Security headers on every response and CSRF tokens on every form (DESIGN §7)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask, Response, request
from flask_wtf.csrf import CSRFProtect

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


def add_security_headers(response: Response) -> Response:
    """Add the security headers; HSTS only where the request came over https."""
    headers = response.headers
    present = {name.lower() for name in headers.keys()}  # noqa: SIM118 (Headers iterates pairs)
    wanted = list(SECURITY_HEADERS.items())
    if request.is_secure:
        wanted.append(("Strict-Transport-Security", HSTS))
    if response.mimetype == "text/html":
        wanted.append(("Cache-Control", "no-store"))
    headers.extend([(name, value) for name, value in wanted if name.lower() not in present])
    return response


def init_app(app: Flask) -> None:
    """Install CSRF protection and the headers."""
    csrf.init_app(app)
    app.after_request(add_security_headers)
