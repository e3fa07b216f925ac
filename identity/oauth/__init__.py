"""The OAuth 2.0 / OpenID Connect authorization server, held to the FAPI 2.0 Security Profile (DESIGN §3.3)."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Create the Authlib server, its endpoints and the `mydata clients` commands."""
    from identity.oauth import cli, server, services, views

    app.extensions["identity.oauth"] = server.create_server(app)
    services.register_details_type(app, "mydata_delivery", services.validate_delivery_detail)
    app.register_blueprint(views.bp)
    app.cli.add_command(cli.clients_cli)
