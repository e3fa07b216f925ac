"""The full audit (``consent.audit``): it passes on an honest ledger and names the first place a tampered one breaks."""

from __future__ import annotations

import json
import random
from collections.abc import Callable

import jwt
import pytest
import rfc8785
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import delete, insert, select, update

from consent import audit
from consent.audit import verify_ledger
from consent.interfaces import LedgerVerificationFailed
from consent.ledger import BLOCK_LEVELS, STH_TYP, Ledger, LedgerEvent, TreeHeadPolicy, b64, block_key
from consent.models import LedgerEntry, LedgerHead, LedgerNode, LedgerTreeHead
from mydata.clock import FrozenClock
from mydata.db import UnitOfWork
from mydata.keys import key_store

pytestmark = pytest.mark.db

EventFactory = Callable[..., LedgerEvent]
SIZE = 120


@pytest.fixture
def filled(uow: UnitOfWork, clock: FrozenClock, granted: EventFactory) -> Ledger:
    """Return a ledger of SIZE entries with a signed tree head every 16 (and at 1)."""
    log = Ledger(uow, keys=key_store(uow), clock=clock, policy=TreeHeadPolicy(every_entries=16, every_seconds=3600))
    for n in range(SIZE):
        log.append(granted(n, citizen="A123456789" if n % 2 else "B223456782"))
        clock.advance(1)
    uow.commit()  # into the test's outer transaction, so that a test can roll its tampering back
    return log


def _fails(log: Ledger, **options: int) -> LedgerVerificationFailed:
    with pytest.raises(LedgerVerificationFailed) as raised:
        verify_ledger(log, **options)
    return raised.value


def _leaf_input(uow: UnitOfWork, seq: int) -> bytes:
    return bytes(uow.session.execute(select(LedgerEntry.leaf_input).where(LedgerEntry.seq == seq)).scalar_one())


def _set_entry(uow: UnitOfWork, seq: int, **values: object) -> None:
    uow.session.execute(update(LedgerEntry).where(LedgerEntry.seq == seq).values(**values))


def test_an_honest_ledger_verifies(filled: Ledger) -> None:
    progress: list[int] = []
    report = verify_ledger(filled, batch_size=7, progress=progress.append)
    assert report.tree_size == SIZE
    assert report.root_hash == filled.tree_head().root_hash
    assert report.signed_tree_heads == 8  # sizes 1, 17, 33, ... 113
    assert report.unsigned_entries == SIZE - 113
    assert sum(progress) == SIZE


def test_an_empty_ledger_verifies(log: Ledger, uow: UnitOfWork) -> None:
    log.sign_tree_head()
    report = verify_ledger(log)
    assert (report.tree_size, report.signed_tree_heads, report.unsigned_entries) == (0, 1, 0)


@pytest.mark.parametrize("seed", range(5))
def test_a_changed_byte_is_found_at_its_entry(filled: Ledger, uow: UnitOfWork, seed: int) -> None:
    rng = random.Random(seed)
    seq = rng.randrange(SIZE)
    original = bytearray(_leaf_input(uow, seq))
    position = rng.randrange(len(original))
    original[position] ^= 1 << rng.randrange(8)
    _set_entry(uow, seq, leaf_input=bytes(original))
    failure = _fails(filled, batch_size=rng.randint(1, 50))
    assert (failure.where, failure.problem) == (f"seq {seq}", "leaf hash does not match the stored entry")


@pytest.mark.parametrize("seed", range(5))
def test_a_deleted_entry_is_found(filled: Ledger, uow: UnitOfWork, seed: int) -> None:
    rng = random.Random(seed)
    seq = rng.randrange(SIZE)
    uow.session.execute(delete(LedgerEntry).where(LedgerEntry.seq == seq))
    failure = _fails(filled, batch_size=rng.randint(1, 50))
    assert failure.where == f"seq {seq}"
    assert "the entry is missing" in failure.problem


