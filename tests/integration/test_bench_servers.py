"""The benches' WSGI servers (bench/harness.py --server, issue 15): each serves, is measured, and stops."""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
import requests

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.fixture(scope="module")
def harness() -> Iterator[ModuleType]:
    sys.path.insert(0, str(BENCH))  # bench/ is a folder of scripts; its servers import bench/bare.py
    try:
        yield importlib.import_module("harness")
    finally:
        sys.path.remove(str(BENCH))


@pytest.mark.parametrize("server", ["gunicorn", "granian", "uwsgi"])
def test_each_server_serves_the_bare_app_with_its_workers_and_stops(harness: ModuleType, server: str) -> None:
    port = harness.free_port()
    shape = argparse.Namespace(server=server, workers=2, threads=2)
    with harness.serve("bare:bare_app", port, shape, {}) as pid:
        http = requests.Session()
        http.trust_env = False
        answers = [http.get(f"http://127.0.0.1:{port}/", timeout=10) for _ in range(50)]
        assert {(a.status_code, a.text) for a in answers} == {(200, "ok")}
        workers = harness.worker_pids(pid)
        assert len(workers) >= 2
        assert harness.server_cpu_seconds(pid) > 0
        assert 0 < harness.worker_rss_mb(pid) < 200
    assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{port}/", timeout=5)


def test_an_unknown_server_is_refused(harness: ModuleType) -> None:
    parser = argparse.ArgumentParser()
    harness.add_server_options(parser, threads=4)
    assert parser.parse_args([]).server == "gunicorn"
    assert parser.parse_args(["--server", "uwsgi", "--threads", "8"]).threads == 8
    with pytest.raises(SystemExit):
        parser.parse_args(["--server", "waitress"])


def test_the_probe_counts_each_request_after_the_warm_up_and_its_views_within_it(
    harness: ModuleType, tmp_path: Path
) -> None:
    port = harness.free_port()
    probed, start = tmp_path / "probe.json", tmp_path / "probe.start"
    env = {
        "GUNICORN_CMD_ARGS": f"-c {BENCH / 'probe.py'}",
        "MYDATA_BENCH_PROBE": str(probed),
        "MYDATA_BENCH_PROBE_START": str(start),
    }
    with harness.serve("bare:bare_app", port, argparse.Namespace(server="gunicorn", workers=1, threads=1), env):
        http = requests.Session()
        http.trust_env = False
        for number in range(20):
            if number == 5:
                start.touch()  # the warm-up ends
            http.get(f"http://127.0.0.1:{port}/", timeout=10).raise_for_status()
    figures = json.loads(probed.read_text())
    assert figures["requests"] == {"GET /": 15}
    spent = figures["seconds"]["GET /"]
    assert 0 < spent["views"] < spent["window"]
