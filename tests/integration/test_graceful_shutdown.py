"""A graceful shutdown under load (issue 14 item 6): the server told to stop while transactions run.

The platform runs as in production (gunicorn, gthread workers, PostgreSQL; the fixture's parameter
can name the other servers the benches compare, uWSGI and granian: both fail here, see
docs/decisions/0010-wsgi-server.md); a bank runs full
transactions from several threads. The sandbox agencies are served apart (tests.factories.served),
and hold their answers while the test needs a delivery midway: its consent claimed, its agency
calls out. A SIGTERM then lets every request in flight finish; requests that come after it get no
answer at all (their connection is refused or reset before any byte of an answer), never half of
one. And a worker killed midway (SIGKILL) leaves its consent granted and free, not claimed: the
claim is the row lock of the delivery's one transaction, which dies with the worker's connection.
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from mydata.db import get_db
from relying_parties.sandbox.mydata_client import MyDataError
from tests.factories.served import (
    PRODUCTION_SERVER,
    AgencyGate,
    AppServer,
    Bank,
    Prepared,
    drop_database,
    free_port,
    fresh_database,
    ledger_facts,
    prepare_platform,
    serve_agencies,
    stranded_consents,
)

POSTGRES_URL = os.environ.get("MYDATA_TEST_DATABASE_URL", "")
GRACEFUL_TIMEOUT = 20
QUERIES_PER_DELIVERY = 3  # the bank's service asks for three datasets, one query each

pytestmark = pytest.mark.skipif(
    not POSTGRES_URL,
    reason="MYDATA_TEST_DATABASE_URL is not set (CI sets it): the server's worker processes share one PostgreSQL",
)


@dataclass
class Served:
    """A platform under its server on a database of its own, with its agencies' gate and its bank."""

    prepared: Prepared
    database_url: str
    gate: AgencyGate
    server: AppServer
    bank: Bank


@pytest.fixture(params=[PRODUCTION_SERVER])
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Served]:
    """Serve a fresh migrated, seeded platform with the server (2 workers x 8 threads)."""
    name = f"mydata_h12_shutdown_{secrets.token_hex(4)}"
    url = fresh_database(POSTGRES_URL, name)
    port = free_port()
    prepared = prepare_platform(url, tmp_path, f"http://127.0.0.1:{port}")
    try:
        with serve_agencies(prepared) as (_, gate):
            server = AppServer(
                port,
                prepared.env,
                server=request.param,
                graceful_timeout=GRACEFUL_TIMEOUT,
                log=tmp_path / "server.log",
                log_level="info",
            )
            try:
                server.wait_ready(workers=2)
                yield Served(prepared, url, gate, server, Bank.of(prepared))
            finally:
                server.stop()
    finally:
        get_db(prepared.app).engine.dispose()
        drop_database(POSTGRES_URL, name)


@dataclass
class Client:
    """A load thread: its transactions completed, and the one error that ended it."""

    completed: int = 0
    error: BaseException | None = None
    errors: list[BaseException] = field(default_factory=list)


def no_answer(error: BaseException | None) -> bool:
    """Whether *error* is a request that got no answer at all: refused, or reset before its first byte."""
    return isinstance(error, requests.ConnectionError)


