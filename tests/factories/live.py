"""A live platform for tests that cross real HTTP: a served app on a committed, seeded database.

Also a plain-HTTP "browser" (requests, no JavaScript) that fills the login and approval forms the
way a citizen would, for integration tests and benchmarks that need a logged-in flow.
"""

from __future__ import annotations

import base64
import os
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin

import requests
from flask import Flask
from werkzeug.serving import make_server

from mydata import cli
from mydata.app import create_app
from mydata.config import Settings
from mydata.db import get_db

EID_PIN = "123456"
NHI_PASSWORD = "Sandbox-2026"


@dataclass(frozen=True)
class LivePlatform:
    """A served platform: its base URL (also its issuer) and the app behind it."""

    base: str
    app: Flask


@contextmanager
def serve_platform(folder: Path, database_url: str | None = None) -> Iterator[LivePlatform]:
    """Migrate and seed a sandbox platform in *folder*, serve it on 127.0.0.1, and stop it after."""
    # The port is chosen first: the issuer (and every URL seeding registers) must name it.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    settings = Settings(
        issuer=base,
        instance_path=folder / "instance",
        sandbox=True,
        database_url=database_url or f"sqlite:///{folder / 'live.sqlite'}",
        master_key=base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode(),
        secret_key=secrets.token_urlsafe(48),
    )
    app = create_app(settings)
    cli.upgrade(app)
    with app.app_context():
        cli.seed(app)
    httpd = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield LivePlatform(base, app)
    finally:
        httpd.shutdown()
        thread.join(timeout=10)
        get_db(app).engine.dispose()


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

    def approve(self, approval_page: requests.Response, decision: str = "approve") -> requests.Response:
        """Answer the approval (or consent) page."""
        action = approval_page.url.removeprefix(self.base)
        return self.post(action, {**form_fields(approval_page.text, action), "decision": decision})
