"""Platform nodes in real processes: gunicorn workers over one PostgreSQL and one Redis, behind a balancer.

DESIGN §8 promises stateless app nodes. :func:`serve_nodes` migrates and seeds a fresh database once,
then starts each node as its own ``gunicorn 'mydata.app:create_app()'`` process with the same
settings, as an operator would. A small TCP balancer in the test process is the public address (the
issuer): each connection goes to the next node in turn, or to the one node it is pinned to, so that
a test decides which node serves each step of a flow. The nodes' own calls to the issuer (the
sandbox agencies, their JWKS) go through it too.
"""

from __future__ import annotations

import base64
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
from flask import Flask
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from mydata import cli
from mydata.app import create_app
from mydata.config import Settings
from mydata.db import get_db
from tests.factories.live import LivePlatform

ROOT = Path(__file__).resolve().parent.parent.parent
BIN = Path(sys.executable).parent
POSTGRES_URL = os.environ.get("MYDATA_TEST_DATABASE_URL", "")
REDIS_URL = os.environ.get("MYDATA_TEST_REDIS_URL", "")


def require_postgres_and_redis() -> None:
    """Skip the test unless the shared test PostgreSQL and Redis are configured (CI sets both)."""
    if not POSTGRES_URL:
        pytest.skip("MYDATA_TEST_DATABASE_URL is not set: several nodes share one PostgreSQL (CI sets it)")
    if not REDIS_URL:
        pytest.skip("MYDATA_TEST_REDIS_URL is not set: several nodes share one rate-limit store (CI sets it)")


def free_port() -> int:
    """Return a port on 127.0.0.1 that nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def fresh_database(prefix: str) -> Iterator[str]:
    """Create an empty PostgreSQL database next to the test database; yield its URL; drop it after.

    Its name starts with the test database's, so that test sessions on different databases of one
    server never meet.
    """
    name = f"{make_url(POSTGRES_URL).database}_{prefix}_{secrets.token_hex(4)}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


class Balancer:
    """A TCP balancer: each accepted connection is relayed to the next target in turn, or to the pinned one."""

    def __init__(self, targets: Sequence[str]) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self.base = f"http://127.0.0.1:{self.port}"
        self._lock = threading.Lock()
        self._targets = list(targets)
        self._pinned: str | None = None
        self._turn = 0
        self._open: set[socket.socket] = set()
        #: Connections relayed to each target so far.
        self.relayed: Counter[str] = Counter()
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def retarget(self, targets: Sequence[str]) -> None:
        """Relay new connections to *targets* from now on, and close those open (as a failover does)."""
        with self._lock:
            self._targets, self._pinned = list(targets), None
        self.drop_connections()

    def pin(self, target: str | None) -> None:
        """Relay every new connection to *target* (None: take turns again), closing those open.

        Clients and nodes keep idle connections open: closing them makes their next request open a
        new one, which goes where the balancer now says. Call it between requests, not during one.
        """
        with self._lock:
            self._pinned = target
        self.drop_connections()

    def drop_connections(self) -> None:
        """Close every relayed connection."""
        with self._lock:
            open_sockets, self._open = self._open, set()
        for sock in open_sockets:
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def close(self) -> None:
        """Stop accepting and close every connection."""
        self._closed.set()
        with suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        self._thread.join(timeout=10)
        self.drop_connections()

    def _next_target(self) -> str:
        with self._lock:
            if self._pinned is not None:
                return self._pinned
            target = self._targets[self._turn % len(self._targets)]
            self._turn += 1
            return target

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                downstream, _ = self._listener.accept()
            except OSError:
                return
            target = self._next_target()
            host, port = target.removeprefix("http://").split(":")
            try:
                upstream = socket.create_connection((host, int(port)), timeout=10)
            except OSError:
                downstream.close()  # as a balancer with no healthy node: the connection is refused
                continue
            upstream.settimeout(None)
            with self._lock:
                self._open.update((downstream, upstream))
                self.relayed[target] += 1
            for source, sink in ((downstream, upstream), (upstream, downstream)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while chunk := source.recv(65536):
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            # One side is done: end both, as a balancer does.
            for sock in (source, sink):
                with suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            with self._lock:
                for sock in (source, sink):
                    if sock in self._open:
                        self._open.discard(sock)
                        sock.close()


@dataclass
class Node:
    """One platform node: a gunicorn master and its worker, serving on *base*."""

    base: str
    process: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        """Stop the node (SIGTERM, then SIGKILL if it lingers) and wait for it."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)


