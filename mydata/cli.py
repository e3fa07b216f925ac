"""Kernel commands: `mydata db ...`, `mydata keys ...`, `mydata mail send`, `mydata sandbox seed`, `mydata demo`.

Feature packages add their own groups in their ``init_app`` and register sandbox seeding steps with
:func:`register_seeder`, so that `mydata sandbox seed` builds the whole sandbox without the kernel
knowing the packages.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import click
from alembic import command as alembic_command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import Flask, current_app
from flask.cli import AppGroup

from mydata import mail
from mydata.clock import clock_of
from mydata.config import ROOT
from mydata.db import UnitOfWork, get_db
from mydata.keys import key_store

MIGRATIONS = ROOT / "migrations"

Seeder = Callable[[UnitOfWork], None]

db_cli = AppGroup("db", help="Database schema (Alembic migrations).")
keys_cli = AppGroup("keys", help="Platform signing keys and secrets.")
mail_cli = AppGroup("mail", help="The notification outbox.")
sandbox_cli = AppGroup("sandbox", help="Sandbox personas, agencies and relying parties (sandbox mode only).")


def alembic_config(url: str) -> AlembicConfig:
    """Return the Alembic configuration for *url*."""
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["url"] = url
    return config


def upgrade(app: Flask) -> list[str]:
    """Migrate the application's database to the newest schema; return the revisions applied."""
    database = get_db(app)
    config = alembic_config(database.url)
    script = ScriptDirectory.from_config(config)
    with database.engine.connect() as connection:
        before = set(MigrationContext.configure(connection).get_current_heads())
    with database.engine.begin() as connection:
        config.attributes["connection"] = connection
        alembic_command.upgrade(config, "heads")
    with database.engine.connect() as connection:
        after = set(MigrationContext.configure(connection).get_current_heads())
    if before == after:
        return []
    return [rev.revision for rev in script.iterate_revisions(tuple(after), tuple(before) or "base")]


@db_cli.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the schema to the newest version (safe to run again)."""
    applied = upgrade(current_app)
    if applied:
        click.echo(f"Database migrated: {len(applied)} revision(s) applied.")
    else:
        click.echo("Database already up to date.")


@db_cli.command("current")
def db_current() -> None:
    """Print the schema revision(s) the database is at."""
    with get_db().engine.connect() as connection:
        heads = MigrationContext.configure(connection).get_current_heads()
    click.echo(", ".join(heads) if heads else "empty (run `mydata db upgrade`)")


@keys_cli.command("rotate")
def keys_rotate() -> None:
    """Create a new active signing key; the previous one stays in the JWKS as retired."""
    with get_db().unit_of_work() as uow:
        key = key_store(uow).rotate()
    click.echo(f"New active signing key: {key.kid}")


@keys_cli.command("list")
def keys_list() -> None:
    """List the public keys the JWKS publishes."""
    with get_db().unit_of_work() as uow:
        for jwk in key_store(uow).jwks()["keys"]:
            click.echo(f"{jwk['kid']}  {jwk['alg']}")


@mail_cli.command("send")
@click.option("--once", is_flag=True, help="Send what is due now, then stop.")
@click.option(
    "--interval", default=5.0, show_default=True, type=click.FloatRange(0.1, 3600), help="Seconds between passes."
)
def mail_send(once: bool, interval: float) -> None:
    """Send the outbox's due emails over SMTP, retrying failures with backoff (Ctrl+C stops)."""
    transport = mail.transport_from(current_app.config["MYDATA_SETTINGS"])
    if transport is None:
        raise click.UsageError("no SMTP server is configured (MYDATA_SMTP_HOST): the emails stay in the outbox")
    sender = mail.Sender(get_db(), transport, clock_of(current_app))
    if once:
        report = sender.send_due()
        click.echo(f"Sent {report.sent}, failed {report.failed} (to be retried).")
        return
    try:
        mail.run_sender(sender, interval=interval, stop=threading.Event())
    except KeyboardInterrupt:
        click.echo("Stopped.")


def register_seeder(app: Flask, name: str, seeder: Seeder) -> None:
    """Add a step to `mydata sandbox seed`; steps run in registration order, each idempotent."""
    app.extensions.setdefault("mydata.seeders", []).append((name, seeder))


def seed(app: Flask) -> list[str]:
    """Run every sandbox seeding step; return their names."""
    if not app.config["MYDATA_SANDBOX"]:
        raise click.UsageError("sandbox mode is off: there is nothing to seed (MYDATA_SANDBOX=false)")
    names = []
    for name, seeder in app.extensions.get("mydata.seeders", []):
        with get_db(app).unit_of_work() as uow:
            seeder(uow)
        names.append(name)
    return names


@sandbox_cli.command("seed")
def sandbox_seed() -> None:
    """Create the sandbox personas, keys, agencies and relying parties (safe to run again)."""
    for name in seed(current_app):
        click.echo(f"seeded: {name}")


def seed_platform_keys(uow: UnitOfWork) -> None:
    """Give the sandbox a platform signing key if it has none."""
    store = key_store(uow)
    if not store.jwks()["keys"]:
        store.rotate()


def init_app(app: Flask) -> None:
    """Register the kernel's command groups and its own seeding step."""
    for group in (db_cli, keys_cli, mail_cli, sandbox_cli):
        app.cli.add_command(group)
    register_seeder(app, "platform signing key", seed_platform_keys)
