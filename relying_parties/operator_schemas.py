"""The operator's review of proposed schema versions (/console/operator/schemas, issue 13).

An agency's schema change is a new version that waits here: the operator compares it with the
published schema, then approves it (the dataset publishes it at once, with the next version number
and digest) or rejects it with a reason the agency reads. Each decision is recorded
(:mod:`mydata.decisions`, subject ``schema``, ``<dataset>@<version>``) in the same commit.
"""

from __future__ import annotations

import json

from flask import flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext

from mydata import decisions
from mydata.db import unit_of_work
from providers import services as providers_services
from providers.interfaces import InvalidInput
from providers.models import SCHEMA_PENDING
from relying_parties.consoles import console_blueprint, current_member

bp = console_blueprint("operator", __name__, section="schemas")


@bp.get("")
def index() -> ResponseReturnValue:
    """List the schema versions that wait for a decision, each beside the schema it would replace."""
    return _page(reasons={})


@bp.post("/<int:version_id>/approve")
def approve(version_id: int) -> ResponseReturnValue:
    """Publish a proposed schema version."""
    version = providers_services.approve_schema_version(
        unit_of_work(), version_id, actor=f"citizen:{current_member().citizen_id}"
    )
    flash(gettext("Schema version %(subject)s is published.", subject=f"{version.dataset_id}@{version.version}"))
    return redirect(url_for(".index"), 303)


@bp.post("/<int:version_id>/reject")
def reject(version_id: int) -> ResponseReturnValue:
    """Refuse a proposed schema version, with a reason the agency reads."""
    uow = unit_of_work()
    reason = request.form.get("reason", "")
    try:
        version = providers_services.reject_schema_version(
            uow, version_id, actor=f"citizen:{current_member().citizen_id}", reason=reason
        )
    except InvalidInput:
        return _page(reasons={version_id: reason}, missing=version_id), 400
    flash(gettext("Schema version %(subject)s is rejected.", subject=f"{version.dataset_id}@{version.version}"))
    return redirect(url_for(".index"), 303)


def _page(*, reasons: dict[int, str], missing: int | None = None) -> str:
    uow = unit_of_work()
    pending = providers_services.list_schema_versions(uow, status=SCHEMA_PENDING)
    shown = [
        (
            version,
            json.dumps(version.dataset.json_schema, ensure_ascii=False, indent=2),
            json.dumps(version.json_schema, ensure_ascii=False, indent=2),
        )
        for version in pending
    ]
    recent = decisions.recent(uow, limit=20, subject_type="schema")
    errors = []
    if missing is not None:
        errors = [(f"reason-{missing}", gettext("Give the reason for the rejection: the agency reads it."))]
    return render_template(
        "console/operator/schemas.html", pending=shown, recent=recent, reasons=reasons, missing=missing, errors=errors
    )
