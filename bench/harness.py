"""What the served benchmarks share: a fresh PostgreSQL database, a served app, CPU and memory from /proc.

The app is served by one of three WSGI servers (`--server`, see :func:`add_server_options`): gunicorn
with gthread workers, granian (WSGI interface) or uWSGI (pyuwsgi), each with the same number of
worker processes and threads per worker. Server CPU is user + system time of the server's main
process and all its descendants (workers), read from /proc before and after the measured work: it
counts what the server spent, not the load generator on the same machine.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import requests

from tests.factories.served import fresh_database as create_database

ROOT = Path(__file__).resolve().parent.parent
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


#: The PostgreSQL server of the benches' databases, unless MYDATA_BENCH_DATABASE_URL names another.
DATABASE_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def fresh_database(name: str) -> str:
    """Drop and create database *name* on the benches' PostgreSQL server; return its URL.

    The server is ``MYDATA_BENCH_DATABASE_URL``'s, else :data:`DATABASE_SERVER`.
    ``MYDATA_BENCH_DATABASE_SUFFIX`` is appended to the name, so that benches run by several people
    on one PostgreSQL server at once do not drop each other's database.
    """
    server_url = os.environ.get("MYDATA_BENCH_DATABASE_URL", DATABASE_SERVER)
    return create_database(server_url, name + os.environ.get("MYDATA_BENCH_DATABASE_SUFFIX", ""))


def free_port() -> int:
    """Return a free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


SERVERS = ("gunicorn", "granian", "uwsgi")
DEFAULT_SERVER = "gunicorn"


