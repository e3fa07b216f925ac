"""Benchmark of the transparency ledger (DESIGN §10): appends, proofs and full verification by size.

For each backend (PostgreSQL, then SQLite) the ledger is grown to 10^4, 10^5 and 10^6 entries and,
at each size, measured with:

* real appends, each through the service and a unit of work in its own transaction (the median
  of several rounds), integrated inline (``ledger_sequencing = "inline"``: one lock on the head
  per append);
* on PostgreSQL, at the first size, the sequenced design (docs/decisions/0011): 1, 2 and 4 client
  processes each queue entries (an append = the queue insert in its own unit of work + commit)
  while a sequencer process integrates them beside them; it reports appends/s, integrated
  leaves/s and the maximum merge delay seen (entry time to the commit of its batch, which signs
  the tree head covering it), and also the inline appends with 2 and 4 clients;
* inclusion and consistency proofs and the root of a random tree size (median, p95);
* the full audit (`mydata ledger verify`), with one and with two worker processes (logs shorter
  than ``consent.audit.PARALLEL_FROM`` are replayed in one process either way).

Growing the log uses a bulk path that writes exactly the rows appends would write (entries,
every completed subtree from ``CompactRange.append``, the head, a signed tree head whenever an
append would sign one), so that 10^6 entries take minutes, not hours; the audit at each size
checks that those rows are right. For reference it also measures the floor any locked append
pays here: a transaction that locks one row, updates it and commits, through the same kernel
unit of work.

PostgreSQL: a throwaway database is created on the server of ``MYDATA_BENCH_DATABASE_URL``
(default the local one) and dropped at the end. Prints one summary line and writes
bench/results/ledger.json.

    make bench, or: PYTHONPATH=. .venv/bin/python bench/ledger.py [--sizes 10000,100000,1000000]
                    [--backends postgresql,sqlite] [--clients 1,2,4]
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import multiprocessing
import os
import platform
import random
import secrets
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import rfc8785
from sqlalchemy import create_engine, insert, text, update
from sqlalchemy.engine import make_url

from consent import merkle, sequencer
from consent.audit import verify_ledger
from consent.ledger import (
    BLOCK_LEVELS,
    SALT_BYTES,
    SEQUENCER_BATCH,
    LedgerEvent,
    ledger,
    parse_rfc3339,
    read_head,
    rfc3339,
    subject_commitment,
)
from consent.models import LedgerEntry, LedgerHead, LedgerNode
from consent.sequencer import integrate_once
from mydata.app import create_app
from mydata.cli import upgrade
from mydata.config import Settings
from mydata.db import get_db
from mydata.keys import key_store

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "ledger.json"
DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
CITIZENS = ("A123456789", "B223456782", "F135792464", "E224680132", "H120000004", "L200000002")
DATASETS = ("household.registration", "tax.income", "tax.property", "labor.insurance", "nhi.enrolment")
APPEND_ROUNDS = 7
APPENDS_PER_ROUND = 300
PROOFS = 400
BULK_CHUNK = 20_000
CONCURRENT_APPENDS = 2000
"""Appends each client process commits in a concurrent measurement: seconds of steady work, not one.

With 600 (until 2026-12-05) a run of 4 clients lasted about a second, and the same code measured
anything from 1,500 to 2,700 appends/s from one run to the next on the 2-core machine."""
CLIENT_WARMUP = 200
"""Appends each client process commits before the measured ones (its connection, caches, statements warm)."""
SEQUENCER_POLL = sequencer.INTERVAL


def event(n: int) -> LedgerEvent:
    """Return a realistic event: a delivery of two or three datasets to one of the sandbox banks' clients."""
    rng = random.Random(n)
    datasets = tuple(sorted(rng.sample(DATASETS, rng.choice((2, 3)))))
    return LedgerEvent(
        event="delivery.completed",
        actor=f"client-{rng.randrange(40):03d}",
        subject_national_id=CITIZENS[n % len(CITIZENS)],
        service=f"rp-{rng.randrange(40):03d}.service",
        datasets=datasets,
        consent_id=uuid.UUID(int=rng.getrandbits(128)).hex,
        document_hashes={d: secrets.token_hex(32) for d in datasets},
    )