@pytest.mark.parametrize("seed", range(5))
def test_two_swapped_entries_are_found_at_the_first(filled: Ledger, uow: UnitOfWork, seed: int) -> None:
    rng = random.Random(seed)
    first, second = sorted(rng.sample(range(SIZE), 2))
    rows = {
        seq: uow.session.execute(
            select(LedgerEntry.leaf_input, LedgerEntry.subject, LedgerEntry.consent_id).where(LedgerEntry.seq == seq)
        ).one()
        for seq in (first, second)
    }
    for seq, other in ((first, second), (second, first)):
        _set_entry(uow, seq, leaf_input=rows[other][0], subject=rows[other][1], consent_id=rows[other][2])
    failure = _fails(filled, batch_size=rng.randint(1, 50))
    assert (failure.where, failure.problem) == (f"seq {first}", "leaf hash does not match the stored entry")


def test_swapped_entries_with_swapped_leaf_hashes_are_still_found(filled: Ledger, uow: UnitOfWork) -> None:
    a, b = _leaf_input(uow, 40), _leaf_input(uow, 41)
    leaves = {
        seq: uow.session.execute(select(LedgerNode.hash).where(LedgerNode.block == block_key(seq, 1))).scalar_one()
        for seq in (40, 41)
    }
    _set_entry(uow, 40, leaf_input=b)
    _set_entry(uow, 41, leaf_input=a)
    for seq, other in ((40, 41), (41, 40)):
        uow.session.execute(update(LedgerNode).where(LedgerNode.block == block_key(seq, 1)).values(hash=leaves[other]))
    failure = _fails(filled)
    # The pair's parent hashes the leaves in order, so it no longer matches.
    assert failure.where == "seq 40"
    assert failure.problem == "the entry records seq 41"


@pytest.mark.parametrize("level", [0, 1, 3])
def test_a_changed_stored_subtree_is_found(filled: Ledger, uow: UnitOfWork, level: int) -> None:
    last = 63 if level else 50
    uow.session.execute(
        update(LedgerNode).where(LedgerNode.block == last * BLOCK_LEVELS + level).values(hash=b"\x01" * 32)
    )
    failure = _fails(filled, batch_size=10)
    assert failure.where == f"seq {last}"
    if level == 0:
        assert failure.problem == "leaf hash does not match the stored entry"
    else:
        start = last - (1 << level) + 1
        assert failure.problem == f"the stored hash of subtree [{start}, {last + 1}) does not match the entries"


def test_a_missing_or_extra_stored_subtree_is_found(filled: Ledger, uow: UnitOfWork) -> None:
    uow.session.execute(delete(LedgerNode).where(LedgerNode.block == block_key(68, 4)))
    failure = _fails(filled)
    assert (failure.where, failure.problem) == ("seq 71", "the stored hash of subtree [68, 72) is missing")
    uow.rollback()
    uow.session.execute(insert(LedgerNode).values(block=block_key(69, 2), hash=b"\x00" * 32))
    failure = _fails(filled)
    assert failure.where == "seq 70"
    assert "belongs to no subtree" in failure.problem


def test_a_changed_index_column_is_found(filled: Ledger, uow: UnitOfWork) -> None:
    # Hiding an entry from a citizen's history by changing the indexed pseudonym is caught.
    _set_entry(uow, 33, subject="0" * 64)
    failure = _fails(filled)
    assert failure.where == "seq 33"
    assert "subject or consent_id" in failure.problem


def test_an_entry_that_is_not_a_ledger_entry_is_found(quiet_log: Ledger) -> None:
    quiet_log.append_raw(b"not json")
    assert _fails(quiet_log).problem == "the entry is not JSON"


def _version_1(log: Ledger, event: LedgerEvent, seq: int) -> bytes:
    """Return the bytes a version 1 append wrote: the citizen's keyed hash as the subject of every case."""
    entry = event.entry(seq, "2026-11-30T08:00:00.000Z", log.subject_key(event.subject_national_id or ""))
    return rfc8785.dumps({**entry, "version": 1})


