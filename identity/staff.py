"""Staff sessions: how strong and how recent a login must be to act as staff (issue 10, item 3).

Staff (operators, agency officers, RP developers, counter clerks) act through roles of their own
account (DESIGN §1). Through a browser session, every staff page and staff API call needs the
``high`` level (an eID card), and an action that changes the platform (approve, reject, suspend,
register, rotate a key, issue a token, define a service ...) also an ``auth_time`` at most 15
minutes old. Otherwise the platform asks for a step-up, RFC 9470 style, and then resumes. Viewing
keeps the ordinary session rules of §3 (15 minutes idle, 8 hours in all), so that a clerk at a busy
desk is not asked to log in again for every citizen. Machine credentials (the operator API token,
ADR 0002) are not browser sessions, and none of this applies to them.

Other packages' views call :func:`require_staff_session` (after their role check); the package's
error handler answers :class:`~identity.interfaces.StepUpRequired` with JSON for programs and a 303
to the login page for browsers. A page whose form was posted with a weak or old login keeps the
intended action (:class:`StaffAction`) for the same person, and after the login shows it again for
one more click: a POSTed action is never carried out unseen after a login.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from flask import redirect, request
from flask import session as flask_session
from flask.typing import ResponseReturnValue

from identity.interfaces import StepUpRequired
from identity.sessions import ACR, DEFAULT_NEXT, Authentication, level_at_least, login_url, safe_next
from mydata.clock import clock
from mydata.errors import handle_domain_error, wants_json

STAFF_LEVEL = "high"
ACTION_MAX_AGE = 15 * 60  # seconds since auth_time, for an action that changes the platform
_PENDING = "identity.staff_action"  # the action kept across a step-up (Flask session)
_SAFE_METHODS = ("GET", "HEAD", "OPTIONS")

_REASONS = {
    "login": "Staff pages and APIs need a login with your eID card.",
    "level": "Staff pages and APIs need the high assurance level: log in with your eID card.",
    "age": "An action that changes the platform needs a login of the last 15 minutes: log in again with your eID card.",
}


@dataclass(frozen=True)
class StaffAction:
    """An action a staff page was asked to do: *name* on *target*, confirmed at *confirm_path*."""

    name: str
    target: str
    confirm_path: str


def is_action(method: str) -> bool:
    """Tell whether a request with *method* may change the platform (anything but a read)."""
    return method.upper() not in _SAFE_METHODS


def step_up_reason(authentication: Authentication | None, now: int, *, action: bool) -> str | None:
    """Return why *authentication* may not do this as staff (``login``, ``level``, ``age``), or None."""
    if authentication is None:
        return "login"
    if not level_at_least(authentication.level, STAFF_LEVEL):
        return "level"
    if action and now - authentication.auth_time > ACTION_MAX_AGE:
        return "age"
    return None


# -- the current request --------------------------------------------------------------------------


def require_staff_session(
    authentication: Authentication | None, *, action: bool, resume: StaffAction | None = None
) -> None:
    """Raise :class:`StepUpRequired` unless this staff session is strong (and for *action*, recent) enough.

    The step-up URL asks for an eID login (``prompt=login``, so the ``auth_time`` is renewed) and
    comes back to this page; with *resume* (a page's form), to ``resume.confirm_path`` after keeping
    the action for this person.
    """
    reason = step_up_reason(authentication, clock().timestamp(), action=action)
    if reason is None:
        return
    next_path = _return_path()
    if resume is not None and authentication is not None:
        flask_session[_PENDING] = {
            "citizen": authentication.citizen_id,
            "at": clock().timestamp(),
            "name": resume.name,
            "target": resume.target,
            "confirm": resume.confirm_path,
        }
        next_path = resume.confirm_path
    raise StepUpRequired(
        _REASONS[reason],
        step_up=login_url(next_path, STAFF_LEVEL, reauthenticate=True),
        acr=ACR[STAFF_LEVEL],
        max_age=ACTION_MAX_AGE if action else None,
    )


def pending_action(authentication: Authentication | None) -> StaffAction | None:
    """Return the action kept for *authentication*'s person in the last 15 minutes, if any."""
    kept = flask_session.get(_PENDING)
    if not isinstance(kept, dict) or authentication is None:
        return None
    if kept.get("citizen") != authentication.citizen_id or clock().timestamp() - int(kept["at"]) > ACTION_MAX_AGE:
        forget_action()  # someone else's, or stale: never offered
        return None
    return StaffAction(str(kept["name"]), str(kept["target"]), str(kept["confirm"]))


def forget_action() -> None:
    """Drop the action kept across a step-up (it was done, or is no longer wanted)."""
    flask_session.pop(_PENDING, None)


def step_up_response(error: StepUpRequired) -> ResponseReturnValue:
    """Answer :class:`StepUpRequired`: JSON and a challenge for programs, the login page for browsers."""
    if wants_json():
        return handle_domain_error(error)
    return redirect(error.step_up, 303)


def _return_path() -> str:
    """Return where the login should come back to: this page, or for a form or API call, the page it came from."""
    if not is_action(request.method):
        return safe_next(request.full_path.rstrip("?"))
    referrer = urlsplit(request.referrer or "")
    if referrer.netloc == request.host and referrer.path:
        return safe_next(referrer.path)
    return DEFAULT_NEXT