def settings_for(url: str, instance: Path, master_key: str) -> Settings:
    """Return the settings of the benchmarked platform (default tree head cadence)."""
    return Settings(
        instance_path=instance, sandbox=True, database_url=url, master_key=master_key, secret_key="b" * 48,
        issuer="http://bench.test",
    )  # fmt: skip


# --- Growing the log -----------------------------------------------------------------------------


def bulk_grow(app: Any, target: int) -> None:
    """Grow the ledger to *target* entries, writing exactly the rows the appends would write."""
    with app.app_context(), get_db().unit_of_work() as uow:
        log = ledger(uow)
        connection = uow.session.connection()
        head = read_head(connection)
        size, frontier = head.tree_size, head.frontier
        sth_size = head.sth_tree_size
        while size < target:
            # Each chunk ends where an append would sign a tree head: the first append signs, then
            # every ledger_sth_every_entries entries.
            limit = size + 1 if sth_size is None else sth_size + log.policy.every_entries
            stop = min(target, size + BULK_CHUNK, limit)
            entries, nodes = [], []
            now = rfc3339(log.clock.now())
            for seq in range(size, stop):
                item = event(seq)
                # The entry as an append writes it. The case's private opening row is left out: an
                # append writes it before taking the head lock, and proofs and the audit never read it.
                subject = subject_commitment(item.subject_national_id or "", secrets.token_bytes(SALT_BYTES))
                leaf_input = rfc8785.dumps(item.entry(seq, now, subject))
                frontier, completed = frontier.append(merkle.leaf_hash(leaf_input))
                entries.append((seq, leaf_input, subject, item.consent_id))
                nodes.extend((seq * BLOCK_LEVELS + level, block.hash) for level, block in enumerate(completed))
            _bulk_insert(connection, entries, nodes)
            connection.execute(update(LedgerHead).values(tree_size=frontier.size, frontier=b"".join(frontier.hashes)))
            size = stop
            if sth_size is None or size - sth_size >= log.policy.every_entries:
                sth_size = log.sign_tree_head().tree_size
            uow.commit()
            connection = uow.session.connection()
    if make_url(get_db(app).url).get_backend_name() == "postgresql":
        # What autovacuum does on a live system: statistics for the planner.
        with get_db(app).engine.connect() as connection:
            connection.execute(text("ANALYZE consent_ledger_entry, consent_ledger_node, consent_signed_tree_head"))
            connection.commit()


def _bulk_insert(connection: Any, entries: list[tuple[Any, ...]], nodes: list[tuple[Any, ...]]) -> None:
    if connection.dialect.name == "postgresql":
        raw = connection.connection.driver_connection
        with raw.cursor() as cursor:
            with cursor.copy("COPY consent_ledger_entry (seq, leaf_input, subject, consent_id) FROM STDIN") as copy:
                for row in entries:
                    copy.write_row(row)
            with cursor.copy("COPY consent_ledger_node (block, hash) FROM STDIN") as copy:
                for row in nodes:
                    copy.write_row(row)
        return
    connection.execute(
        insert(LedgerEntry),
        [dict(zip(("seq", "leaf_input", "subject", "consent_id"), r, strict=True)) for r in entries],
    )
    connection.execute(insert(LedgerNode), [dict(zip(("block", "hash"), r, strict=True)) for r in nodes])


# --- Measurements --------------------------------------------------------------------------------


def measure_appends(app: Any, start: int) -> dict[str, float]:
    """Time real appends, one transaction each; return the median seconds per append and appends/s."""
    rounds = []
    n = start
    with app.app_context():
        for _ in range(APPEND_ROUNDS):
            # The services build their events; only the append and its transaction are timed.
            events = [event(n + i) for i in range(APPENDS_PER_ROUND)]
            began = time.perf_counter()
            for item in events:
                with get_db().unit_of_work() as uow:
                    ledger(uow).append(item)
                    uow.commit()
            rounds.append((time.perf_counter() - began) / APPENDS_PER_ROUND)
            n += APPENDS_PER_ROUND
    median = statistics.median(rounds)
    return {"seconds_per_append": median, "appends_per_second": 1 / median, "appends": n - start}


