"""Rate limiting: in memory in the sandbox, in Redis when configured (production)."""

from __future__ import annotations

import os

import pytest
from flask import Blueprint

from mydata.app import create_app
from mydata.config import Settings
from mydata.limits import limiter

REDIS_URL = os.environ.get("MYDATA_TEST_REDIS_URL", "")
STORAGES = ["memory://", REDIS_URL] if REDIS_URL else ["memory://"]


@pytest.mark.parametrize("storage", STORAGES, ids=lambda s: s.split(":")[0])
def test_third_request_in_a_minute_is_refused_with_retry_after(settings: Settings, storage: str) -> None:
    app = create_app(settings.replace(ratelimit_storage_uri=storage))
    limiter.reset()  # counts left by an earlier run in the same Redis database
    bp = Blueprint("limited", __name__)

    @bp.get("/api/v1/limited")
    @limiter.limit("2/minute")
    def limited() -> str:
        return "ok"

    app.register_blueprint(bp)
    client = app.test_client()
    assert [client.get("/api/v1/limited").status_code for _ in range(2)] == [200, 200]
    refused = client.get("/api/v1/limited")
    assert refused.status_code == 429
    assert refused.json["error"] == "too_many_requests"
    assert int(refused.headers["Retry-After"]) > 0


def test_every_limit_is_a_view_decorator(settings: Settings) -> None:
    # Application-wide, default and blueprint limits are checked by Flask-Limiter's before_request
    # hook, which mydata.limits takes off: declaring one would silently not limit anything.
    app = create_app(settings)
    manager = limiter.limit_manager
    assert manager.default_limits == []
    assert manager.application_limits == []
    assert not [name for name in app.blueprints if manager.blueprint_limits(app, name)]
    assert limiter._check_request_limit not in app.before_request_funcs.get(None, [])
