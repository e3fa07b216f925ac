"""A sandbox relying party's web site: "apply with MyData" from the start page to the verified data.

One Flask app per relying party, with its own session cookie, security headers and CSRF
protection, built from a :class:`Profile` (who the RP is and what it asks for: bank.py, school.py)
and a :class:`Deployment` (where it runs and where its keys are). All MyData protocol work is in
:mod:`relying_parties.sandbox.mydata_client`; this module is what a bank's web layer does with it::

    GET  /                    start page: what we ask for and why, the "apply with MyData" button
    POST /apply               push the request (PAR), keep the secrets server-side, 303 to MyData
    GET  /callback            the citizen's answer: check it, redeem the code, collect the package
    GET  /application         the result (verified data), or what went wrong and what to do
    POST /application/retry   collect again after 503 provider_unavailable, once Retry-After has passed
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
from flask import Flask, Response, g, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from flask_wtf.csrf import CSRFProtect
from joserfc.jwk import ECKey

from relying_parties.sandbox.applications import (
    AUTHORISING,
    DENIED,
    FAILED,
    RECEIVED,
    WAITING,
    Application,
    ApplicationStore,
)
from relying_parties.sandbox.mydata_client import (
    DELIVERY_TYPE,
    AuthorizationError,
    AuthorizationStart,
    ClientSettings,
    DeliveryRefused,
    MyDataClient,
    MyDataError,
    Package,
    Tokens,
    VerificationFailed,
    load_private_jwks,
)
from relying_parties.sandbox.texts import COMMON, LANGUAGE_NAMES, LANGUAGE_TAGS, LANGUAGES, Texts, translate

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "templates"
STATIC = Path(__file__).resolve().parent / "static"
TAIPEI = dt.timezone(dt.timedelta(hours=8), "Asia/Taipei")
#: When the platform gives no Retry-After with a 503, wait this long before the next try (seconds).
DEFAULT_RETRY_AFTER = 30

#: Summarises verified datasets for the result page: (label, value) pairs, in the reader's language.
Summary = Callable[[Mapping[str, dict[str, Any]], Callable[..., str]], list[tuple[str, str]]]


@dataclass(frozen=True)
class Profile:
    """Who the relying party is and what it asks MyData for (fixed in its code)."""

    slug: str
    client_id: str
    service_id: str
    required_datasets: tuple[str, ...]
    optional_datasets: tuple[str, ...]
    #: Its own texts (name, service, lead ...), in both languages; see texts.COMMON for the shared ones.
    texts: Texts
    summarise: Summary

    @property
    def authorization_details(self) -> list[dict[str, Any]]:
        """Return what it pushes (RFC 9396): a delivery of its service, the optional datasets left to the citizen."""
        return [{"type": DELIVERY_TYPE, "service": self.service_id}]


@dataclass(frozen=True)
class Deployment:
    """Where a relying party runs: the platform's issuer, its own public URL, its keys and its data."""

    issuer: str
    #: The public URL of the app's root, e.g. http://127.0.0.1:5000/sandbox/bank; the redirect URI
    #: registered for the client is this + "/callback".
    base_url: str
    #: The private JWKS file (`sig` + `enc` keys) that `mydata sandbox seed` wrote.
    keys_file: Path
    #: Where the app keeps its applications (SQLite).
    data_file: Path
    secret_key: str
    clock: Callable[[], float] = time.time

    @property
    def redirect_uri(self) -> str:
        """Return the redirect URI the client registered."""
        return self.base_url.rstrip("/") + "/callback"


class RelyingParty:
    """The app's state: its profile, its MyData client (built on first use) and its applications."""

    def __init__(self, profile: Profile, deployment: Deployment) -> None:
        self.profile = profile
        self.deployment = deployment
        self.store = ApplicationStore(deployment.data_file)
        self.clock = deployment.clock
        self._client: MyDataClient | None = None

    @property
    def client(self) -> MyDataClient:
        """Return the MyData client; the key file is read on first use (the seeder may write it after start)."""
        if self._client is None:
            keys = load_private_jwks(json.loads(self.deployment.keys_file.read_text()))
            settings = ClientSettings(
                issuer=self.deployment.issuer,
                client_id=self.profile.client_id,
                redirect_uri=self.deployment.redirect_uri,
                keys=keys,
            )
            self._client = MyDataClient(settings, clock=lambda: self.clock())
        return self._client

    def t(self, key: str, **params: object) -> str:
        """Return a text in the current page's language."""
        texts = self.profile.texts if key in self.profile.texts else COMMON
        return translate(texts, key, current_lang(), **params)


