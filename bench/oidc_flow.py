"""Benchmark: complete OpenID Connect flows against gunicorn with PostgreSQL (DESIGN §10).

One flow is what a bank's customer does: the bank pushes the request (PAR, private_key_jwt, DPoP),
the browser is sent to authorize, logs in with the eID card (a card-reader component on the
citizen's side signs the nonce with the sandbox card; the platform verifies), approves, the bank
redeems the code (private_key_jwt + DPoP) and calls userinfo. The load generator runs on the same
machine; the server's CPU time is read from /proc for the gunicorn master and its workers.

    python bench/oidc_flow.py [--flows 200] [--concurrency 4] [--workers 2] [--breakdown]

Prints one summary line and writes bench/results/oidc_flow.json. Target: at most 8 ms of server CPU
per flow. Set MYDATA_BENCH_DATABASE_URL to use another PostgreSQL server (a database named
mydata_bench_oidc is dropped and recreated there).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import re
import secrets
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402
from harness import free_port, fresh_database, gunicorn, measure, server_cpu_ns, worker_rss_mb  # noqa: E402

from mydata import cli  # noqa: E402
from mydata.app import create_app  # noqa: E402
from mydata.config import Settings  # noqa: E402
from mydata.db import get_db  # noqa: E402
from tests.factories.live import Browser, SandboxCard  # noqa: E402
from tests.factories.oauth import TestRelyingParty, pkce_pair  # noqa: E402

RESULTS = ROOT / "bench" / "results"
DEFAULT_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
REDIRECT_URI = "https://bench-bank.example/callback"
PERSONA = "A123456789"


def prepare(database_url: str, folder: Path, issuer: str) -> tuple[dict[str, str], TestRelyingParty]:
    """Migrate, seed and register the bench client; return the server's environment and the client."""
    env = {
        "MYDATA_DATABASE_URL": database_url,
        "MYDATA_INSTANCE_PATH": str(folder),
        "MYDATA_MASTER_KEY": base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode(),
        "MYDATA_SECRET_KEY": secrets.token_urlsafe(48),
        "MYDATA_ISSUER": issuer,
        "MYDATA_SANDBOX": "true",
        "MYDATA_LOG_LEVEL": "WARNING",
    }
    settings = Settings(
        instance_path=folder, sandbox=True, database_url=database_url, master_key=env["MYDATA_MASTER_KEY"],
        secret_key=env["MYDATA_SECRET_KEY"], issuer=issuer, log_level="WARNING",
    )  # fmt: skip
    app = create_app(settings)
    cli.upgrade(app)
    rp = TestRelyingParty(client_id="bench-bank", redirect_uri=REDIRECT_URI)
    with app.app_context():
        cli.seed(app)
        from identity.oauth.clients import register_client
        from mydata.clock import clock

        with get_db().unit_of_work() as uow:
            register_client(
                uow, clock(), name="Bench bank", jwks=rp.jwks(), redirect_uris=[REDIRECT_URI], sandbox=True,
                organisation_id="bench-bank", client_id=rp.client_id,
            )  # fmt: skip
    get_db(app).engine.dispose()
    return env, rp


def one_flow(issuer: str, rp: TestRelyingParty, card: SandboxCard) -> float:
    """Run one complete flow; return its wall time in seconds."""
    started = time.perf_counter()
    http = requests.Session()
    verifier, challenge = pkce_pair()
    pushed = http.post(
        f"{issuer}/oauth/par",
        data={
            "client_id": rp.client_id, "response_type": "code", "redirect_uri": REDIRECT_URI, "scope": "openid",
            "state": "s", "nonce": "n", "code_challenge": challenge, "code_challenge_method": "S256",
            **rp.client_auth(issuer),
        },
        headers={"DPoP": rp.dpop("POST", f"{issuer}/oauth/par")},
        timeout=30,
    )  # fmt: skip
    pushed.raise_for_status()
    browser = Browser(issuer)
    query = urlencode({"client_id": rp.client_id, "request_uri": pushed.json()["request_uri"]})
    login_page = browser.follow(browser.get(f"/oauth/authorize?{query}"))
    approval = browser.follow(browser.log_in_with_card(login_page, card))
    answer = browser.follow(browser.approve(approval), stop_at=REDIRECT_URI)
    code = parse_qs(urlsplit(answer.headers["Location"]).query)["code"][0]
    token = http.post(
        f"{issuer}/oauth/token",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI,
              "code_verifier": verifier, **rp.client_auth(issuer)},
        headers={"DPoP": rp.dpop("POST", f"{issuer}/oauth/token")},
        timeout=30,
    )  # fmt: skip
    token.raise_for_status()
    access_token = token.json()["access_token"]
    info = http.get(
        f"{issuer}/oauth/userinfo",
        headers={"Authorization": f"DPoP {access_token}",
                 "DPoP": rp.dpop("GET", f"{issuer}/oauth/userinfo", access_token=access_token)},
        timeout=30,
    )  # fmt: skip
    info.raise_for_status()
    return time.perf_counter() - started


