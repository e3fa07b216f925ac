"""The Merkle tree of the transparency ledger, as defined by RFC 9162 (CT 2.0) §2.1.

Pure functions over hashes: no Flask, no database. The ledger keeps every complete,
power-of-two aligned subtree hash it ever finishes (see :class:`CompactRange`), so an
append costs O(log n) hashes and a proof O(log n) lookups; the tree is never rebuilt.
The proof generators therefore take a ``subtree(start, size)`` lookup instead of the
list of leaves.

Terms used below: a *block* ``(start, size)`` is the complete subtree over leaves
``[start, start + size)`` where ``size`` is a power of two and ``start`` a multiple of
it. Leaf ``i`` is the block ``(i, 1)`` and its hash is the leaf hash.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

HASH_SIZE = 32
"""Length of every hash in the tree: SHA-256 (RFC 9162 §2.1: the log's hash algorithm)."""

EMPTY_ROOT = hashlib.sha256(b"").digest()
"""MTH({}) = HASH(), the root of the empty tree (RFC 9162 §2.1.1)."""

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"

SubtreeLookup = Callable[[int, int], bytes]
"""``subtree(start, size)``: the stored hash of the block ``(start, size)``."""


class Subtree(NamedTuple):
    """A complete subtree (block) and its hash, as the ledger stores it."""

    start: int
    size: int
    hash: bytes


def leaf_hash(entry: bytes) -> bytes:
    """Hash a leaf entry: ``SHA-256(0x00 || entry)`` (RFC 9162 §2.1.1)."""
    return hashlib.sha256(_LEAF_PREFIX + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Hash two children: ``SHA-256(0x01 || left || right)`` (RFC 9162 §2.1.1)."""
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def split_point(n: int) -> int:
    """Return k, the largest power of two smaller than ``n`` (``n >= 2``; RFC 9162 §2.1.1)."""
    if n < 2:
        raise ValueError(f"a tree of {n} leaves has no split point")
    return 1 << ((n - 1).bit_length() - 1)


def root_from_leaves(leaf_hashes: Sequence[bytes]) -> bytes:
    """Return MTH(D[n]) of a list of leaf hashes (RFC 9162 §2.1.1); O(n)."""
    if not leaf_hashes:
        return EMPTY_ROOT
    return _mth(leaf_hashes, 0, len(leaf_hashes))


def _mth(leaf_hashes: Sequence[bytes], start: int, end: int) -> bytes:
    if end - start == 1:
        return leaf_hashes[start]
    k = split_point(end - start)
    return node_hash(_mth(leaf_hashes, start, start + k), _mth(leaf_hashes, start + k, end))


def is_block(start: int, size: int) -> bool:
    """Tell whether ``(start, size)`` is a complete, aligned subtree."""
    return start >= 0 and size >= 1 and size & (size - 1) == 0 and start % size == 0


def range_hash(start: int, end: int, subtree: SubtreeLookup) -> bytes:
    """Return MTH(D[start:end]) from stored block hashes.

    When ``start`` is a multiple of the smallest power of two ``>= end - start`` (true
    of every range an RFC 9162 proof or root needs, and of ``start == 0``), this makes
    at most ``log2(end - start) + 1`` lookups: the left part of each split is one block
    and only the right part recurses. Other ranges are still hashed correctly, from
    smaller blocks.
    """
    if not 0 <= start < end:
        raise ValueError(f"[{start}, {end}) is not a non-empty leaf range")
    # Walk down the right edge: each split (RFC 9162 §2.1.1) contributes its left part.
    lefts: list[bytes] = []
    while not is_block(start, end - start):
        k = split_point(end - start)
        lefts.append(range_hash(start, start + k, subtree))
        start += k
    node = subtree(start, end - start)
    for left in reversed(lefts):
        node = node_hash(left, node)
    return node


def inclusion_proof(index: int, tree_size: int, subtree: SubtreeLookup) -> list[bytes]:
    """Return the audit path PATH(index, D[tree_size]) of RFC 9162 §2.1.3.1.

    Makes O(log n) lookups, all inside ``[0, tree_size)``.
    """
    if not 0 <= index < tree_size:
        raise ValueError(f"leaf {index} is not in a tree of size {tree_size}")
    # PATH(m, D[n]) recurses into the half holding m and appends the other half's MTH,
    # so the path lists siblings from the leaf up; collect them top down and reverse.
    siblings: list[bytes] = []
    start, end = 0, tree_size
    while end - start > 1:
        k = split_point(end - start)
        if index < start + k:
            siblings.append(range_hash(start + k, end, subtree))
            end = start + k
        else:
            siblings.append(subtree(start, k))
            start += k
    siblings.reverse()
    return siblings


def consistency_proof(first: int, second: int, subtree: SubtreeLookup) -> list[bytes]:
    """Return the consistency proof PROOF(first, D[second]) of RFC 9162 §2.1.4.1.

    Makes O(log n) lookups. The proof between equal sizes is empty (RFC 9162 §2.1.4.1:
    SUBPROOF(m, D[m], true) = {}), and so is the proof from the empty tree, a prefix
    of every tree.
    """
    if not 0 <= first <= second:
        raise ValueError(f"no consistency proof from size {first} to size {second}")
    if first == 0 or first == second:
        return []
    # SUBPROOF(m, D[start:end], b), unrolled: each step appends one MTH, so collect the
    # MTHs top down and reverse at the end.
    hashes: list[bytes] = []
    start, end, m, b = 0, second, first, True
    while m != end - start:
        k = split_point(end - start)
        if m <= k:
            hashes.append(range_hash(start + k, end, subtree))
            end = start + k
        else:
            hashes.append(subtree(start, k))
            start, m, b = start + k, m - k, False
    if not b:
        # SUBPROOF(m, D[m], false) = {MTH(D[m])}: the old tree's subtree at this node.
        hashes.append(range_hash(start, end, subtree))
    hashes.reverse()
    return hashes


def verify_inclusion(leaf_hash: bytes, index: int, tree_size: int, path: Sequence[bytes], root: bytes) -> bool:
    """Tell whether ``path`` proves leaf ``index`` is in the tree (RFC 9162 §2.1.3.2)."""
    if not _all_hashes(leaf_hash, root, *path):
        return False
    # Step 1.
    if index < 0 or index >= tree_size:
        return False
    # Steps 2 and 3.
    fn, sn, r = index, tree_size - 1, leaf_hash
    # Step 4.
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                fn, sn = _shift_while_lsb_clear(fn, sn)
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    # Step 5.
    return sn == 0 and r == root


def verify_consistency(first: int, second: int, first_root: bytes, second_root: bytes, path: Sequence[bytes]) -> bool:
    """Tell whether ``path`` proves tree ``first`` is a prefix of tree ``second`` (RFC 9162 §2.1.4.2)."""
    if not _all_hashes(first_root, second_root, *path):
        return False
    if first < 0 or first > second:
        return False
    # The §2.1.4.2 algorithm covers 0 < first < second. Equal sizes have the empty proof
    # (§2.1.4.1) and the same root; the empty tree is a prefix of every tree, but its
    # root is still MTH({}) (§2.1.1).
    if first == second:
        return not path and first_root == second_root
    if first == 0:
        return not path and first_root == EMPTY_ROOT
    # Step 1.
    if not path:
        return False
    # Step 2: a power-of-two first tree is a node of the second, so its root leads.
    if first & (first - 1) == 0:
        path = [first_root, *path]
    # Step 3.
    fn, sn = first - 1, second - 1
    # Step 4.
    while fn & 1:
        fn >>= 1
        sn >>= 1
    # Step 5.
    fr = sr = path[0]
    # Step 6.
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                fn, sn = _shift_while_lsb_clear(fn, sn)
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    # Step 7.
    return fr == first_root and sr == second_root and sn == 0


def _shift_while_lsb_clear(fn: int, sn: int) -> tuple[int, int]:
    # "right-shift both fn and sn equally until either LSB(fn) is set or fn is 0"
    while fn != 0 and not fn & 1:
        fn >>= 1
        sn >>= 1
    return fn, sn


def _all_hashes(*values: bytes) -> bool:
    # Not an RFC step: every node is a SHA-256 output, so anything else is malformed.
    return all(isinstance(v, bytes) and len(v) == HASH_SIZE for v in values)


def frontier_blocks(tree_size: int) -> list[tuple[int, int]]:
    """Return the blocks ``(start, size)`` of the binary decomposition of ``tree_size``, left first."""
    if tree_size < 0:
        raise ValueError(f"a tree cannot have {tree_size} leaves")
    blocks: list[tuple[int, int]] = []
    start = 0
    for bit in reversed(range(tree_size.bit_length())):
        size = 1 << bit
        if tree_size & size:
            blocks.append((start, size))
            start += size
    return blocks


def root_from_frontier(frontier: Sequence[bytes]) -> bytes:
    """Return the root of a tree from its frontier hashes, left (largest) first.

    MTH splits at the largest power of two below n (RFC 9162 §2.1.1), so the root of a
    tree is its largest block hashed with the root of the rest: a right fold.
    """
    if not frontier:
        return EMPTY_ROOT
    node = frontier[-1]
    for left in reversed(frontier[:-1]):
        node = node_hash(left, node)
    return node


@dataclass(frozen=True, slots=True)
class CompactRange:
    """The right frontier of a tree: the hashes of the blocks that make up its size.

    A tree of ``size`` leaves is the concatenation of one block per set bit of
    ``size``, largest first; ``hashes`` holds their hashes in that order. It is all an
    appender needs to extend the tree and compute the new root.
    """

    size: int = 0
    hashes: tuple[bytes, ...] = ()

    def __post_init__(self) -> None:
        if self.size < 0 or len(self.hashes) != self.size.bit_count():
            raise ValueError(f"a tree of size {self.size} has {self.size.bit_count()} frontier hashes")

    @classmethod
    def load(cls, tree_size: int, subtree: SubtreeLookup) -> CompactRange:
        """Read the frontier of a stored tree with ``popcount(tree_size)`` lookups."""
        return cls(tree_size, tuple(subtree(start, size) for start, size in frontier_blocks(tree_size)))

    def append(self, leaf_hash: bytes) -> tuple[CompactRange, list[Subtree]]:
        """Add a leaf; return the new frontier and every block it completed, smallest first.

        The completed blocks are the leaf itself and each parent it finished: exactly the
        rows an append must store so later lookups find every block.
        """
        index = self.size
        hashes = list(self.hashes)
        node, size = leaf_hash, 1
        completed = [Subtree(index, 1, node)]
        # The block left of the new one has the same size exactly when that bit of the
        # old size is set: merge them, as a carry propagates in binary addition.
        while index & size:
            node = node_hash(hashes.pop(), node)
            size <<= 1
            completed.append(Subtree(index + 1 - size, size, node))
        hashes.append(node)
        return CompactRange(index + 1, tuple(hashes)), completed

    def root(self) -> bytes:
        """Return the tree's root, MTH(D[size])."""
        return root_from_frontier(self.hashes)


class InMemoryTree:
    """A whole tree in memory, appended to exactly as the ledger does (tests, benchmarks)."""

    def __init__(self, entries: Iterable[bytes] = ()) -> None:
        self.leaf_hashes: list[bytes] = []
        self.blocks: dict[tuple[int, int], bytes] = {}
        self.frontier = CompactRange()
        for entry in entries:
            self.append(entry)

    @property
    def size(self) -> int:
        """Return the number of leaves."""
        return self.frontier.size

    def append(self, entry: bytes) -> int:
        """Append an entry and return its leaf index."""
        return self.append_leaf_hash(leaf_hash(entry))

    def append_leaf_hash(self, leaf: bytes) -> int:
        """Append a leaf by its hash and return its leaf index."""
        index = self.size
        self.frontier, completed = self.frontier.append(leaf)
        self.leaf_hashes.append(leaf)
        for block in completed:
            self.blocks[block.start, block.size] = block.hash
        return index

    def subtree(self, start: int, size: int) -> bytes:
        """Return the hash of a stored block."""
        try:
            return self.blocks[start, size]
        except KeyError:
            raise LookupError(f"no complete subtree ({start}, {size}) in a tree of size {self.size}") from None

    def root(self, tree_size: int | None = None) -> bytes:
        """Return the root of the tree, or of its first ``tree_size`` leaves."""
        if tree_size is None or tree_size == self.size:
            return self.frontier.root()
        self._check_size(tree_size)
        return range_hash(0, tree_size, self.subtree) if tree_size else EMPTY_ROOT

    def inclusion_proof(self, index: int, tree_size: int | None = None) -> list[bytes]:
        """Return the audit path of leaf ``index`` in the tree of ``tree_size`` leaves."""
        tree_size = self.size if tree_size is None else self._check_size(tree_size)
        return inclusion_proof(index, tree_size, self.subtree)

    def consistency_proof(self, first: int, second: int | None = None) -> list[bytes]:
        """Return the consistency proof from size ``first`` to ``second`` (default: now)."""
        second = self.size if second is None else self._check_size(second)
        return consistency_proof(first, second, self.subtree)

    def _check_size(self, tree_size: int) -> int:
        if not 0 <= tree_size <= self.size:
            raise ValueError(f"tree size {tree_size} is outside [0, {self.size}]")
        return tree_size
