"""How long the platform takes to refuse each malformed request of issue 10, item 15.

Each of the six reproductions (and its variants: the three endpoints of the off-curve DPoP key,
the two characters of the redirect URI) is sent once to warm up and then once more, timed, through
Flask's test client in this process, its body encoded beforehand (SQLite in a temporary folder, the
sandbox seeded, a client of the sandbox bank registered). The wall time and the CPU time of the
thread are what one worker spends on the request. Before the fix, 5,000 `mydata_delivery` entries
held a worker for 12.9 s; every refusal must now take milliseconds.

    python bench/malformed_input.py

Prints one line per case and a summary line (the slowest refusal); writes bench/results/malformed_input.json.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import os
import platform
import secrets
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from flask.testing import FlaskClient  # noqa: E402

from identity.oauth.clients import register_client  # noqa: E402
from identity.sessions import Authentication  # noqa: E402
from mydata import cli  # noqa: E402
from mydata.app import create_app  # noqa: E402
from mydata.clock import clock  # noqa: E402
from mydata.config import Settings  # noqa: E402
from mydata.db import get_db  # noqa: E402
from tests.factories.identity import make_citizen  # noqa: E402
from tests.factories.malformed import nested_arrays, off_curve_proof, raw_assertion  # noqa: E402
from tests.factories.oauth import TestRelyingParty, pkce_pair  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "malformed_input.json"
ISSUER = "http://127.0.0.1:5000"
REDIRECT_URI = "https://bench-bank.example/callback"
SERVICE = "sandbox-bank.credit-card"


def par_form(rp: TestRelyingParty, **changes: str) -> dict[str, str]:
    """Return a valid pushed request's form with *changes*."""
    _verifier, challenge = pkce_pair()
    form = {
        "response_type": "code", "client_id": rp.client_id, "redirect_uri": REDIRECT_URI, "scope": "openid",
        "code_challenge": challenge, "code_challenge_method": "S256", **rp.client_auth(ISSUER), **changes,
    }  # fmt: skip
    return form


def access_token(http: FlaskClient, rp: TestRelyingParty) -> str:
    """Run a flow (the citizen's login stubbed, as in the unit tests) and return an access token."""
    verifier, challenge = pkce_pair()
    pushed = http.post("/oauth/par", data={**par_form(rp), "code_challenge": challenge})
    started = http.get(f"/oauth/authorize?client_id={rp.client_id}&request_uri={pushed.json['request_uri']}")
    page = http.get(started.headers["Location"]).get_data(as_text=True)
    marker = 'name="csrf_token" value="'
    token = page[page.index(marker) + len(marker) :].split('"', 1)[0]
    answer = http.post(started.headers["Location"], data={"decision": "approve", "csrf_token": token})
    code = answer.headers["Location"].split("code=", 1)[1].split("&", 1)[0]
    response = http.post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier, **rp.client_auth(ISSUER),
        },
        headers={"DPoP": rp.dpop("POST", f"{ISSUER}/oauth/token")},
    )  # fmt: skip
    return str(response.json["access_token"])


Request = tuple[str, str, dict[str, Any]]  # method, path, keyword arguments of the test client


def form(fields: dict[str, str]) -> dict[str, Any]:
    """Return a form body already encoded, so that the timing leaves out the client's work."""
    return {"data": urlencode(fields).encode(), "content_type": "application/x-www-form-urlencoded"}


