"""Fault bench: full transactions against two platform nodes while their parts are broken (issue 14).

Two platform nodes (the production server, gunicorn with gthread workers, as
tests/factories/served.py runs it; `--server uwsgi|granian` for the others) share one
PostgreSQL database and one Redis (the rate-limit store), each reached through a TCP proxy
(tests/factories/proxy.py), behind a round-robin TCP balancer whose address is the issuer. 4 load
threads run complete transactions (PAR, login with the eID card, consent, token, delivery of three
datasets from the sandbox agencies mounted in the nodes, package decrypted and verified) for
``--duration`` seconds while the bench:

* kills a worker with SIGKILL three times (nodes 1, 2, 1; the server's main process starts another);
* cuts the database for 5 s (the proxy drops every connection and refuses new ones);
* stops the rate-limit store for 10 s (the same, in front of Redis).

Then it stops the nodes (SIGTERM) and reports: transactions ok and failed by cause (the HTTP status
and error code of the answer that failed it, or the connection error), the 500s, the seconds to
recover after each fault (from the end of the fault to the end of the first transaction begun after
it that succeeded), `mydata ledger verify`, ledger gaps (seq 0..n-1), double deliveries (consents
with more than one `delivery.completed` entry), stranded consents after one `mydata consents sweep
--once` (past their end yet not expired, or still held by a transaction), tracebacks in the nodes'
logs, and worker RSS at the start and the end.

The bar: no 500 at all, no gap, no double delivery, no stranded consent, recovery within 5 s of each
fault's end.

    python bench/faults.py [--duration 180] [--quick] [--server gunicorn|uwsgi|granian]

Writes bench/results/faults.json. MYDATA_BENCH_DATABASE_URL names another PostgreSQL server (a
database mydata_bench_faults is dropped and recreated there), MYDATA_BENCH_REDIS_URL another Redis
(default redis://127.0.0.1:6379/1; the bench only adds rate-limit counters to it).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from mydata.db import get_db  # noqa: E402
from tests.factories.proxy import TcpProxy  # noqa: E402
from tests.factories.served import (  # noqa: E402
    PRODUCTION_SERVER,
    AppServer,
    Bank,
    free_port,
    fresh_database,
    ledger_facts,
    prepare_platform,
    stranded_consents,
)

RESULTS = ROOT / "bench" / "results"
DEFAULT_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS = "redis://127.0.0.1:6379/1"
RECOVERY_BAR = 5.0


class Balancer(TcpProxy):
    """A round-robin TCP balancer before the nodes: each new connection goes to the next node."""

    def __init__(self, ports: list[int]) -> None:
        self._targets = itertools.cycle([("127.0.0.1", port) for port in ports])
        super().__init__("127.0.0.1", ports[0])

    @property  # type: ignore[override]
    def target(self) -> tuple[str, int]:
        return next(self._targets)

    @target.setter
    def target(self, _: tuple[str, int]) -> None:
        pass


class ProxyProcess:
    """A proxy (or the balancer) in a process of its own: in this one, the load threads' GIL would slow every byte.

    It says its port on its first line, and answers ``ok`` to each command: ``close`` (the outage
    begins) and ``open`` (it ends).
    """

    def __init__(self, targets: list[tuple[str, int]]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--serve-proxy", json.dumps(targets)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            cwd=ROOT,
        )
        assert self.process.stdout is not None
        self.port = int(self.process.stdout.readline())

    @classmethod
    def to(cls, url: str, default_port: int) -> ProxyProcess:
        """Return a proxy to the server of *url*."""
        parsed = make_url(url)
        return cls([(parsed.host or "127.0.0.1", parsed.port or default_port)])

    def url(self, url: str) -> str:
        """Return *url* pointed at this proxy."""
        return make_url(url).set(host="127.0.0.1", port=self.port).render_as_string(hide_password=False)

    def close(self) -> None:
        """Drop every connection and refuse new ones."""
        self._say("close")

    def open(self) -> None:
        """Accept connections again."""
        self._say("open")

    def _say(self, command: str) -> None:
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        if self.process.stdout.readline().strip() != "ok":
            raise RuntimeError(f"the proxy did not {command}")

    def stop(self) -> None:
        """End the proxy's process."""
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=30)