@dataclass
class Nodes:
    """Platform nodes over one database, behind a balancer whose address is the issuer."""

    issuer: str
    env: dict[str, str]
    folder: Path
    balancer: Balancer
    app: Flask
    nodes: list[Node] = field(default_factory=list)

    @property
    def live(self) -> LivePlatform:
        """Return the platform as the live-platform factories see it: the issuer, and an app for its CLI."""
        return LivePlatform(self.issuer, self.app)

    def start_node(self, database_url: str | None = None) -> Node:
        """Start one more node (on another database, for a restore); return it once it answers."""
        node = self._launch(database_url)
        wait_until_healthy(node)
        return node

    def _launch(self, database_url: str | None = None) -> Node:
        port = free_port()
        env = {**self.env, **({"MYDATA_DATABASE_URL": database_url} if database_url else {})}
        log = self.folder / f"node-{port}.log"
        with log.open("wb") as out:
            # One worker: one process is one node, with its own caches. Enough threads for a
            # delivery and the agency calls it makes, which a node may serve itself.
            process = subprocess.Popen(
                [str(BIN / "gunicorn"), "-w", "1", "-k", "gthread", "--threads", "16",
                 "-b", f"127.0.0.1:{port}", "--graceful-timeout", "5", "mydata.app:create_app()"],
                env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        node = Node(f"http://127.0.0.1:{port}", process, log)
        self.nodes.append(node)
        return node

    def mydata(self, *args: str, database_url: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run ``mydata ARGS`` as an operator does, in its own process, against the nodes' database."""
        env = {**self.env, **({"MYDATA_DATABASE_URL": database_url} if database_url else {})}
        return subprocess.run(
            [str(BIN / "mydata"), *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
        )


def wait_until_healthy(node: Node) -> None:
    """Wait until *node* answers its health check; fail with its log if it stops first."""
    http = requests.Session()
    http.trust_env = False
    for _ in range(600):
        if node.process.poll() is not None:
            raise AssertionError(f"node {node.base} stopped:\n{node.log.read_text()[-3000:]}")
        with suppress(requests.RequestException):
            if http.get(f"{node.base}/healthz", timeout=5).status_code == 200:
                http.close()
                return
        time.sleep(0.1)
    raise AssertionError(f"node {node.base} did not answer:\n{node.log.read_text()[-3000:]}")


def node_environment(folder: Path, database_url: str, issuer: str, **settings: str) -> dict[str, str]:
    """Return the environment every node of one platform shares: its secrets, database, Redis and issuer."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MYDATA_")}
    return {
        **clean,
        "PYTHONPATH": str(ROOT),
        "MYDATA_SANDBOX": "true",
        "MYDATA_INSTANCE_PATH": str(folder),
        "MYDATA_DATABASE_URL": database_url,
        "MYDATA_RATELIMIT_STORAGE_URI": REDIS_URL,
        "MYDATA_ISSUER": issuer,
        "MYDATA_MASTER_KEY": base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode(),
        "MYDATA_SECRET_KEY": secrets.token_urlsafe(48),
        "MYDATA_LOG_LEVEL": "WARNING",
        **{f"MYDATA_{name.upper()}": value for name, value in settings.items()},
    }


@contextmanager
def serve_nodes(folder: Path, database_url: str, count: int = 2, **settings: str) -> Iterator[Nodes]:
    """Migrate and seed *database_url*, start *count* nodes on it behind a balancer; stop them after.

    *settings* are more MYDATA_* settings by name (``ledger_sth_every_entries="4"``). The instance
    folder (the sandbox's eID CA, agency and relying-party keys) is shared by the nodes, as a
    deployment's configuration is.
    """
    balancer = Balancer([])
    env = node_environment(folder, database_url, balancer.base, **settings)
    settings = Settings(
        instance_path=folder, sandbox=True, database_url=database_url, issuer=balancer.base,
        ratelimit_storage_uri=REDIS_URL, master_key=env["MYDATA_MASTER_KEY"],
        secret_key=env["MYDATA_SECRET_KEY"], log_level="WARNING",
    )  # fmt: skip
    app = create_app(settings)
    cli.upgrade(app)
    with app.app_context():
        cli.seed(app)
    platform = Nodes(balancer.base, env, folder, balancer, app)
    try:
        for node in [platform._launch() for _ in range(count)]:  # started together: each takes seconds
            wait_until_healthy(node)
        balancer.retarget([node.base for node in platform.nodes])
        yield platform
    finally:
        balancer.close()
        for node in platform.nodes:
            node.stop()
        get_db(app).engine.dispose()


def node_log(node: Node) -> str:
    """Return the end of a node's log, for an assertion message."""
    with node.log.open("rb") as fh:
        fh.seek(0, os.SEEK_END)
        fh.seek(max(0, fh.tell() - 4000))
        return fh.read().decode(errors="replace")
