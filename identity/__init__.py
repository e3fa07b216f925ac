"""Identity: accounts, eID / mobile ID / NHI card login, assurance levels, sessions, OIDC (DESIGN §3)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from flask import Flask

from identity import api, nhi, oauth, sandbox, sessions, settings_views, staff, views
from identity.eid import CardRules, EidTrust, TrustBundle
from identity.interfaces import StepUpRequired
from identity.revocation import HttpFetcher, RevocationChecker
from identity.sandbox.pki import CITIZEN_POLICY_OID, SandboxPki
from mydata.config import Settings, setting_list
from mydata.security import csrf

#: Failed login attempts allowed per client address (Flask-Limiter syntax); the per-card lock of
#: NHI cards is separate (identity.nhi).
LOGIN_RATE = "20 per minute;200 per hour"


def init_app(app: Flask) -> None:
    """Register this package's blueprints, commands and sandbox seeding steps."""
    settings = app.config["MYDATA_SETTINGS"]
    sandbox_folder = Path(settings.instance_path) / "sandbox"
    app.extensions["identity.eid_trust"] = eid_trust(settings, SandboxPki(sandbox_folder / "eid"))
    app.config.setdefault("IDENTITY_LOGIN_RATE", LOGIN_RATE)
    # Made now, not by the first unknown card number, whose answer would then take twice as long.
    nhi.prepare_decoy()
    app.register_blueprint(views.bp)
    app.register_blueprint(settings_views.bp)
    app.register_blueprint(api.bp)
    csrf.exempt(api.bp)
    app.after_request(sessions.apply_cookie)
    app.register_error_handler(StepUpRequired, staff.step_up_response)
    if settings.sandbox:
        sandbox.init_app(app, sandbox_folder)
    oauth.init_app(app)


def eid_trust(settings: Settings, pki: SandboxPki) -> EidTrust:
    """Build what eID logins are checked against; in the sandbox, empty settings mean the sandbox CA's."""
    in_sandbox = settings.sandbox
    roots = Path(settings.eid_ca_roots) if settings.eid_ca_roots else pki.bundle_path
    issuing = Path(settings.eid_issuing_cas) if settings.eid_issuing_cas else pki.issuing_path
    policies = setting_list(settings.eid_policy_oids) or ([CITIZEN_POLICY_OID] if in_sandbox else [])
    crl_sources = setting_list(settings.eid_crl_sources)
    if not crl_sources and not settings.eid_ocsp_url and in_sandbox:
        crl_sources = [str(pki.crl_path)]
    revocation = RevocationChecker(
        crl_sources,
        settings.eid_ocsp_url,
        dt.timedelta(seconds=settings.eid_revocation_grace_seconds),
        HttpFetcher(settings.eid_revocation_timeout_seconds),
    )
    rules = CardRules(frozenset(policies), frozenset(setting_list(settings.eid_extended_key_usages)))
    return EidTrust(TrustBundle(roots, issuing), rules, revocation)