def test_version_1_entries_and_version_2_entries_verify_together(quiet_log: Ledger, granted: EventFactory) -> None:
    for n in range(3):
        event = granted(n)
        quiet_log.append_raw(_version_1(quiet_log, event, n), subject=quiet_log.subject_key("A123456789"),
                             consent_id=event.consent_id)  # fmt: skip
    for n in range(3, 6):
        quiet_log.append(granted(n))
    quiet_log.sign_tree_head()
    assert verify_ledger(quiet_log).tree_size == 6
    assert [e.entry["version"] for e in quiet_log.entries(0, 5)] == [1, 1, 1, 2, 2, 2]


@pytest.mark.parametrize(("version", "problem"), [(2, "not a subject commitment"), (3, "not a version 1 or 2")])
def test_an_entry_of_the_wrong_shape_for_its_version_is_found(
    quiet_log: Ledger, granted: EventFactory, version: int, problem: str
) -> None:
    event = granted(0)
    entry = {**json.loads(_version_1(quiet_log, event, 0)), "version": version}
    quiet_log.append_raw(rfc8785.dumps(entry), subject=entry["subject"], consent_id=event.consent_id)
    assert problem in _fails(quiet_log).problem


def test_a_rewritten_signed_entry_breaks_its_tree_head(
    filled: Ledger, uow: UnitOfWork, rewrite_entry: Callable[[int, bytes], None]
) -> None:
    entry = json.loads(_leaf_input(uow, 20))
    entry["datasets"] = ["household.registration"]
    rewrite_entry(20, rfc8785.dumps(entry))
    failure = _fails(filled)
    # Every stored hash was recomputed, so only the signature over the old root tells.
    assert failure.where.endswith("(tree_size 33)")
    assert failure.problem == "the signed root does not match the entries"


def test_a_tampered_tree_head_is_found(filled: Ledger, uow: UnitOfWork) -> None:
    heads = uow.session.execute(select(LedgerTreeHead.id, LedgerTreeHead.jws).order_by(LedgerTreeHead.id)).all()
    third = heads[2]
    uow.session.execute(update(LedgerTreeHead).where(LedgerTreeHead.id == third.id).values(root_hash=b"\x02" * 32))
    failure = _fails(filled)
    assert failure.where.startswith(f"signed tree head {third.id} ")
    assert failure.problem == "the stored fields differ from the signed ones"
    uow.rollback()
    header, payload, signature = third.jws.split(".")
    forged = f"{header}.{payload}.{signature[:-4]}AAAA"
    uow.session.execute(update(LedgerTreeHead).where(LedgerTreeHead.id == third.id).values(jws=forged))
    assert _fails(filled).problem == "the JWS signature does not verify"


def test_a_tree_head_signed_by_another_key_is_found(filled: Ledger, uow: UnitOfWork) -> None:
    head = uow.session.execute(select(LedgerTreeHead).order_by(LedgerTreeHead.id.desc()).limit(1)).scalar_one()
    payload = rfc8785.dumps(
        {"tree_size": head.tree_size, "root_hash": b64(head.root_hash), "timestamp": head.timestamp}
    )
    kid = jwt.get_unverified_header(head.jws)["kid"]
    forged = jwt.api_jws.encode(
        payload, ec.generate_private_key(ec.SECP256R1()), algorithm="ES256", headers={"kid": kid, "typ": STH_TYP}
    )
    uow.session.execute(update(LedgerTreeHead).where(LedgerTreeHead.id == head.id).values(jws=forged))
    assert _fails(filled).problem == "the JWS signature does not verify"


def test_tree_heads_signed_by_a_retired_key_still_verify(filled: Ledger, uow: UnitOfWork, clock: FrozenClock) -> None:
    key_store(uow).rotate()
    filled.sign_tree_head()
    assert verify_ledger(filled).signed_tree_heads == 9