def measure_floor(app: Any) -> dict[str, float]:
    """Time the cheapest locked write transaction through the kernel's unit of work: lock one row, update, commit."""
    rounds = []
    with app.app_context():
        for _ in range(APPEND_ROUNDS):
            began = time.perf_counter()
            for _ in range(APPENDS_PER_ROUND):
                with get_db().unit_of_work() as uow:
                    _lock_and_touch(uow)
                    uow.commit()
            rounds.append((time.perf_counter() - began) / APPENDS_PER_ROUND)
    median = statistics.median(rounds)
    return {"seconds_per_transaction": median, "transactions_per_second": 1 / median}


def _lock_and_touch(uow: Any) -> None:
    connection = uow.session.connection()
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT sth_tree_size FROM consent_ledger_head WHERE id = 1 FOR UPDATE")).one()
    connection.execute(text("UPDATE consent_ledger_head SET sth_tree_size = sth_tree_size WHERE id = 1"))


def _client(settings: Settings, barrier: Any, count: int, offset: int, floor: bool, out: Any) -> None:
    app = create_app(settings)
    with app.app_context():
        events = [event(offset + n) for n in range(count + CLIENT_WARMUP)]

        def write(n: int) -> None:
            with get_db().unit_of_work() as uow:
                if floor:
                    _lock_and_touch(uow)
                else:
                    # Inline: queue and integrate under the head lock; sequencer: queue only.
                    ledger(uow).record(events[n])
                uow.commit()

        for n in range(CLIENT_WARMUP):
            write(n)
        barrier.wait()
        # Wall-clock times: the sequencer process compares them with its own.
        began = time.time()
        for n in range(CLIENT_WARMUP, count + CLIENT_WARMUP):
            write(n)
        out.put((began, time.time()))
    get_db(app).engine.dispose()


def measure_concurrent(settings: Settings, clients: int, count: int, *, floor: bool = False) -> float:
    """Return transactions per second with *clients* processes each committing *count* appends (or floor writes)."""
    spans = _run_clients(settings, clients, count, first_case=10_000_000, floor=floor)
    return clients * count / (max(end for _, end in spans) - min(start for start, _ in spans))


def _run_clients(
    settings: Settings, clients: int, count: int, *, first_case: int, floor: bool
) -> list[tuple[float, float]]:
    """Run *clients* client processes at once (each its own cases from ``first_case * (i + 1)``); return their spans."""
    context = multiprocessing.get_context("spawn")
    barrier, out = context.Barrier(clients), context.Queue()
    processes = [
        context.Process(target=_client, args=(settings, barrier, count, first_case * (i + 1), floor, out))
        for i in range(clients)
    ]
    for process in processes:
        process.start()
    spans = [out.get(timeout=600) for _ in processes]
    for process in processes:
        process.join()
    return spans


def _sequencer(settings: Settings, ready: Any, stop: Any, out: Any) -> None:
    """Integrate the queue as `mydata ledger sequencer` does, noting each batch's size, commit time and oldest entry.

    Also its own CPU time (Python; PostgreSQL's work for it is not counted).
    """
    app = create_app(settings)
    leaves = batches = 0
    worst = 0.0
    first = last = None
    busy = False
    with app.app_context():
        database = get_db()
        ready.set()
        cpu = time.process_time()
        while True:
            stopping = stop.is_set()
            began = time.monotonic()
            batch = integrate_once(database, poll=not busy)
            busy = bool(batch.entries)
            committed = time.time()
            if batch.entries:
                oldest = min(parse_rfc3339(json.loads(e.leaf_input)["time"]) for e in batch.entries)
                worst = max(worst, committed - oldest.timestamp())
                leaves += len(batch.entries)
                batches += 1
                first = first if first is not None else committed
                last = committed
            elif stopping:
                break
            if len(batch.entries) < SEQUENCER_BATCH and not stopping:
                # As `mydata ledger sequencer` does (consent.sequencer._lead): a batch that did not fill
                # up drained the queue, so the next one comes an interval after this one began.
                time.sleep(max(0.0, SEQUENCER_POLL - (time.monotonic() - began)))
        cpu = time.process_time() - cpu
    out.put({"leaves": leaves, "batches": batches, "max_merge_delay_seconds": worst, "last": last, "cpu": cpu})
    get_db(app).engine.dispose()