def cases(rp: TestRelyingParty, token: str) -> dict[str, Callable[[], Request]]:
    """Return each reproduction as a function that prepares it (a fresh assertion and proof each time)."""
    entry = {"type": "mydata_delivery", "service": SERVICE}
    jwt_bearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

    def par(headers: dict[str, str] | None = None, **changes: str) -> Request:
        return "POST", "/oauth/par", {**form(par_form(rp, **changes)), "headers": headers or {}}

    return {
        "par: empty body": lambda: ("POST", "/oauth/par", {}),
        "par: JSON body": lambda: ("POST", "/oauth/par", {"json": par_form(rp)}),
        "par: off-curve DPoP jwk": lambda: par({"DPoP": off_curve_proof(rp, "POST", f"{ISSUER}/oauth/par")}),
        "token: off-curve DPoP jwk": lambda: (
            "POST",
            "/oauth/token",
            {
                **form({"grant_type": "authorization_code", "code": "x", **rp.client_auth(ISSUER)}),
                "headers": {"DPoP": off_curve_proof(rp, "POST", f"{ISSUER}/oauth/token")},
            },
        ),
        "delivery: off-curve DPoP jwk": lambda: (
            "GET",
            "/api/v1/delivery",
            {
                "headers": {
                    "Authorization": f"DPoP {token}",
                    "DPoP": off_curve_proof(rp, "GET", f"{ISSUER}/api/v1/delivery", token),
                }
            },
        ),
        "par: assertion claims 5,000 arrays deep": lambda: par(
            client_assertion_type=jwt_bearer, client_assertion=raw_assertion(rp, ISSUER, nested_arrays(5000))
        ),
        "par: authorization_details 50,000 deep": lambda: par(authorization_details=nested_arrays(50_000)),
        "par: authorization_details 4,000 deep": lambda: par(authorization_details=nested_arrays(4_000)),
        "par: 5,000 mydata_delivery entries": lambda: par(authorization_details=json.dumps([entry] * 5000)),
        "par: 100 mydata_delivery entries": lambda: par(
            authorization_details=json.dumps([entry] * 100, separators=(",", ":"))
        ),
        "par: 2 mydata_delivery entries": lambda: par(authorization_details=json.dumps([entry] * 2)),
        "par: redirect_uri with U+2603": lambda: par(redirect_uri=REDIRECT_URI + "\u2603"),
        "par: redirect_uri with U+202E": lambda: par(redirect_uri=REDIRECT_URI + "\u202e"),
    }


def main() -> int:
    """Time every refusal once after a warm-up; exit status 1 if any is not a 4xx."""
    logging.disable(logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="mydata-bench-") as tmp:
        settings = Settings(
            instance_path=Path(tmp), sandbox=True, issuer=ISSUER, database_url=f"sqlite:///{tmp}/bench.sqlite",
            master_key=base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode(),
            secret_key=secrets.token_urlsafe(48), log_level="WARNING",
        )  # fmt: skip
        app = create_app(settings)
        cli.upgrade(app)
        rp = TestRelyingParty(client_id="bench-bank", redirect_uri=REDIRECT_URI)
        with app.app_context():
            cli.seed(app)
            with get_db().unit_of_work() as uow:
                register_client(
                    uow, clock(), name="Bench bank", jwks=rp.jwks(), redirect_uris=[REDIRECT_URI], sandbox=True,
                    organisation_id="sandbox-bank", client_id=rp.client_id,
                )  # fmt: skip
                citizen_id = make_citizen(uow, "A123456789").id
        signed_in = Authentication(
            session_id="bench", citizen_id=citizen_id, national_id="A123456789", name="王小明", level="high",
            amr=("sc", "pin", "hwk"), auth_time=int(time.time()), method="eid",
        )  # fmt: skip
        import identity.oauth.views

        identity.oauth.views.current_authentication = lambda: signed_in  # type: ignore[assignment]
        http = app.test_client()
        token = access_token(http, rp)
        results = {}
        for name, prepare in cases(rp, token).items():
            method, path, kwargs = prepare()
            http.open(path, method=method, **kwargs)  # warm-up
            method, path, kwargs = prepare()
            started, cpu = time.perf_counter(), time.thread_time()
            response = http.open(path, method=method, **kwargs)
            elapsed_ms = (time.perf_counter() - started) * 1000
            cpu_ms = (time.thread_time() - cpu) * 1000
            body = response.get_json(silent=True) or {}
            results[name] = {
                "status": response.status_code, "error": body.get("error"), "ms": round(elapsed_ms, 2),
                "cpu_ms": round(cpu_ms, 2),
            }  # fmt: skip
            print(f"{elapsed_ms:8.2f} ms ({cpu_ms:6.2f} ms CPU)  {response.status_code} {body.get('error')}  {name}")
    slowest = max(results, key=lambda n: results[n]["ms"])
    ok = all(400 <= r["status"] < 500 for r in results.values())
    summary = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()} {platform.processor() or platform.platform()}, {os.cpu_count()} CPUs",
        "python": platform.python_version(),
        "cases": results,
        "slowest": {"case": slowest, "ms": results[slowest]["ms"]},
        "all_refused_with_4xx": ok,
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    print(
        f"malformed_input: {len(results)} refusals, all 4xx: {ok}; slowest {results[slowest]['ms']:.2f} ms ({slowest})"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
