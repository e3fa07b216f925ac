"""The portal shell: the landing page for citizens and the health check for operators."""

from __future__ import annotations

import logging

from flask import Blueprint, current_app, jsonify, render_template
from flask.typing import ResponseReturnValue
from marshmallow import Schema, fields
from sqlalchemy.exc import SQLAlchemyError

from mydata.db import get_db
from mydata.openapi import documented

log = logging.getLogger(__name__)
bp = Blueprint("web", __name__)


class HealthSchema(Schema):
    """Health of this platform node."""

    status = fields.String(required=True, metadata={"example": "ok", "description": "ok or unavailable"})
    database = fields.String(required=True, metadata={"example": "ok", "description": "ok or unavailable"})
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
    description="Checks that the database answers. For load balancers and operators.",
)
def healthz() -> ResponseReturnValue:
    """Answer 200 when the database answers, 503 otherwise."""
    database = "ok"
    try:
        get_db().ping()
    except SQLAlchemyError:
        log.warning("health check: database unavailable", exc_info=True)
        database = "unavailable"
    status = 200 if database == "ok" else 503
    body = {
        "status": "ok" if status == 200 else "unavailable",
        "database": database,
        "sandbox": bool(current_app.config["MYDATA_SANDBOX"]),
    }
    return jsonify(body), status