def measure_sequenced(settings: Settings, clients: int, count: int) -> dict[str, float]:
    """Return appends/s of *clients* processes queueing *count* entries each, with a sequencer integrating beside them.

    Appends/s is the clients' committed queue inserts per second; integrated/s counts the leaves
    the sequencer integrated from the clients' start to its last batch (it must keep up).
    """
    sequenced = settings.replace(ledger_sequencing="sequencer")
    context = multiprocessing.get_context("spawn")
    ready, stop, done = context.Event(), context.Event(), context.Queue()
    integrator = context.Process(target=_sequencer, args=(sequenced, ready, stop, done))
    integrator.start()
    ready.wait(120)
    spans = _run_clients(sequenced, clients, count, first_case=20_000_000, floor=False)
    stop.set()
    report = done.get(timeout=600)
    integrator.join()
    began, ended = min(start for start, _ in spans), max(end for _, end in spans)
    leaves = report["leaves"] - clients * CLIENT_WARMUP  # the warm-up appends were integrated too
    return {
        "appends_per_second": clients * count / (ended - began),
        "integrated_per_second": leaves / (report["last"] - began) if report["last"] else 0.0,
        "batches": report["batches"],
        "leaves_per_batch": report["leaves"] / max(report["batches"], 1),
        "max_merge_delay_seconds": report["max_merge_delay_seconds"],
        "sequencer_cpu_ms_per_leaf": report["cpu"] * 1000 / max(report["leaves"], 1),
    }


def measure_proofs(app: Any) -> dict[str, float]:
    """Time inclusion proofs, consistency proofs and roots of random sizes; return medians and p95 in ms."""
    timings: dict[str, list[float]] = {"inclusion": [], "consistency": [], "root": []}
    rng = random.Random(7)
    with app.app_context(), get_db().unit_of_work() as uow:
        log = ledger(uow)
        size = log.tree_head().tree_size
        calls: dict[str, Callable[[], object]] = {
            "inclusion": lambda: log.inclusion_proof(rng.randrange(size), size),
            "consistency": lambda: log.consistency_proof(rng.randrange(1, size), size),
            "root": lambda: log.root_at(rng.randrange(1, size + 1)),
        }
        for _ in range(PROOFS):
            for name, call in calls.items():
                began = time.perf_counter()
                call()
                timings[name].append(time.perf_counter() - began)
    result = {}
    for name, values in timings.items():
        values.sort()
        result[f"{name}_ms_median"] = statistics.median(values) * 1000
        result[f"{name}_ms_p95"] = values[int(len(values) * 0.95)] * 1000
    return result


def measure_audit(app: Any, workers: int) -> float:
    """Return entries per second of the full audit with *workers* processes."""
    with app.app_context(), get_db().unit_of_work() as uow:
        began = time.perf_counter()
        report = verify_ledger(ledger(uow), workers=workers)
        return report.tree_size / (time.perf_counter() - began)


# --- Running -------------------------------------------------------------------------------------


@contextmanager
def database(backend: str, workdir: Path) -> Iterator[str]:
    """Yield the URL of a fresh database of *backend*, removed afterwards."""
    if backend == "sqlite":
        yield f"sqlite:///{workdir / 'ledger-bench.sqlite'}"
        return
    server = os.environ.get("MYDATA_BENCH_DATABASE_URL", DEFAULT_POSTGRES)
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    name = f"mydata_ledger_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(server).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


def run_backend(backend: str, sizes: list[int], workdir: Path, clients: list[int]) -> dict[str, Any]:
    """Benchmark one backend at every size."""
    master_key = base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode()
    results: dict[str, Any] = {"sizes": {}}
    with database(backend, workdir) as url:
        settings = settings_for(url, workdir / backend, master_key)
        app = create_app(settings)
        upgrade(app)
        with app.app_context(), get_db().unit_of_work() as uow:
            key_store(uow).rotate()
        results["floor"] = measure_floor(app)
        for size in sizes:
            began = time.perf_counter()
            bulk_grow(app, size)
            grown = time.perf_counter() - began
            at: dict[str, Any] = {"grow_seconds": round(grown, 1)}
            at["append"] = measure_appends(app, size)
            at["proofs"] = measure_proofs(app)
            at["audit_entries_per_second"] = {str(w): measure_audit(app, w) for w in (1, 2)}
            if backend == "postgresql" and size == sizes[0]:
                at["sequenced"] = {str(c): measure_sequenced(settings, c, CONCURRENT_APPENDS) for c in clients}
                at["concurrent_appends_per_second"] = {
                    str(c): measure_concurrent(settings, c, CONCURRENT_APPENDS) for c in clients if c > 1
                }
                results["floor"]["concurrent_transactions_per_second"] = {
                    str(c): measure_concurrent(settings, c, CONCURRENT_APPENDS, floor=True) for c in clients if c > 1
                }
            results["sizes"][str(size)] = at
            print(f"  {backend} {size}: {json.dumps(at)}", file=sys.stderr, flush=True)
        get_db(app).engine.dispose()
    return results


