"""Login sessions and assurance levels: the contract the OAuth server and the portal build on.

A login creates a server-side session row; the browser's cookie holds only a random secret, whose
SHA-256 the row keeps. A session ends on logout, after 15 minutes without a request (idle) or 8 hours
after it began (absolute), as ASVS 5 V7.3 asks. Every successful authentication gives the browser a
new secret (session fixation, ASVS 5 V7.2.4), and a step-up to a stronger method upgrades the same
session (same ``session_id``) with the new level, methods and time.

The services here take a unit of work and plain values; :func:`current_authentication` and the
cookie functions are the thin glue to the current request.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import urlsplit

from flask import Flask, Response, current_app, g, request, url_for
from sqlalchemy import Table, bindparam, insert, select, update

from identity import services
from identity.interfaces import LevelTooLow
from identity.models import Citizen, LoginSession
from mydata.clock import clock
from mydata.db import UnitOfWork, get_db, unit_of_work

LEVELS = ("low", "substantial", "high")  # ordered
ACR = {
    "low": "urn:mydata:loa:low",
    "substantial": "urn:mydata:loa:substantial",
    "high": "urn:mydata:loa:high",
}

_SESSION = cast(Table, LoginSession.__table__)
_CITIZEN = cast(Table, Citizen.__table__)

IDLE_TIMEOUT = dt.timedelta(minutes=15)
ABSOLUTE_LIFETIME = dt.timedelta(hours=8)
# last_seen_at is written at most once a minute, so that browsing is not a write per request; the
# recorded time can only lag, so a session may end up to a minute early, never late.
TOUCH_INTERVAL = dt.timedelta(seconds=60)
DEFAULT_NEXT = "/me"
# Built once: this runs on every request of a logged-in browser.
_FIND_SESSION = (
    select(
        _SESSION.c.id, _SESSION.c.citizen_id, _SESSION.c.method, _SESSION.c.level, _SESSION.c.amr,
        _SESSION.c.auth_time, _SESSION.c.created_at, _SESSION.c.last_seen_at,
        _CITIZEN.c.national_id, _CITIZEN.c.name,
    )
    .join(_CITIZEN, _CITIZEN.c.id == _SESSION.c.citizen_id)
    .where(_SESSION.c.secret_hash == bindparam("hash"), _SESSION.c.ended_at.is_(None))
)  # fmt: skip
_INSERT_SESSION = insert(_SESSION)


@dataclass(frozen=True)
class Method:
    """An authentication method of DESIGN §3.1 with the level and RFC 8176 ``amr`` it gives."""

    id: str
    level: str
    amr: tuple[str, ...]


METHODS = {
    "eid": Method("eid", "high", ("sc", "pin", "hwk")),
    "mobile": Method("mobile", "substantial", ("swk", "user")),
    "nhi_card": Method("nhi_card", "low", ("sc", "pwd")),
}


@dataclass(frozen=True)
class Authentication:
    """Who is logged in on this browser, how strongly, and since when."""

    session_id: str  # opaque id of the login session (not the cookie secret)
    citizen_id: str
    national_id: str
    name: str
    level: str  # "low" | "substantial" | "high"
    amr: tuple[str, ...]
    auth_time: int  # epoch seconds
    method: str = ""  # "eid" | "mobile" | "nhi_card"


def level_at_least(level: str, needed: str) -> bool:
    """Tell whether *level* is as strong as *needed* (``low`` < ``substantial`` < ``high``)."""
    for value in (level, needed):
        if value not in LEVELS:
            raise ValueError(f"unknown assurance level {value!r}; expected one of {', '.join(LEVELS)}")
    return LEVELS.index(level) >= LEVELS.index(needed)


def methods_for(needed: str) -> list[Method]:
    """Return the methods strong enough for *needed*, in the order of DESIGN §3.1 (strongest first)."""
    return [m for m in METHODS.values() if level_at_least(m.level, needed)]


def require_method(method: str, needed: str) -> Method:
    """Return the method *method*; raise :class:`LevelTooLow` when it cannot give *needed*."""
    chosen = METHODS[method]
    if not level_at_least(chosen.level, needed):
        raise LevelTooLow(needed, method)
    return chosen


def safe_next(value: str | None) -> str:
    """Return *value* if it is a path on this site, else the default landing page.

    Only local paths are followed after login (no open redirect, RFC 9700 §4.11): no scheme, no
    host, no protocol-relative ``//`` and no backslash, which some browsers read as a slash.
    """
    if not value or len(value) > 2000 or not value.startswith("/") or value.startswith("//"):
        return DEFAULT_NEXT
    if "\\" in value or any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        return DEFAULT_NEXT
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return DEFAULT_NEXT
    return value


def login_url(next_path: str, level: str = "low", *, reauthenticate: bool = False) -> str:
    """Return the login (or step-up) URL that comes back to *next_path* with 303 when done.

    With *reauthenticate* the citizen must log in again even if the session is strong enough
    (``prompt=login``, or an ``auth_time`` older than ``max_age``); the new ``auth_time`` follows.
    """
    if level not in LEVELS:
        raise ValueError(f"unknown assurance level {level!r}")
    if reauthenticate:
        return url_for("identity.login", next=next_path, level=level, prompt="login")
    return url_for("identity.login", next=next_path, level=level)


# -- services -------------------------------------------------------------------------------------


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _authentication(
    session_id: str,
    citizen_id: str,
    national_id: str,
    name: str,
    level: str,
    amr: Any,
    auth_time: dt.datetime,
    method: str,
) -> Authentication:
    return Authentication(
        session_id, citizen_id, national_id, name, level, tuple(amr), int(auth_time.timestamp()), method
    )


def open_session(
    uow: UnitOfWork,
    citizen_id: str,
    method: str,
    now: dt.datetime,
    previous: Authentication | None = None,
    account: services.Account | None = None,
) -> tuple[Authentication, str]:
    """Record a successful authentication; return the session and the browser's new secret.

    If the browser's session (*previous*) belongs to the same citizen it is kept (same
    ``session_id``) and takes the new method's level, ``amr`` and time: a step-up, or a
    re-authentication that ``prompt=login`` / ``max_age`` asked for (OIDC Core §3.1.2.1). A session
    of someone else is ended. Either way the secret is new, so a secret planted or seen before the
    login is worth nothing after it.
    """
    chosen = METHODS[method]
    secret = secrets.token_urlsafe(32)
    row = None
    if previous is not None:
        row = uow.session.get(LoginSession, previous.session_id, with_for_update=True)
        if row is not None and (row.ended_at is not None or row.citizen_id != citizen_id):
            if row.ended_at is None:
                row.ended_at, row.end_reason = now, "replaced"
            row = None
    # What the ORM holds (a replaced session's end, an account created by this login) is written
    # first: the Core statements below read and write beside it.
    uow.session.flush()
    if account is None or account.id != citizen_id:  # the login that just read it may pass it
        account = services.account(uow, citizen_id)
    assert account is not None
    if row is None:
        # A new session (most logins): one Core insert, without the ORM's unit of work.
        session_id, amr = secrets.token_hex(16), list(chosen.amr)
        uow.run(
            _INSERT_SESSION,
            {
                "id": session_id, "secret_hash": _hash(secret), "citizen_id": citizen_id, "method": chosen.id,
                "level": chosen.level, "amr": amr, "auth_time": now, "created_at": now, "last_seen_at": now,
            },
        )  # fmt: skip
        uow.commit()
        authentication = _authentication(
            session_id, account.id, account.national_id, account.name, chosen.level, amr, now, chosen.id
        )
        return authentication, secret
    row.method, row.level, row.amr, row.auth_time = chosen.id, chosen.level, list(chosen.amr), now
    row.secret_hash = _hash(secret)
    row.last_seen_at = now
    uow.commit()
    authentication = _authentication(
        row.id, account.id, account.national_id, account.name, row.level, row.amr, row.auth_time, row.method
    )
    return authentication, secret


@dataclass(frozen=True)
class _Found:
    authentication: Authentication
    created_at: dt.datetime
    last_seen_at: dt.datetime


def _find_session(uow: UnitOfWork, secret: str) -> _Found | None:
    found = uow.read(_FIND_SESSION, {"hash": _hash(secret)}).first()
    if found is None:
        return None
    authentication = _authentication(
        found.id, found.citizen_id, found.national_id, found.name, found.level, found.amr, found.auth_time, found.method
    )
    return _Found(authentication, found.created_at, found.last_seen_at)


def _end_reason(found: _Found, now: dt.datetime) -> str | None:
    if now - found.created_at > ABSOLUTE_LIFETIME:
        return "expired"
    if now - found.last_seen_at > IDLE_TIMEOUT:
        return "idle"
    return None


def resume_session(uow: UnitOfWork, secret: str, now: dt.datetime) -> Authentication | None:
    """Return the live session whose secret is *secret*, ending it if it is idle or too old."""
    found = _find_session(uow, secret)
    if found is None:
        return None
    by_id = _SESSION.c.id == found.authentication.session_id
    reason = _end_reason(found, now)
    if reason is not None:
        uow.session.execute(update(_SESSION).where(by_id).values(ended_at=now, end_reason=reason))
        uow.commit()
        return None
    if now - found.last_seen_at >= TOUCH_INTERVAL:
        uow.session.execute(update(_SESSION).where(by_id).values(last_seen_at=now))
        uow.commit()
    return found.authentication


def end_session(uow: UnitOfWork, session_id: str, now: dt.datetime, reason: str = "logout") -> None:
    """End a session server-side: its secret authenticates nobody any more."""
    row = uow.session.get(LoginSession, session_id)
    if row is not None and row.ended_at is None:
        row.ended_at, row.end_reason = now, reason
        uow.commit()


# -- the current request --------------------------------------------------------------------------


def cookie_name(app: Flask | None = None) -> str:
    """Return the cookie's name: ``__Host-`` prefixed (https only, this host only) when Secure."""
    secure = bool((app or current_app).config["SESSION_COOKIE_SECURE"])
    return "__Host-mydata_login" if secure else "mydata_login"


