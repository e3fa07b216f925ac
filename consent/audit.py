"""The full audit of the ledger (`mydata ledger verify`): recompute everything from the stored entries.

An auditor trusts nothing stored except the entries and the platform's public keys. Every leaf
hash, every stored subtree hash, the head's frontier, every signed tree head (its signature
against the JWKS, retired keys included, and its root against the recomputed one) and the
consistency of consecutive signed tree heads (RFC 9162 §2.1.4) are recomputed and compared.

The log is replayed in ranges through :class:`consent.merkle.CompactRange`, which names every
block an append completes: the stored subtree rows ending in a range must be exactly those
blocks with those hashes. A range starting at leaf ``a`` starts from the stored frontier blocks of
the tree of size ``a``; they all end before ``a`` and are checked by the ranges before it, so the
ranges can be replayed by parallel worker processes, and the audit holds when every range holds.
Failures are reported in log order: the first bad seq, or a signed tree head before it.

Memory stays bounded: entries and subtree rows are read in batches, and signed tree heads are
kept as one root per distinct size.
"""

from __future__ import annotations

import atexit
import bisect
import datetime as dt
import itertools
import json
import multiprocessing
import re
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.sql import Select
from sqlalchemy.sql.compiler import SQLCompiler

from consent import merkle
from consent.interfaces import LedgerVerificationFailed
from consent.ledger import (
    BLOCK_LEVELS,
    ENTRY_VERSIONS,
    TREE_HEAD_COLUMNS,
    Ledger,
    b64,
    block_of,
    check_tree_head_signature,
    fetch_blocks,
    parse_rfc3339,
    read_head,
)
from consent.models import LedgerEntry, LedgerNode, LedgerTreeHead, LedgerVerification
from mydata.db import UnitOfWork, make_engine, read_only_connection

DEFAULT_BATCH_SIZE = 10_000
RANGE_SIZE = 65_536
"""Entries per range handed to a worker: small enough for a smooth progress bar, large enough to pay for itself."""
TREE_HEADS_PER_QUERY = 1000
"""Signed tree heads checked per round: their consistency proofs' blocks come in a few queries."""
BLOCKS_PER_QUERY = 5000
PARALLEL_FROM = 4 * RANGE_SIZE
"""Shorter logs are replayed in this process: starting a worker costs about a second of imports,
which only pays off from about 200,000 entries (one process checks about 85,000 a second)."""

_SELECT_ENTRIES = (
    select(LedgerEntry.seq, LedgerEntry.leaf_input, LedgerEntry.subject, LedgerEntry.consent_id)
    .where(LedgerEntry.seq >= bindparam("start"), LedgerEntry.seq < bindparam("end"))
    .order_by(LedgerEntry.seq)
    .limit(bindparam("limit"))
)
# The subtrees completed by the appends of leaves first..last, in the order they were made.
_SELECT_NODES = (
    select(LedgerNode.block, LedgerNode.hash)
    .where(LedgerNode.block >= bindparam("first") * BLOCK_LEVELS, LedgerNode.block < bindparam("end") * BLOCK_LEVELS)
    .order_by(LedgerNode.block)
)
_SELECT_TREE_HEADS = (
    select(*TREE_HEAD_COLUMNS)
    .where(LedgerTreeHead.id > bindparam("after"))
    .order_by(LedgerTreeHead.id)
    .limit(bindparam("limit"))
)
_PLACEHOLDER = bytes(merkle.HASH_SIZE)
_SNAPSHOT_ID = re.compile(r"[0-9A-Fa-f]+(-[0-9A-Fa-f]+)*")
# A version 2 subject: the unpadded base64url of a SHA-256 commitment.
_COMMITMENT = re.compile(r"[A-Za-z0-9_-]{43}")


@dataclass(frozen=True)
class AuditReport:
    """What the audit checked, when everything held."""

    tree_size: int
    root_hash: bytes
    signed_tree_heads: int
    unsigned_entries: int
    """Entries after the newest signed tree head: only the stored hashes vouch for them so far."""


@dataclass(frozen=True)
class _Problem:
    seq: int
    problem: str