def test_sigterm_lets_requests_in_flight_finish_and_strands_no_consent(served: Served) -> None:
    bank, gate, server = served.bank, served.gate, served.server
    warmed = threading.Barrier(7)
    go, go_on = threading.Event(), threading.Event()
    held = [Client() for _ in range(4)]  # their deliveries are in flight when SIGTERM comes
    running = [Client() for _ in range(2)]  # transactions at any stage meanwhile, until the server is gone

    def deliver_once(client: Client) -> None:
        bank.transaction()  # warms this thread's client: metadata, platform and agency keys
        warmed.wait()
        go.wait()
        try:
            bank.transaction()
            client.completed += 1
        except Exception as exc:
            client.error = exc

    def keep_going(client: Client) -> None:
        bank.transaction()
        warmed.wait()
        go_on.wait()
        while True:
            try:
                bank.transaction()
                client.completed += 1
            except Exception as exc:
                client.error = exc
                return

    threads = [threading.Thread(target=deliver_once, args=(c,)) for c in held]
    threads += [threading.Thread(target=keep_going, args=(c,)) for c in running]
    for thread in threads:
        thread.start()
    warmed.wait(timeout=120)
    gate.close(limit=QUERIES_PER_DELIVERY * len(held))
    go.set()
    assert gate.wait_until_held(QUERIES_PER_DELIVERY * len(held)), "the deliveries never reached the agencies"
    go_on.set()  # the others' deliveries pass the gate: it holds no more than the first ones
    deadline = time.monotonic() + 60
    while not all(c.completed for c in running) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert all(c.completed for c in running), [c.error for c in running]
    workers = server.workers()
    server.terminate()
    assert server.wait_for_log(server.stopping_logged)
    # The main process has closed its listener and passed the SIGTERM on; the workers stopped accepting.
    # The held deliveries still wait for their agencies, and their workers for them (a little while:
    # a graceful timeout shorter than that would kill them, and fail this test).
    time.sleep(2)
    assert all(Path(f"/proc/{pid}").exists() for pid in workers), "a worker left before its requests finished"
    gate.open()
    status = server.process.wait(timeout=GRACEFUL_TIMEOUT + 10)
    for thread in threads:
        thread.join(timeout=60)

    assert status == 0
    assert server.log is not None
    # At the graceful timeout, the main process would have killed the workers still busy (and said so).
    assert server.killed_logged not in server.log.read_text()
    # Every delivery in flight at the SIGTERM was answered, with a complete, verified package.
    assert [c.error for c in held] == [None] * len(held)
    # The others ran until the server was gone; what ended them got no answer at all, not half of one.
    for client in running:
        assert no_answer(client.error), repr(client.error)
    with pytest.raises(requests.ConnectionError):  # the port is closed now
        requests.get(f"{server.base}/healthz", timeout=5)

    facts = ledger_facts(served.database_url)
    assert facts.gaps == 0
    assert facts.doubles == 0
    assert facts.completed_entries == facts.delivered >= 2 * len(held) + 2 * len(running)
    assert stranded_consents(served.database_url) == {
        "granted_past_window": 0,
        "requested_never_answered": 0,
        "locked": 0,
    }
    verified = served.prepared.app.test_cli_runner().invoke(args=["ledger", "verify"])
    assert verified.exit_code == 0, verified.output


def test_a_worker_killed_midway_leaves_its_consent_granted_and_deliverable_once(served: Served) -> None:
    bank, gate, server = served.bank, served.gate, served.server
    outcome: list[BaseException | None] = []

    def transaction() -> None:
        bank.transaction()  # warm
        gate.close(limit=QUERIES_PER_DELIVERY)
        try:
            bank.transaction()
            outcome.append(None)
        except Exception as exc:
            outcome.append(exc)
            # The bank tries again, as it may within the delivery window (on a new connection).
            try:
                bank.collect_again()
                outcome.append(None)
            except Exception as retry:
                outcome.append(retry)

    thread = threading.Thread(target=transaction)
    thread.start()
    assert gate.wait_until_held(QUERIES_PER_DELIVERY), "the delivery never reached the agencies"
    facts = ledger_facts(served.database_url)
    assert stranded_consents(served.database_url)["locked"] == 1  # the delivery holds its claim
    for pid in server.workers():
        os.kill(pid, 9)
    deadline = time.monotonic() + 30
    while stranded_consents(served.database_url)["locked"] and time.monotonic() < deadline:
        time.sleep(0.05)  # PostgreSQL ends the dead worker's session and rolls back its transaction
    assert stranded_consents(served.database_url)["locked"] == 0
    server.wait_ready(workers=2)
    gate.open()
    thread.join(timeout=60)

    first, retry = outcome
    assert no_answer(first), repr(first)
    assert not isinstance(first, MyDataError)
    assert retry is None, repr(retry)
    after = ledger_facts(served.database_url)
    assert after.doubles == 0
    assert after.gaps == 0
    assert after.delivered == facts.delivered + 1 == after.completed_entries