def current_authentication() -> Authentication | None:
    """Return who is logged in on this request's browser, or None.

    None when there is no cookie, or its session has ended, has been idle more than 15 minutes or
    began more than 8 hours ago. Touches the session's last-seen time (once a minute). It never
    commits the caller's half-done work: when the request has begun a transaction already, it reads
    and writes through a unit of work of its own; otherwise (usually: it is asked first) through the
    request's, which saves a second database connection.
    """
    if "identity_authentication" in g:
        return g.identity_authentication  # type: ignore[no-any-return]
    authentication = None
    secret = request.cookies.get(cookie_name())
    if secret:
        request_uow = unit_of_work()
        if request_uow.pending():
            with get_db().unit_of_work() as uow:
                authentication = resume_session(uow, secret, clock().now())
        else:
            authentication = resume_session(request_uow, secret, clock().now())
        if authentication is None:
            g.identity_cookie = ""  # a dead secret: take it off the browser
    g.identity_authentication = authentication
    return authentication


def remember_login(authentication: Authentication, secret: str) -> None:
    """Make *authentication* the request's login and send its secret to the browser."""
    g.identity_authentication = authentication
    g.identity_cookie = secret


def forget_login() -> None:
    """Drop the request's login and delete the browser's cookie."""
    g.identity_authentication = None
    g.identity_cookie = ""


def apply_cookie(response: Response) -> Response:
    """Set or delete the login cookie as the request decided (``after_request``)."""
    secret = g.pop("identity_cookie", None)
    if secret is None:
        return response
    secure = bool(current_app.config["SESSION_COOKIE_SECURE"])
    if secret:
        # No max-age: the cookie leaves with the browser; the server ends the session anyway.
        response.set_cookie(cookie_name(), secret, httponly=True, samesite="Lax", secure=secure, path="/")
    else:
        response.delete_cookie(cookie_name(), httponly=True, samesite="Lax", secure=secure, path="/")
    return response
