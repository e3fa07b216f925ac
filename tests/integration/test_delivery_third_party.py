"""A relying party on a third-party stack receives a consented data package over real HTTP (issue 6).

The relying party is none of the platform's code: Authlib's requests client authenticates it
(private_key_jwt), joserfc makes its keys and DPoP proofs, decrypts the JWE and verifies the JWS and
every agency's `provider_jws`. It registers itself through RFC 7591 with the sandbox bank's initial
access token, pushes a request with `authorization_details`, the citizen logs in and consents on the
real pages, and it collects the package (acceptance 2); then the refusals of acceptance 3 and 4.
"""

from __future__ import annotations

import json
import os
import secrets
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc7523 import PrivateKeyJWT, private_key_jwt_sign
from joserfc import jwe, jws, jwt
from joserfc.jwk import ECKey, KeySet
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import make_url

from consent import sweeper
from mydata.db import get_db
from tests.factories.live import Browser, LivePlatform, ShiftedClock, form_fields, serve_platform
from tests.factories.oauth import ath, pkce_pair

REDIRECT_URI = "https://apply.third-party-bank.example/mydata/callback"
SERVICE = "sandbox-bank.credit-card"
BANK_DATASETS = {"household.registration", "tax.income", "labor.insurance"}
POSTGRES_URL = os.environ.get("MYDATA_TEST_DATABASE_URL", "")


@pytest.fixture(scope="module")
def platform_clock() -> ShiftedClock:
    """Return the platform's clock (and its agencies')."""
    return ShiftedClock()


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory, platform_clock: ShiftedClock) -> Iterator[LivePlatform]:
    """Serve the sandbox platform; a timed-out agency gives up after 1 s instead of 5."""
    with serve_platform(
        tmp_path_factory.mktemp("delivery"), overrides={"provider_timeout_seconds": 1}, clock=platform_clock
    ) as live:
        yield live


class ShortLivedPrivateKeyJWT(PrivateKeyJWT):  # type: ignore[misc]
    """Authlib's private_key_jwt with a 60 s assertion: the platform refuses more than 5 minutes."""

    def sign(self, auth: object, token_endpoint: str) -> str:
        return str(
            private_key_jwt_sign(
                auth.client_secret,  # type: ignore[attr-defined]
                client_id=auth.client_id,  # type: ignore[attr-defined]
                token_endpoint=token_endpoint,
                alg=self.alg,
                header=self.headers,
                expires_in=60,
            )
        )


@dataclass
class Delivery:
    """A redeemed authorization: what the bank needs to collect the package."""

    access_token: str
    id_token: dict[str, Any]
    authorization_details: list[dict[str, Any]]
    browser: Browser
    expires_in: int = 0