def create_app(profile: Profile, deployment: Deployment) -> Flask:
    """Build the relying party's web app."""
    app = Flask(f"sandbox_rp_{profile.slug}", template_folder=str(TEMPLATES), static_folder=str(STATIC))
    path = urlsplit(deployment.base_url).path.rstrip("/")
    app.config.update(
        SECRET_KEY=deployment.secret_key,
        # Its own cookie, scoped to its own path: the platform's cookies and the other RP's are not its business.
        SESSION_COOKIE_NAME=f"sandbox_{profile.slug}_session",
        SESSION_COOKIE_PATH=path or "/",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",  # sent on the 303 back from MyData (a top-level GET)
        SESSION_COOKIE_SECURE=deployment.base_url.startswith("https://"),
        PERMANENT_SESSION_LIFETIME=dt.timedelta(hours=1),
        WTF_CSRF_TIME_LIMIT=None,
        MAX_CONTENT_LENGTH=64 * 1024,
    )
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    app.add_template_filter(money)
    rp = RelyingParty(profile, deployment)
    app.extensions["sandbox_rp"] = rp
    CSRFProtect(app)
    csp = _content_security_policy(deployment.issuer)

    @app.before_request
    def choose_language() -> None:
        asked = request.args.get("lang")
        if asked in LANGUAGES:
            session["lang"] = asked

    @app.after_request
    def security_headers(response: Response) -> Response:
        response.headers.setdefault("Content-Security-Policy", csp)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")  # never leak the code or state onwards
        response.headers.setdefault("X-Frame-Options", "DENY")
        if response.mimetype == "text/html":
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    @app.context_processor
    def page_globals() -> dict[str, Any]:
        lang = current_lang()
        links = [
            {"code": code, "tag": LANGUAGE_TAGS[code], "name": LANGUAGE_NAMES[code], "current": code == lang}
            for code in LANGUAGES
        ]
        return {"rp": rp, "profile": profile, "t": rp.t, "lang": lang, "lang_tag": LANGUAGE_TAGS[lang], "langs": links}

    @app.get("/")
    def start() -> ResponseReturnValue:
        return render_template("sandbox_rp/start.html")

    @app.post("/apply")
    def apply() -> ResponseReturnValue:
        return _apply(rp)

    @app.get("/callback")
    def callback() -> ResponseReturnValue:
        return _callback(rp)

    @app.get("/application")
    def application() -> ResponseReturnValue:
        found = rp.store.get(session.get("application"))
        if found is None:
            return _error_page(rp, "session", status=404)
        return _show(rp, found)

    @app.post("/application/retry")
    def retry() -> ResponseReturnValue:
        return _retry(rp)

    return app


def current_lang() -> str:
    """Return the page's language: the one chosen in this session, Traditional Chinese by default."""
    lang = session.get("lang", "zh")
    return lang if lang in LANGUAGES else "zh"


def money(value: object) -> str:
    """Format an amount of New Taiwan dollars: NT$ 1,234."""
    return f"NT$ {value:,}" if isinstance(value, int | float) else "—"


def _content_security_policy(issuer: str) -> str:
    parts = urlsplit(issuer)
    platform = f"{parts.scheme}://{parts.netloc}"
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            "object-src 'none'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
            # The apply form's 303 goes to MyData's authorization endpoint (form-action covers redirects).
            f"form-action 'self' {platform}",
        ]
    )


# -- the flow ------------------------------------------------------------------------------------


def _apply(rp: RelyingParty) -> ResponseReturnValue:
    """Push the authorization request and send the browser to MyData."""
    application = rp.store.new(rp.clock(), current_lang())
    try:
        client = rp.client
    except (OSError, ValueError) as exc:
        log.error(
            "sandbox %s: the client keys cannot be read from %s: %s", rp.profile.slug, rp.deployment.keys_file, exc
        )
        return _error_page(rp, "not_configured", detail="run `mydata sandbox seed`", status=503)
    try:
        start = client.start_authorization(rp.profile.authorization_details, ui_locales=LANGUAGE_TAGS[application.lang])
    except (MyDataError, requests.RequestException) as exc:
        log.warning("sandbox %s: the pushed authorization request failed: %s", rp.profile.slug, exc)
        return _error_page(rp, "other", detail=_describe(exc), status=502)
    application.state = start.state
    application.nonce = start.nonce
    application.code_verifier = start.code_verifier
    application.dpop_key = start.dpop_key.as_dict(private=True)
    rp.store.save(application)
    session.clear()
    session["lang"] = application.lang
    session["application"] = application.id
    # RFC 9126 §4 with a 303 (RFC 9700 §4.12): only client_id and request_uri travel in the URL.
    return redirect(start.authorization_url, code=303)


