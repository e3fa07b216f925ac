"""Composition root: build the application from the kernel and the feature packages.

This is the only module that imports every package; nothing imports it (import-linter checks).
Run it with `mydata ...` (the console script) or `gunicorn 'mydata.app:create_app()'`.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from typing import Any

import click
from flask import Flask
from flask.cli import FlaskGroup, ScriptInfo
from werkzeug.middleware.proxy_fix import ProxyFix

import consent
import identity
import providers
import relying_parties
from mydata import api_reference, cli, clock, db, errors, i18n, limits, mail, openapi, security, web
from mydata.clock import Clock
from mydata.config import ROOT, Settings, decode_master_key, load_settings, validate
from mydata.errors import ConfigError
from mydata.instance import prepare

FEATURES = (identity, providers, consent, relying_parties)


#: Exit status when settings are missing or invalid: gunicorn's "App failed to load", on which its
#: master stops instead of starting the worker again and again.
CONFIG_EXIT_STATUS = 4


def create_app(
    settings: Settings | None = None,
    *,
    overrides: Mapping[str, Any] | None = None,
    clock_: Clock | None = None,
) -> Flask:
    """Build a platform application from *settings* (default: read from the environment).

    Reading the environment, as ``gunicorn 'mydata.app:create_app()'`` does, a missing or invalid
    setting stops the process with one line on stderr that names it, instead of a traceback.
    """
    if settings is not None:
        return _build(validate(settings), clock_)
    try:
        return _build(load_settings(overrides=overrides), clock_)
    except ConfigError as exc:
        print(exc.line(), file=sys.stderr, flush=True)
        raise SystemExit(CONFIG_EXIT_STATUS) from None


def _build(settings: Settings, clock_: Clock | None) -> Flask:
    settings = prepare(settings)
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Libraries that narrate their work at INFO (WeasyPrint parses its own stylesheets when imported,
    # fontTools reports every font it subsets): an operator's log, and a command's stderr, keep ours.
    for chatty in ("alembic", "weasyprint", "fontTools"):
        logging.getLogger(chatty).setLevel(logging.WARNING)

    app = Flask(
        "mydata",
        instance_path=str(settings.instance_path),
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "mydata" / "static"),
    )
    # Templates compiled once per language, with their constant texts translated (mydata.i18n).
    app.jinja_environment = i18n.LocalizedEnvironment
    issuer = settings.issuer or "http://127.0.0.1:5000"
    app.config.update(
        SECRET_KEY=settings.secret_key,
        SESSION_COOKIE_NAME="mydata_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.session_cookie_secure or not settings.sandbox,
        MAX_CONTENT_LENGTH=2 * 1024 * 1024,
        WTF_CSRF_TIME_LIMIT=None,
        MYDATA_SETTINGS=settings,
        MYDATA_SANDBOX=settings.sandbox,
        MYDATA_ISSUER=issuer,
        MYDATA_DEFAULT_LOCALE=settings.default_locale,
    )
    app.extensions["mydata.master_key"] = decode_master_key(settings.master_key)
    if not settings.sandbox:
        # Behind the TLS proxy of docs/operations.md: trust one hop for scheme and client address.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1)  # type: ignore[method-assign]

    errors.init_app(app)
    db.init_app(app, settings)
    clock.init_app(app, clock_)
    i18n.init_app(app)
    security.init_app(app)
    limits.init_app(app, settings)
    openapi.init_app(app)
    cli.init_app(app)
    mail.init_app(app)
    app.register_blueprint(web.bp)
    app.register_blueprint(api_reference.bp)
    for feature in FEATURES:
        feature.init_app(app)
    return app


@click.command("demo")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=5000, show_default=True, type=int, help="Port to listen on.")
def demo(host: str, port: int) -> None:
    """Migrate, seed the sandbox and serve everything in one process (SQLite by default)."""
    from werkzeug.serving import run_simple

    # The demo is the sandbox: on unless the configuration turns it off, and then it refuses, so
    # that pointing it at a real deployment's settings cannot fill that database with personas.
    settings = load_settings(defaults={"sandbox": True, "ledger_sequencing": "sequencer"})
    if not settings.sandbox:
        raise click.UsageError("the demo runs the sandbox only, and this configuration turns it off (MYDATA_SANDBOX)")
    app = create_app(settings if settings.issuer else settings.replace(issuer=f"http://{host}:{port}"))
    applied = cli.upgrade(app)
    click.echo(f"Database: {db.database_url(settings)} ({len(applied)} migration(s) applied)")
    with app.app_context():
        for name in cli.seed(app):
            click.echo(f"Sandbox seeded: {name}")
    base = app.config["MYDATA_ISSUER"]
    click.echo(f"\nMyData sandbox is running at {base}/  (Ctrl+C to stop)")
    for line in app.extensions.get("mydata.demo_notes", []):
        click.echo(line.format(base=base))
    if mail.start_sender_thread(app, clock.clock_of(app)) is None:
        click.echo(f"Emails stay in the outbox (no MYDATA_SMTP_HOST): {base}/sandbox/outbox")
    # Background work the feature packages register (the consent sweeper), run as daemon threads.
    for start in app.extensions.get("mydata.demo_workers", []):
        start(app, clock.clock_of(app))
    run_simple(host, port, app, threaded=True, use_reloader=False)


class _Commands(FlaskGroup):
    """The `mydata` command: Flask's group, with the app's commands built from MYDATA_* settings."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        """List the commands; without valid settings, name the wrong ones in one line and list the rest."""
        try:
            ctx.ensure_object(ScriptInfo).load_app()
        except ConfigError as exc:
            click.echo(exc.line(), err=True)
            return sorted(self.commands)
        return super().list_commands(ctx)


mydata_cli = _Commands(
    name="mydata",
    # Settings loaded here, not by create_app(), so that an invalid one reaches main() below.
    create_app=lambda: create_app(load_settings()),
    add_version_option=False,
    load_dotenv=False,
    set_debug_flag=False,
    help="MyData platform: run, migrate, seed the sandbox and administer the platform.",
)
# The app is always built by create_app from MYDATA_* settings, so Flask's --app, --env-file and
# --debug options would only mislead.
mydata_cli.params = [p for p in mydata_cli.params if p.name not in ("app", "env_file", "debug")]
# Not one of the app's commands: it builds its own app, in the sandbox, so it needs no settings.
mydata_cli.add_command(demo)


def main() -> None:
    """Run the `mydata` command; a configuration error is one line and exit status 2."""
    try:
        mydata_cli.main(prog_name="mydata")
    except ConfigError as exc:
        click.echo(exc.line(), err=True)
        sys.exit(2)