@contextmanager
def per_request_cpu(pid: int) -> Iterator[dict[str, list[int]]]:
    """Record the server CPU (ns) each HTTP request of this process costs, by method and path.

    For flows run one at a time against one worker with one thread: the CPU read after a request
    (and a short pause for the worker to finish it) minus the CPU read before is that request's.
    """
    spent: dict[str, list[int]] = defaultdict(list)
    send = requests.Session.send

    def measured(self: requests.Session, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        before = server_cpu_ns(pid)
        response = send(self, request, **kwargs)
        time.sleep(0.005)
        path = urlsplit(request.url or "").path
        spent[f"{request.method} {re.sub(r'/[A-Za-z0-9_-]{32,}', '/<id>', path)}"].append(server_cpu_ns(pid) - before)
        return response

    requests.Session.send = measured  # type: ignore[method-assign]
    try:
        yield spent
    finally:
        requests.Session.send = send  # type: ignore[method-assign]


def breakdown(issuer: str, rp: TestRelyingParty, card: SandboxCard, pid: int, flows: int) -> dict[str, float]:
    """Return the server CPU per flow of each endpoint, in ms (flows one at a time)."""
    for _ in range(10):
        one_flow(issuer, rp, card)
    with per_request_cpu(pid) as spent:
        for _ in range(flows):
            one_flow(issuer, rp, card)
    ordered = sorted(spent.items(), key=lambda item: -sum(item[1]))
    return {endpoint: round(sum(values) / flows / 1e6, 2) for endpoint, values in ordered}


def main() -> None:
    """Run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flows", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument(
        "--breakdown", action="store_true", help="also: CPU per endpoint, flows one at a time on 1 worker, 1 thread"
    )
    args = parser.parse_args()

    server_url = os.environ.get("MYDATA_BENCH_DATABASE_URL", DEFAULT_SERVER)
    database_url = fresh_database(server_url, "mydata_bench_oidc")
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as folder:
        env, rp = prepare(database_url, Path(folder), issuer)
        with gunicorn("mydata.app:create_app()", port, args, env) as pid:
            card = SandboxCard.of(Path(folder), PERSONA)
            figures = measure(pid, lambda _: one_flow(issuer, rp, card), args.flows, args.warmup, args.concurrency)
            rss = worker_rss_mb(pid)
        per_endpoint = None
        if args.breakdown:
            single = argparse.Namespace(workers=1, threads=1)
            with gunicorn("mydata.app:create_app()", port, single, env) as pid:
                per_endpoint = breakdown(issuer, rp, card, pid, min(args.flows, 100))

    result = {
        "bench": "oidc_flow",
        "flows": args.flows,
        "concurrency": args.concurrency,
        "gunicorn": f"{args.workers} workers x {args.threads} threads (gthread)",
        "flows_per_second": round(figures["per_second"], 1),
        "latency_ms": {name: round(figures[name] * 1000, 1) for name in ("p50", "p95", "p99")},
        "server_cpu_ms_per_flow": round(figures["cpu_per_unit"] * 1000, 2),
        "target_server_cpu_ms_per_flow": 8,
        "worker_rss_mb": round(rss, 1),
        "server_cpu_ms_per_flow_by_endpoint": per_endpoint,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "date": time.strftime("%Y-%m-%d"),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "oidc_flow.json").write_text(json.dumps(result, indent=2) + "\n")
    latency = result["latency_ms"]
    print(
        f"oidc_flow: {result['flows_per_second']} flows/s, p50 {latency['p50']} ms, p95 {latency['p95']} ms, "
        f"p99 {latency['p99']} ms, server CPU {result['server_cpu_ms_per_flow']} ms/flow (target <= 8), "
        f"worker RSS {result['worker_rss_mb']} MB"
    )
    if per_endpoint:
        print(f"  by endpoint (flows one at a time): {sum(per_endpoint.values()):.1f} ms per flow")
        for endpoint, ms in per_endpoint.items():
            print(f"  {ms:7.2f} ms  {endpoint}")


if __name__ == "__main__":
    main()
