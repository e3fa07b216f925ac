"""bench/report.py: one table of every bench against its target, read from the benches' JSON (issue 15)."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import pytest

from tests.factories.bench import bench_script


@pytest.fixture
def report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    module = bench_script("report")
    monkeypatch.setattr(module, "RESULTS", tmp_path)
    return module


def write(folder: Path, bench: str, content: dict[str, object]) -> None:
    (folder / f"{bench}.json").write_text(json.dumps(content))


def test_a_bench_that_states_its_summary_is_shown_with_its_worker_memory(report: ModuleType) -> None:
    write(report.RESULTS, "oidc_flow", {
        "summary": {"figure": "1.10 x the reference", "target": "<= 1.25 x", "met": True},
        "worker_rss_mb": 240.0, "date": "2026-12-05 12:00 UTC",
    })  # fmt: skip
    rows = report.table(["oidc_flow"])
    assert rows == [
        ["oidc_flow", "1.10 x the reference", "<= 1.25 x", "met", "2026-12-05 12:00"],
        ["oidc_flow", "worker RSS 240 MB", "<= 200 MB", "NOT met", "2026-12-05 12:00"],
    ]


def test_the_ledger_is_read_from_the_fields_it_writes(report: ModuleType) -> None:
    at = {"append": {"appends_per_second": 700, "seconds_per_append": 0.0014},
          "proofs": {"inclusion_ms_median": 0.6}, "audit_entries_per_second": {"1": 80_000, "2": 120_000}}  # fmt: skip
    small = {**at, "append": {"appends_per_second": 750, "seconds_per_append": 0.00133},
             "concurrent_appends_per_second": {"2": 1100, "4": 950}}  # fmt: skip
    postgresql = {"floor": {"transactions_per_second": 1000}, "sizes": {"10000": small, "1000000": at}}
    write(
        report.RESULTS,
        "ledger",
        {"machine": {"date": "2026-12-05T11:00:00+00:00"}, "backends": {"postgresql": postgresql}},
    )
    rows = report.table(["ledger"])
    assert [(row[2], row[3]) for row in rows] == [
        (">= 2,000/s", "NOT met"),
        (">= 0.5 x floor", "met"),
        ("<= 1.3", "met"),
        ("<= 1 ms", "met"),
        (">= 100,000/s", "met"),
    ]
    assert rows[0][1] == "1,100 appends/s, concurrent clients (postgresql)"
    assert rows[0][4] == "2026-12-05 11:00"


def test_the_ledger_is_judged_by_its_sequenced_appends_when_it_measured_them(report: ModuleType) -> None:
    at = {"append": {"appends_per_second": 700, "seconds_per_append": 0.0014},
          "proofs": {"inclusion_ms_median": 0.6}, "audit_entries_per_second": {"1": 80_000, "2": 120_000}}  # fmt: skip
    sequenced = {
        "1": {"appends_per_second": 400, "max_merge_delay_seconds": 0.1},
        "4": {"appends_per_second": 2100, "max_merge_delay_seconds": 1.2},
    }
    postgresql = {"floor": {"transactions_per_second": 1000}, "sizes": {"10000": {**at, "sequenced": sequenced}}}
    write(
        report.RESULTS,
        "ledger",
        {"machine": {"date": "2026-12-05T11:00:00+00:00"}, "backends": {"postgresql": postgresql}},
    )
    rows = report.table(["ledger"])
    assert [(row[1], row[2], row[3]) for row in rows[:3]] == [
        ("2,100 appends/s, 4 clients, sequenced (postgresql)", ">= 2,000/s", "met"),
        ("maximum merge delay 1200 ms", "<= 1 s", "NOT met"),
        ("400 appends/s, 1 client = 0.40 x floor (postgresql)", ">= 0.5 x floor", "NOT met"),
    ]


def test_a_bench_not_run_or_unreadable_says_so(report: ModuleType) -> None:
    write(report.RESULTS, "pdf", {"render_ms": {}})
    rows = report.table(["fetch_parallel", "pdf"])
    assert rows[0][:2] == ["fetch_parallel", "not run"]
    assert rows[1][1].startswith("unreadable (KeyError")


def test_the_table_is_aligned_under_its_header(report: ModuleType) -> None:
    text = report.render([["transaction", "55 x a bare request", "<= 60 x", "met", "2026-12-05 12:00"]])
    header, rule, row = text.splitlines()
    assert header.split() == ["bench", "figure", "target", "met", "taken"]
    assert row.index("55 x") == header.index("figure")
    assert set(rule.replace(" ", "")) == {"-"}
