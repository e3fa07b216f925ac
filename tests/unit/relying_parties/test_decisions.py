"""Operators' decisions are recorded with who, when, what and why (issue 13), whichever path decides."""

from __future__ import annotations

import datetime as dt

import pytest
from click.testing import Result
from flask import Flask

from mydata import decisions
from mydata.clock import FrozenClock
from mydata.db import get_db

from .test_cli import APPLY

pytestmark = pytest.mark.db

PROVIDER = "moi-household"


def run(app: Flask, *args: str) -> Result:
    return app.test_cli_runner().invoke(args=list(args))


def test_approving_suspending_and_reinstating_are_recorded_in_order(
    app: Flask, clock: FrozenClock, catalogue: None
) -> None:
    assert run(app, "rp", *APPLY).exit_code == 0
    for command in ("approve", "suspend", "approve", "approve"):  # the last changes nothing: no record
        assert run(app, "rp", command, "cli-bank").exit_code == 0
    for command in ("suspend", "approve"):
        done = run(app, "providers", command, PROVIDER)
        assert done.exit_code == 0, done.output
    with app.app_context(), get_db().unit_of_work() as uow:
        made = [(d.action, d.actor, d.decided_at) for d in decisions.recent(uow, subject_type="organisation")]
        provider = [d.action for d in decisions.recent(uow, subject_type="provider", subject_id=PROVIDER)]
    assert made == [(action, "cli", clock.now()) for action in ("reinstate", "suspend", "approve")]
    assert provider == ["reinstate", "suspend"]


def test_a_decision_keeps_its_reason_and_refuses_unknown_kinds(app: Flask, clock: FrozenClock) -> None:
    with app.app_context(), get_db().unit_of_work() as uow:
        decisions.record(uow, actor="citizen:x", subject_type="service", subject_id="bank.loans", action="reject",
                         reason="  The purpose is too vague.  ", now=clock.now())  # fmt: skip
        uow.commit()
        (kept,) = decisions.recent(uow)
        assert kept.reason == "The purpose is too vague."
        with pytest.raises(ValueError, match="unknown decision"):
            decisions.record(uow, actor="x", subject_type="service", subject_id="s", action="bless", now=clock.now())
        with pytest.raises(ValueError, match="unknown subject type"):
            decisions.record(uow, actor="x", subject_type="planet", subject_id="s", action="approve", now=clock.now())
    assert isinstance(clock.now(), dt.datetime)
