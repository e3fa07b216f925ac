"""Identity: accounts, eID / mobile ID / NHI card login, assurance levels, sessions, OIDC (DESIGN §3)."""

from __future__ import annotations

from pathlib import Path

from flask import Flask

from identity import api, nhi, oauth, sandbox, sessions, staff, views
from identity.eid import TrustBundle
from identity.interfaces import StepUpRequired
from mydata.security import csrf

#: Failed login attempts allowed per client address (Flask-Limiter syntax); the per-card lock of
#: NHI cards is separate (identity.nhi).
LOGIN_RATE = "20 per minute;200 per hour"


def init_app(app: Flask) -> None:
    """Register this package's blueprints, commands and sandbox seeding steps."""
    settings = app.config["MYDATA_SETTINGS"]
    sandbox_folder = Path(settings.instance_path) / "sandbox"
    roots = Path(settings.eid_ca_roots) if settings.eid_ca_roots else sandbox_folder / "eid" / "ca-bundle.pem"
    app.extensions["identity.eid_trust"] = TrustBundle(roots)
    app.config.setdefault("IDENTITY_LOGIN_RATE", LOGIN_RATE)
    # Made now, not by the first unknown card number, whose answer would then take twice as long.
    nhi.prepare_decoy()
    app.register_blueprint(views.bp)
    app.register_blueprint(api.bp)
    csrf.exempt(api.bp)
    app.after_request(sessions.apply_cookie)
    app.register_error_handler(StepUpRequired, staff.step_up_response)
    if settings.sandbox:
        sandbox.init_app(app, sandbox_folder)
    oauth.init_app(app)
