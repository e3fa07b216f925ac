"""One table of every bench against its target (DESIGN §10), read from the JSON in bench/results/.

    python bench/report.py [bench ...]

Each bench writes its own JSON; this reads the latest of each and prints one row per target: the
bench, its figure, the target, met / not met, and when the figure was taken. A bench that states
its rows itself gives them as ``"targets": [{"figure", "target", "met"}, ...]`` or as one
``"summary": {"figure", "target", "met"}``; for the others the rows are read from the fields they
write. A bench that has not been run shows as such. `make bench` prints it at the end.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
BENCHES = (
    "oidc_flow",
    "transaction",
    "fetch_parallel",
    "ledger",
    "pdf",
    "eid_revocation",
    "malformed_input",
    "faults",
)
RSS_MB = 200  # every bench that serves the platform: one worker's resident memory after the bench

Row = tuple[str, str, bool | None]  # figure, target, met (None: no target, or not measured)


def rss_row(report: dict[str, Any]) -> list[Row]:
    """Return the worker-memory row of a bench that reports it."""
    rss = report.get("worker_rss_mb")
    if isinstance(rss, dict):  # faults: the largest of every node's workers at the end
        rss = max((size for sizes in rss.get("end", []) for size in sizes), default=None)
    if not isinstance(rss, int | float):
        return []
    return [(f"worker RSS {rss:.0f} MB", f"<= {RSS_MB} MB", rss <= RSS_MB)]


def fetch_parallel(report: dict[str, Any]) -> list[Row]:
    """Median wall time of 4 parallel fetches from 200 ms providers."""
    ratio, target = report["ratio_to_delay"], report["target_ratio"]
    figure = f"{ratio:.3f} x {report['provider_delay_ms']} ms ({report['wall_ms']['median']} ms median)"
    return [(figure, f"<= {target} x", ratio <= target)]


def pdf(report: dict[str, Any]) -> list[Row]:
    """Median render of the 4-dataset PDF."""
    median, target = report["render_ms"]["median"], report["target_ms"]
    figure = f"{median} ms median wall (CPU {report['render_cpu_ms']['median']} ms)"
    return [(figure, f"p50 <= {target:.0f} ms", median <= target)]


def ledger(report: dict[str, Any]) -> list[Row]:
    """Appends, append cost by size, proofs and audit on PostgreSQL (else the first backend)."""
    backends = report["backends"]
    name = "postgresql" if "postgresql" in backends else next(iter(backends))
    main = backends[name]
    sizes = sorted(main["sizes"], key=int)
    small, large = main["sizes"][sizes[0]], main["sizes"][sizes[-1]]
    rows: list[Row] = []
    floor = main.get("floor", {}).get("transactions_per_second")
    sequenced = small.get("sequenced")  # as production appends (docs/decisions/0011): queued, a sequencer beside
    if sequenced:
        clients = max(sequenced, key=int)
        rate = sequenced[clients]["appends_per_second"]
        rows.append((f"{rate:,.0f} appends/s, {clients} clients, sequenced ({name})", ">= 2,000/s", rate >= 2000))
        single = sequenced[min(sequenced, key=int)]["appends_per_second"]
        delay = max(run["max_merge_delay_seconds"] for run in sequenced.values())
        rows.append((f"maximum merge delay {delay * 1000:.0f} ms", "<= 1 s", delay <= 1))
    else:
        single = small["append"]["appends_per_second"]
        if "concurrent_appends_per_second" in small:
            best = max(small["concurrent_appends_per_second"].values())
            rows.append((f"{best:,.0f} appends/s, concurrent clients ({name})", ">= 2,000/s", best >= 2000))
    if floor:
        rows.append((f"{single:,.0f} appends/s, 1 client = {single / floor:.2f} x floor ({name})",
                     ">= 0.5 x floor", single / floor >= 0.5))  # fmt: skip
    ratio = large["append"]["seconds_per_append"] / small["append"]["seconds_per_append"]
    rows.append((f"append cost {int(sizes[-1]):,} / {int(sizes[0]):,} = {ratio:.2f}", "<= 1.3", ratio <= 1.3))
    proof = max(at["proofs"]["inclusion_ms_median"] for at in main["sizes"].values())
    rows.append((f"inclusion proof median <= {proof:.2f} ms", "<= 1 ms", proof <= 1))
    audit = max(large["audit_entries_per_second"].values())
    rows.append((f"verify {audit:,.0f} entries/s at {int(sizes[-1]):,}", ">= 100,000/s", audit >= 100_000))
    return rows


def eid_revocation(report: dict[str, Any]) -> list[Row]:
    """The cached revocation check (no target in DESIGN §10: it must cost microseconds, never a fetch)."""
    figures = report["figures"]
    figure = (
        f"cached check {figures['crl_url_fresh']['median_us']} us, verify_card {figures['verify_card']['median_us']} us"
    )
    return [(figure, "microseconds (no §10 target)", None)]


def malformed_input(report: dict[str, Any]) -> list[Row]:
    """Every malformed request refused with a 4xx; the slowest refusal."""
    slowest = report["slowest"]
    figure = f"{len(report['cases'])} refusals, slowest {slowest['ms']:.1f} ms"
    return [(figure, "every one 4xx", bool(report["all_refused_with_4xx"]))]


def faults(report: dict[str, Any]) -> list[Row]:
    """Transactions while parts break: the bar (no 500, no gap, no double delivery, recovery)."""
    tx = report["transactions"]
    figure = f"{tx['ok']} ok, {tx['failed']} failed, {report['http_500']} x 500"
    return [(figure, "no 500, gap, double, stranded; recovery <= 5 s", bool(report["bar_met"]))]


READERS: dict[str, Callable[[dict[str, Any]], list[Row]]] = {
    "fetch_parallel": fetch_parallel,
    "pdf": pdf,
    "ledger": ledger,
    "eid_revocation": eid_revocation,
    "malformed_input": malformed_input,
    "faults": faults,
}


def rows_of(bench: str, report: dict[str, Any]) -> list[Row]:
    """Return a bench's rows against its targets."""
    if isinstance(report.get("targets"), list):
        rows = [(t["figure"], t["target"], t["met"]) for t in report["targets"]]
    elif isinstance(report.get("summary"), dict) and {"figure", "target", "met"} <= report["summary"].keys():
        rows = [(report["summary"]["figure"], report["summary"]["target"], report["summary"]["met"])]
    elif bench in READERS:
        rows = READERS[bench](report)
    else:
        rows = []
    return rows + rss_row(report)


