"""The API contract: schemathesis sends every operation of /openapi.json to a live sandbox platform.

Each answer must not be a server error, and must match its documented status, content type and
schema. The platform is served on its own SQLite database in a temporary folder, so nothing the run
creates (agencies, organisations, consents) reaches another test.

Authentication (each operation is exercised behind it, not only answered with 401):

* operator API (``operatorToken``): a live operator token, as `mydata providers issue-operator-token` gives;
* organisation API (``initialAccessToken``): the sandbox bank's initial access token;
* citizen API (``citizenSession``): a citizen logged in on the real login pages with an eID card,
  with the session's CSRF token in X-CSRFToken;
* OAuth endpoints that authenticate the client (PAR, token, revocation, introspection): the
  generated form keeps its fuzzed fields, but its ``client_assertion`` is replaced by a fresh,
  valid private_key_jwt assertion of a client registered through RFC 7591, with a valid DPoP proof;
  so the fuzzed input reaches the endpoint's own checks, which may answer 400 (checks still apply);
* DPoP-protected resources (userinfo, delivery): a DPoP-bound access token of a granted consent,
  with a fresh proof carrying its ``ath`` for each call.

Bounded: a fixed number of examples per operation and derandomized generation (a fixed seed).
"""

from __future__ import annotations

import base64
import os
import re
import secrets
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from joserfc import jwt
from jsonschema import Draft202012Validator
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from mydata.app import create_app
from mydata.config import Settings
from mydata.db import get_db
from mydata.openapi import build_spec
from providers import services as providers_services
from providers.sandbox.catalogue import PROVIDER_DATASETS
from relying_parties import services as rp_services
from relying_parties.sandbox.seed import RELYING_PARTIES
from tests.factories.live import LivePlatform, ShiftedClock, serve_platform
from tests.integration.test_delivery_third_party import Delivery, ThirdPartyBank

MAX_EXAMPLES = 20
CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance, content_type_conformance]
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
#: OAuth endpoints that authenticate the client with private_key_jwt (and take a DPoP proof).
CLIENT_AUTHENTICATED = {"/oauth/par", "/oauth/token", "/oauth/revoke", "/oauth/introspect"}
#: Resources that take a DPoP-bound access token.
DPOP_PROTECTED = {"/oauth/userinfo", "/api/v1/delivery"}
#: Answers that mean the credentials were refused: the operation was not exercised behind them.
REFUSED = {401, 403}


def contract_document() -> dict[str, Any]:
    """Return the platform's OpenAPI document, built from a throwaway sandbox app.

    schemathesis' fixture-based loader does not run under pytest 9.2 (it sets ``Node._nodeid``),
    so the schema is loaded when this module is imported; every call goes to the live platform
    (``base_url``), and ``test_the_live_platform_serves_this_document`` checks it is the same document.
    """
    with tempfile.TemporaryDirectory() as folder:
        app = create_app(
            Settings(
                instance_path=Path(folder) / "instance",
                sandbox=True,
                issuer="http://127.0.0.1",
                database_url=f"sqlite:///{folder}/unused.sqlite",
                master_key=base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode(),
                secret_key=secrets.token_urlsafe(48),
            )
        )
        document = build_spec(app)
        get_db(app).engine.dispose()
    return document


DOCUMENT = contract_document()
DOCUMENT_OPERATIONS = [f"{m.upper()} {path}" for path, operations in DOCUMENT["paths"].items() for m in operations]
schema = schemathesis.openapi.from_dict(DOCUMENT)
#: The sandbox's seeded ids, so that reading one object also finds it (and its 200 meets its schema),
#: not only answers 404. Writes keep random ids: approving or suspending the seeded bank mid-run
#: would stop its clients.
SEEDED_IDS = {
    "provider_id": sorted(PROVIDER_DATASETS),
    "dataset_id": sorted(dataset for datasets in PROVIDER_DATASETS.values() for dataset in datasets),
    "organisation_id": [party.id for party in RELYING_PARTIES],
    "service_id": [party.service.id for party in RELYING_PARTIES],
}


#: The contract run's own clients for the client configuration endpoints, by method (Credentials fills it).
CONFIGURED_CLIENTS: dict[str, list[str]] = {}


