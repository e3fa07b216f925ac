"""Benchmark: the WSGI servers compared under the real work (issue 15; docs/decisions/0010-wsgi-server.md).

Serves the platform with each server of the harness (gunicorn gthread, granian WSGI, uWSGI), all
at once with the same workers and threads, each on a database of its own, and measures them in
turns, one run of each after the other, so that the load of the shared machine weighs on all:

* the OpenID Connect flow of bench/oidc_flow.py: server CPU per flow (`--flows` per run, after
  `--warmup` flows);
* the one-shot transaction of bench/transaction.py (the agencies mounted in the same server, so
  their calls go through it too), and the bare Flask request under the same server: server CPU
  per transaction, per bare request, and their ratio.

    python bench/servers.py [--runs 3] [--flows 200] [--transactions 100] [--servers gunicorn,granian,uwsgi]

Prints one line per server and writes bench/results/servers.json (every run, and the medians).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import oidc_flow  # noqa: E402
import transaction  # noqa: E402
from harness import (  # noqa: E402
    SERVERS,
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

from mydata.db import get_db  # noqa: E402
from tests.factories.live import SandboxCard  # noqa: E402
from tests.factories.oauth import TestRelyingParty  # noqa: E402
from tests.factories.served import prepare_platform  # noqa: E402

RESULTS = ROOT / "bench" / "results"
Work = Callable[[object], float]


def flow_work(issuer: str, rp: TestRelyingParty, card: SandboxCard) -> Work:
    """Return a unit of work: one OpenID Connect flow."""
    return lambda _: oidc_flow.one_flow(issuer, rp, card)


def transaction_work(bank: transaction.Bank) -> Work:
    """Return a unit of work: one transaction."""
    return lambda _: bank.transaction()


def main() -> None:
    """Run the comparison."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", default=",".join(SERVERS))
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--flows", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--transactions", type=int, default=100)
    parser.add_argument("--bare-requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--flow-threads", type=int, default=4)
    parser.add_argument("--transaction-threads", type=int, default=8)
    args = parser.parse_args()
    servers = args.servers.split(",")
    runs: dict[str, dict[str, list[dict[str, float]]]] = {s: {"flow": [], "tx": [], "bare": []} for s in servers}
    rss: dict[str, float] = {}

    def shape(server: str, threads: int) -> argparse.Namespace:
        return argparse.Namespace(server=server, workers=args.workers, threads=threads)

    with tempfile.TemporaryDirectory() as folder, ExitStack() as stack:
        flows: dict[str, tuple[int, Work]] = {}
        for server in servers:
            port = free_port()
            issuer = f"http://127.0.0.1:{port}"
            database = fresh_database(f"mydata_bench_servers_flow_{server}")
            home = Path(folder) / f"flow-{server}"
            home.mkdir()
            env, rp = oidc_flow.prepare(database, home, issuer)
            card = SandboxCard.of(home, oidc_flow.PERSONA)
            pid = stack.enter_context(serve("mydata.app:create_app", port, shape(server, args.flow_threads), env))
            flows[server] = (pid, flow_work(issuer, rp, card))
            warm_up(flows[server][1], args.warmup, args.concurrency)
        for run in range(1, args.runs + 1):
            for server in servers:
                pid, work = flows[server]
                runs[server]["flow"].append(measure(pid, work, args.flows, 0, args.concurrency))
                print(f"  flow run {run} {server}: {runs[server]['flow'][-1]['cpu_per_unit'] * 1000:.2f} ms/flow",
                      file=sys.stderr, flush=True)  # fmt: skip
        rss = {server: worker_rss_mb(pid) for server, (pid, _) in flows.items()}
        stack.close()

        txs: dict[str, tuple[int, int, Work, int, Work]] = {}
        for server in servers:
            port, bare_port = free_port(), free_port()
            issuer = f"http://127.0.0.1:{port}"
            database = fresh_database(f"mydata_bench_servers_tx_{server}")
            home = Path(folder) / f"tx-{server}"
            home.mkdir()
            # As bench/transaction.py and production: the ledger sequencer beside the server, its CPU counted.
            prepared = prepare_platform(database, home, issuer, {"MYDATA_LEDGER_SEQUENCING": "sequencer"})
            get_db(prepared.app).engine.dispose()
            bank = transaction.Bank(issuer, prepared.keys, SandboxCard.of(home, transaction.PERSONA))
            threads = shape(server, args.transaction_threads)
            pid = stack.enter_context(serve("mydata.app:create_app", port, threads, prepared.env))
            sequencer_pid = stack.enter_context(ledger_sequencer(prepared.env))
            bare_pid = stack.enter_context(serve("bare:bare_app", bare_port, threads, {}))
            txs[server] = (pid, sequencer_pid, transaction_work(bank), bare_pid, transaction.bare_requests(bare_port))
            warm_up(txs[server][2], 20, args.concurrency)
            warm_up(txs[server][4], 200, args.concurrency)
        for run in range(1, args.runs + 1):
            for server in servers:
                pid, sequencer_pid, work, bare_pid, bare_work = txs[server]
                tx_run = measure(pid, work, args.transactions, 0, args.concurrency, also=(sequencer_pid,))
                runs[server]["tx"].append(tx_run)
                runs[server]["bare"].append(measure(bare_pid, bare_work, args.bare_requests, 0, args.concurrency))
                tx, bare = runs[server]["tx"][-1]["cpu_per_unit"], runs[server]["bare"][-1]["cpu_per_unit"]
                print(f"  transaction run {run} {server}: {tx * 1000:.2f} ms/tx, bare {bare * 1000:.3f} ms, "
                      f"ratio {tx / bare:.1f}", file=sys.stderr, flush=True)  # fmt: skip
        stack.close()

    result: dict[str, Any] = {"bench": "servers", "runs": args.runs, "concurrency": args.concurrency, "servers": {}}
    for server in servers:
        by = runs[server]
        ratios = [t["cpu_per_unit"] / b["cpu_per_unit"] for t, b in zip(by["tx"], by["bare"], strict=True)]
        result["servers"][server] = {
            "flow": {
                "settings": describe_server(shape(server, args.flow_threads)),
                "server_cpu_ms_per_flow": round(statistics.median(r["cpu_per_unit"] for r in by["flow"]) * 1000, 2),
                "runs_ms": [round(r["cpu_per_unit"] * 1000, 2) for r in by["flow"]],
                "flows_per_second": round(statistics.median(r["per_second"] for r in by["flow"]), 1),
                "p50_ms": round(statistics.median(r["p50"] for r in by["flow"]) * 1000, 1),
                "worker_rss_mb": round(rss[server], 1),
            },
            "transaction": {
                "settings": describe_server(shape(server, args.transaction_threads)),
                "server_cpu_ms_per_transaction": round(
                    statistics.median(r["cpu_per_unit"] for r in by["tx"]) * 1000, 2
                ),
                "runs_ms": [round(r["cpu_per_unit"] * 1000, 2) for r in by["tx"]],
                "transactions_per_second": round(statistics.median(r["per_second"] for r in by["tx"]), 2),
                "bare_server_cpu_ms_per_request": round(
                    statistics.median(r["cpu_per_unit"] for r in by["bare"]) * 1000, 3
                ),
                "bare_runs_ms": [round(r["cpu_per_unit"] * 1000, 3) for r in by["bare"]],
                "ratio_to_bare_request": round(statistics.median(ratios), 1),
                "ratio_runs": [round(r, 1) for r in ratios],
            },
        }
    result["machine"] = machine()
    result["date"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "servers.json").write_text(json.dumps(result, indent=2) + "\n")
    for server, figures in result["servers"].items():
        flow, tx = figures["flow"], figures["transaction"]
        print(
            f"servers: {server}: flow {flow['server_cpu_ms_per_flow']} ms/flow {flow['runs_ms']}, "
            f"{flow['flows_per_second']} flows/s, RSS {flow['worker_rss_mb']} MB; "
            f"transaction {tx['server_cpu_ms_per_transaction']} ms/tx {tx['runs_ms']}, "
            f"bare {tx['bare_server_cpu_ms_per_request']} ms {tx['bare_runs_ms']}, "
            f"ratio {tx['ratio_to_bare_request']} {tx['ratio_runs']}"
        )


if __name__ == "__main__":
    main()
