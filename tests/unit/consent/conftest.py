"""Fixtures for the ledger and receipt tests: a unit of work with a platform key, events, a forger."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from flask import Flask
from sqlalchemy import delete, insert, select, update

from consent.ledger import Ledger, LedgerEvent, TreeHeadPolicy, block_key, ledger
from consent.merkle import InMemoryTree
from consent.models import LedgerEntry, LedgerHead, LedgerNode
from mydata.clock import FrozenClock
from mydata.db import UnitOfWork, get_db
from mydata.keys import key_store

CITIZEN = "A123456789"
EventFactory = Callable[..., LedgerEvent]


@pytest.fixture
def uow(app: Flask) -> Iterator[UnitOfWork]:
    """Return a unit of work inside an app context, with an active platform signing key."""
    with app.app_context(), get_db().unit_of_work() as unit:
        key_store(unit).rotate()
        yield unit


@pytest.fixture
def log(uow: UnitOfWork) -> Ledger:
    """Return the app's ledger (default tree head policy) over the test's unit of work."""
    return ledger(uow)


@pytest.fixture
def quiet_log(uow: UnitOfWork, clock: FrozenClock) -> Ledger:
    """Return a ledger that signs a tree head on its first append only (unless asked)."""
    return Ledger(uow, keys=key_store(uow), clock=clock, policy=TreeHeadPolicy(10**9, 10**9))


@pytest.fixture
def granted() -> EventFactory:
    """Return a factory of `consent.granted` events for the sandbox bank."""

    def make(
        n: int = 0, citizen: str = CITIZEN, datasets: tuple[str, ...] = ("household.registration", "tax.income")
    ) -> LedgerEvent:
        return LedgerEvent(
            event="consent.granted",
            actor="sandbox-bank-web",
            subject_national_id=citizen,
            service="sandbox-bank.credit-card",
            datasets=datasets,
            consent_id=f"consent-{n:06d}",
        )

    return make


@pytest.fixture
def rewrite_entry(uow: UnitOfWork) -> Callable[[int, bytes], None]:
    """Return a forger: replace an entry's bytes and recompute every stored subtree and the head's frontier."""

    def rewrite(seq: int, leaf_input: bytes) -> None:
        session = uow.session
        session.execute(update(LedgerEntry).where(LedgerEntry.seq == seq).values(leaf_input=leaf_input))
        entries = session.execute(select(LedgerEntry.leaf_input).order_by(LedgerEntry.seq)).scalars().all()
        tree = InMemoryTree(bytes(entry) for entry in entries)
        session.execute(delete(LedgerNode))
        session.execute(
            insert(LedgerNode),
            [{"block": block_key(start, size), "hash": digest} for (start, size), digest in tree.blocks.items()],
        )
        session.execute(update(LedgerHead).values(frontier=b"".join(tree.frontier.hashes)))

    return rewrite
