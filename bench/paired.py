"""Benchmark: this checkout's code against another revision's, side by side, in alternating batches.

On a shared or noisy machine the same code's server CPU per flow moves by ± 10 % from one minute to
the next (docs/performance.md), which hides a change that saves 5 %. Here both revisions serve at
once, each on its own database and server (the same `--server`, `--workers` and `--threads`), and
batches of work alternate between them, the order flipped each round: whatever the machine does
weighs on both. Each round gives both figures and their ratio (this checkout / the base revision);
the result is the median of the rounds' ratios.

    python bench/paired.py --base REV [--work flow|transaction] [--rounds 10] [--batch 60]
                           [--warmup 100] [--concurrency 4] [--server ...] [--workers 2] [--threads 8]

The work is one OpenID Connect flow (bench/oidc_flow.py) or one transaction (bench/transaction.py,
with the ledger sequencer of each revision beside its server, its CPU counted). The base revision
is checked out in a temporary git worktree and removed afterwards; both databases are migrated and
seeded by this checkout's code, so the two revisions must have the same migrations. Prints a line
per round and the medians; writes bench/results/paired.json. MYDATA_BENCH_DATABASE_URL and
MYDATA_BENCH_DATABASE_SUFFIX as for the other benches.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness import (  # noqa: E402
    add_server_options,
    describe_server,
    free_port,
    fresh_database,
    ledger_sequencer,
    machine,
    serve,
    server_cpu_ns,
)

from mydata.db import get_db  # noqa: E402
from tests.factories.live import SandboxCard  # noqa: E402
from tests.factories.served import prepare_platform  # noqa: E402

RESULTS = ROOT / "bench" / "results"
#: The compiled catalogues are built by `make setup`, not committed: the base revision gets these.
TRANSLATIONS = "mydata/translations"


def git(*args: str) -> str:
    """Run git in this checkout; return its output."""
    return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=True).stdout


def same_migrations(revision: str) -> bool:
    """Tell whether *revision* has the migrations of this checkout (committed or not)."""
    return subprocess.run(["git", "-C", str(ROOT), "diff", "--quiet", revision, "--", "migrations"]).returncode == 0


@contextmanager
def checkout(revision: str) -> Iterator[Path]:
    """Check *revision* out in a temporary worktree (with this checkout's compiled translations); yield it."""
    folder = Path(tempfile.mkdtemp(prefix="mydata-paired-"))
    tree = folder / "base"
    git("worktree", "add", "--detach", str(tree), revision)
    try:
        for catalogue in (ROOT / TRANSLATIONS).rglob("*.mo"):
            target = tree / catalogue.relative_to(ROOT)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(catalogue, target)
        yield tree
    finally:
        git("worktree", "remove", "--force", str(tree))
        shutil.rmtree(folder, ignore_errors=True)


def summarise(rounds: list[dict[str, float]]) -> dict[str, float]:
    """Return the medians of the rounds' figures and of their ratios (head / base)."""
    return {
        "base_cpu_ms": round(statistics.median(r["base_cpu_ms"] for r in rounds), 2),
        "head_cpu_ms": round(statistics.median(r["head_cpu_ms"] for r in rounds), 2),
        "ratio": round(statistics.median(r["head_cpu_ms"] / r["base_cpu_ms"] for r in rounds), 3),
        "ratio_min": round(min(r["head_cpu_ms"] / r["base_cpu_ms"] for r in rounds), 3),
        "ratio_max": round(max(r["head_cpu_ms"] / r["base_cpu_ms"] for r in rounds), 3),
    }


class Side:
    """One revision served: its server (and ledger sequencer), and the work that loads it."""

    def __init__(self, name: str, root: Path, work: str, folder: Path, args: argparse.Namespace) -> None:
        self.name, self.root = name, root
        database_url = fresh_database(f"mydata_bench_paired_{name}")
        self.port = free_port()
        issuer = f"http://127.0.0.1:{self.port}"
        folder.mkdir()
        self.pids: list[int] = []
        self.run: Callable[[object], float]
        if work == "flow":
            import oidc_flow

            self.env, rp = oidc_flow.prepare(database_url, folder, issuer)
            card = SandboxCard.of(folder, oidc_flow.PERSONA)
            self.run = lambda _: oidc_flow.one_flow(issuer, rp, card)
            self.sequencer = False
        else:
            import transaction

            prepared = prepare_platform(database_url, folder, issuer, {"MYDATA_LEDGER_SEQUENCING": "sequencer"})
            get_db(prepared.app).engine.dispose()
            self.env = prepared.env
            bank = transaction.Bank(issuer, prepared.keys, SandboxCard.of(folder, transaction.PERSONA))
            self.run = lambda _: bank.transaction()
            self.sequencer = True
        self.args = args

    def start(self, stack: ExitStack) -> None:
        """Serve this side (and start its sequencer) until *stack* closes."""
        self.pids.append(stack.enter_context(serve("mydata.app:create_app", self.port, self.args, self.env, self.root)))
        if self.sequencer:
            self.pids.append(stack.enter_context(ledger_sequencer(self.env, self.root)))

    def cpu_ns(self) -> int:
        """Return the CPU time of this side's server and sequencer so far."""
        return sum(server_cpu_ns(pid) for pid in self.pids)

    def batch(self, pool: ThreadPoolExecutor, count: int) -> float:
        """Run *count* units of work; return the server CPU per unit, in ms."""
        before = self.cpu_ns()
        list(pool.map(self.run, range(count)))
        return (self.cpu_ns() - before) / count / 1e6


def main() -> None:
    """Run the paired benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="the revision to compare this checkout with (e.g. main~3)")
    parser.add_argument("--work", choices=("flow", "transaction"), default="flow")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--batch", type=int, default=60, help="units of work per side and round")
    parser.add_argument("--warmup", type=int, default=100, help="units of work per side before the rounds")
    parser.add_argument("--concurrency", type=int, default=4)
    add_server_options(parser, threads=8)
    args = parser.parse_args()
    revision = git("rev-parse", "--verify", f"{args.base}^{{commit}}").strip()
    if not same_migrations(revision):
        raise SystemExit(f"{args.base} has other migrations than this checkout: compare revisions with one schema")

    rounds: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory() as folder, checkout(revision) as base_tree, ExitStack() as stack:
        base = Side("base", base_tree, args.work, Path(folder) / "base", args)
        head = Side("head", ROOT, args.work, Path(folder) / "head", args)
        for side in (base, head):
            side.start(stack)
        with ThreadPoolExecutor(args.concurrency) as pool:
            for side in (base, head):
                list(pool.map(side.run, range(args.warmup)))
            for number in range(1, args.rounds + 1):
                order = (base, head) if number % 2 else (head, base)
                figures = {f"{side.name}_cpu_ms": side.batch(pool, args.batch) for side in order}
                rounds.append({"round": number, **figures})
                print(
                    f"  round {number}: base {figures['base_cpu_ms']:.2f} ms, head {figures['head_cpu_ms']:.2f} ms, "
                    f"head / base {figures['head_cpu_ms'] / figures['base_cpu_ms']:.3f}",
                    file=sys.stderr,
                    flush=True,
                )

    summary = summarise(rounds)
    result: dict[str, Any] = {
        "bench": "paired",
        "work": args.work,
        "base": {"revision": revision, "asked": args.base},
        "head": {"revision": git("rev-parse", "HEAD").strip(), "uncommitted_changes": bool(git("status", "--short"))},
        "server_settings": describe_server(args),
        "rounds": args.rounds,
        "batch": args.batch,
        "warmup": args.warmup,
        "concurrency": args.concurrency,
        **summary,
        "all_rounds": [{k: round(v, 2) if isinstance(v, float) else v for k, v in r.items()} for r in rounds],
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "paired.json").write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"paired ({args.work}, {result['server_settings']}, {args.rounds} rounds of {args.batch}): "
        f"base {summary['base_cpu_ms']} ms, head {summary['head_cpu_ms']} ms server CPU per unit (medians); "
        f"head / base {summary['ratio']} (rounds from {summary['ratio_min']} to {summary['ratio_max']})"
    )


if __name__ == "__main__":
    main()
