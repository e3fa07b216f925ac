"""Starting the platform as an operator does, in real processes: sandbox off unless asked for (issue 10, item 4).

With no configuration at all, `gunicorn 'mydata.app:create_app()'` and `mydata` stop with one line
naming the missing settings; `mydata demo` turns the sandbox on by itself and serves it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

from tests.factories.identity import production_environment

BIN = Path(sys.executable).parent
MISSING = (
    "mydata: missing settings MYDATA_ISSUER, MYDATA_DATABASE_URL, MYDATA_MASTER_KEY, MYDATA_SECRET_KEY, "
    "MYDATA_EID_CA_ROOTS, MYDATA_EID_ISSUING_CAS, MYDATA_EID_POLICY_OIDS (required when sandbox is off)"
)


def environment(**settings: str) -> dict[str, str]:
    """Return this process's environment without any MYDATA_* setting, plus *settings*."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MYDATA_")}
    return {**clean, **settings}


def free_port() -> int:
    """Return a port on 127.0.0.1 that nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_gunicorn_without_configuration_refuses_to_start_naming_the_settings(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(BIN / "gunicorn"), "-b", f"127.0.0.1:{free_port()}", "mydata.app:create_app()"],
        env=environment(),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert result.stderr.splitlines().count(MISSING) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert "App failed to load" in result.stderr  # gunicorn stopped instead of booting workers forever


def test_mydata_without_configuration_names_the_settings_in_one_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(BIN / "mydata"), "db", "upgrade"], env=environment(), cwd=tmp_path, capture_output=True, text=True
    )
    assert result.returncode == 2
    assert result.stderr.splitlines() == [MISSING]
    listed = subprocess.run([str(BIN / "mydata"), "--help"], env=environment(), capture_output=True, text=True)
    assert listed.stderr.splitlines() == [MISSING]
    assert "  demo " in listed.stdout


def test_the_demo_refuses_a_configuration_that_turns_the_sandbox_off(tmp_path: Path) -> None:
    env = environment(**production_environment(tmp_path), MYDATA_SANDBOX="false", MYDATA_INSTANCE_PATH=str(tmp_path))
    result = subprocess.run([str(BIN / "mydata"), "demo", "--port", "0"], env=env, capture_output=True, text=True)
    assert result.returncode == 2
    assert "the demo runs the sandbox only" in result.stderr
    assert not (tmp_path / "mydata.sqlite").exists()


def test_the_demo_turns_the_sandbox_on_by_itself(tmp_path: Path) -> None:
    port = free_port()
    process = subprocess.Popen(
        [str(BIN / "mydata"), "demo", "--port", str(port)],
        env=environment(MYDATA_INSTANCE_PATH=str(tmp_path), MYDATA_LOG_LEVEL="WARNING"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        health = None
        for _ in range(600):
            try:
                health = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
                break
            except requests.ConnectionError:
                assert process.poll() is None, process.communicate()
                time.sleep(0.1)
        assert health is not None
        assert health.json() == {"status": "ok", "database": "ok", "rate_limits": "ok", "sandbox": True}
        assert requests.get(f"http://127.0.0.1:{port}/sandbox/mobile-id", timeout=5).status_code == 200
    finally:
        process.terminate()
        out, _ = process.communicate(timeout=30)
    assert f"MyData sandbox is running at http://127.0.0.1:{port}/" in out
    assert "Stranded consents are expired every 60 s" in out
    assert "Ledger entries are integrated in batches within 1 s" in out  # the demo runs the sequencer
