"""What the gunicorn benchmarks share: a fresh PostgreSQL database, a served app, CPU and memory from /proc.

Server CPU is user + system time of gunicorn's master and workers, read from /proc before and after
the measured work: it counts what the server spent, not the load generator on the same machine.
"""

from __future__ import annotations

import argparse
import contextlib
import os
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
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def fresh_database(server_url: str, name: str) -> str:
    """Drop and create database *name* on the server; return its URL."""
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


def free_port() -> int:
    """Return a free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_pids(master_pid: int) -> list[int]:
    """Return gunicorn's master and its workers."""
    children = Path(f"/proc/{master_pid}/task/{master_pid}/children")
    return [master_pid] + ([int(p) for p in children.read_text().split()] if children.exists() else [])


def server_cpu_seconds(master_pid: int) -> float:
    """Return user + system CPU seconds of gunicorn's master and workers so far."""
    total = 0
    for pid in server_pids(master_pid):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / CLOCK_TICKS


def server_cpu_ns(master_pid: int) -> int:
    """Return the CPU time of gunicorn's master and workers so far, in ns (precise: /proc schedstat)."""
    total = 0
    for pid in server_pids(master_pid):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(FileNotFoundError, ProcessLookupError):  # a thread that just ended
                total += int((task / "schedstat").read_text().split()[0])
    return total


def worker_rss_mb(master_pid: int) -> float:
    """Return the largest resident memory of a worker, in MB."""
    children = Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text().split()
    sizes = []
    for pid in children:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                sizes.append(int(line.split()[1]) / 1024)
    return max(sizes) if sizes else 0.0


@contextmanager
def gunicorn(app: str, port: int, args: argparse.Namespace, env: dict[str, str]) -> Iterator[int]:
    """Serve *app* with gunicorn (gthread) on *port*; yield the master's pid once it answers."""
    process = subprocess.Popen(
        [str(Path(sys.executable).with_name("gunicorn")), "-w", str(args.workers), "-k", "gthread",
         "--threads", str(args.threads), "-b", f"127.0.0.1:{port}", "--log-level", "warning", app],
        env={**os.environ, **env, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'bench'}"},
        cwd=ROOT,
    )  # fmt: skip
    try:
        for _ in range(150):
            try:
                requests.get(f"http://127.0.0.1:{port}/", timeout=5)
                break
            except requests.RequestException:
                time.sleep(0.2)
        yield process.pid
    finally:
        process.terminate()
        process.wait(timeout=30)


def measure(pid: int, work: Callable[[object], float], count: int, warmup: int, concurrency: int) -> dict[str, float]:
    """Run *warmup* then *count* units of *work*; return wall time, latencies and server CPU."""
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(work, range(warmup)))
        cpu_before = server_cpu_seconds(pid)
        started = time.perf_counter()
        latencies = list(pool.map(work, range(count)))
        wall = time.perf_counter() - started
        cpu = server_cpu_seconds(pid) - cpu_before
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