class ThirdPartyBank:
    """The bank's client: registered through RFC 7591, Authlib for private_key_jwt, joserfc for the rest."""

    def __init__(
        self,
        platform: LivePlatform,
        clock: ShiftedClock,
        register: Callable[[dict[str, Any]], str] | None = None,
    ) -> None:
        """Make the bank's keys and register its client.

        By default the client registers itself through RFC 7591 with the sandbox bank's initial access
        token; *register*, given the public JWKS, registers it some other way (a developer pasting the
        keys in the relying-party console) and returns its client id.
        """
        self.issuer = platform.base
        self.clock = clock
        self.metadata = requests.get(f"{self.issuer}/.well-known/openid-configuration", timeout=10).json()
        assert self.metadata["issuer"] == self.issuer
        self.sig_key = ECKey.generate_key("P-256", parameters={"kid": "third-party-sig", "use": "sig", "alg": "ES256"})
        self.enc_key = ECKey.generate_key(
            "P-256", parameters={"kid": "third-party-enc", "use": "enc", "alg": "ECDH-ES+A256KW"}
        )
        self.dpop_key = ECKey.generate_key("P-256")
        jwks = {"keys": [self.sig_key.as_dict(private=False), self.enc_key.as_dict(private=False)]}
        self.client_id = register(jwks) if register is not None else self._register(platform, jwks)
        self.session = OAuth2Session(self.client_id, self.sig_key, token_endpoint_auth_method="private_key_jwt")
        # FAPI 2.0: the assertion's audience is the issuer identifier.
        self.session.register_client_auth_method(
            ShortLivedPrivateKeyJWT(self.issuer, alg="ES256", headers={"kid": "third-party-sig"})
        )

    def _register(self, platform: LivePlatform, jwks: dict[str, Any]) -> str:
        """Register through RFC 7591 with the initial access token an operator of the sandbox bank hands out."""
        issued = platform.app.test_cli_runner().invoke(args=["rp", "issue-token", "sandbox-bank"])
        assert issued.exit_code == 0, issued.output
        registered = requests.post(
            self.metadata["registration_endpoint"],
            json={
                "client_name": "第三方銀行",
                "redirect_uris": [REDIRECT_URI],
                "token_endpoint_auth_method": "private_key_jwt",
                "jwks": jwks,
            },
            headers={"Authorization": f"Bearer {issued.output.strip()}"},
            timeout=10,
        )
        assert registered.status_code == 201, registered.text
        return str(registered.json()["client_id"])

    def proof(self, method: str, url: str, access_token: str | None = None) -> str:
        """Make a DPoP proof (RFC 9449 §4.2) at the platform's time."""
        claims: dict[str, Any] = {
            "jti": secrets.token_urlsafe(16),
            "htm": method,
            "htu": url,
            "iat": int(self.clock.time()),
        }
        if access_token:
            claims["ath"] = ath(access_token)
        header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": self.dpop_key.as_dict(private=False)}
        return jwt.encode(header, claims, self.dpop_key)

    def push(self, details: list[dict[str, Any]], verifier: str, challenge: str) -> requests.Response:
        """Push an authorization request (RFC 9126) with `authorization_details` (RFC 9396)."""
        self.pushed_state, self.pushed_nonce = secrets.token_urlsafe(12), secrets.token_urlsafe(12)
        endpoint = self.metadata["pushed_authorization_request_endpoint"]
        return self.session.post(  # type: ignore[no-any-return]
            endpoint,
            data={
                "client_id": self.client_id,
                "response_type": "code",
                "redirect_uri": REDIRECT_URI,
                "scope": "openid",
                "state": self.pushed_state,
                "nonce": self.pushed_nonce,
                "code_challenge": challenge,
                "code_challenge_method": "S256",
                "authorization_details": json.dumps(details),
            },
            auth=self.session.client_auth("private_key_jwt"),
            headers={"DPoP": self.proof("POST", endpoint)},  # binds the code to our DPoP key (§10)
            timeout=30,
        )

    def authorize(
        self, national_id: str, *, decision: str = "approve", details: list[dict[str, Any]] | None = None
    ) -> tuple[dict[str, str], str, str, Browser]:
        """Push the request, log the citizen in with the eID card and answer the consent screen.

        Returns the authorization response's query, the PKCE verifier, the nonce and the browser.
        """
        verifier, challenge = pkce_pair()
        pushed = self.push(details or [{"type": "mydata_delivery", "service": SERVICE}], verifier, challenge)
        assert pushed.status_code == 201, pushed.text
        state, nonce = self.pushed_state, self.pushed_nonce
        browser = Browser(self.issuer)
        query = urlencode({"client_id": self.client_id, "request_uri": pushed.json()["request_uri"]})
        login = browser.follow(browser.get(f"{urlsplit(self.metadata['authorization_endpoint']).path}?{query}"))
        screen = browser.follow(browser.log_in(login, "eid", national_id))
        action = screen.url.removeprefix(self.issuer)
        answer = browser.follow(
            browser.post(action, {**form_fields(screen.text, action), "decision": decision}), stop_at=REDIRECT_URI
        )
        assert answer.status_code == 303, answer.text[:300]
        location = answer.headers["Location"]
        assert location.startswith(REDIRECT_URI + "?")
        response = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
        # RFC 9207 and RFC 6749 §10.12: the answer is from our issuer, for our request.
        assert response["iss"] == self.issuer
        assert response["state"] == state
        return response, verifier, nonce, browser

    def redeem(self, response: dict[str, str], verifier: str, nonce: str, browser: Browser) -> Delivery:
        """Exchange the code with Authlib (private_key_jwt + DPoP) and verify the ID token with joserfc."""
        endpoint = self.metadata["token_endpoint"]
        token = self.session.fetch_token(
            endpoint,
            grant_type="authorization_code",
            code=response["code"],
            code_verifier=verifier,
            redirect_uri=REDIRECT_URI,
            headers={"DPoP": self.proof("POST", endpoint)},
        )
        assert token["token_type"] == "DPoP"
        decoded = jwt.decode(token["id_token"], self.platform_keys(), algorithms=["ES256"])
        jwt.JWTClaimsRegistry(
            now=int(self.clock.time()),
            iss={"essential": True, "value": self.issuer},
            aud={"essential": True, "value": self.client_id},
            nonce={"essential": True, "value": nonce},
            txn={"essential": True},
        ).validate(decoded.claims)
        return Delivery(
            token["access_token"],
            dict(decoded.claims),
            token["authorization_details"],
            browser,
            int(token["expires_in"]),
        )

    def consented(self, national_id: str, **kwargs: Any) -> Delivery:
        """Run the flow up to a DPoP-bound access token of a granted consent."""
        return self.redeem(*self.authorize(national_id, **kwargs))

    def deliver(self, access_token: str, *, proof_key: ECKey | None = None) -> requests.Response:
        """Call the delivery API with the token and a DPoP proof carrying its `ath`."""
        url = f"{self.issuer}/api/v1/delivery"
        proof = self.proof("GET", url, access_token)
        if proof_key is not None:  # somebody else's key: the token is bound to ours
            header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": proof_key.as_dict(private=False)}
            claims = jws.extract_compact(proof.encode()).payload
            proof = jws.serialize_compact(header, claims, proof_key)
        return requests.get(url, headers={"Authorization": f"DPoP {access_token}", "DPoP": proof}, timeout=30)

    def userinfo(self, access_token: str) -> requests.Response:
        """Call the UserInfo endpoint with the token and a DPoP proof."""
        url = self.metadata["userinfo_endpoint"]
        proof = self.proof("GET", url, access_token)
        return requests.get(url, headers={"Authorization": f"DPoP {access_token}", "DPoP": proof}, timeout=30)

    def platform_keys(self) -> KeySet:
        return KeySet.import_key_set(requests.get(self.metadata["jwks_uri"], timeout=10).json())

    def open(self, sealed: str, delivery: Delivery) -> dict[str, Any]:
        """Decrypt the package with our enc key, verify the platform's JWS and every agency's JWS."""
        decrypted = jwe.decrypt_compact(sealed, self.enc_key, algorithms=["ECDH-ES+A256KW", "A256GCM"])
        header = decrypted.protected
        assert (header["alg"], header["enc"], header["kid"], header["cty"]) == (
            "ECDH-ES+A256KW",
            "A256GCM",
            "third-party-enc",
            "JWT",
        )
        assert decrypted.plaintext is not None
        package = jwt.decode(decrypted.plaintext, self.platform_keys(), algorithms=["ES256"])
        claims = dict(package.claims)
        jwt.JWTClaimsRegistry(
            now=int(self.clock.time()),
            iss={"essential": True, "value": self.issuer},
            aud={"essential": True, "value": self.client_id},
            txn={"essential": True, "value": delivery.id_token["txn"]},
            sub={"essential": True, "value": delivery.id_token["sub"]},
        ).validate(claims)
        catalogue = requests.get(f"{self.issuer}/api/v1/catalogue", timeout=10).json()
        agency_keys = {p["id"]: KeySet.import_key_set(p["jwks"]) for p in catalogue["providers"]}
        for dataset_id, entry in claims["datasets"].items():
            if entry["status"] != "ok":
                continue
            signed = jwt.decode(entry["provider_jws"], agency_keys[entry["provider"]], algorithms=["ES256", "PS256"])
            assert signed.claims["dataset"] == dataset_id
            assert signed.claims["txn"] == claims["txn"]
            assert signed.claims["data"] == entry["data"]
            assert signed.claims["generated_at"] == entry["generated_at"]
        return claims


