"""Tests for the ledger's RFC 9162 Merkle tree (``consent.merkle``).

Known answers are the Certificate Transparency reference vectors of
github.com/transparency-dev/merkle (the Go library under Trillian and the CT logs; the
same eight leaves as google/certificate-transparency's C++ ``merkle_tree_test.cc``):

* ``testonly/constants.go``: ``LeafInputs``, ``NodeHashes``, ``RootHashes``,
  ``CompactTrees``;
* ``testonly/reference_test.go`` and ``proof/verify_test.go``: inclusion and
  consistency proofs (``verify_test.go`` numbers leaves from 1; they are converted to
  0-based indexes here and agree with ``reference_test.go``);
* ``proof/verify_test.go``: the corrupted-proof probes (``corruptInclusionProof``,
  ``corruptConsistencyProof``);
* ``proof/proof_test.go``: which tree nodes make up each proof (``TestInclusion``,
  ``TestConsistency``), written here as leaf ranges;
* ``testonly/vectors_test.go``: the accumulated "Subtree Test Vectors" digests (also in
  the appendix of draft-ietf-plants-merkle-tree-certs).

Every other expectation comes from an independent model in this file, transcribed from
the RFC 9162 text alone (§2.1.1 MTH, §2.1.3.1 PATH, §2.1.3.2, §2.1.4.1 PROOF, §2.1.4.2)
with its own hashing, so a bug shared by the generator and the verifier of
``consent.merkle`` cannot hide.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Sequence

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from consent.merkle import (
    EMPTY_ROOT,
    CompactRange,
    InMemoryTree,
    Subtree,
    consistency_proof,
    frontier_blocks,
    inclusion_proof,
    leaf_hash,
    node_hash,
    range_hash,
    root_from_frontier,
    root_from_leaves,
    verify_consistency,
    verify_inclusion,
)

# --- The RFC 9162 model, written from the RFC text only ------------------------------


def _hash(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _k(n: int) -> int:
    """Return the largest power of two smaller than n (§2.1.1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def _ref_mth(d: Sequence[bytes]) -> bytes:
    """MTH(D[n]) over entries (§2.1.1)."""
    n = len(d)
    if n == 0:
        return _hash(b"")
    if n == 1:
        return _hash(b"\x00" + d[0])
    k = _k(n)
    return _hash(b"\x01" + _ref_mth(d[:k]) + _ref_mth(d[k:]))


def _ref_path(m: int, d: Sequence[bytes]) -> list[bytes]:
    """PATH(m, D[n]) (§2.1.3.1)."""
    n = len(d)
    if n == 1:
        return []
    k = _k(n)
    if m < k:
        return [*_ref_path(m, d[:k]), _ref_mth(d[k:])]
    return [*_ref_path(m - k, d[k:]), _ref_mth(d[:k])]


def _ref_proof(m: int, d: Sequence[bytes]) -> list[bytes]:
    """PROOF(m, D[n]) = SUBPROOF(m, D[n], true) (§2.1.4.1)."""
    return _ref_subproof(m, d, True)


def _ref_subproof(m: int, d: Sequence[bytes], b: bool) -> list[bytes]:
    n = len(d)
    if m == n:
        return [] if b else [_ref_mth(d)]
    k = _k(n)
    if m <= k:
        return [*_ref_subproof(m, d[:k], b), _ref_mth(d[k:])]
    return [*_ref_subproof(m - k, d[k:], False), _ref_mth(d[:k])]


def _lsb(x: int) -> int:
    return x & 1


def _rfc_verify_inclusion(
    hash: bytes,  # the RFC's name for the leaf hash
    leaf_index: int,
    tree_size: int,
    inclusion_path: Sequence[bytes],
    root_hash: bytes,
) -> bool:
    """Verify an inclusion proof, step by step as in RFC 9162 §2.1.3.2."""
    # The RFC's indexes and sizes are unsigned (uint64 in its §4 structures): a negative
    # index is not a value the algorithm can be given.
    if leaf_index < 0:
        return False
    # 1. If leaf_index is greater than or equal to tree_size, fail.
    if leaf_index >= tree_size:
        return False
    # 2. Set fn to leaf_index and sn to tree_size - 1.
    fn = leaf_index
    sn = tree_size - 1
    # 3. Set r to hash.
    r = hash
    # 4. For each value p in the inclusion_path array:
    for p in inclusion_path:
        # a. If sn is 0, then stop the iteration and fail the proof verification.
        if sn == 0:
            return False
        # b. If LSB(fn) is set, or if fn is equal to sn, then:
        if _lsb(fn) or fn == sn:
            # i. Set r to HASH(0x01 || p || r).
            r = _hash(b"\x01" + p + r)
            # ii. If LSB(fn) is not set, then right-shift both fn and sn equally until
            #     either LSB(fn) is set or fn is 0.
            if not _lsb(fn):
                while not (_lsb(fn) or fn == 0):
                    fn >>= 1
                    sn >>= 1
        # Otherwise: i. Set r to HASH(0x01 || r || p).
        else:
            r = _hash(b"\x01" + r + p)
        # c. Finally, right-shift both fn and sn one time.
        fn >>= 1
        sn >>= 1
    # 5. If sn is equal to 0 and r and the root_hash are equal, the proof holds.
    return sn == 0 and r == root_hash


def _rfc_verify_consistency(
    first: int,
    second: int,
    first_hash: bytes,
    second_hash: bytes,
    consistency_path: Sequence[bytes],
) -> bool:
    """Verify a consistency proof, step by step as in RFC 9162 §2.1.4.2."""
    # The algorithm is stated for 0 < first < second.
    if not 0 < first < second:
        return False
    # 1. If consistency_path is an empty array, stop and fail the proof verification.
    if len(consistency_path) == 0:
        return False
    # 2. If first is an exact power of 2, then prepend first_hash to consistency_path.
    path = list(consistency_path)
    if first & (first - 1) == 0:
        path = [first_hash, *path]
    # 3. Set fn to first - 1 and sn to second - 1.
    fn = first - 1
    sn = second - 1
    # 4. If LSB(fn) is set, then right-shift both fn and sn equally until LSB(fn) is
    #    not set.
    if _lsb(fn):
        while _lsb(fn):
            fn >>= 1
            sn >>= 1
    # 5. Set both fr and sr to the first value in the consistency_path array.
    fr = sr = path[0]
    # 6. For each subsequent value c in the consistency_path array:
    for c in path[1:]:
        # a. If sn is 0, then stop the iteration and fail the proof verification.
        if sn == 0:
            return False
        # b. If LSB(fn) is set, or if fn is equal to sn, then:
        if _lsb(fn) or fn == sn:
            # i. Set fr to HASH(0x01 || c || fr). ii. Set sr to HASH(0x01 || c || sr).
            fr = _hash(b"\x01" + c + fr)
            sr = _hash(b"\x01" + c + sr)
            # iii. If LSB(fn) is not set, then right-shift both fn and sn equally until
            #      either LSB(fn) is set or fn is 0.
            if not _lsb(fn):
                while not (_lsb(fn) or fn == 0):
                    fn >>= 1
                    sn >>= 1
        # Otherwise: i. Set sr to HASH(0x01 || sr || c).
        else:
            sr = _hash(b"\x01" + sr + c)
        # c. Finally, right-shift both fn and sn one time.
        fn >>= 1
        sn >>= 1
    # 7. fr equals first_hash, sr equals second_hash, and sn is 0.
    return fr == first_hash and sr == second_hash and sn == 0


class _CountingLookup:
    """Wrap a block lookup: count calls and check each asks for a block of the tree."""

    def __init__(self, subtree: Callable[[int, int], bytes], tree_size: int) -> None:
        self.subtree = subtree
        self.tree_size = tree_size
        self.calls = 0

    def __call__(self, start: int, size: int) -> bytes:
        assert size >= 1, (start, size)
        assert size & (size - 1) == 0, (start, size)
        assert start % size == 0, (start, size)
        assert start + size <= self.tree_size, (start, size, self.tree_size)
        self.calls += 1
        return self.subtree(start, size)


# --- Reference vectors (transparency-dev/merkle) --------------------------------------

LEAF_INPUTS = [
    bytes.fromhex(x)
    for x in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]

# testonly/constants.go RootHashes(): index = tree size.
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

# testonly/constants.go NodeHashes(): [level][index], the block (index << level, 1 << level).
NODE_HASHES = [
    [
        bytes.fromhex(x)
        for x in (
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
            "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1",
        )
    ],
    [
        bytes.fromhex(x)
        for x in (
            "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        )
    ],
    [
        bytes.fromhex(x)
        for x in (
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        )
    ],
    [bytes.fromhex("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328")],
]
NH = NODE_HASHES

# testonly/constants.go CompactTrees(): the frontier of each tree size.
COMPACT_TREES = [
    [],
    [NH[0][0]],
    [NH[1][0]],
    [NH[1][0], NH[0][2]],
    [NH[2][0]],
    [NH[2][0], NH[0][4]],
    [NH[2][0], NH[1][2]],
    [NH[2][0], NH[1][2], NH[0][6]],
    [NH[3][0]],
]

# (index, tree size, audit path): testonly/reference_test.go TestRefInclusionProof and
# proof/verify_test.go inclusionProofs (1-based there).
INCLUSION_PROOFS = [
    (0, 1, []),
    (0, 2, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"]),
    (1, 2, ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"]),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (
        1,
        5,
        [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        0,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
]

# (first, second, proof): proof/verify_test.go consistencyProofs and
# testonly/reference_test.go TestRefConsistencyProof.
CONSISTENCY_PROOFS = [
    (1, 1, []),
    (
        1,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        [
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        6,
        7,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
]

# proof/verify_test.go sha256SomeHash.
SOME_HASH = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")

# proof/proof_test.go TestInclusion: (tree size, index, leaf range [start, end) of each
# path element). Go lists node IDs; a "rehash" run of IDs is one element, the MTH of
# the ranges it joins, written here as that joined range.
INCLUSION_SHAPES = [
    (1, 0, []),
    (2, 0, [(1, 2)]),
    (2, 1, [(0, 1)]),
    (3, 1, [(0, 1), (2, 3)]),
    (7, 0, [(1, 2), (2, 4), (4, 7)]),
    (7, 1, [(0, 1), (2, 4), (4, 7)]),
    (7, 2, [(3, 4), (0, 2), (4, 7)]),
    (7, 3, [(2, 3), (0, 2), (4, 7)]),
    (7, 4, [(5, 6), (6, 7), (0, 4)]),
    (7, 5, [(4, 5), (6, 7), (0, 4)]),
    (7, 6, [(4, 6), (0, 4)]),
    (4, 2, [(3, 4), (0, 2)]),
    (5, 3, [(2, 3), (0, 2), (4, 5)]),
    (6, 3, [(2, 3), (0, 2), (4, 6)]),
    (6, 4, [(5, 6), (0, 4)]),
    (15, 10, [(11, 12), (8, 10), (12, 15), (0, 8)]),
    (31, 24, [(25, 26), (26, 28), (28, 31), (16, 24), (0, 16)]),
    (95, 81, [(80, 81), (82, 84), (84, 88), (88, 95), (64, 80), (0, 64)]),
]

# proof/proof_test.go TestConsistency: (first, second, leaf ranges), as above.
CONSISTENCY_SHAPES = [
    (1, 2, [(1, 2)]),
    (1, 4, [(1, 2), (2, 4)]),
    (1, 6, [(1, 2), (2, 4), (4, 6)]),
    (2, 3, [(2, 3)]),
    (2, 8, [(2, 4), (4, 8)]),
    (3, 7, [(2, 3), (3, 4), (0, 2), (4, 7)]),
    (4, 7, [(4, 7)]),
    (5, 7, [(4, 5), (5, 6), (6, 7), (0, 4)]),
    (6, 7, [(4, 6), (6, 7), (0, 4)]),
    (7, 8, [(6, 7), (7, 8), (4, 6), (0, 4)]),
    (1, 1, []),
    (2, 2, []),
    (3, 3, []),
    (4, 4, []),
    (5, 5, []),
    (7, 7, []),
    (8, 8, []),
    (2, 4, [(2, 4)]),
    (3, 5, [(2, 3), (3, 4), (0, 2), (4, 5)]),
    (3, 6, [(2, 3), (3, 4), (0, 2), (4, 6)]),
    (4, 6, [(4, 6)]),
    (1, 7, [(1, 2), (2, 4), (4, 7)]),
    (10, 15, [(8, 10), (10, 12), (12, 15), (0, 8)]),
    (24, 31, [(16, 24), (24, 31), (0, 16)]),
    (81, 95, [(80, 81), (81, 82), (82, 84), (84, 88), (88, 95), (64, 80), (0, 64)]),
]

# testonly/vectors_test.go (draft-ietf-plants-merkle-tree-certs, "Subtree Test
# Vectors"): rolling SHA-256 over every valid subtree of the tree d[i] = bytes([i]).
SUBTREE_VECTOR_MAX = 130
SUBTREE_HASH_VECTORS = "94a95384a8c69acea9b50d035a58285b3a777cb7a724005faa5e1f1e1190007f"
SUBTREE_INCLUSION_VECTORS = "ac2a8f989e44d99e399db448050ff5f19757df53cfb716aa81015d3955d8163f"


def _hexes(proof: Sequence[str]) -> list[bytes]:
    return [bytes.fromhex(x) for x in proof]


@functools.cache
def _reference_tree() -> InMemoryTree:
    return InMemoryTree(LEAF_INPUTS)


# --- Hashing and roots -----------------------------------------------------------------


def test_hashes_separate_leaves_from_nodes() -> None:
    assert ROOTS[0] == EMPTY_ROOT
    assert leaf_hash(b"") == NH[0][0]
    assert leaf_hash(LEAF_INPUTS[1]) == NH[0][1]
    assert node_hash(NH[0][0], NH[0][1]) == NH[1][0]
    assert node_hash(NH[0][1], NH[0][0]) != NH[1][0]
    assert leaf_hash(NH[0][0] + NH[0][1]) != NH[1][0]


@pytest.mark.parametrize("size", range(len(ROOTS)))
def test_roots_match_reference(size: int) -> None:
    leaves = [leaf_hash(x) for x in LEAF_INPUTS[:size]]
    tree = _reference_tree()

    assert root_from_leaves(leaves) == ROOTS[size]
    assert InMemoryTree(LEAF_INPUTS[:size]).root() == ROOTS[size]
    assert tree.root(size) == ROOTS[size]
    assert CompactRange.load(size, tree.subtree).root() == ROOTS[size]
    if size:
        assert range_hash(0, size, tree.subtree) == ROOTS[size]


def test_appends_store_exactly_the_reference_node_hashes() -> None:
    expected = {
        (index << level, 1 << level): h for level, hashes in enumerate(NODE_HASHES) for index, h in enumerate(hashes)
    }

    assert _reference_tree().blocks == expected


@pytest.mark.parametrize("size", range(len(COMPACT_TREES)))
def test_frontier_matches_reference_compact_trees(size: int) -> None:
    frontier = CompactRange()
    for entry in LEAF_INPUTS[:size]:
        frontier, _ = frontier.append(leaf_hash(entry))

    assert list(frontier.hashes) == COMPACT_TREES[size]
    assert CompactRange.load(size, _reference_tree().subtree) == frontier
    assert root_from_frontier(frontier.hashes) == ROOTS[size]


def test_append_reports_every_block_it_completes() -> None:
    frontier = CompactRange.load(7, _reference_tree().subtree)

    grown, completed = frontier.append(NH[0][7])

    assert completed == [
        Subtree(7, 1, NH[0][7]),
        Subtree(6, 2, NH[1][3]),
        Subtree(4, 4, NH[2][1]),
        Subtree(0, 8, NH[3][0]),
    ]
    assert grown == CompactRange(8, (NH[3][0],))
    assert frontier.size == 7  # appending returns a new frontier


def test_frontier_rejects_a_hash_count_that_does_not_fit_the_size() -> None:
    with pytest.raises(ValueError, match="frontier hashes"):
        CompactRange(3, (NH[0][0],))
    with pytest.raises(ValueError, match="frontier hashes"):
        CompactRange(-1, ())


def test_frontier_blocks_decompose_the_size() -> None:
    assert frontier_blocks(0) == []
    assert frontier_blocks(7) == [(0, 4), (4, 2), (6, 1)]
    assert frontier_blocks(8) == [(0, 8)]
    assert frontier_blocks(13) == [(0, 8), (8, 4), (12, 1)]


# --- Reference proofs -------------------------------------------------------------------


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION_PROOFS)
def test_inclusion_proofs_match_reference(index: int, size: int, proof: list[str]) -> None:
    tree = _reference_tree()
    expected = _hexes(proof)
    leaf = leaf_hash(LEAF_INPUTS[index])

    assert inclusion_proof(index, size, tree.subtree) == expected
    assert tree.inclusion_proof(index, size) == expected
    assert verify_inclusion(leaf, index, size, expected, ROOTS[size])
    assert _rfc_verify_inclusion(leaf, index, size, expected, ROOTS[size])


@pytest.mark.parametrize(("first", "second", "proof"), CONSISTENCY_PROOFS)
def test_consistency_proofs_match_reference(first: int, second: int, proof: list[str]) -> None:
    tree = _reference_tree()
    expected = _hexes(proof)

    assert consistency_proof(first, second, tree.subtree) == expected
    assert tree.consistency_proof(first, second) == expected
    assert verify_consistency(first, second, ROOTS[first], ROOTS[second], expected)
    if first < second:
        assert _rfc_verify_consistency(first, second, ROOTS[first], ROOTS[second], expected)


def _corrupt_inclusion(
    index: int, size: int, path: list[bytes], root: bytes, leaf: bytes
) -> list[tuple[str, tuple[bytes, int, int, list[bytes], bytes]]]:
    """Return the probes of verify_test.go corruptInclusionProof."""
    probes = [
        ("index - 1", (leaf, index - 1, size, path, root)),
        ("index + 1", (leaf, index + 1, size, path, root)),
        ("index ^ 2", (leaf, index ^ 2, size, path, root)),
        ("size * 2", (leaf, index, size * 2, path, root)),
        ("size // 2", (leaf, index, size // 2, path, root)),
        ("wrong leaf", (b"WrongLeaf", index, size, path, root)),
        ("empty root", (leaf, index, size, path, EMPTY_ROOT)),
        ("random root", (leaf, index, size, path, SOME_HASH)),
        ("trailing garbage", (leaf, index, size, [*path, b""], root)),
        ("trailing root", (leaf, index, size, [*path, root], root)),
        ("preceding garbage", (leaf, index, size, [b"", *path], root)),
        ("preceding root", (leaf, index, size, [root, *path], root)),
    ]
    for i in range(len(path)):
        flipped = list(path)
        flipped[i] = bytes([flipped[i][0] ^ 8]) + flipped[i][1:]
        probes.append((f"flipped proof[{i}]", (leaf, index, size, flipped, root)))
    if path:
        probes.append(("removed component", (leaf, index, size, path[:-1], root)))
    if len(path) > 1:
        inserted = [path[0], SOME_HASH, *path[1:]]
        probes.append(("inserted component", (leaf, index, size, inserted, root)))
    return probes


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION_PROOFS)
def test_corrupted_inclusion_proofs_fail(index: int, size: int, proof: list[str]) -> None:
    leaf = leaf_hash(LEAF_INPUTS[index])
    probes = _corrupt_inclusion(index, size, _hexes(proof), ROOTS[size], leaf)

    accepted = [name for name, args in probes if verify_inclusion(*args)]
    accepted_by_rfc = [name for name, args in probes if _rfc_verify_inclusion(*args)]

    assert accepted == []
    assert accepted_by_rfc == []


def _corrupt_consistency(
    first: int, second: int, root1: bytes, root2: bytes, path: list[bytes]
) -> list[tuple[str, tuple[int, int, bytes, bytes, list[bytes]]]]:
    """Return the probes of verify_test.go corruptConsistencyProof."""
    probes = [
        ("first - 1", (first - 1, second, root1, root2, path)),
        ("first + 1", (first + 1, second, root1, root2, path)),
        ("first ^ 2", (first ^ 2, second, root1, root2, path)),
        ("second * 2", (first, second * 2, root1, root2, path)),
        ("second // 2", (first, second // 2, root1, root2, path)),
        ("wrong root1", (first, second, b"WrongRoot", root2, path)),
        ("wrong root2", (first, second, root1, b"WrongRoot", path)),
        ("swapped roots", (first, second, root2, root1, path)),
        ("empty proof", (first, second, root1, root2, [])),
        ("trailing garbage", (first, second, root1, root2, [*path, b""])),
        ("trailing root1", (first, second, root1, root2, [*path, root1])),
        ("trailing root2", (first, second, root1, root2, [*path, root2])),
        ("preceding garbage", (first, second, root1, root2, [b"", *path])),
        ("preceding root1", (first, second, root1, root2, [root1, *path])),
        ("preceding root2", (first, second, root1, root2, [root2, *path])),
        ("preceding proof[0]", (first, second, root1, root2, [path[0], *path])),
        ("truncated proof", (first, second, root1, root2, path[:-1])),
    ]
    for i in range(len(path)):
        flipped = list(path)
        flipped[i] = bytes([flipped[i][0] ^ 16]) + flipped[i][1:]
        probes.append((f"flipped proof[{i}]", (first, second, root1, root2, flipped)))
    return probes


@pytest.mark.parametrize(("first", "second", "proof"), [v for v in CONSISTENCY_PROOFS if v[2]])
def test_corrupted_consistency_proofs_fail(first: int, second: int, proof: list[str]) -> None:
    probes = _corrupt_consistency(first, second, ROOTS[first], ROOTS[second], _hexes(proof))

    accepted = [name for name, args in probes if verify_consistency(*args)]
    accepted_by_rfc = [name for name, args in probes if _rfc_verify_consistency(*args)]

    assert accepted == []
    assert accepted_by_rfc == []


SHAPE_ENTRIES = [f"shape {i}".encode() for i in range(95)]


@functools.cache
def _shape_tree() -> InMemoryTree:
    return InMemoryTree(SHAPE_ENTRIES)


@pytest.mark.parametrize(("size", "index", "ranges"), INCLUSION_SHAPES)
def test_inclusion_proofs_hash_the_reference_nodes(size: int, index: int, ranges: list[tuple[int, int]]) -> None:
    expected = [_ref_mth(SHAPE_ENTRIES[start:end]) for start, end in ranges]

    assert inclusion_proof(index, size, _shape_tree().subtree) == expected


@pytest.mark.parametrize(("first", "second", "ranges"), CONSISTENCY_SHAPES)
def test_consistency_proofs_hash_the_reference_nodes(first: int, second: int, ranges: list[tuple[int, int]]) -> None:
    expected = [_ref_mth(SHAPE_ENTRIES[start:end]) for start, end in ranges]

    assert consistency_proof(first, second, _shape_tree().subtree) == expected


def _valid_subtrees(end_max: int) -> list[tuple[int, int]]:
    """List [start, end) in the order of vectors_test.go, kept by isSubtreeValid."""
    valid = []
    for end in range(1, end_max + 1):
        for start in range(end):
            width = end - start
            bit_ceil = 1 << (width - 1).bit_length()
            if start == 0 or start % bit_ceil == 0:
                valid.append((start, end))
    return valid


def test_subtree_hash_vectors() -> None:
    tree = InMemoryTree(bytes([i]) for i in range(SUBTREE_VECTOR_MAX))
    digest = hashlib.sha256()
    for start, end in _valid_subtrees(SUBTREE_VECTOR_MAX):
        digest.update(f"[{start}, {end}) {range_hash(start, end, tree.subtree).hex()}\n".encode())

    assert digest.hexdigest() == SUBTREE_HASH_VECTORS


def test_subtree_inclusion_proof_vectors() -> None:
    tree = InMemoryTree(bytes([i]) for i in range(SUBTREE_VECTOR_MAX))
    digest = hashlib.sha256()
    for start, end in _valid_subtrees(SUBTREE_VECTOR_MAX):

        def shifted(offset: int, size: int, start: int = start) -> bytes:
            return tree.subtree(start + offset, size)

        for index in range(start, end):
            proof = inclusion_proof(index - start, end - start, shifted)
            line = f"{index} [{start}, {end})" + "".join(f" {h.hex()}" for h in proof)
            digest.update(f"{line}\n".encode())

    assert digest.hexdigest() == SUBTREE_INCLUSION_VECTORS


# --- Edge cases ----------------------------------------------------------------------------


@pytest.mark.parametrize(("index", "size"), [(0, 0), (1, 0), (1, 1), (2, 1), (8, 7), (-1, 5)])
def test_inclusion_proof_refuses_a_leaf_outside_the_tree(index: int, size: int) -> None:
    with pytest.raises(ValueError, match="is not in a tree of size"):
        inclusion_proof(index, size, _shape_tree().subtree)


@pytest.mark.parametrize(("first", "second"), [(5, 0), (9, 8), (-1, 3), (2, 1)])
def test_consistency_proof_refuses_a_shrinking_tree(first: int, second: int) -> None:
    with pytest.raises(ValueError, match="no consistency proof"):
        consistency_proof(first, second, _shape_tree().subtree)


@pytest.mark.parametrize(("first", "second"), [(0, 0), (0, 1), (0, 95), (7, 7)])
def test_consistency_proof_from_empty_or_same_tree_is_empty(first: int, second: int) -> None:
    assert consistency_proof(first, second, _shape_tree().subtree) == []


def test_verify_inclusion_edge_cases() -> None:
    leaf = NH[0][0]
    assert verify_inclusion(leaf, 0, 1, [], leaf)
    assert not verify_inclusion(leaf, 0, 1, [], NH[0][1])
    assert not verify_inclusion(leaf, 1, 1, [], leaf)  # index >= tree size
    assert not verify_inclusion(leaf, 0, 0, [], EMPTY_ROOT)
    assert not verify_inclusion(leaf, -1, 1, [], leaf)
    assert not verify_inclusion(leaf, 0, 2, [], leaf)  # path too short
    assert not verify_inclusion(leaf[:31], 0, 1, [], leaf[:31])  # not a SHA-256 hash
    assert not verify_inclusion(leaf, 0, 2, [NH[0][1] + b"\x00"], ROOTS[2])


def test_verify_consistency_edge_cases() -> None:
    r1, r2, r8 = ROOTS[1], ROOTS[2], ROOTS[8]
    assert verify_consistency(8, 8, r8, r8, [])
    assert not verify_consistency(8, 8, r8, r8, [r8])  # equal sizes: path must be empty
    assert not verify_consistency(8, 8, r8, r2, [])
    assert verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])
    assert verify_consistency(0, 8, EMPTY_ROOT, r8, [])
    assert not verify_consistency(0, 8, r1, r8, [])  # the empty tree's root is fixed
    assert not verify_consistency(0, 8, EMPTY_ROOT, r8, [r8])
    assert not verify_consistency(2, 1, r2, r1, [NH[0][1]])  # shrinking tree
    assert not verify_consistency(-1, 1, r1, r1, [])
    assert not verify_consistency(1, 2, r1, r2, [])  # §2.1.4.2 step 1
    assert verify_consistency(1, 2, r1, r2, [NH[0][1]])
    assert not verify_consistency(1, 2, r1, r2, [NH[0][1][:16]])


def test_in_memory_tree_only_serves_complete_blocks() -> None:
    tree = _shape_tree()

    with pytest.raises(LookupError):
        tree.subtree(64, 64)  # leaves [64, 128) are not all there
    with pytest.raises(LookupError):
        tree.subtree(1, 2)  # not aligned
    with pytest.raises(ValueError, match="outside"):
        tree.root(96)
    with pytest.raises(ValueError, match="outside"):
        tree.inclusion_proof(0, 96)
    assert tree.root(0) == EMPTY_ROOT
    assert tree.root(94) == _ref_mth(SHAPE_ENTRIES[:94])


# --- Properties over trees of up to 2,100 leaves ------------------------------------------

MAX_SIZE = 2_100
ENTRIES = [f"ledger entry {i}".encode() for i in range(MAX_SIZE)]
PROPERTY_SETTINGS = settings(max_examples=150, deadline=None, database=None)


@functools.cache
def _big_tree() -> InMemoryTree:
    return InMemoryTree(ENTRIES)


@functools.cache
def _ref_root(size: int) -> bytes:
    return _ref_mth(ENTRIES[:size])


def _flip(path: list[bytes], element: int, byte: int, mask: int) -> list[bytes]:
    flipped = list(path)
    h = flipped[element]
    flipped[element] = h[:byte] + bytes([h[byte] ^ mask]) + h[byte + 1 :]
    return flipped


def _other_than(value: int, low: int, high: int) -> st.SearchStrategy[int]:
    """Draw from [low, high] without ``value`` (``low <= value <= high``, ``low < high``)."""
    assert low <= value <= high
    assert low < high
    return st.integers(low, high - 1).map(lambda x: x + 1 if x >= value else x)


@st.composite
def _leaf_in_tree(draw: st.DrawFn) -> tuple[int, int]:
    size = draw(st.integers(1, MAX_SIZE))
    return draw(st.integers(0, size - 1)), size


@st.composite
def _two_sizes(draw: st.DrawFn) -> tuple[int, int]:
    second = draw(st.integers(2, MAX_SIZE))
    return draw(st.integers(1, second - 1)), second


@PROPERTY_SETTINGS
@given(leaf=_leaf_in_tree(), data=st.data())
@example(leaf=(0, 1), data=None)
@example(leaf=(1023, 1024), data=None)
@example(leaf=(2047, 2049), data=None)
@example(leaf=(MAX_SIZE - 1, MAX_SIZE), data=None)
def test_inclusion_proofs_verify_and_any_tampering_fails(leaf: tuple[int, int], data: st.DataObject | None) -> None:
    index, size = leaf
    tree = _big_tree()
    leaf_h = tree.leaf_hashes[index]
    root = _ref_root(size)

    path = tree.inclusion_proof(index, size)

    assert path == _ref_path(index, ENTRIES[:size])
    assert verify_inclusion(leaf_h, index, size, path, root)
    assert _rfc_verify_inclusion(leaf_h, index, size, path, root)
    if data is None:
        return

    if path:
        element = data.draw(st.integers(0, len(path) - 1), label="element")
        byte = data.draw(st.integers(0, 31), label="byte")
        mask = data.draw(st.integers(1, 255), label="mask")
        bad_path = _flip(path, element, byte, mask)
        assert not verify_inclusion(leaf_h, index, size, bad_path, root)
        assert not _rfc_verify_inclusion(leaf_h, index, size, bad_path, root)
    byte = data.draw(st.integers(0, 31), label="leaf byte")
    bad_leaf = _flip([leaf_h], 0, byte, 1)[0]
    assert not verify_inclusion(bad_leaf, index, size, path, root)
    assert not verify_inclusion(leaf_h, index, size, path, _flip([root], 0, byte, 1)[0])

    other_index = data.draw(_other_than(index, -3, size + 3), label="other index")
    assert not verify_inclusion(leaf_h, other_index, size, path, root)
    if other_index >= 0:
        assert not _rfc_verify_inclusion(leaf_h, other_index, size, path, root)

    # The path alone does not always pin the size: the proof for leaf 0 of a 3-leaf
    # tree also passes §2.1.3.2 as "size 4" against the 3-leaf root, as the hashing
    # order is the same. A signed tree head binds size and root together, so the claim
    # to check is the other size with that size's own root: it must fail.
    other_size = data.draw(_other_than(size, index + 1, MAX_SIZE + 1), label="other size")
    if other_size > MAX_SIZE:
        return
    assert not verify_inclusion(leaf_h, index, other_size, path, _ref_root(other_size))
    assert not _rfc_verify_inclusion(leaf_h, index, other_size, path, _ref_root(other_size))
    # Against the original root, the verifier follows §2.1.3.2 to the letter.
    assert verify_inclusion(leaf_h, index, other_size, path, root) == _rfc_verify_inclusion(
        leaf_h, index, other_size, path, root
    )


def test_a_proof_can_pass_for_another_size_against_the_original_root() -> None:
    # The documented limit of §2.1.3.2 above, pinned so the comment stays true.
    tree = _big_tree()
    path = tree.inclusion_proof(0, 3)

    assert _rfc_verify_inclusion(tree.leaf_hashes[0], 0, 4, path, _ref_root(3))
    assert verify_inclusion(tree.leaf_hashes[0], 0, 4, path, _ref_root(3))
    assert not verify_inclusion(tree.leaf_hashes[0], 0, 4, path, _ref_root(4))


@PROPERTY_SETTINGS
@given(sizes=_two_sizes(), data=st.data())
@example(sizes=(1, 2), data=None)
@example(sizes=(1024, 1025), data=None)
@example(sizes=(1023, 1024), data=None)
@example(sizes=(MAX_SIZE - 1, MAX_SIZE), data=None)
def test_consistency_proofs_verify_and_any_tampering_fails(sizes: tuple[int, int], data: st.DataObject | None) -> None:
    first, second = sizes
    tree = _big_tree()
    root1, root2 = _ref_root(first), _ref_root(second)

    path = tree.consistency_proof(first, second)

    assert path == _ref_proof(first, ENTRIES[:second])
    assert verify_consistency(first, second, root1, root2, path)
    assert _rfc_verify_consistency(first, second, root1, root2, path)
    if data is None:
        return

    element = data.draw(st.integers(0, len(path) - 1), label="element")
    byte = data.draw(st.integers(0, 31), label="byte")
    mask = data.draw(st.integers(1, 255), label="mask")
    bad_path = _flip(path, element, byte, mask)
    assert not verify_consistency(first, second, root1, root2, bad_path)
    assert not _rfc_verify_consistency(first, second, root1, root2, bad_path)
    assert not verify_consistency(first, second, root1, root2, path[:-1])
    assert not verify_consistency(first, second, root1, root2, [*path, path[-1]])
    assert not verify_consistency(first, second, root2, root1, path)

    # As with inclusion, a changed size is checked with that size's own root.
    other_first = data.draw(_other_than(first, 1, second), label="other first")
    if other_first < second:
        other_root1 = _ref_root(other_first)
        assert not verify_consistency(other_first, second, other_root1, root2, path)
        assert not _rfc_verify_consistency(other_first, second, other_root1, root2, path)
        assert verify_consistency(other_first, second, root1, root2, path) == _rfc_verify_consistency(
            other_first, second, root1, root2, path
        )

    other_second = data.draw(_other_than(second, first + 1, MAX_SIZE + 1), label="other second")
    if other_second > MAX_SIZE:
        return
    other_root2 = _ref_root(other_second)
    assert not verify_consistency(first, other_second, root1, other_root2, path)
    assert not _rfc_verify_consistency(first, other_second, root1, other_root2, path)
    assert verify_consistency(first, other_second, root1, root2, path) == _rfc_verify_consistency(
        first, other_second, root1, root2, path
    )


@pytest.mark.parametrize("size", range(65))
def test_every_proof_of_small_trees_matches_the_rfc(size: int) -> None:
    tree = _big_tree()
    entries = ENTRIES[:size]

    for index in range(size):
        assert tree.inclusion_proof(index, size) == _ref_path(index, entries)
    for first in range(1, size + 1):
        assert tree.consistency_proof(first, size) == _ref_proof(first, entries)


def test_frontier_root_equals_root_from_leaves_at_every_size() -> None:
    leaves = _big_tree().leaf_hashes
    frontier = CompactRange()
    mismatches = []
    for size in range(MAX_SIZE + 1):
        if frontier.root() != root_from_leaves(leaves[:size]):
            mismatches.append(size)
        if size < MAX_SIZE:
            frontier, _ = frontier.append(leaves[size])

    assert mismatches == []


@PROPERTY_SETTINGS
@given(size=st.integers(0, MAX_SIZE))
@example(size=0)
@example(size=2048)
def test_roots_equal_the_rfc_definition(size: int) -> None:
    tree = _big_tree()

    assert root_from_leaves(tree.leaf_hashes[:size]) == _ref_root(size)
    assert tree.root(size) == _ref_root(size)
    assert CompactRange.load(size, tree.subtree).root() == _ref_root(size)


def test_appends_store_every_complete_subtree_with_its_rfc_hash() -> None:
    tree = _big_tree()
    expected_blocks = {
        (start, 1 << level)
        for level in range(MAX_SIZE.bit_length())
        for start in range(0, MAX_SIZE - (1 << level) + 1, 1 << level)
    }

    assert set(tree.blocks) == expected_blocks
    wrong = [(start, size) for (start, size), h in tree.blocks.items() if h != _ref_mth(ENTRIES[start : start + size])]
    assert wrong == []


@st.composite
def _leaf_range(draw: st.DrawFn) -> tuple[int, int]:
    start = draw(st.integers(0, MAX_SIZE - 1))
    return start, draw(st.integers(start + 1, MAX_SIZE))


@PROPERTY_SETTINGS
@given(bounds=_leaf_range())
@example(bounds=(0, MAX_SIZE))
@example(bounds=(MAX_SIZE - 1, MAX_SIZE))
@example(bounds=(1, 2048))
def test_range_hash_is_the_mth_of_any_range(bounds: tuple[int, int]) -> None:
    start, end = bounds
    tree = _big_tree()

    assert range_hash(start, end, tree.subtree) == _ref_mth(ENTRIES[start:end])


# --- Cost: proofs read O(log n) stored subtrees ---------------------------------------------


def _lookup_bound(size: int) -> int:
    return 2 * size.bit_length()


@PROPERTY_SETTINGS
@given(leaf=_leaf_in_tree(), sizes=_two_sizes())
def test_proofs_read_logarithmically_many_aligned_blocks(leaf: tuple[int, int], sizes: tuple[int, int]) -> None:
    tree = _big_tree()
    index, size = leaf
    first, second = sizes

    inclusion_lookup = _CountingLookup(tree.subtree, size)
    inclusion_proof(index, size, inclusion_lookup)
    consistency_lookup = _CountingLookup(tree.subtree, second)
    consistency_proof(first, second, consistency_lookup)
    root_lookup = _CountingLookup(tree.subtree, size)
    range_hash(0, size, root_lookup)
    frontier_lookup = _CountingLookup(tree.subtree, size)
    CompactRange.load(size, frontier_lookup)

    assert inclusion_lookup.calls <= _lookup_bound(size)
    assert consistency_lookup.calls <= _lookup_bound(second)
    assert root_lookup.calls <= size.bit_length()
    assert frontier_lookup.calls == size.bit_count()


def _uniform_tree() -> tuple[Callable[[int, int], bytes], Callable[[int], bytes]]:
    """Return a block lookup and an RFC root for a huge tree whose leaves are all b"x".

    All blocks of one size then share a hash, so a tree of 10^12 leaves costs O(log n).
    """
    levels = [_hash(b"\x00x")]
    for _ in range(64):
        levels.append(_hash(b"\x01" + levels[-1] + levels[-1]))

    def subtree(start: int, size: int) -> bytes:
        return levels[size.bit_length() - 1]

    @functools.cache
    def root(n: int) -> bytes:  # MTH (§2.1.1), which depends only on n here
        if n == 1:
            return levels[0]
        k = _k(n)
        return _hash(b"\x01" + root(k) + root(n - k))

    return subtree, root


@pytest.mark.parametrize("size", [10**6, 10**9 + 7, 2**40 - 1, 10**12])
def test_proofs_stay_logarithmic_at_a_trillion_leaves(size: int) -> None:
    subtree, root = _uniform_tree()
    index, first = size // 3, size // 2 + 1

    inclusion_lookup = _CountingLookup(subtree, size)
    path = inclusion_proof(index, size, inclusion_lookup)
    consistency_lookup = _CountingLookup(subtree, size)
    proof = consistency_proof(first, size, consistency_lookup)

    assert inclusion_lookup.calls <= _lookup_bound(size)
    assert consistency_lookup.calls <= _lookup_bound(size)
    assert _rfc_verify_inclusion(root(1), index, size, path, root(size))
    assert _rfc_verify_consistency(first, size, root(first), root(size), proof)
    assert verify_inclusion(root(1), index, size, path, root(size))
    assert verify_consistency(first, size, root(first), root(size), proof)