def serve_proxy(targets: list[tuple[str, int]]) -> None:
    """Run one proxy (one target) or the balancer (several) until stdin closes; obey its commands."""
    proxy = TcpProxy(*targets[0]) if len(targets) == 1 else Balancer([port for _, port in targets])
    proxy.open()
    print(proxy.port, flush=True)
    for line in sys.stdin:
        if line.strip() == "close":
            proxy.close()
        elif line.strip() == "open":
            proxy.open()
        print("ok", flush=True)
    proxy.close()


@dataclass
class Outcome:
    """One transaction: when it began and ended, and why it failed (empty if it did not)."""

    began: float
    ended: float
    cause: str = ""


@dataclass
class Fault:
    """One fault: its name, and when it began and ended (seconds since the run began)."""

    name: str
    began: float
    ended: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)


class Load:
    """The load threads: full transactions until told to stop, each outcome kept with its cause."""

    def __init__(self, bank: Bank, clients: int) -> None:
        self.bank = bank
        self.clients = clients
        self.outcomes: list[Outcome] = []
        self.statuses: Counter[str] = Counter()  # every 4xx and 5xx answer seen, failed transaction or not
        self.stop = threading.Event()
        self._lock = threading.Lock()
        self._local = threading.local()
        self.started = 0.0

    def record(self, response: requests.Response, *args: object, **kwargs: object) -> None:
        """Response hook: remember this transaction's first error answer (the one that failed it)."""
        if response.status_code < 400:
            return
        code = ""
        if response.headers.get("Content-Type", "").startswith("application/json"):
            try:
                code = str(response.json().get("error", ""))
            except ValueError:
                code = ""
        elif response.headers.get("Content-Type", "").startswith("text/html"):
            code = "(page)"
        cause = f"HTTP {response.status_code}" + (f" {code}" if code else "")
        with self._lock:
            self.statuses[cause] += 1
        if not getattr(self._local, "cause", ""):
            self._local.cause = cause

    def run(self) -> None:
        """Run transactions on this thread until stopped."""
        client = self.bank.client()
        if self.record not in client.http.hooks["response"]:
            client.http.hooks["response"].append(self.record)
        while not self.stop.is_set():
            self._local.cause = ""
            began = time.monotonic() - self.started
            try:
                self.bank.transaction(hooks=[self.record])
                cause = ""
            except requests.ConnectionError:
                cause = self._local.cause or "connection error"
            except requests.Timeout:
                cause = self._local.cause or "timeout"
            except Exception as exc:  # an error answer (recorded by the hook), or a bug
                cause = self._local.cause or type(exc).__name__
            with self._lock:
                self.outcomes.append(Outcome(began, time.monotonic() - self.started, cause))
            if cause:
                time.sleep(0.2)  # a bank waits a moment before it tries again

    def start(self) -> list[threading.Thread]:
        """Start the load threads."""
        self.started = time.monotonic()
        threads = [threading.Thread(target=self.run, name=f"client-{n}") for n in range(self.clients)]
        for thread in threads:
            thread.start()
        return threads

    def now(self) -> float:
        """Return the seconds since the load began."""
        return time.monotonic() - self.started

    def recovery(self, fault: Fault) -> float | None:
        """Return the seconds from *fault*'s end to the end of the first transaction begun after it that succeeded."""
        with self._lock:
            ends = [o.ended for o in self.outcomes if not o.cause and o.began >= fault.ended]
        return round(min(ends) - fault.ended, 2) if ends else None


def worker_rss_mb(node: AppServer) -> list[float]:
    """Return the resident memory of each of a node's workers, in MB."""
    sizes = []
    for pid in node.workers():
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    sizes.append(round(int(line.split()[1]) / 1024, 1))
        except (FileNotFoundError, ProcessLookupError):
            pass
    return sizes


