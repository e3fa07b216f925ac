"""Benchmark: full one-shot transactions against the WSGI server with PostgreSQL (DESIGN §10).

One transaction is what a bank's "apply with MyData" costs the platform: the bank pushes the request
(PAR with private_key_jwt, PKCE, DPoP and `authorization_details` for the sandbox bank's credit-card
service), the browser follows /oauth/authorize, logs in with the eID card (a card-reader component
on the citizen's side signs the nonce with the sandbox card; the platform verifies), approves on the
consent screen, the bank redeems the code (private_key_jwt + DPoP) and collects the package: the
platform fetches household registration, income and labour insurance from the sandbox agencies over
HTTP (mounted in the same server, hence threaded workers), verifies the agencies' signatures and
schemas, signs (JWS) and encrypts (JWE) the package, and records the ledger entries. The bank side
is the sandbox relying parties' client (relying_parties/sandbox/mydata_client.py), which decrypts
and verifies every package.

The ratio compares the server CPU of one transaction with that of one bare Flask request (a view
returning a short text, bench/bare.py) served by the same server with the same settings (`--server`,
`--workers`, `--threads`); the load generator keeps its connections open for the bare requests,
which makes them as cheap as they can be. Both servers run side by side, warmed up, and their
measured runs alternate (transactions, bare requests, transactions, ...) so that the load of the
shared machine weighs on both; each figure is the median of `--runs` runs.

    python bench/transaction.py [--transactions 100] [--runs 3] [--concurrency 4]
                                [--server gunicorn|granian|uwsgi] [--workers 2] [--threads 8]

Prints one summary line and writes bench/results/transaction.json. Target (DESIGN §10, issue 15):
server CPU per transaction at most 60 x that of a bare request (goal: 40 x). Set
MYDATA_BENCH_DATABASE_URL to use another PostgreSQL server (a database named
mydata_bench_transaction is dropped and recreated there).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402
from harness import (  # noqa: E402
    add_server_options,
    describe_server,
    free_port,
    fresh_database,
    ledger_sequencer,
    machine,
    measure,
    serve,
    warm_up,
    worker_rss_mb,
)
from joserfc.jwk import KeySet  # noqa: E402

from mydata.db import get_db  # noqa: E402
from relying_parties.sandbox.mydata_client import ClientSettings, MyDataClient  # noqa: E402
from tests.factories.live import Browser, SandboxCard  # noqa: E402
from tests.factories.served import CLIENT_ID, REDIRECT_URI, prepare_platform  # noqa: E402

RESULTS = ROOT / "bench" / "results"
SERVICE = "sandbox-bank.credit-card"
DATASETS = {"household.registration", "tax.income", "labor.insurance"}
PERSONA = "A123456789"
TARGET_RATIO = 60
GOAL_RATIO = 40


class Bank:
    """The bench bank: one MyData client per load thread (each keeps its connections and caches)."""

    def __init__(self, issuer: str, keys: KeySet, card: SandboxCard) -> None:
        self.settings = ClientSettings(issuer=issuer, client_id=CLIENT_ID, redirect_uri=REDIRECT_URI, keys=keys)
        self.card = card
        self._local = threading.local()

    def client(self) -> MyDataClient:
        """Return this thread's client."""
        if not hasattr(self._local, "client"):
            self._local.client = MyDataClient(self.settings)
        return self._local.client  # type: ignore[no-any-return]

    def transaction(self) -> float:
        """Run one complete transaction; return its wall time in seconds."""
        started = time.perf_counter()
        client = self.client()
        start = client.start_authorization([{"type": "mydata_delivery", "service": SERVICE}])
        browser = Browser(self.settings.issuer)
        browser.http.trust_env = False
        login = browser.follow(browser.get(start.authorization_url))
        screen = browser.follow(browser.log_in_with_card(login, self.card))
        answer = browser.follow(browser.approve(screen), stop_at=REDIRECT_URI)
        query = {k: v[0] for k, v in parse_qs(urlsplit(answer.headers["Location"]).query).items()}
        tokens = client.redeem_code(client.authorization_code(query, start.state), start)
        package = client.collect_delivery(tokens, start.dpop_key)
        if set(package.datasets) != DATASETS or any(d.status != "ok" for d in package.datasets.values()):
            raise RuntimeError(f"unexpected package: { {k: v.status for k, v in package.datasets.items()} }")
        return time.perf_counter() - started


def bare_requests(port: int) -> Callable[[object], float]:
    """Return a unit of work: one GET of the bare app, on this thread's kept-alive connection."""
    local = threading.local()

    def work(_: object) -> float:
        if not hasattr(local, "http"):
            local.http = requests.Session()
            local.http.trust_env = False
        started = time.perf_counter()
        local.http.get(f"http://127.0.0.1:{port}/", timeout=10).raise_for_status()
        return time.perf_counter() - started

    return work


