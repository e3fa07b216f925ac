"""The restore drill of docs/operations.md, as a test: a backup taken under traffic restores (issue 14 item 5).

A platform node on PostgreSQL serves full transactions from a thread while `pg_dump` runs. The dump
is restored with `pg_restore` into a new database, a node is started on it and takes the balancer's
address (the issuer stays the same). Then: `mydata ledger verify` passes; the restored log is
consistent with every signed tree head published before the dump (each is a prefix of it, by our
own RFC 9162 tree hash and by the restored platform's consistency proof); new appends continue from
the restored size; and a consent delivered before the dump is not delivered again.
"""

from __future__ import annotations

import base64
import hashlib
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
import requests
from joserfc import jws
from joserfc.jwk import KeySet
from sqlalchemy.engine import make_url

from consent import merkle
from tests.factories.live import ShiftedClock
from tests.factories.nodes import Nodes, fresh_database, node_log, require_postgres_and_redis, serve_nodes
from tests.integration.test_delivery_third_party import ThirdPartyBank

PERSONA = "A123456789"


def libpq(url: str) -> str:
    """Return a SQLAlchemy PostgreSQL URL as the PostgreSQL tools take it."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def b64(value: str) -> bytes:
    """Decode standard base64, the encoding of every hash and leaf in the ledger API."""
    return base64.b64decode(value, validate=True)


def tree_hash(leaves: Sequence[bytes]) -> bytes:
    """Return the RFC 9162 §2.1.1 Merkle tree hash of *leaves* (the entries' leaf_input bytes)."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    split = 1 << ((len(leaves) - 1).bit_length() - 1)  # the largest power of two below the size
    return hashlib.sha256(b"\x01" + tree_hash(leaves[:split]) + tree_hash(leaves[split:])).digest()


def wait_for(condition: Callable[[], bool], what: str) -> None:
    """Wait until *condition* holds; fail naming *what* if it never does."""
    deadline = time.monotonic() + 120
    while not condition():
        assert time.monotonic() < deadline, f"still waiting for {what}"
        time.sleep(0.05)


class Ledger:
    """The public ledger of the platform at the balancer's address, read as an auditor does."""

    def __init__(self, issuer: str) -> None:
        self.issuer = issuer

    def get(self, path: str) -> Any:
        answer = requests.get(f"{self.issuer}{path}", timeout=30)
        assert answer.status_code == 200, answer.text
        return answer.json()

    def leaves(self) -> list[bytes]:
        """Return every entry's leaf_input, checking that their seqs are 0..n-1."""
        leaves: list[bytes] = []
        while True:
            page = self.get(f"/ledger/entries?start={len(leaves)}&end={len(leaves) + 999}")["entries"]
            assert [e["seq"] for e in page] == list(range(len(leaves), len(leaves) + len(page)))
            leaves += [b64(e["leaf_input"]) for e in page]
            if len(page) < 1000:
                return leaves

    def tree_heads(self) -> list[dict[str, Any]]:
        """Return every stored signed tree head, oldest first."""
        return list(self.get("/ledger/sths?limit=1000")["sths"])

    def check_consistent(self, head: dict[str, Any], size: int, root: bytes) -> None:
        """Check the restored platform's proof that the tree of *head* is a prefix of the tree (size, root)."""
        proof = self.get(f"/ledger/proof/consistency?first={head['tree_size']}&second={size}")
        path = [b64(node) for node in proof["consistency_path"]]
        assert merkle.verify_consistency(head["tree_size"], size, b64(head["root_hash"]), root, path), head


def run(*command: str) -> None:
    """Run a PostgreSQL tool; fail with its output if it fails."""
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, f"{' '.join(command[:2])}: {done.stderr}"


def verified_size(platform: Nodes, database_url: str) -> int:
    """Run `mydata ledger verify` on *database_url*; return the number of entries it verified."""
    verified = platform.mydata("ledger", "verify", database_url=database_url)
    assert verified.returncode == 0, verified.stderr
    found = re.search(r"ledger verify: OK: (\d+) entries", verified.stdout)
    assert found, verified.stdout
    return int(found.group(1))


def test_a_dump_taken_under_traffic_restores_into_a_platform_that_carries_on(tmp_path: Path) -> None:
    require_postgres_and_redis()
    if shutil.which("pg_dump") is None or shutil.which("pg_restore") is None:
        pytest.skip("pg_dump and pg_restore are not installed: the drill uses the PostgreSQL client tools")
    with (
        fresh_database("drill") as url,
        fresh_database("restored") as restored_url,
        serve_nodes(tmp_path, url, count=1, ledger_sth_every_entries="2") as platform,
    ):
        [node] = platform.nodes
        bank = ThirdPartyBank(platform.live, ShiftedClock())
        before = bank.consented(PERSONA)
        assert bank.deliver(before.access_token).status_code == 200

        # Traffic: full transactions, one after another, until the dump is taken and one more is done.
        stop = threading.Event()
        completed: list[str] = []
        errors: list[BaseException] = []

        def traffic() -> None:
            try:
                other = ThirdPartyBank(platform.live, ShiftedClock())
                while not stop.is_set():
                    delivery = other.consented(PERSONA)
                    answer = other.deliver(delivery.access_token)
                    assert answer.status_code == 200, answer.text
                    completed.append(delivery.id_token["txn"])
            except BaseException as exc:  # reported by the test thread below
                errors.append(exc)

        thread = threading.Thread(target=traffic)
        thread.start()
        try:
            wait_for(lambda: len(completed) >= 2 or bool(errors), "transactions before the dump")
            published = Ledger(platform.issuer).tree_heads()
            dump = tmp_path / "mydata.dump"
            run("pg_dump", "--format=custom", f"--file={dump}", f"--dbname={libpq(url)}")
            at_dump = len(completed)
            wait_for(lambda: len(completed) > at_dump or bool(errors), "a transaction after the dump")
        finally:
            stop.set()
            thread.join()
        assert errors == [], f"{errors!r}\n{node_log(node)}"
        assert len(published) >= 2

        # Restore into a new database, and point a platform at it: the balancer's address (the
        # issuer) now reaches a node on the restored database, and the old node stops.
        run("pg_restore", "--no-owner", "--exit-on-error", f"--dbname={libpq(restored_url)}", str(dump))
        restored = platform.start_node(database_url=restored_url)
        platform.balancer.retarget([restored.base])
        node.stop()

        size = verified_size(platform, restored_url)
        ledger = Ledger(platform.issuer)
        leaves = ledger.leaves()
        assert len(leaves) == size
        root = tree_hash(leaves)
        keys = KeySet.import_key_set(requests.get(f"{platform.issuer}/oauth/jwks", timeout=10).json())
        for head in published:
            # Signed by the platform, a prefix of the restored log, and proved so by the restored platform.
            assert jws.deserialize_compact(head["jws"], keys, algorithms=["ES256"]).payload
            assert head["tree_size"] <= size
            assert tree_hash(leaves[: head["tree_size"]]) == b64(head["root_hash"])
            ledger.check_consistent(head, size, root)

        # A consent delivered before the dump is not delivered again.
        again = bank.deliver(before.access_token)
        assert again.status_code == 410, again.text
        assert again.json()["error"] == "already_delivered"

        # New appends continue from the restored size, and the log still verifies.
        after = bank.consented(PERSONA)
        assert bank.deliver(after.access_token).status_code == 200, node_log(restored)
        grown = ledger.leaves()
        assert grown[:size] == leaves
        assert len(grown) > size
        assert verified_size(platform, restored_url) == len(grown)
        newest = ledger.get("/ledger/sth")  # signed by the new appends (one every 2 entries)
        assert newest["tree_size"] > size
        ledger.check_consistent(
            {"tree_size": size, "root_hash": base64.b64encode(root).decode()},
            newest["tree_size"],
            b64(newest["root_hash"]),
        )
        assert tree_hash(grown[: newest["tree_size"]]) == b64(newest["root_hash"])
