"""Two platform nodes over one PostgreSQL and one Redis: a client may meet either at each step (issue 14 item 4).

Each node is its own gunicorn process; a balancer in the test process is the issuer, and the test
pins it to one node or the other between steps. Each node keeps, per process, the clients it read
(30 s) and the signing key it last read as active (60 s): neither may make a node refuse what the
other issued, across a `mydata keys rotate` run in a third process between the steps.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from joserfc import jwe, jws, jwt
from joserfc.jwk import KeySet
from sqlalchemy import select

from consent.models import LedgerEntry
from mydata.db import get_db
from providers.sandbox.keys import agency_keys_dir
from providers.sandbox.seed import seed_sandbox_catalogue
from tests.factories.live import Browser, ShiftedClock
from tests.factories.nodes import Node, Nodes, fresh_database, node_log, require_postgres_and_redis, serve_nodes
from tests.factories.oauth import pkce_pair
from tests.factories.threads import at_once
from tests.integration.test_delivery_third_party import (
    BANK_DATASETS,
    REDIRECT_URI,
    SERVICE,
    Delivery,
    ThirdPartyBank,
)

PERSONA = "A123456789"
DETAILS = [{"type": "mydata_delivery", "service": SERVICE}]


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nodes]:
    """Serve two nodes of one platform on a fresh PostgreSQL database.

    The agencies are one system at one address, as real ones are (outside the platform): node A's
    mount. They keep the platform's JWKS they fetched, and must take a query signed by a key newer
    than their copy, whichever node signed it.
    """
    require_postgres_and_redis()
    with fresh_database("nodes") as url, serve_nodes(tmp_path_factory.mktemp("nodes"), url) as nodes:
        with nodes.app.app_context(), get_db().unit_of_work() as uow:
            agencies = f"{nodes.nodes[0].base}/sandbox/agencies"
            seed_sandbox_catalogue(uow, keys_dir=agency_keys_dir(nodes.folder), agencies_url=agencies)
        yield nodes


class Bank(ThirdPartyBank):
    """The third-party bank, keeping each ID token as it came (to read the key it names)."""

    def __init__(self, platform: Nodes) -> None:
        super().__init__(platform.live, ShiftedClock())
        self.platform = platform
        self.id_tokens: list[str] = []
        self.session.register_compliance_hook("access_token_response", self._keep_id_token)

    def _keep_id_token(self, response: requests.Response) -> requests.Response:
        if response.ok:
            self.id_tokens.append(response.json()["id_token"])
        return response

    def transaction(
        self,
        *,
        par: Node,
        login: Node,
        token: Node,
        after_par: Callable[[], None] = lambda: None,
        before_token: Callable[[], None] = lambda: None,
    ) -> tuple[Delivery, requests.Response]:
        """Push on *par*, log in and consent on *login*, redeem and collect on *token*."""
        balancer = self.platform.balancer
        verifier, challenge = pkce_pair()
        balancer.pin(par.base)
        pushed = self.push(DETAILS, verifier, challenge)
        assert pushed.status_code == 201, pushed.text
        after_par()

        balancer.pin(login.base)
        browser = Browser(self.issuer)
        query = urlencode({"client_id": self.client_id, "request_uri": pushed.json()["request_uri"]})
        page = browser.follow(browser.get(f"{urlsplit(self.metadata['authorization_endpoint']).path}?{query}"))
        screen = browser.follow(browser.log_in(page, "eid", PERSONA))
        answer = browser.follow(browser.approve(screen), stop_at=REDIRECT_URI)
        assert answer.status_code == 303, answer.text[:300]
        response = {k: v[0] for k, v in parse_qs(urlsplit(answer.headers["Location"]).query).items()}
        assert (response["iss"], response["state"]) == (self.issuer, self.pushed_state)
        before_token()

        balancer.pin(token.base)
        delivery = self.redeem(response, verifier, self.pushed_nonce, browser)  # verifies the ID token
        return delivery, self.deliver(delivery.access_token)


def kid_of(compact: str) -> str:
    """Return the `kid` a compact JWS names."""
    return str(jws.extract_compact(compact.encode()).protected["kid"])


def package_kid(bank: Bank, sealed: str) -> str:
    """Return the key the platform signed a package with (inside its JWE)."""
    plaintext = jwe.decrypt_compact(sealed, bank.enc_key, algorithms=["ECDH-ES+A256KW", "A256GCM"]).plaintext
    assert plaintext is not None
    return kid_of(plaintext.decode())


def node_jwks(node: Node) -> KeySet:
    """Return the platform's JWKS as *node* publishes it."""
    return KeySet.import_key_set(requests.get(f"{node.base}/oauth/jwks", timeout=10).json())


def rotate(platform: Nodes) -> str:
    """Run `mydata keys rotate` as an operator does, in its own process; return the new key's id."""
    rotated = platform.mydata("keys", "rotate")
    assert rotated.returncode == 0, rotated.stderr
    found = re.search(r"New active signing key: (\S+)", rotated.stdout)
    assert found, rotated.stdout
    return found.group(1)


