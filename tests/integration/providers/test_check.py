"""`mydata providers check`: the health of every registered provider, as a table."""

from __future__ import annotations

import socket

import pytest
from flask import Flask

from mydata.db import get_db
from providers import services

from .conftest import RunningAgencies

pytestmark = pytest.mark.db


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_check_lists_every_provider_with_its_result(app: Flask, agencies: RunningAgencies) -> None:
    result = app.test_cli_runner().invoke(args=["providers", "check"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["provider", "agency", "status", "HTTP", "time", "result"]
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert sorted(rows) == ["bli", "mof-fia", "moi-household", "nhia"]
    assert rows["bli"][1:3] == ["bli", "active"]
    assert rows["bli"][4:] == ["ms", "ok"]


def test_an_unreachable_active_provider_fails_the_check(app: Flask, agencies: RunningAgencies) -> None:
    with app.app_context(), get_db().unit_of_work() as uow:
        services.update_provider(uow, "nhia", base_url=f"http://127.0.0.1:{closed_port()}", allow_http=True, actor="t")
        services.update_provider(uow, "bli", base_url=f"{agencies.url}/nobody", allow_http=True, actor="t")
    result = app.test_cli_runner().invoke(args=["providers", "check"])
    assert result.exit_code == 1
    rows = {line.split()[0]: line for line in result.stdout.splitlines()[1:]}
    assert rows["nhia"].endswith("unreachable")
    assert rows["bli"].endswith("HTTP 404")
    assert rows["mof-fia"].endswith("ok")
