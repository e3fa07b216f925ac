"""The API reference at `/docs`: `/openapi.json` rendered by Swagger UI, served by the platform itself.

Swagger UI comes from the ``swagger-ui-bundle`` package (Apache-2.0). Only the two files the page
loads, and the package's licence, are served: never its demo page, which points at a public petstore,
nor its source maps. Their URL carries Swagger UI's version, so browsers may keep them for a year.
"""

from __future__ import annotations

from importlib.metadata import distribution
from pathlib import Path

import swagger_ui_bundle
from flask import Blueprint, Response, abort, render_template, send_from_directory
from flask.typing import ResponseReturnValue

bp = Blueprint("api_reference", __name__)

SWAGGER_UI = Path(swagger_ui_bundle.swagger_ui_path)
#: The vendored folder is named ``swagger-ui-<version>``.
SWAGGER_UI_VERSION = SWAGGER_UI.name.removeprefix("swagger-ui-")
#: What the page loads: the bundle with the API preset and its stylesheet (no standalone preset, whose
#: top bar would let a visitor load any other document into the page).
ASSETS = ("swagger-ui-bundle.js", "swagger-ui.css")
A_YEAR = 365 * 24 * 3600


@bp.get("/docs")
def page() -> ResponseReturnValue:
    """Show the API reference in the platform's layout."""
    return render_template("docs/reference.html", swagger_ui_version=SWAGGER_UI_VERSION)


@bp.get("/docs/assets/<version>/<name>")
def asset(version: str, name: str) -> ResponseReturnValue:
    """Serve one of Swagger UI's files, or its licence, with a long cache lifetime."""
    if version != SWAGGER_UI_VERSION:
        abort(404)
    if name == "LICENSE":
        return Response(_licence(), mimetype="text/plain", headers={"Cache-Control": _cache_control()})
    if name not in ASSETS:
        abort(404)
    response = send_from_directory(SWAGGER_UI, name, max_age=A_YEAR)
    response.headers["Cache-Control"] = _cache_control()
    return response


def _licence() -> str:
    package = distribution("swagger-ui-bundle")
    # Wheels keep it at the top of their .dist-info, or under licenses/ (core metadata 2.4).
    text = package.read_text("LICENSE") or package.read_text("licenses/LICENSE")
    if text is None:
        abort(404)
    return text


def _cache_control() -> str:
    return f"public, max-age={A_YEAR}, immutable"
