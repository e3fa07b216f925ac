"""The platform served by its WSGI server as in production, for tests and benches that stop or kill its processes.

A fresh PostgreSQL database, migrated and seeded, with a registered bank client (:class:`Bank`:
the sandbox relying parties' client, one per thread, running full transactions), and the sandbox
agencies on a server of their own in this process (:func:`serve_agencies`): the server's workers
stop accepting connections when told to stop, so agencies mounted in the platform's own process
would be out of reach of the very deliveries the workers are finishing. :class:`AgencyGate` holds
the agencies' answers, to stop a delivery midway (its consent claimed) for as long as a test needs.
"""

from __future__ import annotations

import base64
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
from flask import Flask
from joserfc.jwk import ECKey, KeySet
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from werkzeug.serving import make_server

from mydata import cli
from mydata.app import create_app
from mydata.config import Settings
from mydata.db import get_db
from relying_parties.sandbox.mydata_client import ClientSettings, MyDataClient, Package
from tests.factories.live import Browser, SandboxCard

ROOT = Path(__file__).resolve().parent.parent.parent
REDIRECT_URI = "https://served-bank.example/mydata/callback"
CLIENT_ID = "served-bank-web"
SERVICE = "sandbox-bank.credit-card"
DATASETS = frozenset({"household.registration", "tax.income", "labor.insurance"})
PERSONA = "A123456789"
QUERY_PATH = "/mydata/v1/query"


def fresh_database(server_url: str, name: str) -> str:
    """Drop and create database *name* on the server of *server_url*; return its URL."""
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


def drop_database(server_url: str, name: str) -> None:
    """Drop database *name* (and end its sessions)."""
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def free_port() -> int:
    """Return a free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Prepared:
    """A migrated, seeded platform not yet served: its environment for the server, the bank's keys, the app."""

    issuer: str
    env: dict[str, str]
    keys: KeySet
    app: Flask
    folder: Path


def prepare_platform(database_url: str, folder: Path, issuer: str, extra_env: dict[str, str] | None = None) -> Prepared:
    """Migrate and seed a sandbox platform and register the bank's client; return what serves it."""
    env = {
        "MYDATA_DATABASE_URL": database_url,
        "MYDATA_INSTANCE_PATH": str(folder),
        "MYDATA_MASTER_KEY": base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode(),
        "MYDATA_SECRET_KEY": secrets.token_urlsafe(48),
        "MYDATA_ISSUER": issuer,
        "MYDATA_SANDBOX": "true",
        "MYDATA_LOG_LEVEL": "WARNING",
        **(extra_env or {}),
    }
    settings = Settings(
        instance_path=folder,
        sandbox=True,
        database_url=database_url,
        master_key=env["MYDATA_MASTER_KEY"],
        secret_key=env["MYDATA_SECRET_KEY"],
        issuer=issuer,
        log_level="WARNING",
    )
    app = create_app(settings)
    cli.upgrade(app)
    sig = ECKey.generate_key("P-256", parameters={"kid": "served-sig", "use": "sig", "alg": "ES256"})
    enc = ECKey.generate_key("P-256", parameters={"kid": "served-enc", "use": "enc", "alg": "ECDH-ES+A256KW"})
    with app.app_context():
        cli.seed(app)
        from identity.oauth.clients import register_client
        from mydata.clock import clock

        jwks = {"keys": [sig.as_dict(private=False), enc.as_dict(private=False)]}
        with get_db().unit_of_work() as uow:
            register_client(
                uow,
                clock(),
                name="Served bank",
                jwks=jwks,
                redirect_uris=[REDIRECT_URI],
                sandbox=True,
                organisation_id="sandbox-bank",
                client_id=CLIENT_ID,
                require_encryption_key=True,
            )
            uow.commit()
    return Prepared(issuer, env, KeySet([sig, enc]), app, folder)