def collected(bank: Bank, delivery: Delivery, answer: requests.Response, *nodes: Node) -> dict[str, Any]:
    """Check that the delivery succeeded with every dataset; return the opened package."""
    logs = "\n".join(node_log(node) for node in nodes)
    assert answer.status_code == 200, f"{answer.text}\n{logs}"
    package = bank.open(answer.text, delivery)  # verifies the platform's JWS and each agency's
    assert {k: v["status"] for k, v in package["datasets"].items()} == dict.fromkeys(BANK_DATASETS, "ok")
    return package


def test_a_flow_alternating_between_two_nodes_holds_across_a_key_rotation(platform: Nodes) -> None:
    a, b = platform.nodes
    bank = Bank(platform)

    # Node A signs with the first key and the agencies keep the JWKS that has only it.
    first, answer = bank.transaction(par=a, login=a, token=a)
    collected(bank, first, answer, a)
    first_kid = kid_of(bank.id_tokens[-1])
    assert [k["kid"] for k in node_jwks(b).as_dict()["keys"]] == [first_kid]

    # PAR on A; the key is rotated by another process; login and consent on B; token and delivery on A.
    rotated: list[str] = []
    second, answer = bank.transaction(par=a, login=b, token=a, after_par=lambda: rotated.append(rotate(platform)))
    [new_kid] = rotated
    collected(bank, second, answer, a, b)
    # A may still sign with the key it read (for up to 60 s): retired, it is still published.
    assert kid_of(bank.id_tokens[-1]) in (first_kid, new_kid)
    for node in (a, b):
        assert [k["kid"] for k in node_jwks(node).as_dict()["keys"]] == [new_kid, first_kid]
        # What the first key signed before the rotation still verifies with what either node publishes.
        jwt.decode(bank.id_tokens[0], node_jwks(node), algorithms=["ES256"])

    # The other way round, with another rotation between the consent and the token. B read the
    # second key when it recorded the consent above (it signs there too): it signs with that one
    # or, once its minute is up, the newest. The agencies' copy of the JWKS has neither when A
    # signed with the first key until now, and they fetch it again for the unknown kid.
    third, answer = bank.transaction(par=b, login=a, token=b, before_token=lambda: rotated.append(rotate(platform)))
    newest_kid = rotated[-1]
    collected(bank, third, answer, a, b)
    assert kid_of(bank.id_tokens[-1]) in (new_kid, newest_kid)
    assert package_kid(bank, answer.text) in (new_kid, newest_kid)
    for node in (a, b):
        assert [k["kid"] for k in node_jwks(node).as_dict()["keys"]] == [newest_kid, new_kid, first_kid]
        for id_token in bank.id_tokens:
            jwt.decode(id_token, node_jwks(node), algorithms=["ES256"])
    # A package delivered on one node cannot be collected again on the other.
    for node in (a, b):
        platform.balancer.pin(node.base)
        again = bank.deliver(third.access_token)
        assert again.status_code == 410, again.text
        assert again.json()["error"] == "already_delivered"

    # Each step reached the node it was pinned to.
    assert platform.balancer.relayed[a.base] > 0
    assert platform.balancer.relayed[b.base] > 0


def test_a_client_registered_on_one_node_is_served_at_once_by_the_other(platform: Nodes) -> None:
    a, b = platform.nodes
    platform.balancer.pin(a.base)
    bank = Bank(platform)  # registered (RFC 7591) on A: B has never read it, and reads it at its first step
    delivery, answer = bank.transaction(par=b, login=a, token=b)
    collected(bank, delivery, answer, a, b)


THREADS = 4
PER_THREAD = 5


def test_ledger_appends_from_both_nodes_interleave_without_a_gap(platform: Nodes) -> None:
    a, b = platform.nodes
    platform.balancer.pin(None)  # each new connection to the next node in turn
    platform.balancer.relayed.clear()
    banks = [Bank(platform) for _ in range(THREADS)]
    delivered: list[str] = []

    def work(bank: Bank) -> None:
        for _ in range(PER_THREAD):
            delivery = bank.consented(PERSONA)
            answer = bank.deliver(delivery.access_token)
            assert answer.status_code == 200, answer.text
            delivered.append(delivery.id_token["txn"])

    errors = at_once(*(functools.partial(work, bank) for bank in banks))
    assert errors == [], f"{errors!r}\n{node_log(a)}\n{node_log(b)}"
    assert len(set(delivered)) == THREADS * PER_THREAD
    assert platform.balancer.relayed[a.base] > THREADS
    assert platform.balancer.relayed[b.base] > THREADS

    with platform.app.app_context(), get_db().unit_of_work(read_only=True) as uow:
        seqs = list(uow.session.scalars(select(LedgerEntry.seq).order_by(LedgerEntry.seq)))
        completed = {
            entry.consent_id
            for entry in uow.session.scalars(select(LedgerEntry))
            if b'"event":"delivery.completed"' in bytes(entry.leaf_input)
        }
    assert seqs == list(range(len(seqs)))
    assert set(delivered) <= completed
    verified = platform.mydata("ledger", "verify")
    assert verified.returncode == 0, verified.stderr
    assert f"ledger verify: OK: {len(seqs)} entries" in verified.stdout