def main() -> None:
    """Run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transactions", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=20, help="transactions before the measured runs")
    parser.add_argument("--bare-requests", type=int, default=3000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=4)
    # Each delivery holds a thread while the platform calls its three agencies, served by the same
    # server: enough threads for every concurrent transaction and its agency calls.
    add_server_options(parser, threads=8)
    parser.add_argument(
        "--ledger",
        choices=("sequencer", "inline"),
        default="sequencer",
        help="ledger_sequencing: as production (a `mydata ledger sequencer` process beside the server, its CPU "
        "counted) or inline (each append integrates its entry); default: %(default)s",
    )
    args = parser.parse_args()

    database_url = fresh_database("mydata_bench_transaction")
    port, bare_port = free_port(), free_port()
    issuer = f"http://127.0.0.1:{port}"
    runs: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory() as folder:
        prepared = prepare_platform(database_url, Path(folder), issuer, {"MYDATA_LEDGER_SEQUENCING": args.ledger})
        get_db(prepared.app).engine.dispose()
        env, keys = prepared.env, prepared.keys
        bank = Bank(issuer, keys, SandboxCard.of(Path(folder), PERSONA))
        with (
            serve("mydata.app:create_app", port, args, env) as pid,
            serve("bare:bare_app", bare_port, args, {}) as bare_pid,
            ledger_sequencer(env) if args.ledger == "sequencer" else nullcontext() as sequencer_pid,
        ):
            also = (sequencer_pid,) if sequencer_pid else ()
            bare_work = bare_requests(bare_port)
            warm_up(lambda _: bank.transaction(), args.warmup, args.concurrency)
            warm_up(bare_work, 200, args.concurrency)
            for run in range(1, args.runs + 1):
                tx = measure(pid, lambda _: bank.transaction(), args.transactions, 0, args.concurrency, also=also)
                bare = measure(bare_pid, bare_work, args.bare_requests, 0, args.concurrency)
                runs.append({"run": run, **{f"tx_{k}": v for k, v in tx.items()},
                             **{f"bare_{k}": v for k, v in bare.items()},
                             "ratio": tx["cpu_per_unit"] / bare["cpu_per_unit"]})  # fmt: skip
                print(
                    f"  run {run}: {tx['cpu_per_unit'] * 1000:.2f} ms/tx, bare {bare['cpu_per_unit'] * 1000:.3f} ms, "
                    f"ratio {runs[-1]['ratio']:.1f}",
                    file=sys.stderr,
                )
            rss = worker_rss_mb(pid)

    def median(key: str) -> float:
        return statistics.median(run[key] for run in runs)

    ratio = median("ratio")
    result = {
        "bench": "transaction",
        "transactions": args.transactions,
        "runs": args.runs,
        "concurrency": args.concurrency,
        "server": args.server,
        "server_settings": describe_server(args),
        "ledger_sequencing": args.ledger,
        "transactions_per_second": round(median("tx_per_second"), 2),
        "latency_ms": {k: round(median(f"tx_{k}") * 1000, 1) for k in ("p50", "p95", "p99")},
        "server_cpu_ms_per_transaction": round(median("tx_cpu_per_unit") * 1000, 2),
        "bare_request": {
            "requests": args.bare_requests,
            "requests_per_second": round(median("bare_per_second"), 1),
            "server_cpu_ms_per_request": round(median("bare_cpu_per_unit") * 1000, 3),
            "latency_ms_p50": round(median("bare_p50") * 1000, 2),
        },
        "ratio_to_bare_request": round(ratio, 1),
        "target_ratio": TARGET_RATIO,
        "goal_ratio": GOAL_RATIO,
        "worker_rss_mb": round(rss, 1),
        "all_runs": [
            {
                "run": r["run"],
                "server_cpu_ms_per_transaction": round(r["tx_cpu_per_unit"] * 1000, 2),
                "transactions_per_second": round(r["tx_per_second"], 2),
                "bare_server_cpu_ms_per_request": round(r["bare_cpu_per_unit"] * 1000, 3),
                "ratio": round(r["ratio"], 1),
            }
            for r in runs
        ],
        "summary": {
            "figure": f"{ratio:.1f} x a bare request ({median('tx_cpu_per_unit') * 1000:.1f} ms/tx, {args.server})",
            "target": f"<= {TARGET_RATIO} x (goal {GOAL_RATIO} x)",
            "met": ratio <= TARGET_RATIO,
        },
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "transaction.json").write_text(json.dumps(result, indent=2) + "\n")
    latency = result["latency_ms"]
    print(
        f"transaction ({result['server_settings']}, median of {args.runs}): {result['transactions_per_second']} tx/s, "
        f"p50 {latency['p50']} ms, p95 {latency['p95']} ms, p99 {latency['p99']} ms, "
        f"server CPU {result['server_cpu_ms_per_transaction']} ms/tx = {result['ratio_to_bare_request']} x a bare "
        f"Flask request ({result['bare_request']['server_cpu_ms_per_request']} ms; target <= {TARGET_RATIO} x), "
        f"worker RSS {result['worker_rss_mb']} MB"
    )


if __name__ == "__main__":
    main()