def mydata(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run the `mydata` command with the platform's settings."""
    return subprocess.run(
        [str(Path(sys.executable).with_name("mydata")), *args],
        env={**os.environ, **env, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )


def wait_until(load: Load, moment: float) -> None:
    """Sleep until *moment* seconds after the load began."""
    time.sleep(max(0.0, moment - load.now()))


def main() -> None:
    """Run the bench."""
    if len(sys.argv) == 3 and sys.argv[1] == "--serve-proxy":
        serve_proxy([(host, int(port)) for host, port in json.loads(sys.argv[2])])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=180.0, help="seconds of load (default 180)")
    parser.add_argument("--quick", action="store_true", help="40 seconds, to try the bench")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--server", choices=("gunicorn", "uwsgi", "granian"), default=PRODUCTION_SERVER)
    args = parser.parse_args()
    duration = 40.0 if args.quick else args.duration

    server_url = os.environ.get("MYDATA_BENCH_DATABASE_URL", DEFAULT_SERVER)
    redis_url = os.environ.get("MYDATA_BENCH_REDIS_URL", DEFAULT_REDIS)
    database_url = fresh_database(server_url, "mydata_bench_faults")
    ports = [free_port() for _ in range(2)]
    db_proxy, redis_proxy = ProxyProcess.to(database_url, 5432), ProxyProcess.to(redis_url, 6379)
    balancer = ProxyProcess([("127.0.0.1", port) for port in ports])
    with tempfile.TemporaryDirectory() as folder:
        issuer = f"http://127.0.0.1:{balancer.port}"
        prepared = prepare_platform(
            database_url,
            Path(folder),
            issuer,
            {
                "MYDATA_DATABASE_URL": db_proxy.url(database_url),
                "MYDATA_RATELIMIT_STORAGE_URI": redis_proxy.url(redis_url),
            },
        )
        get_db(prepared.app).engine.dispose()
        logs = [Path(folder) / f"node{n + 1}.log" for n in range(2)]
        nodes = [
            AppServer(port, prepared.env, server=args.server, workers=args.workers, threads=args.threads, log=log)
            for port, log in zip(ports, logs, strict=True)
        ]
        for node in nodes:
            node.wait_ready(workers=args.workers)
        bank = Bank.of(prepared)
        for _ in range(3):  # warm the nodes and the bank's caches
            bank.transaction()
        load = Load(bank, args.clients)
        threads = load.start()
        time.sleep(min(10.0, duration * 0.1))
        rss_start = [worker_rss_mb(node) for node in nodes]

        faults: list[Fault] = []
        for number, (share, node_index) in enumerate(((0.12, 0), (0.22, 1), (0.32, 0)), start=1):
            wait_until(load, duration * share)
            node = nodes[node_index]
            victim = node.workers()[0]
            os.kill(victim, signal.SIGKILL)
            moment = load.now()
            faults.append(Fault(f"SIGKILL {number} (node {node_index + 1})", moment, moment, {"pid": victim}))

        wait_until(load, duration * 0.42)
        fault = Fault("database cut 5 s", load.now())
        db_proxy.close()
        time.sleep(5)
        db_proxy.open()
        fault.ended = load.now()
        faults.append(fault)

        wait_until(load, duration * 0.62)
        fault = Fault("rate-limit store stopped 10 s", load.now())
        redis_proxy.close()
        time.sleep(10)
        redis_proxy.open()
        fault.ended = load.now()
        faults.append(fault)

        wait_until(load, duration)
        rss_end = [worker_rss_mb(node) for node in nodes]
        load.stop.set()
        for thread in threads:
            thread.join(timeout=60)
        ran = load.now()
        statuses = [node.stop(timeout=60) for node in nodes]

        direct = {**prepared.env, "MYDATA_DATABASE_URL": database_url, "MYDATA_RATELIMIT_STORAGE_URI": "memory://"}
        verified = mydata(direct, "ledger", "verify")
        facts = ledger_facts(database_url)
        swept = mydata(direct, "consents", "sweep", "--once")
        stranded = stranded_consents(database_url)
        tracebacks = sum(log.read_text(errors="replace").count("Traceback") for log in logs)
        if tracebacks:  # kept for whoever looks into them
            for log in logs:
                (RESULTS / f"faults-{log.name}").write_text(log.read_text(errors="replace"))
    for proxy in (db_proxy, redis_proxy, balancer):
        proxy.stop()

    outcomes = load.outcomes
    ok = sum(1 for o in outcomes if not o.cause)
    failed = Counter(o.cause for o in outcomes if o.cause)
    recoveries = {f.name: load.recovery(f) for f in faults}
    server_errors = sum(count for cause, count in load.statuses.items() if cause.startswith("HTTP 500"))
    stranded_total = sum(stranded.values())
    bar = {
        "no 500": server_errors == 0,
        "no gap": facts.gaps == 0,
        "no double delivery": facts.doubles == 0,
        "no stranded consent after one sweep": stranded_total == 0,
        f"recovery within {RECOVERY_BAR:g} s": all(r is not None and r <= RECOVERY_BAR for r in recoveries.values()),
        "ledger verifies": verified.returncode == 0,
    }
    result = {
        "bench": "faults",
        "duration_s": round(ran, 1),
        "clients": args.clients,
        "nodes": f"2 x {args.server} {args.workers} workers x {args.threads} threads, round-robin balancer",
        "transactions": {"ok": ok, "failed": sum(failed.values()), "per_second": round(ok / ran, 2)},
        "failed_by_cause": dict(failed.most_common()),
        "error_answers_seen": dict(load.statuses.most_common()),
        "http_500": server_errors,
        "faults": [
            {
                "fault": f.name,
                "began_s": round(f.began, 1),
                "ended_s": round(f.ended, 1),
                "recovered_after_s": recoveries[f.name],
            }
            for f in faults
        ],
        "ledger_verify": {"exit": verified.returncode, "output": (verified.stdout + verified.stderr).strip()[-400:]},
        "ledger": {"size": facts.size, "gaps": facts.gaps, "double_deliveries": facts.doubles},
        "consents": facts.statuses,
        "sweep": (swept.stdout + swept.stderr).strip(),
        "stranded_after_sweep": stranded,
        "tracebacks_logged": tracebacks,
        "node_exit_statuses": statuses,
        "worker_rss_mb": {"start": rss_start, "end": rss_end, "growth_percent": rss_growth(rss_start, rss_end)},
        "bar": bar,
        "failed_transactions": [
            f"{o.began:.2f}-{o.ended:.2f} s: {o.cause}" for o in sorted(outcomes, key=lambda o: o.began) if o.cause
        ],
        "bar_met": all(bar.values()),
        "machine": {
            "name": platform.node(),
            "cpu": cpu_model(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / ("faults-quick.json" if args.quick else "faults.json")).write_text(json.dumps(result, indent=2) + "\n")
    if tracebacks:
        print(f"{tracebacks} tracebacks in the nodes' logs: see bench/results/faults-node*.log", file=sys.stderr)
    print(
        f"faults: {ok} ok, {result['transactions']['failed']} failed {dict(failed)}; 500s {server_errors}; "
        f"recovery {recoveries}; ledger verify exit {verified.returncode}, gaps {facts.gaps}, "
        f"doubles {facts.doubles}; stranded after sweep {stranded}; tracebacks {tracebacks}; "
        f"worker RSS {result['worker_rss_mb']}; bar {'met' if result['bar_met'] else 'NOT met: ' + str(bar)}"
    )


def rss_growth(start: list[list[float]], end: list[list[float]]) -> float | None:
    """Return the growth of the largest worker's RSS, in percent, from the start to the end."""
    first = max((size for sizes in start for size in sizes), default=0.0)
    last = max((size for sizes in end for size in sizes), default=0.0)
    return round((last - first) / first * 100, 1) if first else None


def cpu_model() -> str:
    """Return the CPU's model name from /proc/cpuinfo."""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return ""


if __name__ == "__main__":
    main()