class AgencyGate:
    """WSGI middleware before the agencies: while closed, it holds each query until opened again."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.closed = False
        self.held = 0
        self.limit = 0
        self._condition = threading.Condition()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if environ.get("PATH_INFO", "").endswith(QUERY_PATH):
            with self._condition:
                if self.closed and self.held < self.limit:
                    self.held += 1
                    self._condition.notify_all()
                    self._condition.wait_for(lambda: not self.closed, timeout=120)
        return self.app(environ, start_response)

    def close(self, limit: int) -> None:
        """Hold the next *limit* queries (those after them pass)."""
        with self._condition:
            self.closed, self.held, self.limit = True, 0, limit

    def open(self) -> None:
        """Let the held queries and the next ones through."""
        with self._condition:
            self.closed = False
            self._condition.notify_all()

    def wait_until_held(self, count: int, timeout: float = 60) -> bool:
        """Wait until *count* queries are held; return whether they are."""
        with self._condition:
            return self._condition.wait_for(lambda: self.held >= count, timeout=timeout)


@contextmanager
def serve_agencies(prepared: Prepared) -> Iterator[tuple[str, AgencyGate]]:
    """Serve the sandbox agencies on a port of their own, and point the catalogue at them."""
    from mydata.keys import key_store
    from providers.sandbox.agency import AgencySettings, PlatformJwks, create_agency_app
    from providers.sandbox.faults import FaultTable
    from providers.sandbox.keys import agency_keys_dir
    from providers.sandbox.seed import seed_sandbox_catalogue

    app = prepared.app

    def platform_jwks() -> object:
        with app.app_context(), get_db().unit_of_work() as uow:
            return key_store(uow).jwks()

    keys_dir = agency_keys_dir(prepared.folder)
    agencies = create_agency_app(
        AgencySettings(
            platform_issuer=prepared.issuer,
            platform_jwks=PlatformJwks(platform_jwks),
            keys_dir=keys_dir,
            faults=FaultTable(),
            clock=app.extensions["mydata.clock"],
        )
    )
    gate = AgencyGate(agencies)
    server = make_server("127.0.0.1", 0, gate, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_port}"
    try:
        with app.app_context(), get_db().unit_of_work() as uow:
            seed_sandbox_catalogue(uow, keys_dir=keys_dir, agencies_url=base)
            uow.commit()
        yield base, gate
    finally:
        gate.open()
        server.shutdown()
        server.server_close()
        agencies.extensions["sandbox.agency"].stop()


# The production WSGI server (docs/operations.md, docs/decisions/0010-wsgi-server.md). The others are
# here to compare them: both failed the graceful shutdown test there (see the decision).
PRODUCTION_SERVER = "gunicorn"


class AppServer:
    """The platform served as docs/operations.md runs it (gunicorn, gthread workers), or by uWSGI or granian.

    ``stopping_logged`` is the line the server logs (at log level info) when SIGTERM reaches it,
    ``killed_logged`` the line it logs when it kills a worker still busy at the graceful timeout.
    """

    def __init__(
        self,
        port: int,
        env: dict[str, str],
        *,
        server: str = PRODUCTION_SERVER,
        workers: int = 2,
        threads: int = 8,
        graceful_timeout: float = 30,
        log: Path | None = None,
        log_level: str = "warning",
    ) -> None:
        self.port = port
        self.kind = server
        self.base = f"http://127.0.0.1:{port}"
        self.log = log
        self._log = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 - closed in stop()
        if server == "uwsgi":
            # uWSGI (pyuwsgi): SIGTERM a graceful stop (uWSGI 2.0's own meaning of SIGTERM is a brutal
            # reload), each worker builds the app after the fork, as gunicorn's do.
            args = [
                str(Path(sys.executable).with_name("uwsgi")),
                "--master", "--processes", str(workers), "--threads", str(threads),
                "--http11-socket", f"127.0.0.1:{port}", "--lazy-apps", "--need-app", "--single-interpreter",
                "--hook-master-start", "unix_signal:15 gracefully_kill_them_all",
                "--worker-reload-mercy", str(graceful_timeout), "--reload-mercy", str(graceful_timeout),
                "--disable-logging", "--log-4xx", "--log-5xx",
                "--module", "mydata.app:create_app()",
            ]  # fmt: skip
            self.stopping_logged, self.killed_logged = "graceful shutdown triggered", "NO MERCY"
        elif server == "granian":
            args = [
                str(Path(sys.executable).with_name("granian")),
                "--interface", "wsgi", "--factory", "--workers", str(workers), "--blocking-threads", str(threads),
                "--workers-kill-timeout", str(graceful_timeout), "--respawn-failed-workers",
                "--host", "127.0.0.1", "--port", str(port), "--log-level", log_level, "--no-ws",
                "mydata.app:create_app",
            ]  # fmt: skip
            self.stopping_logged, self.killed_logged = "Shutting down granian", "after it refused to gracefully stop"
        elif server == "gunicorn":
            args = [
                str(Path(sys.executable).with_name("gunicorn")),
                "-w", str(workers), "-k", "gthread", "--threads", str(threads),
                "--graceful-timeout", str(graceful_timeout),
                "-b", f"127.0.0.1:{port}", "--log-level", log_level,
                "mydata.app:create_app()",
            ]  # fmt: skip
            self.stopping_logged, self.killed_logged = "Handling signal: term", "was sent SIGKILL"
        else:
            raise ValueError(f"unknown server {server!r}")
        self.process = subprocess.Popen(
            args,
            env={**os.environ, **env, "PYTHONPATH": str(ROOT)},
            cwd=ROOT,
            stdout=self._log,
            stderr=self._log,
        )

    @property
    def pid(self) -> int:
        """Return the main process's pid."""
        return self.process.pid

    def workers(self) -> list[int]:
        """Return the pids of the workers now."""
        children = Path(f"/proc/{self.pid}/task/{self.pid}/children")
        try:
            return [int(p) for p in children.read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            return []

    def wait_ready(self, workers: int, timeout: float = 60) -> None:
        """Wait until the platform answers and *workers* workers run."""
        deadline = time.monotonic() + timeout
        http = requests.Session()
        http.trust_env = False
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.kind} exited with status {self.process.returncode}")
            try:
                if http.get(f"{self.base}/healthz", timeout=5).status_code < 500 and len(self.workers()) >= workers:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.kind} did not answer in time")

    def wait_for_log(self, words: str, timeout: float = 30) -> bool:
        """Wait until the log (given to the constructor) has a line with *words*; return whether it has."""
        assert self.log is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if words in self.log.read_text(errors="replace"):
                return True
            time.sleep(0.05)
        return False

    def terminate(self) -> None:
        """Ask for a graceful stop (SIGTERM to the main process)."""
        self.process.send_signal(signal.SIGTERM)

    def stop(self, timeout: float = 60) -> int:
        """Stop gracefully if still running; return the exit status."""
        if self.process.poll() is None:
            self.terminate()
        try:
            return self.process.wait(timeout=timeout)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
            if self._log is not subprocess.DEVNULL:
                self._log.close()  # type: ignore[union-attr]


