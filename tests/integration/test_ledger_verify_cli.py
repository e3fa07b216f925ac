"""`mydata ledger verify` as an operator runs it, on a committed SQLite ledger that the test then tampers with."""

from __future__ import annotations

import base64
import os
import random
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from consent import audit, cli
from consent.audit import verify_ledger
from consent.interfaces import LedgerVerificationFailed
from consent.ledger import LedgerEvent, block_key, ledger
from mydata.app import create_app
from mydata.cli import upgrade
from mydata.config import Settings
from mydata.db import get_db
from mydata.keys import key_store

MYDATA = str(Path(sys.executable).with_name("mydata"))
SIZE = 300


@dataclass
class Platform:
    """A platform instance with a committed ledger in an SQLite file."""

    app: Flask
    env: dict[str, str]
    database: Path

    def mydata(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run `mydata ARGS` against this instance."""
        clean = {k: v for k, v in os.environ.items() if not k.startswith("MYDATA_")}
        return subprocess.run(
            [MYDATA, *args], env={**clean, **self.env}, capture_output=True, text=True, timeout=120, check=False
        )

    def sql(self, statement: str, *params: object) -> list[tuple[object, ...]]:
        """Run raw SQL on the database file, as someone with disk access could."""
        with sqlite3.connect(self.database) as connection:
            return connection.execute(statement, params).fetchall()


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[Platform]:
    """Return a platform whose ledger holds SIZE committed entries, a tree head every 50."""
    database = tmp_path / "mydata.sqlite"
    master_key = base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode()
    env = {
        "MYDATA_INSTANCE_PATH": str(tmp_path),
        "MYDATA_SANDBOX": "true",
        "MYDATA_DATABASE_URL": f"sqlite:///{database}",
        "MYDATA_MASTER_KEY": master_key,
        "MYDATA_LEDGER_STH_EVERY_ENTRIES": "50",
    }
    settings = Settings(
        instance_path=tmp_path,
        sandbox=True,
        database_url=env["MYDATA_DATABASE_URL"],
        master_key=master_key,
        secret_key="s" * 48,
        ledger_sth_every_entries=50,
    )
    app = create_app(settings)
    upgrade(app)
    with app.app_context(), get_db().unit_of_work() as uow:
        key_store(uow).rotate()
        log = ledger(uow)
        for n in range(SIZE):
            log.append(
                LedgerEvent(
                    event="consent.granted",
                    actor="sandbox-bank-web",
                    subject_national_id="A123456789" if n % 3 else "B223456782",
                    service="sandbox-bank.credit-card",
                    datasets=("household.registration", "tax.income"),
                    consent_id=f"consent-{n:05d}",
                )
            )
        uow.commit()
    yield Platform(app, env, database)
    get_db(app).engine.dispose()


def test_an_honest_ledger_passes(platform: Platform) -> None:
    result = platform.mydata("ledger", "verify")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"ledger verify: OK: {SIZE} entries, 6 signed tree heads, root ")
    assert "not covered by a signed tree head yet" in result.stdout  # entries 251..299


@pytest.mark.parametrize("seed", [1, 2])
def test_tampering_fails_naming_the_first_bad_seq(platform: Platform, seed: int) -> None:
    rng = random.Random(seed)
    changed, deleted = sorted(rng.sample(range(SIZE), 2))
    (raw,) = platform.sql("SELECT leaf_input FROM consent_ledger_entry WHERE seq = ?", changed)[0]
    assert isinstance(raw, bytes)
    tampered = bytearray(raw)
    tampered[rng.randrange(len(tampered))] ^= 0x20
    platform.sql("UPDATE consent_ledger_entry SET leaf_input = ? WHERE seq = ?", bytes(tampered), changed)
    platform.sql("DELETE FROM consent_ledger_entry WHERE seq = ?", deleted)
    result = platform.mydata("ledger", "verify")
    assert result.returncode == 1
    assert result.stderr.strip() == f"ledger verify: FAILED at seq {changed}: leaf hash does not match the stored entry"


def test_each_full_run_keeps_its_result_for_the_operator_console(platform: Platform) -> None:
    assert platform.mydata("ledger", "verify").returncode == 0
    platform.sql("DELETE FROM consent_ledger_entry WHERE seq = 123")
    assert platform.mydata("ledger", "verify").returncode == 1
    kept = platform.sql("SELECT tree_size, ok, failed_at, problem FROM consent_ledger_verification ORDER BY id")
    assert kept[0] == (SIZE, 1, None, None)
    assert kept[1][:3] == (SIZE, 0, "seq 123")
    assert str(kept[1][3]).startswith("the entry is missing")
    with platform.app.app_context(), get_db().unit_of_work() as uow:
        latest = audit.latest_verification(uow)
        assert latest is not None
        assert (latest.ok, latest.failed_at) == (False, "seq 123")


def test_a_deleted_entry_fails(platform: Platform) -> None:
    platform.sql("DELETE FROM consent_ledger_entry WHERE seq = 123")
    result = platform.mydata("ledger", "verify")
    assert result.returncode == 1
    assert result.stderr.startswith("ledger verify: FAILED at seq 123: the entry is missing")


def test_swapped_entries_fail(platform: Platform) -> None:
    first, second = 77, 201
    rows = {
        seq: platform.sql("SELECT leaf_input, subject, consent_id FROM consent_ledger_entry WHERE seq = ?", seq)[0]
        for seq in (first, second)
    }
    for seq, other in ((first, second), (second, first)):
        platform.sql(
            "UPDATE consent_ledger_entry SET leaf_input = ?, subject = ?, consent_id = ? WHERE seq = ?",
            *rows[other],
            seq,
        )
    result = platform.mydata("ledger", "verify")
    assert result.returncode == 1
    assert result.stderr.strip() == f"ledger verify: FAILED at seq {first}: leaf hash does not match the stored entry"


def test_sign_then_everything_is_covered(platform: Platform) -> None:
    signed = platform.mydata("ledger", "sign")
    assert signed.returncode == 0, signed.stderr
    assert f"tree_size {SIZE}" in signed.stdout
    result = platform.mydata("ledger", "verify")
    assert result.returncode == 0
    assert "not covered" not in result.stdout
    # What the timer runs: nothing is due right after a signature.
    timer = platform.mydata("ledger", "sign", "--if-due")
    assert (timer.returncode, timer.stdout.strip()) == (
        0,
        "Nothing to sign: the newest signed tree head is not due for renewal.",
    )


def test_an_unmigrated_database_is_a_clear_error(tmp_path: Path) -> None:
    env = {"MYDATA_INSTANCE_PATH": str(tmp_path), "MYDATA_SANDBOX": "true"}
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MYDATA_")}
    result = subprocess.run(
        [MYDATA, "ledger", "verify"], env={**clean, **env}, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "mydata db upgrade" in result.stderr


def test_long_logs_show_a_progress_bar(platform: Platform, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "PROGRESS_FROM", 100)
    result = platform.app.test_cli_runner().invoke(args=["ledger", "verify", "--workers", "1", "--batch-size", "64"])
    assert result.exit_code == 0, result.output
    assert "ledger verify" in result.stderr
    assert result.stdout.startswith("ledger verify: OK")


def test_parallel_workers_find_the_same_first_failure(platform: Platform, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(audit, "RANGE_SIZE", 64)
    monkeypatch.setattr(audit, "PARALLEL_FROM", 128)
    replayed: list[list[tuple[int, int]]] = []
    in_parallel = audit._replay_in_parallel

    def spy(connection: Any, ranges: list[tuple[int, int]], *args: Any) -> Any:
        replayed.append(ranges)
        return in_parallel(connection, ranges, *args)

    monkeypatch.setattr(audit, "_replay_in_parallel", spy)
    with platform.app.app_context(), get_db().unit_of_work() as uow:
        assert verify_ledger(ledger(uow), workers=2).tree_size == SIZE
    assert replayed == [[(0, 64), (64, 128), (128, 192), (192, 256), (256, 300)]]
    platform.sql("UPDATE consent_ledger_node SET hash = zeroblob(32) WHERE block = ?", block_key(224, 32))
    platform.sql("DELETE FROM consent_ledger_entry WHERE seq = 140")
    with platform.app.app_context(), get_db().unit_of_work() as uow, pytest.raises(LedgerVerificationFailed) as raised:
        verify_ledger(ledger(uow), workers=2)
    assert (raised.value.where, raised.value.problem) == (
        "seq 140",
        "the entry is missing (the next stored entry is seq 141)",
    )


def test_an_early_failure_stops_the_parallel_audit(platform: Platform, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(audit, "RANGE_SIZE", 8)
    monkeypatch.setattr(audit, "PARALLEL_FROM", 16)
    (raw,) = platform.sql("SELECT leaf_input FROM consent_ledger_entry WHERE seq = 3")[0]
    assert isinstance(raw, bytes)
    platform.sql("UPDATE consent_ledger_entry SET leaf_input = ? WHERE seq = 3", raw.replace(b'"ok"', b'"no"'))
    # Most of the 38 ranges are still queued when the first fails: they are cancelled, not waited for.
    with platform.app.app_context(), get_db().unit_of_work() as uow, pytest.raises(LedgerVerificationFailed) as raised:
        verify_ledger(ledger(uow), workers=2)
    assert (raised.value.where, raised.value.problem) == ("seq 3", "leaf hash does not match the stored entry")