def machine() -> dict[str, Any]:
    """Describe the machine the figures were taken on."""
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    memory = next(
        (line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")), "0"
    )
    server = os.environ.get("MYDATA_BENCH_DATABASE_URL", DEFAULT_POSTGRES)
    try:
        engine = create_engine(server)
        with engine.connect() as connection:
            postgres = connection.execute(text("SHOW server_version")).scalar()
        engine.dispose()
    except Exception:  # the description is best effort: no server, no version
        postgres = None
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "memory_gib": round(int(memory) / 1024 / 1024, 1),
        "python": platform.python_version(),
        "postgresql": postgres,
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "load_average_at_start": os.getloadavg(),
    }


def main() -> None:
    """Run the benchmark, print one summary line, write bench/results/ledger.json."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--backends", default="postgresql,sqlite")
    parser.add_argument("--clients", default="1,2,4", help="Concurrent client processes (PostgreSQL).")
    options = parser.parse_args()
    sizes = sorted(int(s) for s in options.sizes.split(","))
    clients = sorted(int(c) for c in options.clients.split(","))
    report: dict[str, Any] = {"machine": machine(), "sizes": sizes, "backends": {}}
    with tempfile.TemporaryDirectory() as workdir:
        for backend in options.backends.split(","):
            report["backends"][backend] = run_backend(backend, sizes, Path(workdir), clients)
    main_backend = report["backends"].get("postgresql") or next(iter(report["backends"].values()))
    small, large = main_backend["sizes"][str(sizes[0])], main_backend["sizes"][str(sizes[-1])]
    ratio = large["append"]["seconds_per_append"] / small["append"]["seconds_per_append"]
    proof_ms = max(at["proofs"]["inclusion_ms_median"] for at in main_backend["sizes"].values())
    audit = large["audit_entries_per_second"]
    sequenced = small.get("sequenced", {})
    floor = main_backend["floor"]
    report["summary"] = {
        "sequenced_appends_per_second": {c: r["appends_per_second"] for c, r in sequenced.items()},
        "sequenced_max_merge_delay_seconds": max(
            (r["max_merge_delay_seconds"] for r in sequenced.values()), default=None
        ),
        "single_client_append_to_floor": (
            sequenced["1"]["appends_per_second"] / floor["transactions_per_second"] if "1" in sequenced else None
        ),
        "append_cost_ratio_largest_to_smallest": ratio,
        "worst_median_inclusion_proof_ms": proof_ms,
        "audit_entries_per_second_at_largest": audit,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    line = [f"ledger: append cost {sizes[-1]:,}/{sizes[0]:,} = {ratio:.2f}x"]
    for backend, result in report["backends"].items():
        first = result["sizes"][str(sizes[0])]
        line.append(f"{backend} {first['append']['appends_per_second']:.0f} appends/s (1 client)")
        if first.get("concurrent_appends_per_second"):
            best = max(first["concurrent_appends_per_second"].values())
            line.append(f"{best:.0f}/s inline (concurrent)")
        for c, figures in first.get("sequenced", {}).items():
            line.append(
                f"sequenced {figures['appends_per_second']:.0f} appends/s ({c} client{'s' * (c != '1')}, "
                f"{figures['integrated_per_second']:.0f} integrated/s, "
                f"max merge delay {figures['max_merge_delay_seconds'] * 1000:.0f} ms)"
            )
        line.append(f"floor {result['floor']['transactions_per_second']:.0f} tx/s (1 client)")
    line.append(f"proof median <= {proof_ms:.2f} ms")
    line.append(f"audit {audit['1']:,.0f}/s (1 worker), {audit['2']:,.0f}/s (2 workers) at {sizes[-1]:,}")
    print("; ".join(line))


if __name__ == "__main__":
    main()
