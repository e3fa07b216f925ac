"""Benchmark: complete OpenID Connect flows against the WSGI server with PostgreSQL (DESIGN §10).

One flow is what a bank's customer does: the bank pushes the request (PAR, private_key_jwt, DPoP),
the browser is sent to authorize, logs in with the eID card (a card-reader component on the
citizen's side signs the nonce with the sandbox card; the platform verifies), approves, the bank
redeems the code (private_key_jwt + DPoP) and calls userinfo. The load generator runs on the same
machine; the server's CPU time is read from /proc for the server's main process and its workers.
The server is warmed up (`--warmup` flows, 200 by default) before the measured flows.

    python bench/oidc_flow.py [--reference] [--flows 200] [--runs 3] [--warmup 200] [--concurrency 4]
                              [--server gunicorn|granian|uwsgi] [--workers 2] [--threads 4] [--breakdown]

`--reference` also runs the certified Node.js provider (bench/reference/oidc-provider: `node
bench.mjs --adapter redis --workers 2`, the same flow count and concurrency, warmed up with
`--reference-warmup` flows, 2,000 by default) in the same invocation on the same machine, its runs
alternating with ours so that the load of the shared machine weighs on both, and prints both
figures (medians of `--runs` runs, 3 by default with `--reference`) and their ratio: our server CPU
per flow / the reference's (PostgreSQL's and Redis's CPU left out of both). It needs Node.js 20+,
`redis-server` and `npm ci` in bench/reference/oidc-provider.

Prints one summary line and writes bench/results/oidc_flow.json. Target (DESIGN §10, issue 15):
ratio <= 1.25 (goal 1.0). Set MYDATA_BENCH_DATABASE_URL to use another PostgreSQL server (a
database named mydata_bench_oidc is dropped and recreated there).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import secrets
import shutil
import statistics
import subprocess
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
from harness import (  # noqa: E402
    add_server_options,
    describe_server,
    free_port,
    fresh_database,
    machine,
    measure,
    serve,
    server_cpu_ns,
    warm_up,
    worker_rss_mb,
)

from mydata import cli  # noqa: E402
from mydata.app import create_app  # noqa: E402
from mydata.config import Settings  # noqa: E402
from mydata.db import get_db  # noqa: E402
from tests.factories.live import Browser, SandboxCard  # noqa: E402
from tests.factories.oauth import TestRelyingParty, pkce_pair  # noqa: E402

RESULTS = ROOT / "bench" / "results"
REDIRECT_URI = "https://bench-bank.example/callback"
PERSONA = "A123456789"
REFERENCE = ROOT / "bench" / "reference" / "oidc-provider"
TARGET_RATIO = 1.25
GOAL_RATIO = 1.0


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


def breakdown(
    issuer: str, rp: TestRelyingParty, card: SandboxCard, pid: int, flows: int, probe_start: Path
) -> dict[str, float]:
    """Return the server CPU per flow of each endpoint, in ms (flows one at a time).

    After the warm-up, *probe_start* is created: bench/probe.py counts the requests from there.
    """
    for _ in range(10):
        one_flow(issuer, rp, card)
    probe_start.touch()
    with per_request_cpu(pid) as spent:
        for _ in range(flows):
            one_flow(issuer, rp, card)
    ordered = sorted(spent.items(), key=lambda item: -sum(item[1]))
    return {endpoint: round(sum(values) / flows / 1e6, 2) for endpoint, values in ordered}


def layers(probe: dict[str, Any], flows: int, server_ms: float) -> dict[str, float]:
    """Return where a flow's server CPU went, in ms per flow, from bench/probe.py's figures.

    *server_ms* is the server's CPU per flow from /proc; what the requests' windows do not hold is
    gunicorn's own work outside them (its poller, HTTP parser and keep-alive).
    """

    def total(part: str) -> float:
        return sum(parts.get(part, 0.0) for parts in probe["seconds"].values()) * 1000 / flows

    window, views = total("window"), total("views")
    measured = {part: total(part) for part in ("statements", "templates", "forms")}
    return {
        "gunicorn outside the requests": round(server_ms - window, 2),
        "Werkzeug, Flask and the extensions around the views": round(window - views, 2),
        **{f"views: {part}": round(ms, 2) for part, ms in measured.items()},
        "views: the rest": round(views - sum(measured.values()), 2),
    }


def reference_run(flows: int, warmup: int, concurrency: int, workers: int) -> dict[str, Any]:
    """Run the Node.js reference once (its own server, warmed up, then *flows* measured); return its figures."""
    node = shutil.which("node")
    if node is None or not (REFERENCE / "node_modules" / "oidc-provider").is_dir():
        raise SystemExit(f"--reference needs Node.js 20+ and `npm ci` in {REFERENCE.relative_to(ROOT)}")
    if shutil.which("redis-server") is None:
        raise SystemExit("--reference needs redis-server (the reference's workers share Redis)")
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        command = [node, "bench.mjs", "--adapter", "redis", "--workers", str(workers), "--flows", str(flows),
                   "--warmup", str(warmup), "--concurrency", str(concurrency), "--json", out.name]  # fmt: skip
        done = subprocess.run(command, cwd=REFERENCE, capture_output=True, text=True, timeout=1800, check=False)
        if done.returncode != 0:
            raise SystemExit(f"the reference failed ({done.returncode}): {done.stderr[-2000:]}")
        report = json.loads(Path(out.name).read_text())
    run: dict[str, Any] = report["results"][0]
    return {**run, "oidc_provider": report["oidc_provider"], "node": report["node"], "warmup": warmup}


def main() -> None:
    """Run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flows", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=200, help="our flows before the measured ones")
    parser.add_argument("--runs", type=int, help="measured runs (default: 3 with --reference, else 1)")
    parser.add_argument("--concurrency", type=int, default=4)
    add_server_options(parser, threads=4)
    parser.add_argument("--reference", action="store_true", help="also run the Node.js reference; print the ratio")
    parser.add_argument("--reference-warmup", type=int, default=2000, help="the reference's warm-up flows")
    parser.add_argument(
        "--breakdown",
        action="store_true",
        help="also: CPU per endpoint and by layer (gunicorn), flows one at a time on 1 worker, 1 thread",
    )
    args = parser.parse_args()
    runs = args.runs or (3 if args.reference else 1)

    database_url = fresh_database("mydata_bench_oidc")
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    ours: list[dict[str, float]] = []
    theirs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as folder:
        env, rp = prepare(database_url, Path(folder), issuer)
        card = SandboxCard.of(Path(folder), PERSONA)
        with serve("mydata.app:create_app", port, args, env) as pid:
            warm_up(lambda _: one_flow(issuer, rp, card), args.warmup, args.concurrency)
            for run in range(1, runs + 1):
                ours.append(measure(pid, lambda _: one_flow(issuer, rp, card), args.flows, 0, args.concurrency))
                line = f"  run {run}: ours {ours[-1]['cpu_per_unit'] * 1000:.2f} ms/flow"
                if args.reference:
                    theirs.append(reference_run(args.flows, args.reference_warmup, args.concurrency, args.workers))
                    line += f", reference {theirs[-1]['server_cpu_ms_per_flow']:.2f} ms/flow"
                print(line, file=sys.stderr, flush=True)
            rss = worker_rss_mb(pid)
        per_endpoint = per_layer = None
        if args.breakdown:
            single = argparse.Namespace(server=args.server, workers=1, threads=1)
            probed, probe_start = Path(folder) / "probe.json", Path(folder) / "probe.start"
            if args.server == "gunicorn":  # where each request's CPU goes, from gunicorn's request hooks
                env = {**env, "GUNICORN_CMD_ARGS": f"-c {ROOT / 'bench' / 'probe.py'}",
                       "MYDATA_BENCH_PROBE": str(probed), "MYDATA_BENCH_PROBE_START": str(probe_start)}  # fmt: skip
            breakdown_flows = min(args.flows, 100)
            with serve("mydata.app:create_app", port, single, env) as pid:
                per_endpoint = breakdown(issuer, rp, card, pid, breakdown_flows, probe_start)
            if probed.exists():
                per_layer = layers(json.loads(probed.read_text()), breakdown_flows, sum(per_endpoint.values()))

    def median(key: str) -> float:
        return statistics.median(run[key] for run in ours)

    cpu_ms = median("cpu_per_unit") * 1000
    result: dict[str, Any] = {
        "bench": "oidc_flow",
        "flows": args.flows,
        "warmup": args.warmup,
        "runs": runs,
        "concurrency": args.concurrency,
        "server": args.server,
        "server_settings": describe_server(args),
        "flows_per_second": round(median("per_second"), 1),
        "latency_ms": {name: round(median(name) * 1000, 1) for name in ("p50", "p95", "p99")},
        "server_cpu_ms_per_flow": round(cpu_ms, 2),
        "all_runs": [
            {
                "run": number,
                "server_cpu_ms_per_flow": round(run["cpu_per_unit"] * 1000, 2),
                "flows_per_second": round(run["per_second"], 1),
                "latency_ms_p50": round(run["p50"] * 1000, 1),
            }
            for number, run in enumerate(ours, 1)
        ],
        "worker_rss_mb": round(rss, 1),
        "server_cpu_ms_per_flow_by_endpoint": per_endpoint,
        "server_cpu_ms_per_flow_by_layer": per_layer,
        "target_ratio_to_reference": TARGET_RATIO,
        "goal_ratio_to_reference": GOAL_RATIO,
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    if theirs:
        reference_ms = statistics.median(run["server_cpu_ms_per_flow"] for run in theirs)
        ratio = cpu_ms / reference_ms
        result["reference"] = {
            "what": f"oidc-provider {theirs[0]['oidc_provider']} on Node.js {theirs[0]['node']}, "
            f"{args.workers} workers sharing Redis (bench/reference/oidc-provider)",
            "warmup": args.reference_warmup,
            "server_cpu_ms_per_flow": round(reference_ms, 2),
            "redis_cpu_ms_per_flow": statistics.median(run.get("redis_cpu_ms_per_flow", 0) for run in theirs),
            "flows_per_second": statistics.median(run["flows_per_second"] for run in theirs),
            "all_runs": theirs,
        }
        result["ratio_to_reference"] = round(ratio, 2)
        result["summary"] = {
            "figure": f"{ratio:.2f} x the reference ({cpu_ms:.1f} / {reference_ms:.1f} ms/flow, {args.server})",
            "target": f"<= {TARGET_RATIO} x (goal {GOAL_RATIO} x)",
            "met": ratio <= TARGET_RATIO,
        }
    else:
        result["summary"] = {
            "figure": f"{cpu_ms:.1f} ms/flow ({args.server}; no reference run)",
            "target": f"<= {TARGET_RATIO} x the reference (--reference)",
            "met": None,
        }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "oidc_flow.json").write_text(json.dumps(result, indent=2) + "\n")
    latency = result["latency_ms"]
    print(
        f"oidc_flow ({result['server_settings']}, median of {runs}): {result['flows_per_second']} flows/s, "
        f"p50 {latency['p50']} ms, p95 {latency['p95']} ms, p99 {latency['p99']} ms, "
        f"server CPU {result['server_cpu_ms_per_flow']} ms/flow, worker RSS {result['worker_rss_mb']} MB"
    )
    if theirs:
        reference = result["reference"]
        print(
            f"oidc_flow reference ({reference['what']}, warm-up {reference['warmup']} flows, median of {runs}): "
            f"server CPU {reference['server_cpu_ms_per_flow']} ms/flow (+ Redis {reference['redis_cpu_ms_per_flow']} "
            f"ms); ratio ours / reference = {result['ratio_to_reference']} "
            f"(target <= {TARGET_RATIO}, goal {GOAL_RATIO})"
        )
    if per_endpoint:
        print(f"  by endpoint (flows one at a time): {sum(per_endpoint.values()):.1f} ms per flow")
        for endpoint, ms in per_endpoint.items():
            print(f"  {ms:7.2f} ms  {endpoint}")
    if per_layer:
        print("  by layer (bench/probe.py, the same flows):")
        for layer, ms in per_layer.items():
            print(f"  {ms:7.2f} ms  {layer}")


if __name__ == "__main__":
    main()