@pytest.fixture(scope="module")
def bank(platform: LivePlatform, platform_clock: ShiftedClock) -> ThirdPartyBank:
    """Register the third-party bank's client once for the module."""
    return ThirdPartyBank(platform, platform_clock)


def consent_status(browser: Browser, consent_id: str) -> str:
    """Return a consent's status as the citizen sees it in their consents (DESIGN §6.4)."""
    answer = browser.get("/api/v1/me/consents")
    assert answer.status_code == 200, answer.text
    return str(next(c["status"] for c in answer.json()["consents"] if c["id"] == consent_id))


def test_third_party_bank_decrypts_and_verifies_the_package_once(bank: ThirdPartyBank) -> None:
    delivery = bank.consented("A123456789")
    [granted] = delivery.authorization_details
    assert (granted["type"], granted["service"]) == ("mydata_delivery", SERVICE)
    assert set(granted["datasets"]) == BANK_DATASETS

    answer = bank.deliver(delivery.access_token)
    assert answer.status_code == 200, answer.text
    assert answer.headers["Content-Type"] == "application/jose"
    assert answer.headers["Cache-Control"] == "no-store"
    package = bank.open(answer.text, delivery)
    assert package["service"] == SERVICE
    assert set(package["datasets"]) == BANK_DATASETS
    assert all(entry["status"] == "ok" for entry in package["datasets"].values())
    members = package["datasets"]["household.registration"]["data"]["members"]
    assert [m["name"] for m in members] == ["王小明", "李淑芬", "王宥翔"]
    assert package["receipt"]
    assert consent_status(delivery.browser, delivery.id_token["txn"]) == "delivered"

    again = bank.deliver(delivery.access_token)
    assert again.status_code == 410
    assert again.json()["error"] == "already_delivered"