@dataclass
class Transaction:
    """One transaction's outcome: its package, or where it stopped and why."""

    package: Package | None = None
    stage: str = ""
    error: BaseException | None = None


class Bank:
    """A bank running full transactions: one MyData client per thread (each keeps its connections and caches)."""

    def __init__(self, issuer: str, keys: KeySet, card: SandboxCard) -> None:
        self.settings = ClientSettings(issuer=issuer, client_id=CLIENT_ID, redirect_uri=REDIRECT_URI, keys=keys)
        self.card = card
        self._local = threading.local()

    @classmethod
    def of(cls, prepared: Prepared, issuer: str | None = None) -> Bank:
        """Return the bank of a prepared platform (at *issuer*, if not the platform's own)."""
        return cls(issuer or prepared.issuer, prepared.keys, SandboxCard.of(prepared.folder, PERSONA))

    def client(self) -> MyDataClient:
        """Return this thread's client."""
        if not hasattr(self._local, "client"):
            self._local.client = MyDataClient(self.settings)
        return self._local.client  # type: ignore[no-any-return]

    def transaction(self, hooks: Sequence[Callable[..., Any]] = ()) -> Package:
        """Run one complete transaction; return the verified package, or raise where it failed.

        *hooks* are requests' response hooks for the browser's requests (the bank's client is this
        thread's, and keeps its own hooks).
        """
        client = self.client()
        start = client.start_authorization([{"type": "mydata_delivery", "service": SERVICE}])
        browser = Browser(self.settings.issuer)
        browser.http.trust_env = False
        browser.http.hooks["response"].extend(hooks)
        login = browser.follow(browser.get(start.authorization_url))
        screen = browser.follow(browser.log_in_with_card(login, self.card))
        answer = browser.follow(browser.approve(screen), stop_at=REDIRECT_URI)
        if answer.status_code not in (302, 303):
            raise RuntimeError(f"approval answered {answer.status_code}")
        query = {k: v[0] for k, v in parse_qs(urlsplit(answer.headers["Location"]).query).items()}
        tokens = client.redeem_code(client.authorization_code(query, start.state), start)
        self._local.last = (tokens, start.dpop_key)
        package = client.collect_delivery(tokens, start.dpop_key)
        if set(package.datasets) != DATASETS or any(d.status != "ok" for d in package.datasets.values()):
            raise RuntimeError(f"unexpected package: { {k: v.status for k, v in package.datasets.items()} }")
        return package

    def collect_again(self) -> Package:
        """Collect the delivery of this thread's last redeemed authorization again (a retry)."""
        tokens, dpop_key = self._local.last
        return self.client().collect_delivery(tokens, dpop_key)