def _callback(rp: RelyingParty) -> ResponseReturnValue:
    """Check the authorization response, redeem the code and collect the package."""
    application = rp.store.get(session.get("application"))
    if application is None:
        return _error_page(rp, "session", status=400)
    if application.status != AUTHORISING:
        return redirect(url_for("application"), code=303)  # a reload of the callback: show what we have
    start = _start_of(application)
    try:
        code = rp.client.authorization_code(request.args.to_dict(), application.state)
    except AuthorizationError as exc:
        _finish(rp, application, DENIED if exc.error == "access_denied" else FAILED, exc)
        return redirect(url_for("application"), code=303)
    except VerificationFailed as exc:
        # A wrong state or iss is not this application's answer (perhaps a forged link): leave the
        # application alone and show why.
        log.warning("sandbox %s: callback refused: %s", rp.profile.slug, exc)
        return _error_page(rp, "verification_failed", detail=exc.description, status=400)
    claimed = rp.store.claim(application.id, AUTHORISING)
    if claimed is None:
        return redirect(url_for("application"), code=303)
    try:
        tokens = rp.client.redeem_code(code, start)
    except (MyDataError, requests.RequestException) as exc:
        _finish(rp, claimed, FAILED, exc)
        return redirect(url_for("application"), code=303)
    claimed.access_token = tokens.access_token
    claimed.token_expires_at = tokens.expires_at
    claimed.id_token = tokens.id_token
    claimed.granted = tokens.authorization_details
    _collect(rp, claimed)
    return redirect(url_for("application"), code=303)


def _retry(rp: RelyingParty) -> ResponseReturnValue:
    """Collect the package again after a 503, if Retry-After has passed."""
    application = rp.store.get(session.get("application"))
    if application is None:
        return _error_page(rp, "session", status=404)
    if application.status != WAITING:
        return redirect(url_for("application"), code=303)
    if application.retry_at is not None and rp.clock() < application.retry_at:
        # RFC 9110 §10.2.3: the platform asked us not to call again before then.
        g.too_soon = True
        return _show(rp, application)
    claimed = rp.store.claim(application.id, WAITING)
    if claimed is not None:
        _collect(rp, claimed)
    return redirect(url_for("application"), code=303)


def _collect(rp: RelyingParty, application: Application) -> None:
    """Call the delivery API once for a claimed application and record what came of it."""
    assert application.access_token is not None
    assert application.dpop_key is not None
    tokens = Tokens(
        access_token=application.access_token,
        expires_at=application.token_expires_at or 0,
        id_token=application.id_token,
        authorization_details=application.granted,
    )
    try:
        package = rp.client.collect_delivery(tokens, ECKey.import_key(application.dpop_key))
    except DeliveryRefused as exc:
        if exc.status == 503 and exc.error == "provider_unavailable":
            # Nothing was delivered and the consent stays granted: we may try again within the window.
            application.status = WAITING
            application.outcomes = exc.datasets
            application.retry_at = rp.clock() + (
                exc.retry_after if exc.retry_after is not None else DEFAULT_RETRY_AFTER
            )
            rp.store.save(application)
            return
        _finish(rp, application, FAILED, exc)
        return
    except requests.RequestException as exc:
        # We do not know whether MyData delivered: try again shortly (a delivered package answers 410).
        log.warning("sandbox %s: the delivery call failed: %s", rp.profile.slug, exc)
        application.status = WAITING
        application.retry_at = rp.clock() + 5
        rp.store.save(application)
        return
    except VerificationFailed as exc:
        log.warning("sandbox %s: the package did not verify: %s", rp.profile.slug, exc)
        _finish(rp, application, FAILED, exc)
        return
    application.status = RECEIVED
    application.result = record_package(package, tokens, received_at=rp.clock())
    application.forget_credentials()
    rp.store.save(application)


