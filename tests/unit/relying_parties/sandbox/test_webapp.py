"""The sandbox bank's pages for each way an application can end (its MyData client scripted).

The protocol is tested in test_mydata_client.py and over real HTTP in tests/integration; here the
client's network calls are replaced, so that every refusal can be shown as the citizen sees it.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from joserfc.jwk import ECKey, KeySet

from relying_parties.sandbox import bank
from relying_parties.sandbox.applications import RECEIVED
from relying_parties.sandbox.mydata_client import (
    AuthorizationStart,
    ClientSettings,
    DeliveryRefused,
    MyDataClient,
    Package,
    TokenError,
    Tokens,
    VerificationFailed,
    VerifiedDataset,
)
from relying_parties.sandbox.webapp import Deployment, RelyingParty

ISSUER = "https://mydata.example.gov.tw"


class ScriptedClient(MyDataClient):
    """The bank's client with its network calls replaced by a script."""

    def __init__(self, settings: ClientSettings) -> None:
        super().__init__(settings)
        self.delivery: Callable[[], Package] = lambda: package()
        self.token: Callable[[], Tokens] = lambda: Tokens("token", time.time() + 600, {"txn": "c1", "sub": "s"}, [])
        self.push_fails = False

    def start_authorization(
        self, authorization_details: list[dict[str, Any]], *, ui_locales: str | None = None
    ) -> AuthorizationStart:
        if self.push_fails:
            raise requests.ConnectionError("refused")
        return AuthorizationStart(
            f"{ISSUER}/oauth/authorize?client_id=x", "s1", "n1", "v1", ECKey.generate_key("P-256")
        )

    def redeem_code(self, code: str, start: AuthorizationStart) -> Tokens:
        return self.token()

    def collect_delivery(self, tokens: Tokens, dpop_key: ECKey) -> Package:
        return self.delivery()


def package() -> Package:
    household = {"household_number": "A0382615", "address": {"full": "臺北市大安區"}, "moved_in_date": "2016-03-18",
                 "registration_office": "臺北市大安區戶政事務所", "as_of": "2026-05-01",
                 "members": [{"name": "王小明", "relationship": "戶長", "sex": "男", "date_of_birth": "1988-05-20",
                              "national_id": "A123456789", "is_requester": True}]}  # fmt: skip
    datasets = {
        "household.registration": VerifiedDataset("household.registration", "moi-household", "ok", "t", household),
        "tax.income": VerifiedDataset("tax.income", "mof-fia", "no_record"),
        "labor.insurance": VerifiedDataset("labor.insurance", "bli", "no_record"),
    }
    return Package("c1", "s", "sandbox-bank.credit-card", "審核", "r1", int(time.time()), datasets, [])


@pytest.fixture
def app(tmp_path: Path) -> Flask:
    """Build the bank's app with a scripted client."""
    keys = [
        ECKey.generate_key("P-256", parameters={"kid": "sig", "use": "sig", "alg": "ES256"}),
        ECKey.generate_key("P-256", parameters={"kid": "enc", "use": "enc", "alg": "ECDH-ES+A256KW"}),
    ]
    keys_file = tmp_path / "client.jwk.json"
    keys_file.write_text(json.dumps({"keys": [k.as_dict(private=True) for k in keys]}))
    deployment = Deployment(
        issuer=ISSUER,
        base_url="http://bank.localhost",
        keys_file=keys_file,
        data_file=tmp_path / "applications.sqlite",
        secret_key="test",
    )
    application = bank.create_app(deployment)
    application.config.update(TESTING=True, WTF_CSRF_ENABLED=False)
    rp: RelyingParty = application.extensions["sandbox_rp"]
    rp._client = ScriptedClient(rp.client.settings)
    return application


def scripted(app: Flask) -> ScriptedClient:
    client = app.extensions["sandbox_rp"].client
    assert isinstance(client, ScriptedClient)
    return client


def text(body: bytes) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", body.decode()))


def complete(browser: FlaskClient, query: str = f"state=s1&iss={ISSUER}&code=c1") -> tuple[int, str]:
    """Apply, come back from MyData with *query*, and return the application page."""
    to_mydata = browser.post("/apply")
    assert to_mydata.status_code == 303
    assert to_mydata.headers["Location"].startswith(f"{ISSUER}/oauth/authorize")
    callback = browser.get(f"/callback?{query}")
    assert callback.status_code == 303
    page = browser.get(callback.headers["Location"])
    return page.status_code, text(page.data)