@dataclass(frozen=True)
class LedgerFacts:
    """What the database says after a run: ledger size and gaps, double deliveries, consents by status."""

    size: int
    gaps: int
    doubles: int
    delivered: int
    completed_entries: int
    statuses: dict[str, int]


def ledger_facts(database_url: str) -> LedgerFacts:
    """Count the ledger's missing seqs (of 0..n-1), the consents delivered twice, and the consents by status."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            size, highest = connection.execute(
                text("SELECT count(*), coalesce(max(seq), -1) FROM consent_ledger_entry")
            ).one()
            completed = connection.execute(
                text(
                    "SELECT consent_id, count(*) FROM consent_ledger_entry "
                    "WHERE convert_from(leaf_input, 'UTF8')::jsonb ->> 'event' = 'delivery.completed' "
                    "GROUP BY consent_id"
                )
            ).all()
            statuses = dict(
                connection.execute(text("SELECT status, count(*) FROM consent_consent GROUP BY status")).all()
            )
    finally:
        engine.dispose()
    return LedgerFacts(
        size=size,
        gaps=highest + 1 - size,
        doubles=sum(1 for _, count in completed if count > 1),
        delivered=statuses.get("delivered", 0),
        completed_entries=sum(count for _, count in completed),
        statuses={str(k): int(v) for k, v in statuses.items()},
    )


def stranded_consents(database_url: str) -> dict[str, int]:
    """Count the consents that cannot move on: past their end yet not expired, or held by a transaction.

    A delivery claims its consent with a row lock held for its one transaction (no claimed state is
    ever stored), so a claim left behind would be a row some session still holds: counted as
    ``locked`` with ``FOR UPDATE SKIP LOCKED``, the way the sweeper would skip it.
    """
    from consent.sweeper import REQUEST_LIFETIME

    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            past_window = connection.execute(
                text("SELECT count(*) FROM consent_consent WHERE status = 'granted' AND window_ends_at <= now()")
            ).scalar_one()
            unanswered = connection.execute(
                text(
                    "SELECT count(*) FROM consent_consent WHERE status = 'requested' AND requested_at <= now() - :age"
                ),
                {"age": REQUEST_LIFETIME},
            ).scalar_one()
            open_ = connection.execute(
                text("SELECT count(*) FROM consent_consent WHERE status IN ('granted', 'requested')")
            ).scalar_one()
            free = len(
                connection.execute(
                    text(
                        "SELECT id FROM consent_consent WHERE status IN ('granted', 'requested') FOR UPDATE SKIP LOCKED"
                    )
                ).all()
            )
            connection.rollback()
    finally:
        engine.dispose()
    return {"granted_past_window": past_window, "requested_never_answered": unanswered, "locked": open_ - free}