def when(report: dict[str, Any]) -> str:
    """Return when the figures were taken, as the bench wrote it."""
    stamp = report.get("date") or report.get("machine", {}).get("date", "")
    return str(stamp).replace("T", " ")[:16]


def table(benches: tuple[str, ...] | list[str]) -> list[list[str]]:
    """Return the rows of the table (without the header)."""
    rows = []
    for bench in benches:
        path = RESULTS / f"{bench}.json"
        if not path.exists():
            rows.append([bench, "not run", "", "", ""])
            continue
        try:
            report = json.loads(path.read_text())
            found = rows_of(bench, report)
        except (KeyError, TypeError, ValueError, StopIteration) as exc:
            rows.append([bench, f"unreadable ({type(exc).__name__}: {exc})", "", "", ""])
            continue
        verdict = {True: "met", False: "NOT met", None: "-"}
        for figure, target, met in found or [("see its JSON", "", None)]:
            rows.append([bench, figure, target, verdict[met], when(report)])
    return rows


def render(rows: list[list[str]]) -> str:
    """Return the rows as an aligned text table."""
    header = ["bench", "figure", "target", "met", "taken"]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
             for row in [header, ["-" * w for w in widths], *rows]]  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    """Print the table."""
    benches = sys.argv[1:] or list(BENCHES)
    print(render(table(benches)))


if __name__ == "__main__":
    main()
