"""The ledger's storage and service (``consent.ledger``), on every database backend.

The tree itself is tested against the RFC and the reference vectors in test_merkle.py; here the
same vectors go through the database: stored subtrees, head, proofs and roots must agree exactly.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from typing import Any

import jwt
import pytest
import rfc8785
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import event, func, select

from consent import merkle
from consent.interfaces import LedgerEventInvalid, LedgerQueryInvalid, LedgerUnavailable
from consent.ledger import (
    EVENT_TYPES,
    STH_TYP,
    Ledger,
    LedgerEvent,
    TreeHeadPolicy,
    b64,
    block_of,
    ledger,
    sign_tree_head,
)
from consent.models import CaseOpening, LedgerEntry, LedgerHead, LedgerNode, LedgerTreeHead
from mydata.clock import FrozenClock
from mydata.db import UnitOfWork
from mydata.keys import key_store

pytestmark = pytest.mark.db

EventFactory = Callable[..., LedgerEvent]

# The Certificate Transparency reference tree (transparency-dev/merkle testonly/constants.go),
# as in test_merkle.py: eight leaf inputs and the root of every prefix.
LEAF_INPUTS = [
    bytes.fromhex(x)
    for x in ("", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f")
]
ROOTS = [
    bytes.fromhex(x)
    for x in (
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    )
]
# (index, size, path) from reference_test.go / verify_test.go, and (first, second, path).
INCLUSION_VECTORS = [
    (0, 8, ["96a296d2", "5f083f0a", "6b47aaf2"]),
    (5, 8, ["bc1a0643", "ca854ea1", "d37ee418"]),
    (1, 5, ["6e340b9c", "5f083f0a", "bc1a0643"]),
    (2, 3, ["fac54203"]),
]
CONSISTENCY_VECTORS = [
    (1, 8, ["96a296d2", "5f083f0a", "6b47aaf2"]),
    (6, 8, ["0ebc5d34", "ca854ea1", "d37ee418"]),
    (2, 5, ["5f083f0a", "bc1a0643"]),
    (6, 7, ["0ebc5d34", "b08693ec", "d37ee418"]),
]


def _prefixes(path: list[bytes]) -> list[str]:
    return [node.hex()[:8] for node in path]


# --- Known answers through the database ----------------------------------------------------------


def test_stored_tree_gives_the_reference_roots_and_proofs(quiet_log: Ledger) -> None:
    for size, leaf_input in enumerate(LEAF_INPUTS, start=1):
        appended = quiet_log.append_raw(leaf_input)
        assert appended.seq == size - 1
        assert appended.leaf_hash == merkle.leaf_hash(leaf_input)
        assert quiet_log.tree_head().root_hash == ROOTS[size]
    reference = merkle.InMemoryTree(LEAF_INPUTS)
    for size in range(9):
        assert quiet_log.root_at(size) == ROOTS[size]
        for first in range(size + 1):
            assert list(quiet_log.consistency_proof(first, size).consistency_path) == reference.consistency_proof(
                first, size
            )
        for index in range(size):
            proof = quiet_log.inclusion_proof(index, size)
            assert proof.leaf_hash == merkle.leaf_hash(LEAF_INPUTS[index])
            assert list(proof.audit_path) == reference.inclusion_proof(index, size)
    for index, size, path in INCLUSION_VECTORS:
        assert _prefixes(list(quiet_log.inclusion_proof(index, size).audit_path)) == path
    for first, second, path in CONSISTENCY_VECTORS:
        assert _prefixes(list(quiet_log.consistency_proof(first, second).consistency_path)) == path


def test_every_complete_subtree_is_stored_once_with_its_hash(quiet_log: Ledger, uow: UnitOfWork) -> None:
    for leaf_input in LEAF_INPUTS:
        quiet_log.append_raw(leaf_input)
    rows = uow.session.execute(select(LedgerNode.block, LedgerNode.hash)).all()
    stored = {block_of(block): bytes(digest) for block, digest in rows}
    assert stored == merkle.InMemoryTree(LEAF_INPUTS).blocks
    assert len(rows) == 15  # 8 leaves + 4 + 2 + 1


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(entries=st.lists(st.binary(max_size=6), min_size=1, max_size=80), data=st.data())
def test_stored_proofs_equal_the_in_memory_tree(
    quiet_log: Ledger, uow: UnitOfWork, entries: list[bytes], data: st.DataObject
) -> None:
    savepoint = uow.session.begin_nested()
    try:
        for entry in entries:
            quiet_log.append_raw(entry)
        reference = merkle.InMemoryTree(entries)
        size = len(entries)
        assert quiet_log.tree_head().root_hash == reference.root()
        for _ in range(5):
            tree_size = data.draw(st.integers(1, size))
            index = data.draw(st.integers(0, tree_size - 1))
            first = data.draw(st.integers(0, tree_size))
            assert list(quiet_log.inclusion_proof(index, tree_size).audit_path) == reference.inclusion_proof(
                index, tree_size
            )
            assert list(quiet_log.consistency_proof(first, tree_size).consistency_path) == reference.consistency_proof(
                first, tree_size
            )
            assert quiet_log.root_at(tree_size) == reference.root(tree_size)
    finally:
        savepoint.rollback()


def test_proofs_of_a_larger_stored_tree_equal_the_in_memory_tree(quiet_log: Ledger) -> None:
    entries = [i.to_bytes(3, "big") for i in range(1100)]
    for entry in entries:
        quiet_log.append_raw(entry)
    reference = merkle.InMemoryTree(entries)

    @settings(max_examples=150, deadline=None)
    @given(st.data())
    def check(data: st.DataObject) -> None:
        tree_size = data.draw(st.integers(1, len(entries)))
        index = data.draw(st.integers(0, tree_size - 1))
        first = data.draw(st.integers(0, tree_size))
        proof = quiet_log.inclusion_proof(index, tree_size)
        assert list(proof.audit_path) == reference.inclusion_proof(index, tree_size)
        root = reference.root(tree_size)
        assert merkle.verify_inclusion(proof.leaf_hash, index, tree_size, proof.audit_path, root)
        path = quiet_log.consistency_proof(first, tree_size).consistency_path
        assert list(path) == reference.consistency_proof(first, tree_size)
        assert merkle.verify_consistency(first, tree_size, reference.root(first), root, path)

    check()


# --- Entries -------------------------------------------------------------------------------------


def _commitment(national_id: bytes, salt: bytes) -> str:
    """DESIGN §6.3, written out here rather than taken from the code under test."""
    digest = hashlib.sha256(b"mydata-subject-v1\x00" + national_id + b"\x00" + salt).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _opening(uow: UnitOfWork, case_id: str) -> CaseOpening:
    return uow.session.execute(select(CaseOpening).where(CaseOpening.case_id == case_id)).scalar_one()


def test_entry_is_canonical_json_with_a_subject_commitment(
    log: Ledger, uow: UnitOfWork, clock: FrozenClock, granted: EventFactory
) -> None:
    appended = log.append(granted(7))
    entry = json.loads(appended.leaf_input)
    opening = _opening(uow, "consent-000007")
    assert len(opening.salt) == 32
    assert entry == {
        "version": 2,
        "seq": 0,
        "time": clock.now().isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "event": "consent.granted",
        "subject": _commitment(b"A123456789", opening.salt),
        "actor": "sandbox-bank-web",
        "service": "sandbox-bank.credit-card",
        "datasets": ["household.registration", "tax.income"],
        "outcome": "ok",
        "consent_id": "consent-000007",
        "document_hashes": {},
    }
    assert appended.leaf_input == rfc8785.dumps(entry)
    assert appended.leaf_hash == hashlib.sha256(b"\x00" + appended.leaf_input).digest()
    stored = uow.session.execute(select(LedgerEntry)).scalar_one()
    assert (stored.seq, bytes(stored.leaf_input)) == (0, appended.leaf_input)
    assert (stored.subject, stored.consent_id) == (entry["subject"], "consent-000007")
    # The private opening finds the case by the keyed hash, which no entry carries any more.
    secret = key_store(uow).secret("ledger")
    assert opening.subject_key == hmac.new(secret, b"A123456789", hashlib.sha256).hexdigest()
    assert opening.subject_key.encode() not in appended.leaf_input


def test_the_national_id_is_never_stored(log: Ledger, uow: UnitOfWork, granted: EventFactory) -> None:
    log.append(granted(1))
    for table in (LedgerEntry, LedgerNode, LedgerHead, LedgerTreeHead, CaseOpening):
        for row in uow.session.execute(select(table.__table__)).all():
            dumped = repr(tuple(row)).encode() + b"".join(v for v in row if isinstance(v, bytes))
            assert b"A123456789" not in dumped.upper()
    assert "A123456789" not in repr(granted(1))


def test_each_case_has_its_own_commitment(log: Ledger, uow: UnitOfWork, granted: EventFactory) -> None:
    first = json.loads(log.append(granted(1)).leaf_input)["subject"]
    same_case = json.loads(log.append(granted(1, citizen=" a123456789 ")).leaf_input)["subject"]
    next_case = json.loads(log.append(granted(2)).leaf_input)["subject"]
    other = json.loads(log.append(granted(3, citizen="B223456782")).leaf_input)["subject"]
    assert first == same_case
    assert len({first, next_case, other}) == 3
    assert len(first) == 43
    salts = {bytes(salt) for salt in uow.session.execute(select(CaseOpening.salt)).scalars()}
    assert len(salts) == 3


def test_a_case_is_about_one_citizen(log: Ledger, granted: EventFactory) -> None:
    log.append(granted(1))
    with pytest.raises(LedgerEventInvalid, match="another citizen"):
        log.append(granted(1, citizen="B223456782"))


def test_an_event_can_carry_its_cases_commitment_without_the_national_id(
    log: Ledger, uow: UnitOfWork, granted: EventFactory
) -> None:
    # The platform records some events with no citizen at hand (the sweeper's expiries): they carry
    # the commitment the case already has, so the citizen's history finds them and the opening opens them.
    first = json.loads(log.append(granted(4)).leaf_input)["subject"]
    expired = log.append(
        LedgerEvent(event="consent.expired", actor="platform", subject_from_case=True, consent_id="consent-000004",
                    outcome="expired")
    )  # fmt: skip
    entry = json.loads(expired.leaf_input)
    assert entry["subject"] == first == _commitment(b"A123456789", _opening(uow, "consent-000004").salt)
    stored = uow.session.execute(select(LedgerEntry).where(LedgerEntry.seq == expired.seq)).scalar_one()
    assert stored.subject == first
    assert uow.session.scalar(select(func.count()).select_from(CaseOpening)) == 1


def test_a_case_with_no_commitment_has_none_to_carry(log: Ledger, granted: EventFactory) -> None:
    log.append(granted(1))
    size = log.tree_head().tree_size
    with pytest.raises(LedgerEventInvalid, match="no subject commitment"):
        log.append(LedgerEvent(event="consent.expired", actor="platform", subject_from_case=True, consent_id="c-9"))
    assert log.tree_head().tree_size == size


def test_sequence_numbers_are_leaf_indexes_from_zero(log: Ledger, granted: EventFactory) -> None:
    assert [log.append(granted(n)).seq for n in range(5)] == [0, 1, 2, 3, 4]
    assert [json.loads(e.leaf_input)["seq"] for e in log.entries(0, 4)] == [0, 1, 2, 3, 4]
    assert log.tree_head().tree_size == 5


def test_every_listed_event_can_be_recorded(log: Ledger) -> None:
    for name in sorted(EVENT_TYPES):
        log.append(LedgerEvent(event=name, actor="counter:sandbox-bank", outcome="ok"))
    assert log.tree_head().tree_size == len(EVENT_TYPES)


def test_document_hashes_and_datasets_are_recorded_sorted(log: Ledger) -> None:
    digest = hashlib.sha256(b"document").hexdigest()
    appended = log.append(
        LedgerEvent(
            event="delivery.completed",
            actor="sandbox-bank-web",
            subject_national_id="B223456782",
            datasets=("tax.income", "household.registration"),
            document_hashes={"tax.income": digest, "household.registration": digest},
            consent_id="c-1",
        )
    )
    entry = json.loads(appended.leaf_input)
    assert entry["datasets"] == ["household.registration", "tax.income"]
    assert entry["document_hashes"] == {"household.registration": digest, "tax.income": digest}


@pytest.mark.parametrize(
    "fields",
    [
        {"event": "consent.grantd"},
        {"actor": "王小明"},
        {"actor": "A123456789"},
        {"actor": "bank A123456789"},
        {"consent_id": "A123456789"},
        {"service": "a service with spaces"},
        {"datasets": ("tax.income", "tax.income")},
        {"datasets": ("稅務資料",)},
        {"outcome": "Not OK"},
        {"document_hashes": {"tax.income": "ABCDEF"}},
        {"document_hashes": {"tax income": "0" * 64}},
        {"subject_national_id": "王小明"},
        {"subject_national_id": "123"},
        {"subject_national_id": "A123456789"},  # about a citizen, but in no case
        {"subject_from_case": True},  # the commitment of which case?
        {"subject_from_case": True, "consent_id": "c-1", "subject_national_id": "A123456789"},  # which subject?
    ],
)
def test_events_that_could_carry_personal_data_are_refused(fields: dict[str, Any]) -> None:
    values: dict[str, Any] = {"event": "consent.granted", "actor": "sandbox-bank-web", **fields}
    with pytest.raises(LedgerEventInvalid):
        LedgerEvent(**values)


def test_a_resident_certificate_number_is_a_valid_subject(log: Ledger, uow: UnitOfWork) -> None:
    appended = log.append(
        LedgerEvent(event="download.completed", actor="citizen", subject_national_id="ac01234567", consent_id="d-1")
    )
    assert json.loads(appended.leaf_input)["subject"] == _commitment(b"AC01234567", _opening(uow, "d-1").salt)


# --- Transactions --------------------------------------------------------------------------------


def test_append_rolls_back_with_the_callers_work(log: Ledger, uow: UnitOfWork, granted: EventFactory) -> None:
    log.append(granted(1))
    uow.rollback()
    assert log.tree_head().tree_size == 0
    assert uow.session.execute(select(func.count()).select_from(LedgerEntry)).scalar() == 0
    assert uow.session.execute(select(func.count()).select_from(LedgerNode)).scalar() == 0
    log.append(granted(2))
    uow.commit()
    assert log.tree_head().tree_size == 1
    assert json.loads(log.entry(0).leaf_input)["consent_id"] == "consent-000002"


def test_append_never_commits(log: Ledger, uow: UnitOfWork, granted: EventFactory) -> None:
    commits: list[object] = []

    def committed(session: object) -> None:
        commits.append(session)

    event.listen(uow.session, "after_commit", committed)
    try:
        for n in range(3):
            log.append(granted(n))
        log.sign_tree_head()
    finally:
        event.remove(uow.session, "after_commit", committed)
    assert commits == []


def test_append_cost_does_not_grow_with_the_log(quiet_log: Ledger, uow: UnitOfWork, granted: EventFactory) -> None:
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    quiet_log.append(granted(0))  # signs the first tree head
    connection = uow.session.connection()
    counts = {}
    for size in range(1, 1025):
        event.listen(connection, "before_cursor_execute", record)
        try:
            quiet_log.append(granted(size))
        finally:
            event.remove(connection, "before_cursor_execute", record)
        if size in (1, 2, 511, 1023, 1024):
            counts[size] = len(statements)
        # Never read the entries, never scan the stored subtrees.
        assert not any("FROM consent_ledger_entry" in s or "FROM consent_ledger_node" in s for s in statements)
        statements.clear()
    assert len(set(counts.values())) == 1, counts


def test_the_head_must_exist(log: Ledger, uow: UnitOfWork, granted: EventFactory) -> None:
    uow.session.execute(LedgerHead.__table__.delete())
    with pytest.raises(LedgerUnavailable):
        log.append(granted(1))


# --- Signed tree heads ---------------------------------------------------------------------------


def _verify_jws(uow: UnitOfWork, token: str) -> dict[str, Any]:
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "ES256"
    assert header["typ"] == STH_TYP
    jwk = next(k for k in key_store(uow).jwks()["keys"] if k["kid"] == header["kid"])
    payload: dict[str, Any] = json.loads(jwt.api_jws.decode(token, jwt.PyJWK(jwk).key, algorithms=["ES256"]))
    return payload


def test_tree_head_is_signed_every_n_entries(uow: UnitOfWork, clock: FrozenClock, granted: EventFactory) -> None:
    log = Ledger(uow, keys=key_store(uow), clock=clock, policy=TreeHeadPolicy(every_entries=3, every_seconds=3600))
    signed = [log.append(granted(n)).signed_tree_head for n in range(8)]
    assert [s.tree_size if s else None for s in signed] == [1, None, None, 4, None, None, 7, None]
    for head in log.signed_tree_heads():
        assert _verify_jws(uow, head.jws) == {
            "tree_size": head.tree_size,
            "root_hash": b64(head.root_hash),
            "timestamp": head.timestamp,
        }
        assert head.root_hash == log.root_at(head.tree_size)


def test_tree_head_is_signed_after_t_seconds(uow: UnitOfWork, clock: FrozenClock, granted: EventFactory) -> None:
    log = Ledger(uow, keys=key_store(uow), clock=clock, policy=TreeHeadPolicy(every_entries=1000, every_seconds=60))
    assert log.append(granted(0)).signed_tree_head is not None
    clock.advance(59)
    assert log.append(granted(1)).signed_tree_head is None
    clock.advance(1)
    head = log.append(granted(2)).signed_tree_head
    assert head is not None
    assert head.tree_size == 3


def test_settings_choose_the_cadence(app: Any, uow: UnitOfWork) -> None:
    settings_ = app.config["MYDATA_SETTINGS"]
    app.config["MYDATA_SETTINGS"] = settings_.replace(ledger_sth_every_entries=2, ledger_sth_every_seconds=10)
    log = ledger(uow)
    assert log.policy == TreeHeadPolicy(2, 10)


def test_a_tree_head_is_signed_on_demand_only_when_due(
    uow: UnitOfWork, clock: FrozenClock, granted: EventFactory
) -> None:
    empty = sign_tree_head(uow, only_if_due=True)  # none yet: one is due
    assert empty is not None
    assert (empty.tree_size, empty.root_hash) == (0, merkle.EMPTY_ROOT)
    assert sign_tree_head(uow, only_if_due=True) is None
    ledger(uow).append(granted(1))
    assert sign_tree_head(uow, only_if_due=True) is None  # waiting less than ledger_sth_every_seconds
    clock.advance(300)
    fresh = sign_tree_head(uow, only_if_due=True)
    assert fresh is not None
    assert (fresh.tree_size, fresh.root_hash) == (1, ledger(uow).tree_head().root_hash)
    clock.advance(3600)
    assert sign_tree_head(uow, only_if_due=True) is None  # nothing new to sign
    assert ledger(uow).signed_tree_heads() == [empty, fresh]


def test_on_demand_tree_head_and_covering_one(log: Ledger, uow: UnitOfWork, granted: EventFactory) -> None:
    log.append(granted(0))
    log.append(granted(1))
    covering = log.signed_tree_head_covering(1)
    assert covering.tree_size == 2
    assert log.signed_tree_head_covering(0) == covering
    with pytest.raises(LedgerQueryInvalid):
        log.signed_tree_head_covering(2)
    now = sign_tree_head(uow)
    assert now is not None
    assert now.tree_size == 2
    assert [h.tree_size for h in log.signed_tree_heads()] == [1, 2, 2]
    assert [h.tree_size for h in log.signed_tree_heads(start=1, limit=1)] == [2]


def test_tree_head_times_never_go_back(uow: UnitOfWork, clock: FrozenClock, granted: EventFactory) -> None:
    log = Ledger(uow, keys=key_store(uow), clock=clock, policy=TreeHeadPolicy(1, 3600))
    first = log.append(granted(0)).signed_tree_head
    clock.advance(-30)
    second = log.append(granted(1)).signed_tree_head
    assert first is not None
    assert second is not None
    assert second.timestamp == first.timestamp


# --- Reads ---------------------------------------------------------------------------------------


def test_entries_are_cut_at_the_end_of_the_log(log: Ledger, granted: EventFactory) -> None:
    for n in range(3):
        log.append(granted(n))
    assert [e.seq for e in log.entries(1, 999)] == [1, 2]
    assert log.entries(2, 2)[0].entry["consent_id"] == "consent-000002"


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda log: log.entries(3, 3), "has 3 entries"),
        (lambda log: log.entries(2, 1), "at most end"),
        (lambda log: log.entries(-1, 1), "at least 0"),
        (lambda log: log.entries(0, 1000), "at most 1000"),
        (lambda log: log.inclusion_proof(0, 4), "current tree size 3"),
        (lambda log: log.inclusion_proof(0, 0), "between 1 and"),
        (lambda log: log.inclusion_proof(2, 2), "tree_size - 1"),
        (lambda log: log.inclusion_proof(-1, 2), "tree_size - 1"),
        (lambda log: log.consistency_proof(2, 1), "at most second"),
        (lambda log: log.consistency_proof(1, 4), "beyond the current tree size"),
        (lambda log: log.root_at(4), "current tree size"),
    ],
)
def test_reads_outside_the_log_are_refused_with_a_reason(
    log: Ledger, granted: EventFactory, call: Callable[[Ledger], object], message: str
) -> None:
    for n in range(3):
        log.append(granted(n))
    with pytest.raises(LedgerQueryInvalid, match=message):
        call(log)
