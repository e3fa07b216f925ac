"""Login pages: method choice, the three methods, step-up and logout.

Every view loads its form, calls a service, and renders or redirects; the rules are in
identity.eid, identity.mobile, identity.nhi and identity.sessions. Failures come back as the
services' exceptions and are shown on the login page in the reader's language.
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, redirect, render_template, request, url_for
from flask import session as flask_session
from flask.typing import ResponseReturnValue
from flask_babel import format_datetime, gettext, lazy_gettext, ngettext
from flask_wtf import FlaskForm
from marshmallow import Schema, fields

from identity import contacts, eid, mobile, nhi, sessions
from identity.forms import EidCardForm, EidCertificateForm, MobileForm, NhiForm
from identity.interfaces import (
    CardLocked,
    CardReader,
    CardSignature,
    CertificateRejected,
    EidNonceInvalid,
    EidNotConfigured,
    IdentityError,
    InvalidNationalId,
    LevelTooLow,
    MobileRequestExpired,
    MobileRequestNotFound,
    MobileRequestPending,
    NoCardInReader,
    WrongPassword,
    WrongPin,
)
from identity.services import Account
from identity.sessions import LEVELS, Authentication, current_authentication, level_at_least, methods_for
from mydata import keys
from mydata.clock import clock
from mydata.db import UnitOfWork, unit_of_work
from mydata.errors import BadRequest
from mydata.i18n import browser_chose_locale, choose_locale
from mydata.limits import limiter
from mydata.openapi import documented

bp = Blueprint("identity", __name__)

MOBILE_PENDING = "identity.mobile"  # the pending mobile ID request of this browser (Flask session)

LEVEL_NAMES = {"low": lazy_gettext("low"), "substantial": lazy_gettext("substantial"), "high": lazy_gettext("high")}
METHOD_NAMES = {
    "eid": lazy_gettext("eID card (citizen digital certificate)"),
    "mobile": lazy_gettext("mobile ID"),
    "nhi_card": lazy_gettext("NHI card"),
}
# What to use instead when a level is needed (the strong-enough methods, in words).
INSTEAD = {
    "low": lazy_gettext("any of the methods below"),
    "substantial": lazy_gettext("mobile ID or your eID card"),
    "high": lazy_gettext("your eID card"),
}
AMR_NAMES = {
    "sc": lazy_gettext("smart card"),
    "pin": lazy_gettext("PIN"),
    "hwk": lazy_gettext("hardware-protected key"),
    "swk": lazy_gettext("key on your phone"),
    "user": lazy_gettext("fingerprint or face on your phone"),
    "pwd": lazy_gettext("password"),
}
# The field each condition is about: the error summary links there.
ERROR_FIELDS = {
    WrongPin: "eid-pin",
    NoCardInReader: "eid-national_id",
    CertificateRejected: "eid-submit",
    EidNonceInvalid: "eid-submit",
    EidNotConfigured: "eid-submit",
    MobileRequestExpired: "mobile-national_id",
    MobileRequestNotFound: "mobile-national_id",
    WrongPassword: "nhi-password",
    CardLocked: "nhi-card_number",
}
FORM_PREFIX = {"eid": "eid", "mobile": "mobile", "nhi_card": "nhi"}


@dataclass(frozen=True)
class Target:
    """Where the login returns to, and the assurance level it must reach."""

    next: str
    level: str


def _target(values: Mapping[str, Any]) -> Target:
    level = values.get("level") or "low"
    if level not in LEVELS:
        raise BadRequest(gettext("The assurance level asked for is not one of low, substantial or high."))
    return Target(sessions.safe_next(values.get("next")), level)


def _login_rate() -> str:
    return str(current_app.config["IDENTITY_LOGIN_RATE"])


def _failed(response: Response) -> bool:
    # The citizen's failures (4xx: a wrong PIN, an expired form), not the platform's (5xx: a database
    # outage), which say nothing about the credentials and must not refuse the retries that follow.
    return 400 <= response.status_code < 500


# Per client address, failed attempts only (a family behind one router can still log in).
login_limit = limiter.limit(_login_rate, deduct_when=_failed)


# -- messages -------------------------------------------------------------------------------------


def describe(error: IdentityError) -> str:
    """Return the sentence a citizen reads for *error*, in their language."""
    if isinstance(error, CertificateRejected):
        return _describe_certificate(error)
    if isinstance(error, WrongPassword):
        return str(
            ngettext(
                "The NHI card number or the registration password is not correct. After %(num)d more wrong attempt "
                "the card will be locked for 15 minutes.",
                "The NHI card number or the registration password is not correct. After %(num)d more wrong attempts "
                "the card will be locked for 15 minutes.",
                error.attempts_left,
            )
        )
    if isinstance(error, CardLocked):
        return str(
            gettext(
                "This card is locked because the registration password was wrong 5 times. "
                "You can try again after %(time)s (Taiwan time), or log in another way.",
                time=format_datetime(error.until, "yyyy-MM-dd HH:mm"),
            )
        )
    if isinstance(error, LevelTooLow):
        return str(
            gettext(
                "%(method)s is not strong enough for this service, which needs the %(level)s assurance level. "
                "Use %(instead)s.",
                method=METHOD_NAMES[error.method],
                level=LEVEL_NAMES[error.needed],
                instead=INSTEAD[error.needed],
            )
        )
    messages: dict[type[IdentityError], str] = {
        WrongPin: gettext("The PIN is not correct. Check the PIN of your eID card and try again."),
        NoCardInReader: gettext(
            "There is no eID card for this national ID number in the card reader. "
            "Check the number, or log in another way."
        ),
        EidNonceInvalid: gettext(
            "This login page was open too long or was already used. It has been renewed: please try again."
        ),
        EidNotConfigured: gettext("eID login is not available at the moment. Please log in another way."),
        MobileRequestExpired: gettext(
            "Your phone did not approve the login within 2 minutes, so this attempt has ended. You can start again."
        ),
        MobileRequestNotFound: gettext("This mobile ID attempt is no longer valid. Please start again."),
        InvalidNationalId: gettext(
            "Enter a valid national ID number: one capital letter and nine digits, for example A123456789."
        ),
    }
    return messages.get(type(error), str(error.description))


def _describe_certificate(error: CertificateRejected) -> str:
    if error.reason == "bad_signature":
        return str(
            gettext(
                "The certificate was refused: the signature was not made by the key of this certificate, "
                "so it may be forged. Log in with your own card."
            )
        )
    if error.reason == "untrusted":
        return str(
            gettext(
                "The certificate was refused: it was not issued by a certificate authority that MyData trusts. "
                "Use a citizen digital certificate issued by the Ministry of the Interior."
            )
        )
    if error.reason == "expired":
        assert error.date is not None
        return str(
            gettext(
                "The certificate was refused: it expired on %(date)s. Renew it at a household registration office, "
                "or log in another way.",
                date=format_datetime(error.date, "yyyy-MM-dd"),
            )
        )
    if error.reason == "not_yet_valid":
        assert error.date is not None
        return str(
            gettext(
                "The certificate was refused: it is only valid from %(date)s.",
                date=format_datetime(error.date, "yyyy-MM-dd"),
            )
        )
    if error.reason == "key_usage":
        return str(gettext("The certificate was refused: it may not be used for signing in."))
    if error.reason == "no_national_id":
        return str(gettext("The certificate was refused: it does not carry a national ID number."))
    if error.reason == "policy":
        return str(
            gettext(
                "The certificate was refused: it is not a citizen digital certificate (it does not carry the "
                "citizen certificate policy). Use your citizen digital certificate."
            )
        )
    if error.reason == "extended_key_usage":
        return str(gettext("The certificate was refused: its extended key usage does not include signing in."))
    if error.reason == "revoked":
        assert error.date is not None
        return str(
            gettext(
                "The certificate was refused: it was revoked on %(date)s. If you did not ask for this, contact a "
                "household registration office. You can log in another way.",
                date=format_datetime(error.date, "yyyy-MM-dd"),
            )
        )
    if error.reason == "revocation_unknown":
        return str(
            gettext(
                "The certificate was refused because MyData cannot check at the moment whether it has been "
                "revoked. Please try again later, or log in another way."
            )
        )
    return str(gettext("The card reader did not send a readable certificate. Please try again."))


# -- the login page -------------------------------------------------------------------------------


def _card_reader() -> CardReader | None:
    return current_app.extensions.get("identity.card_reader")


def _blank_form(method: str, target: Target) -> FlaskForm:
    data = {"next": target.next, "level": target.level}
    if method == "eid":
        return EidCardForm(formdata=None, data=data) if _card_reader() else EidCertificateForm(formdata=None, data=data)
    if method == "mobile":
        return MobileForm(formdata=None, data=data)
    return NhiForm(formdata=None, data=data)


def _notice(target: Target, authentication: Authentication | None, reauthenticate: bool = False) -> str:
    if authentication is not None and reauthenticate and level_at_least(authentication.level, target.level):
        return str(gettext("To continue, the service asks you to prove who you are once more."))
    if authentication is not None and not level_at_least(authentication.level, target.level):
        return str(
            gettext(
                "This service needs the %(level)s assurance level. You are logged in with %(method)s, which gives "
                "%(current)s. To continue, use %(instead)s.",
                level=LEVEL_NAMES[target.level],
                method=METHOD_NAMES.get(authentication.method, authentication.method),
                current=LEVEL_NAMES[authentication.level],
                instead=INSTEAD[target.level],
            )
        )
    if target.level != "low":
        return str(
            gettext(
                "This service needs the %(level)s assurance level, so only %(instead)s can be used.",
                level=LEVEL_NAMES[target.level],
                instead=INSTEAD[target.level],
            )
        )
    return ""


def render_login(
    target: Target,
    method: str | None = None,
    form: FlaskForm | None = None,
    error: IdentityError | None = None,
    status: int = 200,
    reauthenticate: bool = False,
) -> ResponseReturnValue:
    """Render the login page; *form* and *error* belong to *method*, the one just tried."""
    authentication = current_authentication()
    offered = methods_for(target.level)
    forms: dict[str, FlaskForm] = {}
    for offered_method in offered:
        blank = _blank_form(offered_method.id, target)
        # Keep what was typed, unless the answer came in another shape (a reader component's post).
        keep = form is not None and offered_method.id == method and type(form) is type(blank)
        forms[offered_method.id] = form if keep and form is not None else blank
    errors: list[tuple[str, str]] = []
    if method and form is not None:
        prefix = FORM_PREFIX[method]
        errors += [(f"{prefix}-{name}", str(message)) for name, messages in form.errors.items() for message in messages]
    if error is not None:
        errors.append(
            (ERROR_FIELDS.get(type(error), f"{FORM_PREFIX.get(method or '', 'eid')}-submit"), describe(error))
        )
    if "eid" in forms:
        try:
            current_app.extensions["identity.eid_trust"].anchors()
        except EidNotConfigured:
            forms.pop("eid")  # no trusted CA (sandbox not seeded yet): do not offer what cannot work
        else:
            forms["eid"].nonce.data = eid.issue_nonce(_nonce_secret(), clock().now())
    page = render_template(
        "login/login.html",
        target=target,
        methods=[m for m in offered if m.id in forms],
        forms=forms,
        errors=errors,
        failed_method=method if errors else None,
        method_error=describe(error) if error is not None else "",
        notice=_notice(target, authentication, reauthenticate),
        authentication=authentication,
        logged_out=request.args.get("logged_out") == "1",
        card_reader=_card_reader() is not None,
        level_names=LEVEL_NAMES,
        method_names=METHOD_NAMES,
    )
    response = current_app.make_response((page, status))
    if isinstance(error, CardLocked):
        response.headers["Retry-After"] = str(max(1, math.ceil((error.until - clock().now()).total_seconds())))
    return response


def _error_status(error: IdentityError) -> int:
    # A page, not an API: "not found", "conflict" and "gone" all mean the login did not succeed.
    return 401 if error.status in (404, 409, 410) else error.status


def _nonce_secret() -> bytes:
    # Never through the request's transaction: created (and committed) on first use only.
    return keys.secret("eid_nonce")


def _finish(
    citizen_id: str,
    method: str,
    target: Target,
    previous: Authentication | None,
    uow: UnitOfWork | None = None,
    account: Account | None = None,
) -> ResponseReturnValue:
    """Open the session (in *uow*, with what the login left there) and go on to ``next``."""
    with uow or unit_of_work() as uow:
        authentication, secret = sessions.open_session(uow, citizen_id, method, clock().now(), previous, account)
        language = contacts.preferred_language(uow, citizen_id)
    if language is not None and not browser_chose_locale():
        # The account's language is the portal's from now on, unless this browser chose one itself.
        choose_locale(language)
    sessions.remember_login(authentication, secret)
    flask_session.pop(MOBILE_PENDING, None)
    return redirect(target.next, 303)


def login_page(next_path: str, level: str) -> ResponseReturnValue:
    """Render the login page for a flow that continues at *next_path* once *level* is reached."""
    return render_login(Target(sessions.safe_next(next_path), level))


@bp.get("/login")
def login() -> ResponseReturnValue:
    """Offer the methods strong enough for ``level``; skip straight to ``next`` if already logged in."""
    target = _target(request.args)
    authentication = current_authentication()
    again = request.args.get("prompt") == "login"
    if authentication is not None and level_at_least(authentication.level, target.level) and not again:
        return redirect(target.next, 303)
    return render_login(target, reauthenticate=again)


@bp.post("/login/eid")
@login_limit
def login_eid() -> ResponseReturnValue:
    """Verify an eID card's signature over the nonce (in the sandbox, via the virtual reader)."""
    previous = current_authentication()
    reader = _card_reader()
    form: EidCardForm | EidCertificateForm
    form = EidCertificateForm() if reader is None or "certificate" in request.form else EidCardForm()
    target = _target(request.form)
    if not form.validate_on_submit():
        return render_login(target, "eid", form, status=400)
    try:
        sessions.require_method("eid", target.level)
        trust = current_app.extensions["identity.eid_trust"]
        trust.anchors()  # raises EidNotConfigured before the card is asked anything
        if isinstance(form, EidCardForm):
            assert reader is not None
            card = reader.sign(form.national_id.data, form.pin.data, form.nonce.data)
        else:
            card = CardSignature(form.certificate.data, _decode_signature(form.signature.data))
        uow = unit_of_work()
        citizen = eid.log_in(uow, card, form.nonce.data, _nonce_secret(), trust, clock().now())
    except IdentityError as error:
        unit_of_work().rollback()
        return render_login(target, "eid", form, error, status=_error_status(error))
    return _finish(citizen.id, "eid", target, previous, uow, citizen)


