"""A relying party built on a third-party stack runs the whole FAPI 2.0 flow over real HTTP.

The client side is Authlib's requests client (private_key_jwt) and joserfc (DPoP proofs, ID token
verification): none of the platform's code. The citizen logs in through the real login pages with
each of the three methods.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc7523 import PrivateKeyJWT, private_key_jwt_sign
from flask import Flask
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet

from identity.oauth.clients import register_client
from mydata.clock import clock
from mydata.db import get_db
from tests.factories.live import Browser, LivePlatform, serve_platform
from tests.factories.oauth import ath, pkce_pair

REDIRECT_URI = "https://bank.example/mydata/callback"
PERSONA = {"eid": "A123456789", "mobile": "B223456782", "nhi_card": "F135792464"}
NHI_CARD = {"F135792464": "000011110003"}
EXPECTED = {
    "eid": ("urn:mydata:loa:high", ["sc", "pin", "hwk"]),
    "mobile": ("urn:mydata:loa:substantial", ["swk", "user"]),
    "nhi_card": ("urn:mydata:loa:low", ["sc", "pwd"]),
}


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LivePlatform]:
    """Serve a seeded sandbox platform."""
    with serve_platform(tmp_path_factory.mktemp("oidc")) as live:
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


class ThirdPartyRelyingParty:
    """The bank's client: Authlib for client authentication and the token call, joserfc for DPoP."""

    def __init__(self, app: Flask, issuer: str) -> None:
        self.issuer = issuer
        self.client_id = "bank-" + secrets.token_hex(4)
        self.key = ECKey.generate_key("P-256", parameters={"kid": "bank-sig"})
        self.dpop_key = ECKey.generate_key("P-256")
        jwks = {"keys": [{**self.key.as_dict(private=False), "use": "sig", "alg": "ES256", "kid": "bank-sig"}]}
        with app.app_context(), get_db().unit_of_work() as uow:
            register_client(
                uow,
                clock(),
                name="沙盒銀行",
                jwks=jwks,
                redirect_uris=[REDIRECT_URI],
                sandbox=True,
                organisation_id="sandbox-bank",
                client_id=self.client_id,
            )
        # FAPI 2.0: the assertion's audience is the issuer identifier.
        self.session = OAuth2Session(self.client_id, self.key, token_endpoint_auth_method="private_key_jwt")
        self.session.register_client_auth_method(
            ShortLivedPrivateKeyJWT(issuer, alg="ES256", headers={"kid": "bank-sig"})
        )

    def proof(self, method: str, url: str, access_token: str | None = None) -> str:
        """Make a DPoP proof with joserfc."""
        claims = {"jti": secrets.token_urlsafe(16), "htm": method, "htu": url, "iat": int(time.time())}
        if access_token:
            claims["ath"] = ath(access_token)
        return jwt.encode(
            {"typ": "dpop+jwt", "alg": "ES256", "jwk": self.dpop_key.as_dict(private=False)}, claims, self.dpop_key
        )

    def push(self, **params: str) -> str:
        """Push the authorization request, authenticated by Authlib's private_key_jwt."""
        response = self.session.post(
            f"{self.issuer}/oauth/par",
            data={"client_id": self.client_id, **params},
            auth=self.session.client_auth("private_key_jwt"),
            headers={"DPoP": self.proof("POST", f"{self.issuer}/oauth/par")},
            timeout=30,
        )
        assert response.status_code == 201, response.text
        return str(response.json()["request_uri"])

    def token(self, code: str, verifier: str) -> dict[str, object]:
        """Redeem the code with Authlib's fetch_token and a DPoP proof."""
        return dict(
            self.session.fetch_token(
                f"{self.issuer}/oauth/token",
                grant_type="authorization_code",
                code=code,
                code_verifier=verifier,
                redirect_uri=REDIRECT_URI,
                headers={"DPoP": self.proof("POST", f"{self.issuer}/oauth/token")},
            )
        )


