"""`mydata ledger ...`: audit the ledger, sign its tree head, run its sequencer; `mydata consents sweep`."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from consent import sequencer
from consent.audit import DEFAULT_BATCH_SIZE, record_verification, verify_ledger
from consent.interfaces import LedgerVerificationFailed
from consent.ledger import SEQUENCER_BATCH, b64, ledger, read_head, sign_tree_head
from consent.sweeper import BATCH, INTERVAL, run_sweeper, sweep
from mydata.clock import clock, clock_of
from mydata.db import UnitOfWork, get_db, read_only_connection
from mydata.errors import MydataError

ledger_cli = AppGroup("ledger", help="The transparency ledger: audit it, sign its tree head, sequence it.")
consents_cli = AppGroup("consents", help="Consents: expire those that can no longer complete.")

#: Logs shorter than this are checked in a blink: no progress bar.
PROGRESS_FROM = 10_000


@contextmanager
def _snapshot() -> Iterator[UnitOfWork]:
    """Open a read-only unit of work that sees one snapshot of the database throughout."""
    engine = get_db().engine
    with engine.connect() as connection:
        read_only_connection(connection)  # on SQLite: no write lock held for the whole audit
        if connection.dialect.name == "postgresql":
            connection.execution_options(isolation_level="REPEATABLE READ")
        # SQLite: one transaction is one snapshot (WAL), and the audit stays in one transaction.
        with Session(bind=connection) as session, UnitOfWork(session) as uow:
            yield uow


@contextmanager
def _reported(command: str) -> Iterator[None]:
    """Turn what stops a command into one line on stderr and an exit status: 1 a failed audit, 2 cannot run."""
    try:
        yield
    except LedgerVerificationFailed as exc:
        click.echo(f"ledger {command}: FAILED at {exc.where}: {exc.problem}", err=True)
        sys.exit(1)
    except MydataError as exc:
        click.echo(f"ledger {command}: cannot run: {exc.description}", err=True)
        sys.exit(2)
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        click.echo(
            f"ledger {command}: cannot read the ledger ({reason}): is the database migrated (mydata db upgrade)?",
            err=True,
        )
        sys.exit(2)


@ledger_cli.command("verify")
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=min(os.cpu_count() or 1, 4),
    show_default=True,
    help="Processes replaying the log in parallel (long logs only).",
)
@click.option("--batch-size", type=click.IntRange(1, 1_000_000), default=DEFAULT_BATCH_SIZE, show_default=True)
def verify(workers: int, batch_size: int) -> None:
    """Recompute every leaf, subtree, root and signed tree head from the stored entries.

    Exit status 0 when everything holds; 1 naming the first bad sequence number (or signed tree
    head) otherwise; 2 when the audit cannot run.
    """
    size = 0
    with _reported("verify"):
        try:
            with _snapshot() as uow:
                size = read_head(uow.session.connection()).tree_size
                with click.progressbar(
                    length=size, label="ledger verify", file=sys.stderr, hidden=size < PROGRESS_FROM, show_pos=True
                ) as bar:
                    report = verify_ledger(ledger(uow), workers=workers, batch_size=batch_size, progress=bar.update)
        except LedgerVerificationFailed as failed:
            _keep_result(size, failed)
            raise
    _keep_result(report.tree_size, None)
    click.echo(
        f"ledger verify: OK: {report.tree_size} entries, {report.signed_tree_heads} signed tree heads, "
        f"root {b64(report.root_hash)}"
    )
    if report.unsigned_entries:
        click.echo(f"ledger verify: {report.unsigned_entries} entries are not covered by a signed tree head yet")


def _keep_result(tree_size: int, failure: LedgerVerificationFailed | None) -> None:
    """Keep the result of a full run for the operator console; a failure to keep it is only warned about."""
    try:
        with get_db().unit_of_work() as uow:
            record_verification(uow, at=clock().now(), tree_size=tree_size, failure=failure)
            uow.commit()
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        click.echo(f"ledger verify: the result was not kept for the operator console ({reason})", err=True)


@ledger_cli.command("sign")
@click.option(
    "--if-due",
    is_flag=True,
    help="Sign only when a tree head is due (entries waiting ledger_sth_every_seconds, or "
    "ledger_sth_every_entries of them, or none signed yet): for a timer every minute.",
)
def sign(if_due: bool) -> None:
    """Sign the current tree head now (before an audit, or from a timer with --if-due).

    Reads of the public ledger never sign (DESIGN §6.3): run this on a timer so that entries of a
    quiet log are covered by a signed tree head within minutes.
    """
    with _reported("sign"), get_db().unit_of_work() as uow:
        signed = sign_tree_head(uow, only_if_due=if_due)
    if signed is None:
        click.echo("Nothing to sign: the newest signed tree head is not due for renewal.")
        return
    click.echo(f"Signed tree head: tree_size {signed.tree_size}, root {b64(signed.root_hash)}, {signed.timestamp}")


@ledger_cli.command("sequencer")
@click.option("--once", is_flag=True, help="Integrate everything queued now, print how much, and stop.")
@click.option(
    "--interval",
    default=sequencer.INTERVAL,
    show_default=True,
    type=click.FloatRange(0.001, 1),
    help="Seconds between polls of an empty queue (the maximum merge delay is 1 s).",
)
@click.option(
    "--batch-size",
    default=SEQUENCER_BATCH,
    show_default=True,
    type=click.IntRange(1, 100_000),
    help="Leaves per transaction (and per signed tree head) at most.",
)
def sequencer_command(once: bool, interval: float, batch_size: int) -> None:
    """Integrate queued ledger entries in batches, one signed tree head per batch (Ctrl+C stops).

    Needed with ledger_sequencing = "sequencer": appends then only queue their entry. Run one or
    more per PostgreSQL database: one leads (an advisory lock), the others wait to take over.
    SQLite: run exactly one. Exit status 2 when the database cannot be reached (with --once).
    """
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    if once:
        try:
            report = sequencer.drain(get_db(), limit=batch_size)
        except SQLAlchemyError as exc:
            reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
            click.echo(f"ledger sequencer: cannot run ({reason}): is the database up and migrated?", err=True)
            sys.exit(2)
        click.echo(f"ledger sequencer: integrated {report.leaves} entries in {report.batches} batches")
        return
    if current_app.config["MYDATA_SETTINGS"].ledger_sequencing != "sequencer":
        click.echo("ledger sequencer: ledger_sequencing is inline: appends integrate themselves", err=True)
    try:
        sequencer.run_sequencer(app, clock_of(app), stop=threading.Event(), interval=interval, limit=batch_size)
    except KeyboardInterrupt:
        click.echo("Stopped.")


@consents_cli.command("sweep")
@click.option("--once", is_flag=True, help="Sweep once, print how many consents were expired, and stop (for a timer).")
@click.option(
    "--interval", default=INTERVAL, show_default=True, type=click.FloatRange(1, 3600), help="Seconds between passes."
)
@click.option(
    "--batch-size", default=BATCH, show_default=True, type=click.IntRange(1, 10_000), help="Consents per transaction."
)
def consents_sweep(once: bool, interval: float, batch_size: int) -> None:
    """Expire granted consents past their delivery window and requests nobody answered (Ctrl+C stops).

    Each expiry is one `consent.expired` ledger entry. Safe to run on several nodes at once.
    Exit status 2 when the database cannot be reached (with --once).
    """
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    if once:
        try:
            report = sweep(get_db(), clock_of(app), batch=batch_size)
        except SQLAlchemyError as exc:
            reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
            click.echo(f"consents sweep: cannot run ({reason}): is the database up and migrated?", err=True)
            sys.exit(2)
        click.echo(report.describe())
        return
    try:
        run_sweeper(app, clock_of(app), interval=interval, stop=threading.Event(), batch=batch_size)
    except KeyboardInterrupt:
        click.echo("Stopped.")