def _decode_signature(value: str) -> bytes:
    text = "".join(value.split()).replace("-", "+").replace("_", "/")
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise CertificateRejected("bad_signature", "The signature is not base64.") from None


@bp.post("/login/mobile")
@login_limit
# Every start pushes to someone's phone: cap them per address, so that a phone cannot be flooded
# with requests that its owner might approve by mistake (MFA fatigue).
@limiter.limit("10 per minute")
def login_mobile() -> ResponseReturnValue:
    """Send a mobile ID request to the citizen's phone and wait for it."""
    form = MobileForm()
    target = _target(request.form)
    if not form.validate_on_submit():
        return render_login(target, "mobile", form, status=400)
    try:
        sessions.require_method("mobile", target.level)
        with unit_of_work() as uow:
            pending = mobile.start(uow, form.national_id.data, clock().now())
    except IdentityError as error:
        return render_login(target, "mobile", form, error, status=_error_status(error))
    flask_session[MOBILE_PENDING] = {"request": pending.id, "next": target.next, "level": target.level}
    return redirect(url_for(".mobile_wait"), 303)


def _pending() -> tuple[str, Target] | None:
    pending = flask_session.get(MOBILE_PENDING)
    if not isinstance(pending, dict) or not isinstance(pending.get("request"), str):
        return None
    level = str(pending["level"]) if pending.get("level") in LEVELS else "low"
    return pending["request"], Target(sessions.safe_next(pending.get("next")), level)


