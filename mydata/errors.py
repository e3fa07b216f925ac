"""Domain exceptions and the one error handler that turns them into responses.

Every package raises subclasses of :class:`MydataError` from its ``interfaces.py``; this module maps
them to a JSON body ``{"error": code, "error_description": text}`` for API clients and to a friendly
page in the reader's language for browsers. No stack trace ever reaches a user.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)

#: URL prefixes whose clients are programs: they always get JSON errors.
API_PREFIXES = ("/api/", "/oauth/", "/ledger/", "/.well-known/", "/healthz", "/openapi.json", "/sandbox/api/")


class ConfigError(Exception):
    """A setting is missing or invalid; start-up stops with one line naming it."""

    def __init__(self, setting: str, problem: str) -> None:
        super().__init__(f"{setting}: {problem}")
        self.setting = setting
        self.problem = problem

    def line(self) -> str:
        """Return the one line that start-up stops with."""
        return f"mydata: invalid setting {self.setting}: {self.problem}"


class MissingSetting(ConfigError):
    """Settings without which the platform must not start (outside the sandbox: its secrets)."""

    def __init__(self, settings: list[str], problem: str) -> None:
        super().__init__(settings[0], problem)
        self.settings = settings

    def line(self) -> str:
        """Return the one line that start-up stops with, naming every missing setting."""
        noun = "setting" if len(self.settings) == 1 else "settings"
        return f"mydata: missing {noun} {', '.join(self.settings)} ({self.problem})"


class MydataError(Exception):
    """Base of every domain error: a machine code, an HTTP status and a sentence to act on."""

    code = "server_error"
    status = 500
    description = "The platform could not complete the request."

    def __init__(self, description: str | None = None, *, headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(description or self.description)
        self.description = description or self.description
        self.headers = headers or {}
        self.extra = extra

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON body for this error."""
        return {"error": self.code, "error_description": self.description, **self.extra}


class BadRequest(MydataError):
    """The request's input is invalid."""

    code = "invalid_request"
    status = 400
    description = "The request is invalid."


class NotFound(MydataError):
    """The thing asked for does not exist."""

    code = "not_found"
    status = 404
    description = "Nothing was found at this address."


class DatabaseUnavailable(MydataError):
    """The database cannot be reached at the moment (an outage, not a bug): try again later."""

    code = "temporarily_unavailable"
    status = 503
    description = "The platform cannot reach its database at the moment. Try again after Retry-After seconds."

    #: Seconds a client is asked to wait before trying again (a database restart takes a few).
    retry_after = 5

    def __init__(self, description: str | None = None) -> None:
        super().__init__(description, headers={"Retry-After": str(self.retry_after)})


def wants_json() -> bool:
    """Tell whether the current request's client expects JSON rather than a page."""
    if request.path.startswith(API_PREFIXES):
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json" and request.accept_mimetypes[best] > request.accept_mimetypes["text/html"]


def _render(status: int, code: str, description: object, extra: dict[str, Any] | None = None) -> Response:
    description = str(description)
    if wants_json():
        response = jsonify({"error": code, "error_description": description, **(extra or {})})
    else:
        response = Response(
            render_template("errors/error.html", status=status, code=code, description=description),
            mimetype="text/html",
        )
    response.status_code = status
    return response


def handle_domain_error(error: MydataError) -> Response:
    """Render a domain error, with the headers it asks for (Retry-After, WWW-Authenticate)."""
    response = _render(error.status, error.code, error.description, error.extra)
    response.headers.update(error.headers)
    return response


def handle_http_error(error: HTTPException) -> Response:
    """Render a werkzeug HTTP error (404, 405, CSRF 400, 429 ...) without its debug details."""
    status = error.code or 500
    code = HTTP_ERROR_CODES.get(status, "http_error")
    description = error.description or ""
    response = _render(status, code, description)
    for header in ("Retry-After", "Allow", "WWW-Authenticate"):
        original = error.get_response().headers.get(header)
        if original:
            response.headers[header] = original
    return response


def handle_unexpected(error: Exception) -> Response:
    """Log an unexpected failure and answer 500 without a trace."""
    log.exception("unhandled error on %s %s", request.method, request.path)
    return _render(500, "server_error", "The platform had an unexpected problem. Please try again later.")


#: The error code of each HTTP status the kernel answers itself (werkzeug's errors: 404, 405, CSRF 400, 429 ...).
HTTP_ERROR_CODES = {
    400: "invalid_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "request_too_large",
    415: "unsupported_media_type",
    429: "too_many_requests",
    500: "server_error",
    503: "temporarily_unavailable",
}


def init_app(app: Flask) -> None:
    """Register the error handlers."""
    app.register_error_handler(MydataError, handle_domain_error)
    app.register_error_handler(HTTPException, handle_http_error)
    app.register_error_handler(Exception, handle_unexpected)
