"""The provider client's settings: numbers from files and the environment, within bounds (DESIGN §4.2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mydata.config import load_settings
from mydata.errors import ConfigError


def test_defaults(tmp_path: Path) -> None:
    settings = load_settings({"MYDATA_INSTANCE_PATH": str(tmp_path), "MYDATA_SANDBOX": "true"})
    assert settings.provider_timeout_seconds == 5.0
    assert settings.provider_max_workers == 32
    assert settings.provider_breaker_threshold == 5
    assert settings.provider_breaker_cool_down_seconds == 30.0
    assert settings.sandbox_faults_file == "config/sandbox-faults.toml"


def test_numbers_from_a_file_and_from_the_environment(tmp_path: Path) -> None:
    extra = tmp_path / "site.toml"
    extra.write_text("provider_timeout_seconds = 2.5\nprovider_breaker_threshold = 3\n")
    settings = load_settings(
        {"MYDATA_CONFIG": str(extra), "MYDATA_PROVIDER_BREAKER_COOL_DOWN_SECONDS": "12", "MYDATA_SANDBOX": "true"}
    )
    assert settings.provider_timeout_seconds == 2.5
    assert settings.provider_breaker_threshold == 3
    assert isinstance(settings.provider_breaker_threshold, int)
    assert settings.provider_breaker_cool_down_seconds == 12.0


@pytest.mark.parametrize(
    ("environ", "problem"),
    [
        ({"MYDATA_PROVIDER_TIMEOUT_SECONDS": "0"}, "more than 0"),
        ({"MYDATA_PROVIDER_TIMEOUT_SECONDS": "61"}, "at most 60"),
        ({"MYDATA_PROVIDER_TIMEOUT_SECONDS": "soon"}, "must be a number"),
        ({"MYDATA_PROVIDER_MAX_WORKERS": "0"}, "between 1 and 256"),
        ({"MYDATA_PROVIDER_MAX_WORKERS": "2.5"}, "whole number"),
        ({"MYDATA_PROVIDER_BREAKER_THRESHOLD": "0"}, "between 1 and 1000"),
        ({"MYDATA_PROVIDER_BREAKER_COOL_DOWN_SECONDS": "-1"}, "more than 0"),
    ],
)
def test_out_of_bounds_values_name_the_setting(environ: dict[str, str], problem: str) -> None:
    with pytest.raises(ConfigError, match=problem) as raised:
        load_settings(environ)
    assert raised.value.setting == next(iter(environ))


def test_a_boolean_is_not_a_number(tmp_path: Path) -> None:
    extra = tmp_path / "site.toml"
    extra.write_text("provider_max_workers = true\n")
    with pytest.raises(ConfigError, match="whole number") as raised:
        load_settings({"MYDATA_CONFIG": str(extra)})
    assert raised.value.setting.startswith("provider_max_workers")