@dataclass
class _RangeResult:
    start: int
    end: int
    problem: _Problem | None = None
    roots: dict[int, bytes] = field(default_factory=dict)
    frontier: tuple[bytes, ...] = ()


def record_verification(
    uow: UnitOfWork, *, at: dt.datetime, tree_size: int, failure: LedgerVerificationFailed | None = None
) -> LedgerVerification:
    """Keep the result of a full verification of *tree_size* entries, finished *at* (the caller commits).

    The operator console shows the latest (:func:`latest_verification`); *failure* names the first
    bad entry or signed tree head.
    """
    kept = LedgerVerification(
        verified_at=at,
        tree_size=tree_size,
        ok=failure is None,
        failed_at=None if failure is None else failure.where[:200],
        problem=None if failure is None else failure.problem,
    )
    uow.session.add(kept)
    return kept


def latest_verification(uow: UnitOfWork) -> LedgerVerification | None:
    """Return the result of the latest full verification, or None if the ledger was never verified."""
    query = select(LedgerVerification).order_by(LedgerVerification.verified_at.desc(), LedgerVerification.id.desc())
    return uow.session.scalars(query.limit(1)).first()


def verify_ledger(
    ledger: Ledger,
    *,
    workers: int = 1,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: Callable[[int], None] | None = None,
) -> AuditReport:
    """Audit the whole ledger; raise :class:`LedgerVerificationFailed` naming the first failure in log order.

    Run it in one snapshot (PostgreSQL REPEATABLE READ; one SQLite transaction) so that appends
    made meanwhile are not seen. With ``workers`` > 1 and a long log, ranges are replayed by
    worker processes reading the same snapshot over their own connections, so the data must be
    committed. Logs shorter than ``PARALLEL_FROM`` are replayed in this process. ``progress`` is
    called with the number of entries each step checked.
    """
    if workers < 1 or batch_size < 1:
        raise ValueError("workers and batch_size must be at least 1")
    connection = ledger.connection
    head = read_head(connection)
    size = head.tree_size
    sizes = _tree_head_sizes(connection)
    ranges = [(start, min(start + RANGE_SIZE, size)) for start in range(0, size, RANGE_SIZE)]

    def wanted(start: int, end: int) -> list[int]:
        # The roots a range must note: tree head sizes in [start, end), and in [start, end] at the end.
        stop = bisect.bisect_right(sizes, end) if end == size else bisect.bisect_left(sizes, end)
        return sizes[bisect.bisect_left(sizes, start) : stop]

    if workers > 1 and size >= PARALLEL_FROM:
        results = _replay_in_parallel(connection, ranges, wanted, batch_size, workers, progress)
    else:
        results = []
        for start, end in ranges:
            result = replay_range(connection, start, end, wanted(start, end), batch_size, progress)
            results.append(result)
            if result.problem is not None:
                break
    problem = min((r.problem for r in results if r.problem is not None), key=lambda p: p.seq, default=None)
    roots = {0: merkle.EMPTY_ROOT}
    for result in results:
        roots.update(result.roots)
    checked, latest = _check_tree_heads(ledger, connection, roots, size, problem.seq if problem else None)
    if problem is not None:
        raise LedgerVerificationFailed(f"seq {problem.seq}", problem.problem)
    frontier = results[-1].frontier if results else ()
    _check_nothing_beyond(connection, size)
    if head.frontier.hashes != frontier:
        raise LedgerVerificationFailed("tree head", "the stored frontier does not match the entries")
    expected = (latest.tree_size, latest.timestamp) if latest is not None else (None, None)
    if (head.sth_tree_size, head.sth_timestamp) != expected:
        raise LedgerVerificationFailed("tree head", "it does not record the newest signed tree head")
    return AuditReport(
        tree_size=size,
        root_hash=merkle.root_from_frontier(frontier),
        signed_tree_heads=checked,
        unsigned_entries=size - (latest.tree_size if latest is not None else 0),
    )