def test_a_received_package_is_shown_and_the_credentials_dropped(app: Flask) -> None:
    browser = app.test_client()
    status, page = complete(browser)
    assert status == 200
    assert "已收到您的資料" in page
    assert "王小明" in page
    assert "綜合所得稅各類所得資料 查無資料" in page
    with browser.session_transaction() as session:
        stored = app.extensions["sandbox_rp"].store.get(session["application"])
    assert stored.status == RECEIVED
    assert (stored.access_token, stored.dpop_key, stored.code_verifier) == (None, None, "")


REFUSALS = {
    "expired": (DeliveryRefused(410, "consent_expired", "late"), "10 分鐘傳送期限已過"),
    "already-delivered": (DeliveryRefused(410, "already_delivered", "once"), "已傳送過一次"),
    "revoked": (DeliveryRefused(403, "consent_revoked", "no"), "您已在 MyData 撤回此次同意"),
    "401": (DeliveryRefused(401, "invalid_dpop_proof", "The proof is old."), "拒絕了我們的存取權杖：The proof is old."),
    "unverified": (VerificationFailed("The agency signature does not verify."), "我們不會使用"),
    "something-else": (
        DeliveryRefused(400, "invalid_request", "odd"),
        "MyData 回覆錯誤：odd 錯誤代碼： invalid_request",
    ),
}


@pytest.mark.parametrize(("refusal", "message"), REFUSALS.values(), ids=REFUSALS.keys())
def test_each_refusal_of_the_delivery_is_explained(app: Flask, refusal: Exception, message: str) -> None:
    def refuse() -> Package:
        raise refusal

    scripted(app).delivery = refuse
    browser = app.test_client()
    status, page = complete(browser)
    assert status == 200
    assert "無法完成申辦" in page
    assert message in page
    with browser.session_transaction() as session:
        stored = app.extensions["sandbox_rp"].store.get(session["application"])
    assert stored.access_token is None  # of no use any more
    assert stored.dpop_key is None


def test_a_refused_code_is_explained(app: Flask) -> None:
    def refuse() -> Tokens:
        raise TokenError("invalid_grant", "The authorization code has expired.")

    scripted(app).token = refuse
    _, page = complete(app.test_client())
    assert "MyData 回覆錯誤：The authorization code has expired. 錯誤代碼： invalid_grant" in page


def test_access_denied_is_a_friendly_page_in_the_chosen_language(app: Flask) -> None:
    browser = app.test_client()
    browser.get("/?lang=en")
    status, page = complete(browser, f"state=s1&iss={ISSUER}&error=access_denied")
    assert status == 200
    assert "You did not agree to share your data" in page
    assert "No data was sent to us" in page


def test_mydata_unreachable_at_the_start_is_explained(app: Flask) -> None:
    scripted(app).push_fails = True
    answer = app.test_client().post("/apply")
    assert answer.status_code == 502
    assert "MyData cannot be reached." in text(answer.data)


def test_without_an_application_the_callback_asks_to_start_again(app: Flask) -> None:
    answer = app.test_client().get(f"/callback?state=s1&iss={ISSUER}&code=c1")
    assert answer.status_code == 400
    assert "請重新申辦" in text(answer.data)


def test_the_client_keys_are_the_registered_ones(app: Flask) -> None:
    client = scripted(app)
    assert isinstance(client.settings.keys, KeySet)
    assert client.settings.key("sig").kid == "sig"
    assert client.settings.key("enc").kid == "enc"
    assert client.settings.redirect_uri == "http://bank.localhost/callback"


def test_without_its_keys_the_bank_says_it_is_not_set_up(tmp_path: Path) -> None:
    deployment = Deployment(
        issuer=ISSUER,
        base_url="http://bank.localhost",
        keys_file=tmp_path / "missing.jwk.json",
        data_file=tmp_path / "applications.sqlite",
        secret_key="test",
    )
    application = bank.create_app(deployment)
    application.config.update(TESTING=True, WTF_CSRF_ENABLED=False)
    answer = application.test_client().post("/apply")
    assert answer.status_code == 503
    assert "本服務尚未完成 MyData 串接設定" in text(answer.data)


def test_an_unfinished_application_says_so(app: Flask) -> None:
    browser = app.test_client()
    browser.post("/apply")  # and the citizen comes back without answering on MyData
    answer = browser.get("/application")
    assert answer.status_code == 409
    assert "此申辦尚未完成" in text(answer.data)