def record_package(package: Package, tokens: Tokens, *, received_at: float) -> dict[str, Any]:
    """Return what the relying party keeps of a verified package: the data and how it was verified."""
    login = tokens.id_token
    return {
        "txn": package.txn,
        "receipt": package.receipt,
        "service": package.service,
        "purpose": package.purpose,
        "received_at": received_at,
        "datasets": {
            dataset_id: {
                "provider": dataset.provider,
                "agency": {"zh": dataset.agency_zh, "en": dataset.agency_en},
                "status": dataset.status,
                "generated_at": dataset.generated_at,
                "data": dataset.data,
            }
            for dataset_id, dataset in package.datasets.items()
        },
        "checks": [
            {"what": "id_token", "detail": "ES256; iss, aud, exp, iat, nonce, at_hash"},
            {"what": "login", "detail": f"{login.get('acr', '')} ({', '.join(login.get('amr', []))})"},
            *({"what": check.what, "detail": check.detail} for check in package.checks),
        ],
    }


def _finish(rp: RelyingParty, application: Application, status: str, exc: Exception) -> None:
    """Record an application that ended without data, and drop its credentials."""
    application.status = status
    if isinstance(exc, DeliveryRefused) and exc.status == 401:
        application.error = "unauthorised"
        application.error_description = exc.description or exc.error
    elif isinstance(exc, MyDataError):
        application.error = exc.error
        application.error_description = exc.description
    else:
        application.error = "other"
        application.error_description = _describe(exc)
    application.forget_credentials()
    rp.store.save(application)


def _start_of(application: Application) -> AuthorizationStart:
    assert application.dpop_key is not None
    return AuthorizationStart(
        authorization_url="",
        state=application.state,
        nonce=application.nonce,
        code_verifier=application.code_verifier,
        dpop_key=ECKey.import_key(application.dpop_key),
    )


# -- pages ---------------------------------------------------------------------------------------


def _show(rp: RelyingParty, application: Application) -> ResponseReturnValue:
    """Render the page of an application's current status."""
    if application.status == RECEIVED and application.result is not None:
        result = application.result
        return render_template(
            "sandbox_rp/result.html",
            result=result,
            datasets=_datasets_to_show(rp.profile, result["datasets"]),
            summary=rp.profile.summarise(
                {k: v["data"] for k, v in result["datasets"].items() if v["status"] == "ok"}, rp.t
            ),
            received_at=_local_time(result["received_at"]),
        )
    if application.status == DENIED:
        return render_template("sandbox_rp/denied.html")
    if application.status == WAITING:
        seconds = max(0, int((application.retry_at or 0) - rp.clock()))
        return render_template(
            "sandbox_rp/waiting.html",
            outcomes=_in_service_order(rp.profile, application.outcomes),
            retry_time=_local_time(application.retry_at or rp.clock()),
            retry_seconds=seconds,
            too_soon=g.get("too_soon", False),
        ), (429 if g.get("too_soon") else 200)
    if application.status == FAILED:
        return _error_page(rp, application.error or "other", detail=application.error_description or "", status=200)
    return _error_page(rp, "in_progress", status=409)  # still with MyData, or being collected right now


def _error_page(rp: RelyingParty, error: str, *, detail: str = "", status: int) -> ResponseReturnValue:
    known = f"error.{error}" in COMMON
    message = rp.t(f"error.{error}" if known else "error.other", detail=detail or error)
    return render_template("sandbox_rp/error.html", error=error, message=message), status


def _in_service_order(profile: Profile, outcomes: Mapping[str, str]) -> list[tuple[str, str]]:
    order = [*profile.required_datasets, *profile.optional_datasets]
    return sorted(outcomes.items(), key=lambda item: order.index(item[0]) if item[0] in order else len(order))


def _datasets_to_show(profile: Profile, received: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Return every dataset the service asks for, in its order, with what came of each."""
    shown = []
    for dataset_id in (*profile.required_datasets, *profile.optional_datasets):
        shown.append((dataset_id, received.get(dataset_id) or {"status": "not_granted"}))
    return shown


def _local_time(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp, TAIPEI).strftime("%Y-%m-%d %H:%M:%S")


def _describe(exc: Exception) -> str:
    if isinstance(exc, MyDataError):
        return f"{exc.error}: {exc.description}" if exc.description else exc.error
    if isinstance(exc, requests.RequestException):
        return "MyData cannot be reached."
    return type(exc).__name__