def replay_range(
    connection: Connection,
    start: int,
    end: int,
    sizes: Sequence[int],
    batch_size: int,
    progress: Callable[[int], None] | None = None,
) -> _RangeResult:
    """Replay entries ``[start, end)`` against their stored subtrees; note the roots at ``sizes``."""
    result = _RangeResult(start, end)
    try:
        blocks = fetch_blocks(connection, merkle.frontier_blocks(start))
    except LedgerVerificationFailed as exc:
        # A missing frontier block ends before this range; its own range reports it too.
        result.problem = _Problem(int(exc.where.removeprefix("seq ")), exc.problem)
        return result
    tree = merkle.CompactRange.load(start, lambda s, n: blocks[s, n])
    pending = iter(sorted(sizes))
    next_size = next(pending, None)
    seq = start
    while seq < end:
        rows = _rows(connection, _SELECT_ENTRIES, start=seq, end=end, limit=batch_size)
        if not rows:
            while next_size is not None and next_size <= seq:
                result.roots[next_size] = tree.root()
                next_size = next(pending, None)
            result.problem = _Problem(seq, f"the entry is missing (no entry is stored from seq {seq} to {end - 1})")
            return result
        nodes = _rows(connection, _SELECT_NODES, first=seq, end=rows[-1][0] + 1)
        expected: list[tuple[int, bytes]] = []
        problem = None
        replayed_to = seq  # leaves [first, replayed_to) were appended to the tree
        for stored_seq, leaf_input, subject, consent_id in rows:
            # The root of the first `seq` leaves, for the signed tree heads of that size.
            while next_size is not None and next_size <= seq:
                result.roots[next_size] = tree.root()
                next_size = next(pending, None)
            if stored_seq != seq:
                problem = _Problem(seq, f"the entry is missing (the next stored entry is seq {stored_seq})")
                break
            tree, completed = tree.append(merkle.leaf_hash(leaf_input))
            expected.extend((seq * BLOCK_LEVELS + level, block.hash) for level, block in enumerate(completed))
            replayed_to = seq + 1
            found = _entry_problem(seq, leaf_input, subject, consent_id)
            if found is not None:
                problem = _Problem(seq, found)
                break
            seq += 1
        stored = [(key, bytes(digest)) for key, digest in nodes if key < replayed_to * BLOCK_LEVELS]
        if stored != expected:
            mismatch = _first_mismatch(expected, stored)
            if problem is None or mismatch.seq <= problem.seq:
                problem = mismatch
        if problem is not None:
            result.problem = problem
            return result
        if progress is not None:
            progress(len(rows))
    if next_size is not None and next_size == end:
        result.roots[end] = tree.root()
    result.frontier = tree.hashes
    return result


def _rows(connection: Connection, statement: Select[*tuple[Any, ...]], **params: int) -> list[tuple[Any, ...]]:
    """Run a read of the audit on the DBAPI cursor of the connection (same transaction, same snapshot).

    The audit reads three rows per entry; a SQLAlchemy Row for each costs more than checking it.
    The statement is still compiled by SQLAlchemy for the connection's dialect, once.
    """
    key = (id(statement), connection.dialect.name)
    compiled = _compiled.get(key)
    if compiled is None:
        compiled = _compiled[key] = statement.compile(dialect=connection.dialect)
    values = compiled.construct_params(params)
    arguments: Any = [values[name] for name in compiled.positiontup or ()] if compiled.positional else values
    cursor = connection.connection.cursor()
    try:
        cursor.execute(compiled.string, arguments)
        return list(cursor.fetchall())
    finally:
        cursor.close()


_compiled: dict[tuple[int, str], SQLCompiler] = {}


def _entry_problem(seq: int, leaf_input: bytes, subject: str | None, consent_id: str | None) -> str | None:
    try:
        entry = json.loads(leaf_input)
    except ValueError:
        return "the entry is not JSON"
    version = entry.get("version") if isinstance(entry, dict) else None
    if type(version) is not int or version not in ENTRY_VERSIONS:
        return "the entry is not a version 1 or 2 ledger entry"
    if entry.get("seq") != seq:
        return f"the entry records seq {entry.get('seq')!r}"
    if entry.get("subject") != subject or entry.get("consent_id") != consent_id:
        return "the indexed subject or consent_id columns disagree with the entry"
    if version == 2 and subject is not None and not _COMMITMENT.fullmatch(subject):
        return "the entry's subject is not a subject commitment"
    return None