def test_a_tree_head_that_shrinks_the_log_is_found(filled: Ledger, uow: UnitOfWork, clock: FrozenClock) -> None:
    # A genuine signature over an honest old root, stored as the newest head: the log shrank.
    old = uow.session.execute(select(LedgerTreeHead).where(LedgerTreeHead.tree_size == 17)).scalar_one()
    clock.advance(10)
    replay = filled._sign(17, bytes(old.root_hash), None)
    uow.session.execute(
        insert(LedgerTreeHead).values(
            tree_size=17, root_hash=replay.root_hash, timestamp=replay.timestamp, jws=replay.jws
        )
    )
    uow.session.execute(update(LedgerHead).values(sth_tree_size=17, sth_timestamp=replay.timestamp))
    failure = _fails(filled)
    assert "the log shrank" in failure.problem


def test_a_tree_head_beyond_the_log_is_found(filled: Ledger, uow: UnitOfWork) -> None:
    signed = filled._sign(SIZE + 5, b"\x03" * 32, None)
    uow.session.execute(
        insert(LedgerTreeHead).values(
            tree_size=signed.tree_size, root_hash=signed.root_hash, timestamp=signed.timestamp, jws=signed.jws
        )
    )
    assert _fails(filled).problem == f"the log has only {SIZE} entries"


def test_an_entry_beyond_the_head_is_found(filled: Ledger, uow: UnitOfWork) -> None:
    uow.session.execute(insert(LedgerEntry).values(seq=SIZE + 3, leaf_input=b"{}", subject=None, consent_id=None))
    failure = _fails(filled)
    assert failure.where == f"seq {SIZE + 3}"
    assert "beyond the tree head" in failure.problem


def test_a_tampered_head_is_found(filled: Ledger, uow: UnitOfWork) -> None:
    frontier = bytes(uow.session.execute(select(LedgerHead.frontier)).scalar_one())
    uow.session.execute(update(LedgerHead).values(frontier=b"\x04" * 32 + frontier[32:]))
    failure = _fails(filled)
    assert (failure.where, failure.problem) == ("tree head", "the stored frontier does not match the entries")
    uow.rollback()
    # A head claiming a recent tree head would hold back the next one (the T-seconds rule).
    uow.session.execute(update(LedgerHead).values(sth_timestamp="2099-01-01T00:00:00.000Z"))
    assert _fails(filled).problem == "it does not record the newest signed tree head"


def test_the_first_failure_in_log_order_is_named(filled: Ledger, uow: UnitOfWork) -> None:
    _set_entry(uow, 90, leaf_input=b"x")
    uow.session.execute(update(LedgerNode).where(LedgerNode.block == block_key(0, 16)).values(hash=b"\5" * 32))
    failure = _fails(filled, batch_size=1000)
    assert failure.where == "seq 15"
    # A tree head made before the first bad entry is reported first.
    uow.rollback()
    _set_entry(uow, 90, leaf_input=b"x")
    uow.session.execute(update(LedgerTreeHead).where(LedgerTreeHead.tree_size == 81).values(jws="x.y.z"))
    assert _fails(filled).where.endswith("(tree_size 81)")


def test_audit_options_are_checked(filled: Ledger) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        verify_ledger(filled, batch_size=0)


def test_tree_heads_are_checked_in_rounds(filled: Ledger, uow: UnitOfWork, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(audit, "TREE_HEADS_PER_QUERY", 3)
    monkeypatch.setattr(audit, "BLOCKS_PER_QUERY", 4)
    assert verify_ledger(filled, batch_size=13).signed_tree_heads == 8
    sixth = uow.session.execute(select(LedgerTreeHead.id).order_by(LedgerTreeHead.id).offset(5).limit(1)).scalar_one()
    uow.session.execute(
        update(LedgerTreeHead).where(LedgerTreeHead.id == sixth).values(timestamp="2000-01-01T00:00:00.000Z")
    )
    failure = _fails(filled)
    assert failure.where.startswith(f"signed tree head {sixth} ")
    assert failure.problem == "the stored fields differ from the signed ones"