def _state(request_id: str) -> mobile.RequestState | None:
    try:
        with unit_of_work() as uow:
            return mobile.state(uow, request_id, clock().now())
    except MobileRequestNotFound:
        return None


@bp.get("/login/mobile/wait")
def mobile_wait() -> ResponseReturnValue:
    """Show the binding code while the phone is asked; the page polls, or the citizen checks again."""
    pending = _pending()
    state = _state(pending[0]) if pending else None
    if pending is None or state is None:
        flask_session.pop(MOBILE_PENDING, None)
        return redirect(url_for(".login"), 303)
    return render_template(
        "login/mobile_wait.html",
        state=state,
        target=pending[1],
        still_waiting=request.args.get("still") == "1",
        expired_message=describe(MobileRequestExpired()),
    )


class MobileStatusSchema(Schema):
    """Where the browser's pending mobile ID login stands, for its waiting page."""

    status = fields.String(
        required=True, metadata={"example": "pending", "enum": ["none", "pending", "approved", "completed", "expired"]}
    )
    seconds_left = fields.Integer(required=True, metadata={"example": 95, "description": "until the request expires"})
    message = fields.String(
        required=True,
        metadata={
            "example": "請在手機上確認登入，並核對畫面上的四位數字。",
            "description": "what to tell the citizen, in their language",
        },
    )
    countdown = fields.String(
        required=True, metadata={"example": "還剩 95 秒。", "description": "the seconds left, as a sentence"}
    )


