"""A live platform for tests that cross real HTTP: a served app on a committed, seeded database.

Also a plain-HTTP "browser" (requests, no JavaScript) that fills the login and approval forms the
way a citizen would, for integration tests and benchmarks that need a logged-in flow.
"""

from __future__ import annotations

import base64
import datetime as dt
import os
import secrets
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from flask import Flask
from werkzeug.serving import make_server

from identity.sandbox.pki import SandboxPki
from mydata import cli
from mydata.app import create_app
from mydata.clock import Clock
from mydata.config import Settings
from mydata.db import get_db

EID_PIN = "123456"
NHI_PASSWORD = "Sandbox-2026"


class ShiftedClock(Clock):
    """The real clock, moved forward by ``offset`` seconds when a test needs time to pass."""

    def __init__(self) -> None:
        self.offset = 0.0

    def now(self) -> dt.datetime:
        """Return the real time plus the offset."""
        return dt.datetime.now(dt.UTC) + dt.timedelta(seconds=self.offset)

    def time(self) -> float:
        """Return the shifted time in seconds since the epoch (what time.time() would say)."""
        return time.time() + self.offset


@dataclass(frozen=True)
class LivePlatform:
    """A served platform: its base URL (also its issuer) and the app behind it."""

    base: str
    app: Flask


@contextmanager
def serve_platform(
    folder: Path,
    database_url: str | None = None,
    overrides: Mapping[str, Any] | None = None,
    clock: Clock | None = None,
) -> Iterator[LivePlatform]:
    """Migrate and seed a sandbox platform in *folder*, serve it on 127.0.0.1, and stop it after.

    The port is chosen before the app is built, so that the issuer is right from the start: the
    sandbox agencies, the sandbox relying parties and the clients' redirect URIs all follow it.
    *overrides* change settings (for example a short ``provider_timeout_seconds``); *clock* is the
    platform's (and its sandbox agencies') clock, for tests that move time.
    """
    httpd = make_server("127.0.0.1", 0, _not_ready, threaded=True)
    base = f"http://127.0.0.1:{httpd.server_port}"
    settings = Settings(
        instance_path=folder / "instance",
        sandbox=True,
        issuer=base,
        database_url=database_url or f"sqlite:///{folder / 'live.sqlite'}",
        master_key=base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode(),
        secret_key=secrets.token_urlsafe(48),
    ).replace(**(overrides or {}))
    app = create_app(settings, clock_=clock)
    cli.upgrade(app)
    with app.app_context():
        cli.seed(app)
    httpd.app = app
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield LivePlatform(base, app)
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)
        get_db(app).engine.dispose()


def _not_ready(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """Answer 503 until the platform is built (the server exists first, to know its port)."""
    start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
    return [b"starting"]


@dataclass(frozen=True)
class SandboxCard:
    """A sandbox eID card as the citizen's card reader holds it: its certificate chain and unlocked key."""

    certificate_pem: str
    key: ec.EllipticCurvePrivateKey

    @classmethod
    def of(cls, instance_path: Path, national_id: str, pin: str = EID_PIN) -> SandboxCard:
        """Read a persona's card from the sandbox PKI of an instance folder, unlocking it with *pin*."""
        certificate_path, key_path = SandboxPki(instance_path / "sandbox" / "eid").card_paths(national_id)
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=pin.encode())
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        return cls(certificate_path.read_text(), key)


class _Forms(HTMLParser):
    """Collect each form's action and its named inputs."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append((values.get("action", ""), {}))
        elif tag == "input" and self.forms and "name" in values and values.get("type") in ("hidden", "text", None):
            self.forms[-1][1].setdefault(values["name"], values.get("value", ""))


def form_fields(page: str, action: str) -> dict[str, str]:
    """Return the prefilled fields (hidden ones included) of the form posting to *action*."""
    parser = _Forms()
    parser.feed(page)
    for form_action, fields in parser.forms:
        if form_action.split("?")[0].endswith(action):
            return fields
    raise AssertionError(f"no form posting to {action}")


class Browser:
    """A citizen's browser without JavaScript: cookies, forms, and redirects followed by hand."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.http = requests.Session()

    def get(self, url: str) -> requests.Response:
        """GET without following redirects."""
        return self.http.get(urljoin(self.base, url), allow_redirects=False, timeout=30)

    def post(self, url: str, data: dict[str, str]) -> requests.Response:
        """POST a form without following redirects."""
        return self.http.post(urljoin(self.base, url), data=data, allow_redirects=False, timeout=30)

    def follow(self, response: requests.Response, stop_at: str | None = None) -> requests.Response:
        """Follow 303s on this platform until a page, or a redirect to *stop_at* (the relying party)."""
        while response.status_code in (302, 303):
            location = response.headers["Location"]
            if stop_at and location.startswith(stop_at):
                return response
            response = self.get(location)
        return response

    def log_in(
        self, login_page: requests.Response, method: str, national_id: str, nhi_card: str = ""
    ) -> requests.Response:
        """Log in on the login page with *method* (eid, mobile, nhi_card); return the response after it."""
        page = login_page.text
        if method == "eid":
            fields = form_fields(page, "/login/eid")
            return self.post("/login/eid", {**fields, "national_id": national_id, "pin": EID_PIN})
        if method == "nhi_card":
            fields = form_fields(page, "/login/nhi")
            return self.post("/login/nhi", {**fields, "card_number": nhi_card, "password": NHI_PASSWORD})
        fields = form_fields(page, "/login/mobile")
        waiting = self.follow(self.post("/login/mobile", {**fields, "national_id": national_id}))
        # The citizen approves on the phone (the sandbox simulator holds the enrolled device key).
        approved = self.http.post(
            urljoin(self.base, "/sandbox/mobile-id/approve"), json={"national_id": national_id}, timeout=30
        )
        assert approved.status_code == 200, approved.text
        for _ in range(50):
            if self.get("/login/mobile/status").json()["status"] == "approved":
                break
            time.sleep(0.05)
        return self.post("/login/mobile/check", form_fields(waiting.text, "/login/mobile/check"))

    def log_in_with_card(self, login_page: requests.Response, card: SandboxCard) -> requests.Response:
        """Log in with an eID card as a card-reader component on the citizen's computer does.

        The component signs the page's nonce with the card (here: its key, unlocked by the PIN
        once) and posts the certificate chain and the signature; the platform only verifies them.
        """
        fields = form_fields(login_page.text, "/login/eid")
        fields.pop("national_id", None)
        signature = card.key.sign(fields["nonce"].encode(), ec.ECDSA(hashes.SHA256()))
        return self.post(
            "/login/eid",
            {**fields, "certificate": card.certificate_pem, "signature": base64.b64encode(signature).decode()},
        )

    def approve(self, approval_page: requests.Response, decision: str = "approve") -> requests.Response:
        """Answer the approval (or consent) page."""
        action = approval_page.url.removeprefix(self.base)
        return self.post(action, {**form_fields(approval_page.text, action), "decision": decision})
