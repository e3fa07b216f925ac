"""The operator's old organisations page, /operator/organisations: now the operator console's queue.

Approving and suspending organisations moved to the operator console (/console/operator,
:mod:`relying_parties.operator_console`); the old addresses send the browser there.
"""

from __future__ import annotations

from flask import Blueprint, redirect, url_for
from flask.typing import ResponseReturnValue

bp = Blueprint("relying_parties_console", __name__, url_prefix="/operator")


@bp.get("/organisations")
def organisations() -> ResponseReturnValue:
    """Send the browser to the console's organisations queue (bookmarks and the sandbox notes still work)."""
    return redirect(url_for("console_operator.organisations"), 301)


@bp.get("/organisations/confirm")
def confirm() -> ResponseReturnValue:
    """Send the browser to the console's confirmation of a kept action."""
    return redirect(url_for("console_operator.confirm"), 301)
