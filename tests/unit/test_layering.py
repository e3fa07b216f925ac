"""The layering contracts of DESIGN §2 are real: breaking one fails `make lint`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = str(Path(sys.executable).with_name("lint-imports"))
PACKAGES = ("mydata", "identity", "providers", "consent", "relying_parties")


def lint_copy(tmp_path: Path, change: tuple[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Copy the packages to *tmp_path*, append a line to one module, and run the contracts."""
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__", "static"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    if change:
        module, line = change
        with (tmp_path / module).open("a") as fh:
            fh.write(f"\n{line}\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    return subprocess.run(
        [LINT_IMPORTS, "--no-logo", "--no-cache"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )


def test_contracts_hold_on_the_tree(tmp_path: Path) -> None:
    result = lint_copy(tmp_path)
    assert result.returncode == 0, result.stdout


def test_kernel_importing_a_feature_package_breaks_the_contract(tmp_path: Path) -> None:
    result = lint_copy(tmp_path, ("mydata/db.py", "import consent  # noqa"))
    assert result.returncode != 0
    assert "BROKEN" in result.stdout


def test_lower_layer_importing_a_higher_one_breaks_the_contract(tmp_path: Path) -> None:
    result = lint_copy(tmp_path, ("identity/__init__.py", "import consent  # noqa"))
    assert result.returncode != 0
    assert "BROKEN" in result.stdout


def test_identity_and_providers_are_independent(tmp_path: Path) -> None:
    result = lint_copy(tmp_path, ("providers/__init__.py", "import identity  # noqa"))
    assert result.returncode != 0