def _first_mismatch(expected: list[tuple[int, bytes]], stored: list[tuple[int, bytes]]) -> _Problem:
    for index in range(max(len(expected), len(stored))):
        want = expected[index] if index < len(expected) else None
        got = stored[index] if index < len(stored) else None
        if want == got:
            continue
        if want is None or (got is not None and got[0] < want[0]):
            assert got is not None
            start, size = block_of(got[0])
            return _Problem(start + size - 1, f"a stored hash of [{start}, {start + size}) belongs to no subtree")
        start, size = block_of(want[0])
        last = start + size - 1
        if got is None or got[0] != want[0]:
            return _Problem(last, f"the stored hash of subtree [{start}, {last + 1}) is missing")
        if size == 1:
            return _Problem(last, "leaf hash does not match the stored entry")
        return _Problem(last, f"the stored hash of subtree [{start}, {last + 1}) does not match the entries")
    raise AssertionError("the lists are equal")


def _tree_head_sizes(connection: Connection) -> list[int]:
    return list(
        connection.execute(select(LedgerTreeHead.tree_size).distinct().order_by(LedgerTreeHead.tree_size)).scalars()
    )


def _tree_heads(connection: Connection, batch_size: int = DEFAULT_BATCH_SIZE) -> Iterator[Any]:
    after = 0
    while True:
        rows = connection.execute(_SELECT_TREE_HEADS, {"after": after, "limit": batch_size}).all()
        yield from rows
        if len(rows) < batch_size:
            return
        after = rows[-1].id


def _check_tree_heads(
    ledger: Ledger, connection: Connection, roots: dict[int, bytes], size: int, failed_at: int | None
) -> tuple[int, Any]:
    """Check the signed tree heads in the order they were made, up to the first failed seq."""
    keys = ledger.public_keys()
    previous: Any = None
    checked = 0
    heads = _tree_heads(connection)
    while chunk := list(itertools.islice(heads, TREE_HEADS_PER_QUERY)):
        lookup = _consistency_blocks(connection, previous, chunk, size if failed_at is None else min(size, failed_at))
        for row in chunk:
            if failed_at is not None and row.tree_size > failed_at:
                return checked, previous
            where = f"signed tree head {row.id} (tree_size {row.tree_size})"
            try:
                payload = check_tree_head_signature(row.jws, keys)
            except ValueError as exc:
                raise LedgerVerificationFailed(where, str(exc)) from None
            stored = {"tree_size": row.tree_size, "root_hash": b64(bytes(row.root_hash)), "timestamp": row.timestamp}
            if payload != stored:
                raise LedgerVerificationFailed(where, "the stored fields differ from the signed ones")
            if row.tree_size > size:
                raise LedgerVerificationFailed(where, f"the log has only {size} entries")
            if bytes(row.root_hash) != roots.get(row.tree_size):
                raise LedgerVerificationFailed(where, "the signed root does not match the entries")
            if previous is not None:
                if row.tree_size < previous.tree_size:
                    raise LedgerVerificationFailed(where, f"the log shrank since tree head {previous.id}")
                if parse_rfc3339(row.timestamp) < parse_rfc3339(previous.timestamp):
                    raise LedgerVerificationFailed(where, f"it is older than tree head {previous.id}")
                # Every stored subtree below this size was checked against the entries, so this is
                # the proof an auditor fetching both heads from the API would get (RFC 9162 §2.1.4).
                first, second = previous.tree_size, row.tree_size
                proof = merkle.consistency_proof(first, second, lookup)
                if not merkle.verify_consistency(first, second, bytes(previous.root_hash), bytes(row.root_hash), proof):
                    raise LedgerVerificationFailed(where, f"it is not consistent with tree head {previous.id}")
            previous = row
            checked += 1
    return checked, previous