@schema.hook
def before_generate_path_parameters(context: Any, strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mix the seeded ids into the path parameters of reads, and the run's clients into their configuration."""
    operation = context.operation
    if operation is not None and operation.path == "/oauth/register/{client_id}":
        clients = CONFIGURED_CLIENTS.get(operation.method.upper(), [])
        return (
            st.one_of(st.fixed_dictionaries({"client_id": st.sampled_from(clients)}), strategy) if clients else strategy
        )
    names = re.findall(r"{(\w+)}", operation.path) if operation is not None else []
    if operation is None or operation.method.upper() != "GET" or not all(name in SEEDED_IDS for name in names):
        return strategy
    seeded = st.fixed_dictionaries({name: st.sampled_from(SEEDED_IDS[name]) for name in names})
    return st.one_of(seeded, strategy)


class Credentials:
    """Every credential of the run, and what each operation answered with them."""

    def __init__(self, platform: LivePlatform, clock: ShiftedClock) -> None:
        self.base = platform.base
        self.clock = clock
        # The bank registers its client (with an initial access token it then no longer needs) and a
        # citizen consents on the real pages: a DPoP-bound access token and a logged-in browser.
        self.bank = ThirdPartyBank(platform, clock)
        self.delivery: Delivery = self.bank.consented("A123456789")
        with platform.app.app_context(), get_db().unit_of_work() as uow:
            _operator_token, self.operator = providers_services.issue_operator_token(uow, label="contract run")
            _access_token, self.organisation = rp_services.issue_initial_access_token(
                uow, "sandbox-bank", actor="contract run"
            )
        self.cookies = {name: value for name, value in self.delivery.browser.http.cookies.get_dict().items() if value}
        # Throwaway clients for the client configuration endpoints (RFC 7592), each with its registration
        # access token: two to read and replace (a read finds several), one to delete, never the bank's own.
        self.configured: dict[str, list[str]] = {"GET": [], "PUT": [], "DELETE": []}
        self.registration_tokens: dict[str, str] = {}
        for methods in (("GET", "PUT"), ("GET", "PUT"), ("DELETE",)):
            registered = requests.post(
                f"{self.base}/oauth/register",
                json={
                    "client_name": "contract run",
                    "redirect_uris": ["https://contract.example/cb"],
                    "token_endpoint_auth_method": "private_key_jwt",
                    "jwks": {
                        "keys": [self.bank.sig_key.as_dict(private=False), self.bank.enc_key.as_dict(private=False)]
                    },
                },
                headers={"Authorization": f"Bearer {self.organisation}"},
                timeout=10,
            )
            assert registered.status_code == 201, registered.text
            client_id = registered.json()["client_id"]
            self.registration_tokens[client_id] = registered.json()["registration_access_token"]
            for method in methods:
                self.configured[method].append(client_id)
        CONFIGURED_CLIENTS.update(self.configured)
        # The citizen's own history entries (the consent, and a download of their own): reading a proof
        # bundle then also finds one (the list is read when the run generates its cases, after this).
        assert self.delivery.browser.get("/me/data/download?datasets=nhi.enrolment&format=json").status_code == 200
        history = requests.get(f"{self.base}/api/v1/me/history", cookies=self.cookies, timeout=10).json()
        SEEDED_IDS["seq"] = [str(event["seq"]) for event in history["events"]]
        assert len(SEEDED_IDS["seq"]) >= 2, history
        self.csrf = _csrf_token(self.delivery.browser.get("/me").text)
        self.answers: dict[str, Counter[int]] = defaultdict(Counter)
        self.found: dict[str, set[tuple[tuple[str, str], ...]]] = defaultdict(set)
        self.started = time.monotonic()

    def authenticate(self, case: Any) -> tuple[str | None, dict[str, str], dict[str, str]]:
        """Put this operation's credentials on *case*; return their kind, the headers and the cookies."""
        path, method = case.operation.path, case.operation.method.upper()
        schemes = {name for requirement in case.operation.definition.raw.get("security", []) for name in requirement}
        if "operatorToken" in schemes:
            return "operator", {"Authorization": f"Bearer {self.operator}"}, {}
        if "initialAccessToken" in schemes:
            return "organisation", {"Authorization": f"Bearer {self.organisation}"}, {}
        if "registrationAccessToken" in schemes:
            token = self.registration_tokens.get(str(case.path_parameters.get("client_id")), "unknown")
            return "client configuration", {"Authorization": f"Bearer {token}"}, {}
        if "clientAssertion" in schemes:
            return "client assertion", {"Authorization": f"Bearer {self.client_assertion()}"}, {}
        if "citizenSession" in schemes:
            # A program says it takes JSON: a session route that is also a browser's download (the proof
            # bundle) then answers its errors in JSON too, as documented.
            return "citizen", {"X-CSRFToken": self.csrf, "Accept": "application/json"}, self.cookies
        url = f"{self.base}{path}"
        if path in CLIENT_AUTHENTICATED and isinstance(case.body, dict):
            # A new body, not the generated one updated: an explicit case's body is the document's example.
            case.body = {
                **case.body,
                "client_assertion_type": ASSERTION_TYPE,
                "client_assertion": self.client_assertion(),
            }
            if path == "/oauth/par":
                case.body["client_id"] = self.bank.client_id
            return "client", {"DPoP": self.bank.proof(method, url)}, {}
        if path in DPOP_PROTECTED:
            token = self.delivery.access_token
            return "access token", {"Authorization": f"DPoP {token}", "DPoP": self.bank.proof(method, url, token)}, {}
        return None, {}, {}

    def client_assertion(self) -> str:
        """Return a fresh private_key_jwt assertion of the bank's client (RFC 7523 §3; aud: the issuer)."""
        now = int(self.clock.time())
        claims = {
            "iss": self.bank.client_id,
            "sub": self.bank.client_id,
            "aud": self.base,
            "iat": now,
            "exp": now + 60,
            "jti": secrets.token_urlsafe(16),
        }
        return jwt.encode({"alg": "ES256", "kid": "third-party-sig"}, claims, self.bank.sig_key)

    def record(self, case: Any, kind: str | None, status: int) -> None:
        """Count the answer of an authenticated call, and which objects a read found."""
        if kind is not None:
            self.answers[case.operation.label][status] += 1
        if status == 200 and case.path_parameters:
            self.found[case.operation.label].add(tuple(sorted(case.path_parameters.items())))

    def exercised(self) -> list[str]:
        """Return the operations that answered an authenticated call with something else than 401 or 403."""
        return sorted(label for label, statuses in self.answers.items() if set(statuses) - REFUSED)


def _csrf_token(page: str) -> str:
    marker = 'name="csrf_token" value="'
    assert marker in page, "no CSRF token on the account page"
    return page.split(marker, 1)[1].split('"', 1)[0]


@pytest.fixture(scope="module")
def clock() -> ShiftedClock:
    """Return the platform's clock (the real time), which the bank's assertions and proofs follow."""
    return ShiftedClock()


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory, clock: ShiftedClock) -> Iterator[LivePlatform]:
    """Serve a seeded sandbox platform on its own database."""
    with serve_platform(tmp_path_factory.mktemp("contract"), clock=clock) as live:
        yield live


