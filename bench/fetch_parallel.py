"""Parallel fetch (DESIGN §10): 4 datasets from 4 providers that each take 200 ms.

The platform's one entry point (``providers.services.fetch_datasets``: catalogue and key from the
database, signed queries, verified answers, schema validation) fetches from the sandbox agency app,
served by a real threaded server on 127.0.0.1 with a 200 ms delay fault on each dataset. Parallel
means the wall time is about 200 ms, not 800 ms: the target is a median of at most 1.15 x 200 ms.

Prints one summary line and writes bench/results/fetch_parallel.json.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests
from werkzeug.serving import make_server

from mydata.app import create_app
from mydata.cli import upgrade
from mydata.clock import Clock
from mydata.config import Settings
from mydata.db import get_db
from mydata.keys import key_store
from providers import services
from providers.protocol import Outcome
from providers.sandbox.agency import AgencySettings, PlatformJwks, create_agency_app
from providers.sandbox.faults import FaultTable
from providers.sandbox.keys import agency_keys_dir
from providers.sandbox.seed import seed_sandbox_catalogue

DATASETS = ("household.registration", "tax.income", "labor.insurance", "nhi.enrolment")  # 4 providers
PERSONA = "A123456789"
DELAY_MS = 200
TARGET_RATIO = 1.15
WARM_UP = 3
RUNS = 30
RESULTS = Path(__file__).resolve().parent / "results" / "fetch_parallel.json"


def main() -> int:
    """Run the benchmark; exit status 1 when the target is missed."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request would drown the summary
    with tempfile.TemporaryDirectory(prefix="mydata-bench-") as tmp:
        settings = Settings(
            instance_path=Path(tmp),
            sandbox=True,
            issuer="http://127.0.0.1:5000",
            database_url=f"sqlite:///{tmp}/bench.sqlite",
            master_key="A" * 43,
            secret_key="bench-" * 8,
            log_level="WARNING",
            sandbox_faults_file="",
        )
        app = create_app(settings)
        upgrade(app)
        with app.app_context(), get_db().unit_of_work() as uow:
            key_store(uow).rotate()
            jwks = key_store(uow).jwks()
        keys_dir = agency_keys_dir(settings.instance_path)
        agencies = create_agency_app(
            AgencySettings(
                platform_issuer=app.config["MYDATA_ISSUER"],
                platform_jwks=PlatformJwks(lambda: jwks),
                keys_dir=keys_dir,
                faults=FaultTable(),
                clock=Clock(),
            )
        )
        server = make_server("127.0.0.1", 0, agencies, threaded=True)
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        base = f"http://127.0.0.1:{server.server_port}"
        try:
            with app.app_context(), get_db().unit_of_work() as uow:
                seed_sandbox_catalogue(uow, keys_dir=keys_dir, agencies_url=base)
            # Through the sandbox control endpoint, as a tester would.
            for dataset in DATASETS:
                fault = {"national_id": PERSONA, "dataset": dataset, "kind": "delay", "delay_ms": DELAY_MS}
                requests.put(f"{base}/sandbox/faults", json=fault, timeout=5).raise_for_status()
            walls = [fetch_once(app) for _ in range(WARM_UP + RUNS)][WARM_UP:]
        finally:
            server.shutdown()
            server.server_close()
            services.provider_client(app).close()
            get_db(app).engine.dispose()

    median = statistics.median(walls)
    ratio = median / DELAY_MS
    report = {
        "bench": "fetch_parallel",
        "datasets": len(DATASETS),
        "provider_delay_ms": DELAY_MS,
        "runs": RUNS,
        "wall_ms": {
            "median": round(median, 1),
            "min": round(min(walls), 1),
            "p90": round(statistics.quantiles(walls, n=10)[-1], 1),
            "max": round(max(walls), 1),
        },
        "ratio_to_delay": round(ratio, 3),
        "target_ratio": TARGET_RATIO,
        "met": ratio <= TARGET_RATIO,
        "machine": machine(),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print(
        f"fetch_parallel: {len(DATASETS)} datasets x {DELAY_MS} ms providers: median wall {median:.1f} ms "
        f"(min {min(walls):.1f}, max {max(walls):.1f}, {RUNS} runs), ratio {ratio:.3f} "
        f"(target <= {TARGET_RATIO})"
    )
    return 0 if report["met"] else 1


def fetch_once(app: object) -> float:
    """Fetch the four datasets once through the platform's entry point; return the wall time in ms."""
    from flask import Flask

    assert isinstance(app, Flask)
    with app.app_context(), get_db().unit_of_work() as uow:
        started = time.perf_counter()
        results = services.fetch_datasets(uow, national_id=PERSONA, datasets=DATASETS, txn="bench", purpose="bench")
        wall = (time.perf_counter() - started) * 1000
    failed = {d: r.outcome for d, r in results.items() if r.outcome is not Outcome.OK}
    if failed:
        raise SystemExit(f"fetch_parallel: not every dataset was fetched: {failed}")
    return wall


def machine() -> dict[str, object]:
    """Describe the machine the figure was taken on."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory = f"{int(line.split()[1]) // 1024} MiB"
                break
    except OSError:
        pass
    return {"cpus": os.cpu_count(), "cpu": model, "memory": memory, "python": platform.python_version()}


if __name__ == "__main__":
    sys.exit(main())