@bp.get("/login/mobile/status")
@documented(
    "The browser's pending mobile ID login",
    tags=["identity"],
    responses={200: MobileStatusSchema},
    description="Polled by the waiting page; the pending request is the one of the browser's session cookie.",
)
def mobile_status() -> ResponseReturnValue:
    """Tell the polling page whether the phone has answered (JSON)."""
    pending = _pending()
    state = _state(pending[0]) if pending else None
    if state is None:
        return jsonify(
            {"status": "none", "seconds_left": 0, "message": describe(MobileRequestNotFound()), "countdown": ""}
        )
    messages = {
        "pending": str(gettext("Waiting for your phone.")),
        "approved": str(gettext("Approved on your phone. Logging you in…")),
        "expired": describe(MobileRequestExpired()),
    }
    countdown = ngettext("%(num)d second left.", "%(num)d seconds left.", state.seconds_left)
    return jsonify(
        {
            "status": state.status,
            "seconds_left": state.seconds_left,
            "message": messages.get(state.status, describe(MobileRequestNotFound())),
            "countdown": countdown if state.status == "pending" else "",
        }
    )


@bp.post("/login/mobile/check")
def mobile_check() -> ResponseReturnValue:
    """Complete the login if the phone approved; otherwise keep waiting or say it has ended."""
    # No form to validate: CSRFProtect has already refused a POST without a valid token.
    pending = _pending()
    if pending is None:
        return redirect(url_for(".login"), 303)
    request_id, target = pending
    previous = current_authentication()
    try:
        with unit_of_work() as uow:
            citizen_id = mobile.complete(uow, request_id, clock().now())
    except MobileRequestPending:
        return redirect(url_for(".mobile_wait", still=1), 303)
    except IdentityError as error:
        flask_session.pop(MOBILE_PENDING, None)
        return render_login(target, "mobile", None, error, status=_error_status(error))
    return _finish(citizen_id, "mobile", target, previous)


@bp.post("/login/nhi")
@login_limit
def login_nhi() -> ResponseReturnValue:
    """Check an NHI card number and registration password."""
    previous = current_authentication()
    form = NhiForm()
    target = _target(request.form)
    if not form.validate_on_submit():
        return render_login(target, "nhi_card", form, status=400)
    try:
        sessions.require_method("nhi_card", target.level)
        with unit_of_work() as uow:
            citizen_id = nhi.log_in(uow, form.card_number.data, form.password.data, clock().now())
    except IdentityError as error:
        return render_login(target, "nhi_card", form, error, status=_error_status(error))
    return _finish(citizen_id, "nhi_card", target, previous)


@bp.post("/logout")
def logout() -> ResponseReturnValue:
    """End the login session on the server and take the cookie off the browser."""
    # No form to validate: CSRFProtect has already refused a POST without a valid token.
    authentication = current_authentication()
    if authentication is not None:
        with unit_of_work() as uow:
            sessions.end_session(uow, authentication.session_id, clock().now(), "logout")
    sessions.forget_login()
    flask_session.clear()
    return redirect(url_for(".login", logged_out=1), 303)
