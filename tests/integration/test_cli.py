"""The `mydata` command as an operator uses it: real processes, real databases."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

POSTGRES_URL = os.environ.get("MYDATA_TEST_DATABASE_URL", "")
MYDATA = str(Path(sys.executable).with_name("mydata"))


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run `mydata ARGS` on a sandbox instance with only the given MYDATA_* settings."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MYDATA_")}
    return subprocess.run(
        [MYDATA, *args], env={**clean, "MYDATA_SANDBOX": "true", **env}, capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def empty_postgres() -> Iterator[str]:
    """Create an empty PostgreSQL database next to the test database, and drop it afterwards."""
    if not POSTGRES_URL:
        pytest.skip("MYDATA_TEST_DATABASE_URL is not set (CI sets it)")
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    name = f"mydata_empty_{uuid.uuid4().hex[:8]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


def test_help_lists_the_groups(tmp_path: Path) -> None:
    result = run(["--help"], {"MYDATA_INSTANCE_PATH": str(tmp_path)})
    assert result.returncode == 0
    for group in ("db", "keys", "sandbox", "demo"):
        assert f"  {group} " in result.stdout


def test_db_upgrade_on_empty_postgres_then_a_no_op(tmp_path: Path, empty_postgres: str) -> None:
    env = {"MYDATA_INSTANCE_PATH": str(tmp_path), "MYDATA_DATABASE_URL": empty_postgres}
    first = run(["db", "upgrade"], env)
    assert first.returncode == 0, first.stderr
    assert "revision(s) applied" in first.stdout
    engine = create_engine(empty_postgres)
    tables = set(inspect(engine).get_table_names())
    assert {"alembic_version", "mydata_key", "mydata_secret"} <= tables
    second = run(["db", "upgrade"], env)
    assert second.returncode == 0, second.stderr
    assert "already up to date" in second.stdout
    assert set(inspect(engine).get_table_names()) == tables
    engine.dispose()


def test_db_upgrade_on_sqlite_is_idempotent(tmp_path: Path) -> None:
    env = {"MYDATA_INSTANCE_PATH": str(tmp_path)}
    assert "revision(s) applied" in run(["db", "upgrade"], env).stdout
    assert "already up to date" in run(["db", "upgrade"], env).stdout
    assert (tmp_path / "mydata.sqlite").exists()


def test_invalid_database_url_is_one_line_naming_the_setting(tmp_path: Path) -> None:
    result = run(["db", "upgrade"], {"MYDATA_INSTANCE_PATH": str(tmp_path), "MYDATA_DATABASE_URL": "nonsense"})
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "MYDATA_DATABASE_URL" in lines[0]
    assert "Traceback" not in result.stderr


def test_keys_rotate_keeps_the_retired_key_listed(tmp_path: Path) -> None:
    env = {"MYDATA_INSTANCE_PATH": str(tmp_path)}
    run(["db", "upgrade"], env)
    first = run(["keys", "rotate"], env)
    second = run(["keys", "rotate"], env)
    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    listed = run(["keys", "list"], env).stdout
    assert first.stdout.split()[-1] in listed
    assert second.stdout.split()[-1] in listed
