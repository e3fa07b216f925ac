"""Consent: the consent lifecycle, the transparency ledger, receipts, usage history, delivery broker (DESIGN §6)."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register this package's blueprints, commands and sandbox seeding steps."""
    # Imported here, so that the pure parts (consent.merkle, the audit's worker processes) load
    # without the web layer.
    from consent import (
        api,
        cli,
        counter_views,
        data_views,
        history_views,
        portal_views,
        sequencer,
        sweeper,
        verify_views,
    )
    from consent.flow import ConsentScreen
    from consent.ledger import seed_first_tree_head
    from identity.oauth.services import register_consent_flow
    from mydata.cli import register_seeder
    from mydata.openapi import add_security_scheme

    app.config.setdefault("LEDGER_RATE_LIMIT", api.LEDGER_RATE)
    app.config.setdefault("VERIFY_RATE_LIMIT", verify_views.VERIFY_RATE)
    app.register_blueprint(api.bp)
    app.register_blueprint(api.me)
    app.register_blueprint(portal_views.bp)
    app.register_blueprint(data_views.bp)
    app.register_blueprint(verify_views.bp)
    data_views.register_filters(app)
    app.register_blueprint(history_views.bp)
    app.register_blueprint(counter_views.bp)
    add_security_scheme(
        app,
        api.CITIZEN_SECURITY_SCHEME,
        {
            "type": "apiKey",
            "in": "cookie",
            "name": "mydata_login",
            "description": "The citizen's login session (`__Host-mydata_login` over https); "
            "writes also need the session's CSRF token in X-CSRFToken.",
        },
    )
    app.cli.add_command(cli.ledger_cli)
    app.cli.add_command(cli.consents_cli)
    register_consent_flow(app, ConsentScreen())
    register_seeder(app, "ledger: first signed tree head", seed_first_tree_head)
    # `mydata demo` starts these beside the server; in production `mydata consents sweep` runs it.
    app.extensions.setdefault("mydata.demo_workers", []).extend(
        (sweeper.start_sweeper_thread, sequencer.start_sequencer_thread)
    )
    app.extensions.setdefault("mydata.demo_notes", []).append(
        f"Stranded consents are expired every {sweeper.INTERVAL:.0f} s (as `mydata consents sweep` does)."
    )
    if app.config["MYDATA_SETTINGS"].ledger_sequencing == "sequencer":
        app.extensions["mydata.demo_notes"].append(
            "Ledger entries are integrated in batches within 1 s (as `mydata ledger sequencer` does)."
        )