#: What one delivery needs: the token, the consent's window, the DPoP replay record, the citizen, the
#: claim, the catalogue, the consent's new state, the ledger entry, the email (contact, outbox). The
#: ledger entry takes 9 here (SQLite, inline sequencing: the case's commitment 2, the queue row 1,
#: integrating the queue 6); in production (sequencer) the request only queues it (docs/decisions/0011).
DELIVERY_STATEMENTS = 18


def test_a_delivery_reads_the_catalogue_once_and_stays_within_its_statements(
    bank: ThirdPartyBank, platform: LivePlatform
) -> None:
    # At steady state: a first delivery has read what a process reads once (the schemas, the secrets).
    assert bank.deliver(bank.consented("A123456789").access_token).status_code == 200
    delivery = bank.consented("A123456789")
    by_thread: dict[int, list[str]] = {}

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if not statement.startswith("BEGIN"):  # SQLite's own transaction control, no round trip
            by_thread.setdefault(threading.get_ident(), []).append(statement)

    engine = get_db(platform.app).engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        answer = bank.deliver(delivery.access_token)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert answer.status_code == 200, answer.text
    # The delivery's thread (the agencies touch no database; they may have read the platform's JWKS).
    statements = max(by_thread.values(), key=len)
    assert len(statements) <= DELIVERY_STATEMENTS, "\n".join(s.split("\n")[0][:120] for s in statements)
    catalogue = [s for s in statements if "FROM providers_" in s]
    assert len(catalogue) == 1, catalogue  # the routes and the email's titles in one read
    assert sum(1 for s in statements if "consent_consent" in s) <= 3  # the window, the claim, the new state


def test_failing_agencies_answer_503_and_the_retry_succeeds_once_they_recover(
    bank: ThirdPartyBank, platform: LivePlatform
) -> None:
    # Persona 5's agencies fail by default: household times out, tax.income answers 500 and
    # labor.insurance signs with a key the catalogue does not know.
    delivery = bank.consented("H120000004")
    answer = bank.deliver(delivery.access_token)
    assert answer.status_code == 503, answer.text
    assert answer.json()["error"] == "provider_unavailable"
    assert answer.json()["datasets"] == {
        "household.registration": "timeout",
        "tax.income": "unavailable",
        "labor.insurance": "bad_signature",
    }
    assert int(answer.headers["Retry-After"]) > 0
    assert consent_status(delivery.browser, delivery.id_token["txn"]) == "granted"

    cleared = requests.delete(f"{platform.base}/sandbox/agencies/sandbox/faults", timeout=10)
    assert cleared.status_code == 200, cleared.text
    retried = bank.deliver(delivery.access_token)
    assert retried.status_code == 200, retried.text
    package = bank.open(retried.text, delivery)
    assert package["datasets"]["household.registration"]["data"]["members"][0]["name"] == "黃建國"


def test_another_organisations_service_is_refused_at_par(bank: ThirdPartyBank) -> None:
    pushed = bank.push([{"type": "mydata_delivery", "service": "sandbox-school.tuition-waiver"}], *pkce_pair())
    assert pushed.status_code == 400
    assert pushed.json()["error"] == "invalid_authorization_details"


def test_an_expired_window_ends_the_token(bank: ThirdPartyBank, platform_clock: ShiftedClock) -> None:
    response, verifier, nonce, browser = bank.authorize("B223456782")
    try:
        # The token is redeemed a little after the consent: it lives only until the window ends ...
        platform_clock.offset = 5
        delivery = bank.redeem(response, verifier, nonce, browser)
        # ... 10 minutes after the consent (issue 10 item 10; before, it outlived the window).
        assert delivery.expires_in <= 595
        platform_clock.offset = 601
        answer = bank.deliver(delivery.access_token)
    finally:
        platform_clock.offset = 0
    assert answer.status_code == 401, answer.text
    assert 'DPoP error="invalid_token"' in answer.headers["WWW-Authenticate"]
    assert answer.json()["error"] == "invalid_token"
    assert "expired" in answer.json()["error_description"]
    assert answer.headers["Cache-Control"] == "no-store"


