"""The portal shell: the landing page for citizens and the health check for operators."""

from __future__ import annotations

import logging

from flask import Blueprint, current_app, jsonify, render_template
from flask.typing import ResponseReturnValue
from marshmallow import Schema, fields
from sqlalchemy.exc import SQLAlchemyError

from mydata.db import get_db, is_outage
from mydata.limits import rate_limits_health
from mydata.openapi import documented

log = logging.getLogger(__name__)
bp = Blueprint("web", __name__)


class HealthSchema(Schema):
    """Health of this platform node."""

    status = fields.String(required=True, metadata={"example": "ok", "description": "ok or unavailable"})
    database = fields.String(required=True, metadata={"example": "ok", "description": "ok or unavailable"})
    rate_limits = fields.String(
        required=True,
        metadata={
            "example": "ok",
            "description": "ok, or degraded while the rate-limit store (Redis) cannot be reached: each process then "
            "keeps its own counts, so a client may make the limit's number of requests once per process. A degraded "
            "node still serves (status stays ok).",
        },
    )
    sandbox = fields.Boolean(required=True, metadata={"description": "whether sandbox mode is on"})


@bp.get("/")
def index() -> ResponseReturnValue:
    """Tell a citizen what the platform does and where to start."""
    return render_template("portal/index.html")


@bp.get("/healthz")
@documented(
    "Health of this node",
    tags=["operations"],
    responses={200: HealthSchema, 503: HealthSchema},
    description="Checks that the database and the rate-limit store answer. For load balancers and operators: "
    "503 while the database cannot be reached; 200 with rate_limits degraded while only the rate-limit store "
    "cannot.",
)
def healthz() -> ResponseReturnValue:
    """Answer 200 when the database answers, 503 otherwise; say whether the rate limits are degraded."""
    database = "ok"
    try:
        get_db().ping()
    except SQLAlchemyError as exc:
        database = "unavailable"
        if is_outage(exc):
            get_db().note_unreachable(exc)  # logged once, not at every check
        else:
            log.exception("health check: the database answered with an error")
    status = 200 if database == "ok" else 503
    body = {
        "status": "ok" if status == 200 else "unavailable",
        "database": database,
        "rate_limits": rate_limits_health(),
        "sandbox": bool(current_app.config["MYDATA_SANDBOX"]),
    }
    return jsonify(body), status