@pytest.mark.parametrize("method", ["eid", "mobile", "nhi_card"])
def test_third_party_client_completes_the_flow_with_each_login_method(platform: LivePlatform, method: str) -> None:
    issuer = platform.base
    rp = ThirdPartyRelyingParty(platform.app, issuer)
    verifier, challenge = pkce_pair()
    state, nonce = secrets.token_urlsafe(8), secrets.token_urlsafe(8)
    request_uri = rp.push(
        response_type="code",
        redirect_uri=REDIRECT_URI,
        scope="openid",
        state=state,
        nonce=nonce,
        code_challenge=challenge,
        code_challenge_method="S256",
    )

    browser = Browser(issuer)
    login_page = browser.follow(
        browser.get(f"/oauth/authorize?{urlencode({'client_id': rp.client_id, 'request_uri': request_uri})}")
    )
    assert urlsplit(login_page.url).path.startswith("/oauth/interaction/")  # the login page, in the interaction
    assert 'action="/login/eid"' in login_page.text
    national_id = PERSONA[method]
    approval = browser.follow(browser.log_in(login_page, method, national_id, NHI_CARD.get(national_id, "")))
    assert urlsplit(approval.url).path.startswith("/oauth/interaction/"), approval.text[:500]
    answer = browser.follow(browser.approve(approval), stop_at=REDIRECT_URI)
    assert answer.status_code == 303
    query = {k: v[0] for k, v in parse_qs(urlsplit(answer.headers["Location"]).query).items()}
    assert query["iss"] == issuer
    assert query["state"] == state

    token = rp.token(query["code"], verifier)
    assert token["token_type"] == "DPoP"
    jwks = KeySet.import_key_set(requests.get(f"{issuer}/oauth/jwks", timeout=30).json())
    id_token = jwt.decode(str(token["id_token"]), jwks, algorithms=["ES256"])
    claims = id_token.claims
    assert claims["iss"] == issuer
    assert claims["aud"] == rp.client_id
    assert claims["nonce"] == nonce
    assert (claims["acr"], claims["amr"]) == EXPECTED[method]
    assert claims["sub"] != national_id

    access_token = str(token["access_token"])
    info = requests.get(
        f"{issuer}/oauth/userinfo",
        headers={
            "Authorization": f"DPoP {access_token}",
            "DPoP": rp.proof("GET", f"{issuer}/oauth/userinfo", access_token),
        },
        timeout=30,
    )
    assert info.status_code == 200, info.text
    assert info.json()["sub"] == claims["sub"]


def test_step_up_resumes_the_same_authorization(platform: LivePlatform) -> None:
    issuer = platform.base
    rp = ThirdPartyRelyingParty(platform.app, issuer)
    browser = Browser(issuer)
    # A low-level session first (NHI card) ...
    first = browser.follow(browser.get("/login"))
    browser.follow(browser.log_in(first, "nhi_card", "F135792464", "000011110003"))
    # ... then a request that needs `substantial` asks for a stronger method and comes back.
    verifier, challenge = pkce_pair()
    request_uri = rp.push(
        response_type="code",
        redirect_uri=REDIRECT_URI,
        scope="openid",
        code_challenge=challenge,
        code_challenge_method="S256",
        acr_values="urn:mydata:loa:substantial",
    )
    step_up = browser.follow(
        browser.get(f"/oauth/authorize?{urlencode({'client_id': rp.client_id, 'request_uri': request_uri})}")
    )
    assert urlsplit(step_up.url).path.startswith("/oauth/interaction/")
    assert '<input type="hidden" name="level" value="substantial">' in step_up.text
    assert "/login/nhi" not in step_up.text  # only methods strong enough are offered
    approval = browser.follow(browser.log_in(step_up, "mobile", "F135792464"))
    assert urlsplit(approval.url).path.startswith("/oauth/interaction/")
    answer = browser.follow(browser.approve(approval), stop_at=REDIRECT_URI)
    code = parse_qs(urlsplit(answer.headers["Location"]).query)["code"][0]
    claims = jwt.decode(
        str(rp.token(code, verifier)["id_token"]),
        KeySet.import_key_set(requests.get(f"{issuer}/oauth/jwks", timeout=30).json()),
        algorithms=["ES256"],
    ).claims
    assert claims["acr"] == "urn:mydata:loa:substantial"


def test_prompt_login_makes_a_live_session_log_in_again(platform: LivePlatform) -> None:
    issuer = platform.base
    rp = ThirdPartyRelyingParty(platform.app, issuer)
    browser = Browser(issuer)
    first = browser.follow(browser.get("/login"))
    browser.follow(browser.log_in(first, "nhi_card", "F135792464", "000011110003"))
    time.sleep(1.1)  # auth_time counts whole seconds: the request comes after the first login
    verifier, challenge = pkce_pair()
    request_uri = rp.push(
        response_type="code",
        redirect_uri=REDIRECT_URI,
        scope="openid",
        code_challenge=challenge,
        code_challenge_method="S256",
        prompt="login",
    )
    again = browser.follow(
        browser.get(f"/oauth/authorize?{urlencode({'client_id': rp.client_id, 'request_uri': request_uri})}")
    )
    assert urlsplit(again.url).path == "/login"  # although the session is alive and strong enough
    assert 'action="/login/nhi"' in again.text
    before = int(time.time())
    approval = browser.follow(browser.log_in(again, "nhi_card", "F135792464", "000011110003"))
    assert urlsplit(approval.url).path.startswith("/oauth/interaction/")
    answer = browser.follow(browser.approve(approval), stop_at=REDIRECT_URI)
    code = parse_qs(urlsplit(answer.headers["Location"]).query)["code"][0]
    claims = jwt.decode(
        str(rp.token(code, verifier)["id_token"]),
        KeySet.import_key_set(requests.get(f"{issuer}/oauth/jwks", timeout=30).json()),
        algorithms=["ES256"],
    ).claims
    assert claims["auth_time"] >= before  # the new login's time