def children_of(pid: int) -> list[int]:
    """Return the direct children of *pid* (all its threads' children)."""
    found: list[int] = []
    with contextlib.suppress(FileNotFoundError, ProcessLookupError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(FileNotFoundError, ProcessLookupError):
                found += [int(p) for p in (task / "children").read_text().split()]
    return found


def server_pids(master_pid: int) -> list[int]:
    """Return the server's main process and all its descendants (its workers)."""
    pids, queue = [], [master_pid]
    while queue:
        pid = queue.pop()
        pids.append(pid)
        queue += children_of(pid)
    return pids


def worker_pids(master_pid: int) -> list[int]:
    """Return the server's descendants (its workers)."""
    return server_pids(master_pid)[1:]


def server_cpu_seconds(master_pid: int) -> float:
    """Return user + system CPU seconds of the server's main process and workers so far."""
    total = 0
    for pid in server_pids(master_pid):
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / CLOCK_TICKS


def server_cpu_ns(master_pid: int) -> int:
    """Return the CPU time of the server's main process and workers so far, in ns (precise: /proc schedstat)."""
    total = 0
    for pid in server_pids(master_pid):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(FileNotFoundError, ProcessLookupError):  # a thread that just ended
                total += int((task / "schedstat").read_text().split()[0])
    return total


def worker_rss_mb(master_pid: int) -> float:
    """Return the largest resident memory of a worker, in MB."""
    sizes = []
    for pid in worker_pids(master_pid):
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    sizes.append(int(line.split()[1]) / 1024)
    return max(sizes) if sizes else 0.0


def add_server_options(parser: argparse.ArgumentParser, threads: int) -> None:
    """Add the options that choose and size the WSGI server: --server, --workers, --threads."""
    parser.add_argument(
        "--server", choices=SERVERS, default=DEFAULT_SERVER, help="the WSGI server (default: %(default)s)"
    )
    parser.add_argument("--workers", type=int, default=2, help="worker processes (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=threads, help="threads per worker (default: %(default)s)")


def describe_server(args: argparse.Namespace) -> str:
    """Return the server and its shape in words, for the results."""
    kind = {"gunicorn": "gunicorn (gthread)", "granian": "granian (WSGI)", "uwsgi": "uWSGI (pyuwsgi)"}[args.server]
    return f"{kind}, {args.workers} workers x {args.threads} threads"


def server_command(factory: str, port: int, args: argparse.Namespace) -> list[str]:
    """Return the command that serves the WSGI app built by *factory* ("module:function") on *port*."""
    bin_dir = Path(sys.executable).parent
    workers, threads = str(args.workers), str(args.threads)
    if args.server == "gunicorn":
        return [str(bin_dir / "gunicorn"), "-w", workers, "-k", "gthread", "--threads", threads,
                "-b", f"127.0.0.1:{port}", "--log-level", "warning", f"{factory}()"]  # fmt: skip
    if args.server == "granian":
        return [str(bin_dir / "granian"), "--interface", "wsgi", "--factory", "--workers", workers,
                "--blocking-threads", threads, "--runtime-threads", "1", "--host", "127.0.0.1",
                "--port", str(port), "--log-level", "warning", "--no-ws", "--http", "1", factory]  # fmt: skip
    # uWSGI: keep-alive HTTP/1.1 on the socket itself (no router process), the app built in each
    # worker after the fork (--lazy-apps, as gunicorn and granian do), SIGTERM a graceful stop.
    return [str(bin_dir / "uwsgi"), "--master", "--processes", workers, "--threads", threads,
            "--http11-socket", f"127.0.0.1:{port}", "--lazy-apps", "--need-app", "--single-interpreter",
            "--hook-master-start", "unix_signal:15 gracefully_kill_them_all", "--listen", "1024",
            "--disable-logging", "--log-4xx", "--log-5xx", "--module", f"{factory}()"]  # fmt: skip


def stop(process: subprocess.Popen[bytes]) -> None:
    """Stop *process* with SIGTERM (SIGKILL if it is still there 30 s later) and reap it."""
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


@contextmanager
def serve(factory: str, port: int, args: argparse.Namespace, env: dict[str, str], root: Path = ROOT) -> Iterator[int]:
    """Serve the app of *factory* with ``args.server`` on *port*; yield the main pid once every worker answers.

    The code served is that of the checkout at *root* (another revision's, for bench/paired.py).
    """
    process = subprocess.Popen(
        server_command(factory, port, args),
        env={**os.environ, **env, "PYTHONPATH": f"{root}{os.pathsep}{root / 'bench'}"},
        cwd=root,
    )
    try:
        http = requests.Session()
        http.trust_env = False
        for _ in range(300):
            if process.poll() is not None:
                raise RuntimeError(f"{args.server} exited with status {process.returncode}")
            try:
                http.get(f"http://127.0.0.1:{port}/", timeout=5)
                if len(worker_pids(process.pid)) >= args.workers:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.2)
        else:
            raise RuntimeError(f"{args.server} did not answer with {args.workers} workers within 60 s")
        yield process.pid
    finally:
        stop(process)


@contextmanager
def ledger_sequencer(env: dict[str, str], root: Path = ROOT) -> Iterator[int]:
    """Run `mydata ledger sequencer` as production does beside the server; yield its pid.

    With ``ledger_sequencing = "sequencer"`` (production) a transaction only queues its ledger
    entries and this process integrates them: its CPU is part of what a transaction costs. The code
    run is that of the checkout at *root*.
    """
    process = subprocess.Popen(
        [str(Path(sys.executable).with_name("mydata")), "ledger", "sequencer"],
        env={**os.environ, **env, "MYDATA_LEDGER_SEQUENCING": "sequencer", "PYTHONPATH": str(root)},
        cwd=root,
    )
    try:
        time.sleep(1)
        if process.poll() is not None:
            raise RuntimeError(f"the ledger sequencer exited with status {process.returncode}")
        yield process.pid
    finally:
        stop(process)


def warm_up(work: Callable[[object], float], count: int, concurrency: int) -> None:
    """Run *count* units of *work*, *concurrency* at a time, and forget their figures."""
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(work, range(count)))


def machine() -> dict[str, object]:
    """Return what the figures were measured on: CPU model, CPUs, memory, Python, OS, load."""
    model = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")),
        platform.processor(),
    )  # fmt: skip
    memory = next(
        line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")
    )
    return {
        "cpu_model": model,
        "nproc": len(os.sched_getaffinity(0)),
        "memory_gib": round(int(memory) / 1024 / 1024, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def measure(
    pid: int,
    work: Callable[[object], float],
    count: int,
    warmup: int,
    concurrency: int,
    *,
    also: tuple[int, ...] = (),
) -> dict[str, float]:
    """Run *warmup* then *count* units of *work*; return wall time, latencies and server CPU.

    The server CPU is the server's (main process and workers) plus that of the processes in *also*
    (e.g. the ledger sequencer, which does part of each transaction's work).
    """

    def cpu_seconds() -> float:
        return server_cpu_seconds(pid) + sum(server_cpu_seconds(other) for other in also)

    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(work, range(warmup)))
        cpu_before = cpu_seconds()
        started = time.perf_counter()
        latencies = list(pool.map(work, range(count)))
        wall = time.perf_counter() - started
        cpu = cpu_seconds() - cpu_before
    return {
        "per_second": count / wall,
        "p50": statistics.median(latencies),
        "p95": percentile(latencies, 0.95),
        "p99": percentile(latencies, 0.99),
        "cpu_per_unit": cpu / count,
    }


def percentile(values: list[float], share: float) -> float:
    """Return the *share* percentile (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]