def test_a_consent_the_sweeper_expired_is_refused_like_a_passed_window(
    bank: ThirdPartyBank, platform: LivePlatform, platform_clock: ShiftedClock
) -> None:
    delivery = bank.consented("A123456789")
    try:
        platform_clock.offset = 601
        with platform.app.app_context():
            assert sweeper.sweep(get_db(), platform_clock).granted >= 1
        answer = bank.deliver(delivery.access_token)
    finally:
        platform_clock.offset = 0
    assert consent_status(delivery.browser, delivery.id_token["txn"]) == "expired"
    # The same answer as a window that passed unswept (test_an_expired_window_ends_the_token).
    assert answer.status_code == 401, answer.text
    assert 'DPoP error="invalid_token"' in answer.headers["WWW-Authenticate"]
    assert answer.json() == {
        "error": "invalid_token",
        "error_description": "The consent this token was issued for has expired: its delivery window has ended.",
    }


def test_a_revoked_consent_is_refused_with_its_reason(bank: ThirdPartyBank) -> None:
    delivery = bank.consented("A123456789")
    browser = delivery.browser
    csrf = form_fields(browser.get("/me").text, "/logout")["csrf_token"]
    revoked = browser.http.post(
        f"{bank.issuer}/api/v1/me/consents/{delivery.id_token['txn']}/revoke",
        headers={"X-CSRFToken": csrf},
        timeout=10,
    )
    assert revoked.status_code == 200, revoked.text

    # Delivery names the reason (issue 11 acceptance 4, DESIGN §6.2); the token is dead for
    # everything else: userinfo answers 401 invalid_token (issue 10 item 10).
    answer = bank.deliver(delivery.access_token)
    assert answer.status_code == 403, answer.text
    assert answer.json()["error"] == "consent_revoked"
    assert answer.headers["Cache-Control"] == "no-store"
    userinfo = bank.userinfo(delivery.access_token)
    assert userinfo.status_code == 401
    assert 'DPoP error="invalid_token"' in userinfo.headers["WWW-Authenticate"]
    assert "revoked" in userinfo.json()["error_description"]


def test_a_proof_by_another_key_answers_401_with_the_reason(bank: ThirdPartyBank) -> None:
    delivery = bank.consented("A123456789")
    answer = bank.deliver(delivery.access_token, proof_key=ECKey.generate_key("P-256"))
    assert answer.status_code == 401
    assert 'error="invalid_dpop_proof"' in answer.headers["WWW-Authenticate"]
    # The package is still there for the key the token is bound to.
    assert bank.deliver(delivery.access_token).status_code == 200


def test_denying_sends_access_denied_to_the_relying_party(bank: ThirdPartyBank) -> None:
    response, *_ = bank.authorize("A123456789", decision="deny")
    assert response["error"] == "access_denied"
    assert "code" not in response


@pytest.fixture
def postgres_platform(tmp_path: Path) -> Iterator[LivePlatform]:
    """Serve the sandbox platform on a fresh PostgreSQL database of its own."""
    if not POSTGRES_URL:
        pytest.skip("MYDATA_TEST_DATABASE_URL is not set (CI sets it): the race is checked on PostgreSQL")
    name = f"mydata_delivery_race_{secrets.token_hex(4)}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    try:
        with serve_platform(tmp_path, database_url=url, overrides={"provider_timeout_seconds": 2}) as live:
            yield live
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_twenty_concurrent_deliveries_of_one_consent_give_exactly_one_package(
    postgres_platform: LivePlatform,
) -> None:
    bank = ThirdPartyBank(postgres_platform, ShiftedClock())
    delivery = bank.consented("A123456789")
    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(lambda _: bank.deliver(delivery.access_token), range(20)))
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [200] + [410] * 19, [a.text[:200] for a in answers if a.status_code not in (200, 410)]
    assert {a.json()["error"] for a in answers if a.status_code == 410} == {"already_delivered"}
    winner = next(a for a in answers if a.status_code == 200)
    assert set(bank.open(winner.text, delivery)["datasets"]) == BANK_DATASETS
