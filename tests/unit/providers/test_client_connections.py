"""The protocol client keeps its connections to an agency alive, one pool per process."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from mydata.clock import FrozenClock
from providers.client import ProviderClient


class _Agency(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as gunicorn and real agencies serve
    connections: set[tuple[str, int]]

    def do_GET(self) -> None:
        type(self).connections.add(self.client_address)
        body = json.dumps({"status": "ok"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def agency() -> Iterator[tuple[str, set[tuple[str, int]]]]:
    connections: set[tuple[str, int]] = set()
    handler = type("Agency", (_Agency,), {"connections": connections})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", connections
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_calls_from_every_worker_thread_share_one_kept_alive_connection(
    agency: tuple[str, set[tuple[str, int]]], clock: FrozenClock
) -> None:
    url, connections = agency
    client = ProviderClient(
        issuer="https://mydata.example", clock=clock, timeout_seconds=2, max_workers=4,
        breaker_threshold=3, breaker_cool_down_seconds=30,
    )  # fmt: skip
    try:
        for _ in range(8):  # one after the other, on whichever worker thread is free
            [check] = client.check_health_of([url])
            assert check.ok, check
    finally:
        client.close()
    assert len(connections) == 1


def test_an_agency_that_is_not_there_is_unreachable(clock: FrozenClock) -> None:
    client = ProviderClient(
        issuer="https://mydata.example", clock=clock, timeout_seconds=2, max_workers=1,
        breaker_threshold=3, breaker_cool_down_seconds=30,
    )  # fmt: skip
    try:
        check = client.check_health("http://127.0.0.1:9")
    finally:
        client.close()
    assert (check.ok, check.result) == (False, "unreachable")
