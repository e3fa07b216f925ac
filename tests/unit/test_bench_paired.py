"""bench/paired.py: this checkout against another revision, in alternating batches (issue 15)."""

from __future__ import annotations

from types import ModuleType

import pytest

from tests.factories.bench import bench_script


@pytest.fixture(scope="module")
def paired() -> ModuleType:
    return bench_script("paired")


def test_the_result_is_the_median_of_the_rounds_ratios_not_the_ratio_of_the_medians(paired: ModuleType) -> None:
    # The machine slows down in round 2 for both sides: the rounds' ratios are what stays comparable.
    rounds = [
        {"round": 1, "base_cpu_ms": 20.0, "head_cpu_ms": 18.0},
        {"round": 2, "base_cpu_ms": 30.0, "head_cpu_ms": 27.0},
        {"round": 3, "base_cpu_ms": 21.0, "head_cpu_ms": 21.0},
    ]
    assert paired.summarise(rounds) == {
        "base_cpu_ms": 21.0,
        "head_cpu_ms": 21.0,
        "ratio": 0.9,
        "ratio_min": 0.9,
        "ratio_max": 1.0,
    }


def test_a_revision_is_compared_only_with_the_same_migrations(paired: ModuleType) -> None:
    assert paired.same_migrations("HEAD")
    assert not paired.same_migrations(paired.git("hash-object", "-t", "tree", "/dev/null").strip())
