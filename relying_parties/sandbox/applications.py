"""The relying party's own records: one application (申請案件) per MyData request, kept server-side.

The browser's session cookie holds only the application's random id. Everything else stays here:
the PKCE verifier, `state` and `nonce`, the DPoP private key, the access token (until the package
is collected), and then the verified data, which the bank keeps for the retention it promised.
A real bank keeps these rows in its own database; the sandbox uses one SQLite file per relying
party (stdlib sqlite3), which also works when several worker processes serve the app.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

#: Where an application stands.
AUTHORISING = "authorising"  # sent to MyData, waiting for the citizen's answer
COLLECTING = "collecting"  # one request (and only one) is redeeming the code or collecting the package
WAITING = "waiting"  # consented, but an agency could not answer yet: retry within the window
RECEIVED = "received"  # the data package was collected and verified
DENIED = "denied"  # the citizen did not consent (access_denied)
FAILED = "failed"  # anything else: the error code says what


@dataclass
class Application:
    """One application and everything the relying party keeps about it."""

    id: str
    created_at: float
    status: str = AUTHORISING
    lang: str = "zh"
    # Between the pushed request and the callback (secrets: never in the browser).
    state: str = ""
    nonce: str = ""
    code_verifier: str = ""
    dpop_key: dict[str, Any] | None = None
    # After the token call, until the package is collected.
    access_token: str | None = None
    token_expires_at: float | None = None
    id_token: dict[str, Any] = field(default_factory=dict)
    granted: list[dict[str, Any]] = field(default_factory=list)
    # A retry after 503 provider_unavailable, not before retry_at (Retry-After).
    retry_at: float | None = None
    outcomes: dict[str, str] = field(default_factory=dict)
    # What went wrong (an error code of the platform or of our checks) and its description.
    error: str | None = None
    error_description: str | None = None
    # The verified package: datasets, checks, receipt (see webapp.record_package).
    result: dict[str, Any] | None = None

    def forget_credentials(self) -> None:
        """Drop what only the delivery needed: once collected (or refused for good) it is of no use."""
        self.access_token = None
        self.dpop_key = None
        self.code_verifier = ""


class ApplicationStore:
    """Applications in one SQLite file, by id."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._ready = False

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        # Created on first use, owner-only: the folder also holds the client's private keys.
        if not self._ready:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # One connection per operation: safe across threads and processes; `with db` commits.
        with closing(sqlite3.connect(self.path, timeout=30)) as db, db:
            if not self._ready:
                db.execute(
                    "CREATE TABLE IF NOT EXISTS application "
                    "(id TEXT PRIMARY KEY, status TEXT NOT NULL, document TEXT NOT NULL)"
                )
                self._ready = True
            yield db

    def new(self, now: float, lang: str) -> Application:
        """Return a new application with a fresh random id (not yet saved)."""
        return Application(id=secrets.token_urlsafe(32), created_at=now, lang=lang)

    def save(self, application: Application) -> None:
        """Insert or replace an application."""
        document = json.dumps(asdict(application), ensure_ascii=False)
        with self._connect() as db:
            db.execute(
                "INSERT INTO application (id, status, document) VALUES (?, ?, ?) "
                "ON CONFLICT (id) DO UPDATE SET status = excluded.status, document = excluded.document",
                (application.id, application.status, document),
            )

    def claim(self, application_id: str, expected: str) -> Application | None:
        """Move an application from status *expected* to `collecting`; return it, or None if another request did.

        The package can be collected only once: a double click, a reload of the callback or two
        tabs must not make two delivery calls (the second would only get 410 already_delivered).
        """
        with self._connect() as db:
            claimed = db.execute(
                "UPDATE application SET status = ? WHERE id = ? AND status = ?", (COLLECTING, application_id, expected)
            )
            if claimed.rowcount != 1:
                return None
            row = db.execute("SELECT document FROM application WHERE id = ?", (application_id,)).fetchone()
        application = Application(**json.loads(row[0]))
        application.status = COLLECTING
        return application

    def get(self, application_id: str | None) -> Application | None:
        """Return an application, or None."""
        if not application_id:
            return None
        with self._connect() as db:
            row = db.execute("SELECT status, document FROM application WHERE id = ?", (application_id,)).fetchone()
        if row is None:
            return None
        return Application(**{**json.loads(row[1]), "status": row[0]})