def _consistency_blocks(
    connection: Connection, previous: Any, chunk: Sequence[Any], limit: int
) -> merkle.SubtreeLookup:
    """Fetch, in a few queries, every stored block the consistency proofs between consecutive heads read."""
    wanted: set[tuple[int, int]] = set()

    def record(start: int, width: int) -> bytes:
        wanted.add((start, width))
        return _PLACEHOLDER

    sizes = [previous.tree_size] if previous is not None else []
    sizes += [row.tree_size for row in chunk]
    for first, second in itertools.pairwise(sizes):
        # Pairs that fail a simpler check, or lie past a failure, are never proven.
        if 0 <= first <= second <= limit:
            merkle.consistency_proof(first, second, record)
    blocks: dict[tuple[int, int], bytes] = {}
    ordered = sorted(wanted)
    for index in range(0, len(ordered), BLOCKS_PER_QUERY):
        blocks.update(fetch_blocks(connection, ordered[index : index + BLOCKS_PER_QUERY]))

    def lookup(start: int, width: int) -> bytes:
        return blocks[start, width]

    return lookup


def _check_nothing_beyond(connection: Connection, size: int) -> None:
    extra = connection.execute(select(func.min(LedgerEntry.seq)).where(LedgerEntry.seq >= size)).scalar()
    if extra is not None:
        raise LedgerVerificationFailed(f"seq {extra}", f"an entry lies beyond the tree head ({size} entries)")
    extra = connection.execute(
        select(func.min(LedgerNode.block)).where(LedgerNode.block >= size * BLOCK_LEVELS)
    ).scalar()
    if extra is not None:
        start, width = block_of(extra)
        raise LedgerVerificationFailed(
            f"seq {start + width - 1}", f"a stored subtree lies beyond the tree head ({size} entries)"
        )


# --- Parallel replay -----------------------------------------------------------------------------


def _replay_in_parallel(
    connection: Connection,
    ranges: list[tuple[int, int]],
    wanted: Callable[[int, int], list[int]],
    batch_size: int,
    workers: int,
    progress: Callable[[int], None] | None,
) -> list[_RangeResult]:
    url = connection.engine.url.render_as_string(hide_password=False)
    snapshot = None
    if connection.dialect.name == "postgresql":
        # The workers read exactly what this transaction sees (PostgreSQL 15 manual §9.27.5,
        # "Snapshot Synchronization Functions"); it stays open until they are done.
        snapshot = connection.exec_driver_sql("SELECT pg_export_snapshot()").scalar_one()
    results: list[_RangeResult] = []
    # Spawned, not forked: a forked child would share this process's database connections.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures: dict[Future[_RangeResult], int] = {
            pool.submit(_replay_in_worker, url, snapshot, start, end, wanted(start, end), batch_size): start
            for start, end in ranges
        }
        try:
            for future in as_completed(futures):
                if future.cancelled():
                    continue  # a range after a failure found earlier
                result = future.result()
                results.append(result)
                if result.problem is not None:
                    for other, start in futures.items():
                        if start > result.problem.seq:
                            other.cancel()
                elif progress is not None:
                    progress(result.end - result.start)
        except BaseException:
            # A worker could not read its range (or the audit was interrupted): stop the others.
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    results.sort(key=lambda r: r.start)
    return results


_worker_engines: dict[str, Engine] = {}


def _replay_in_worker(
    url: str, snapshot: str | None, start: int, end: int, sizes: list[int], batch_size: int
) -> _RangeResult:
    engine = _worker_engines.get(url)
    if engine is None:
        engine = _worker_engines[url] = make_engine(url)
        atexit.register(engine.dispose)
    with engine.connect() as connection:
        connection = read_only_connection(connection)
        if snapshot is not None:
            if not _SNAPSHOT_ID.fullmatch(snapshot):
                raise ValueError(f"not a PostgreSQL snapshot id: {snapshot!r}")
            connection = connection.execution_options(isolation_level="REPEATABLE READ")
        with connection.begin():
            if snapshot is not None:
                connection.exec_driver_sql(f"SET TRANSACTION SNAPSHOT '{snapshot}'")
            return replay_range(connection, start, end, sizes, batch_size)