@pytest.fixture(scope="module")
def credentials(platform: LivePlatform, clock: ShiftedClock, request: pytest.FixtureRequest) -> Iterator[Credentials]:
    """Return the run's credentials; report after the run how many operations were exercised behind them."""
    found = Credentials(platform, clock)
    yield found
    if found.answers:
        line = (
            f"API contract: {len(found.exercised())} operations exercised with authentication "
            f"(of {len(found.answers)} called with it, {len(DOCUMENT_OPERATIONS)} in all), "
            f"{time.monotonic() - found.started:.1f} s"
        )
        capture = request.config.pluginmanager.get_plugin("capturemanager")
        assert capture is not None
        with capture.global_and_fixture_disabled():
            print(f"\n{line}")


def test_introspecting_a_live_token_meets_its_schema(platform: LivePlatform, credentials: Credentials) -> None:
    # Before the run (which delivers the consent): the fuzzed calls only ever see unknown tokens.
    answer = requests.post(
        f"{platform.base}/oauth/introspect",
        data={
            "token": credentials.delivery.access_token,
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": credentials.client_assertion(),
        },
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["active"] is True
    documented = DOCUMENT["paths"]["/oauth/introspect"]["post"]["responses"]["200"]["content"]["application/json"]
    validator = Draft202012Validator({**documented["schema"], "components": DOCUMENT["components"]})
    assert list(validator.iter_errors(answer.json())) == []


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_api_contract(case: Any, platform: LivePlatform, credentials: Credentials) -> None:
    kind, headers, cookies = credentials.authenticate(case)
    response = case.call_and_validate(
        base_url=platform.base, headers=headers, cookies=cookies, checks=CHECKS, timeout=30
    )
    credentials.record(case, kind, response.status_code)


def test_the_live_platform_serves_this_document(platform: LivePlatform) -> None:
    served = requests.get(f"{platform.base}/openapi.json", timeout=10).json()
    assert served["servers"] == [{"url": platform.base}]
    assert {**served, "servers": DOCUMENT["servers"]} == DOCUMENT


def test_every_authenticated_operation_got_past_its_authentication(credentials: Credentials) -> None:
    if not credentials.answers:
        pytest.skip("the contract run did not run in this session")
    authenticated = {
        f"{method.upper()} {path}"
        for path, operations in DOCUMENT["paths"].items()
        for method, operation in operations.items()
        if operation.get("security") or path in CLIENT_AUTHENTICATED | DPOP_PROTECTED
    }
    assert set(credentials.answers) == authenticated
    assert credentials.exercised() == sorted(authenticated)
    # The reads of one object found several seeded ones (schemathesis alone finds one, from a list).
    reads = [label for label in authenticated if label.startswith("GET ") and "{" in label]
    assert reads
    assert [label for label in reads if len(credentials.found[label]) < 2] == []
