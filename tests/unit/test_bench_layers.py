"""bench/oidc_flow.py --breakdown: where a flow's server CPU goes, from bench/probe.py's figures (issue 15)."""

from __future__ import annotations

from types import ModuleType

import pytest

from tests.factories.bench import bench_script


@pytest.fixture(scope="module")
def oidc_flow() -> ModuleType:
    return bench_script("oidc_flow")


def test_the_layers_add_up_to_the_servers_cpu(oidc_flow: ModuleType) -> None:
    probe = {
        "seen": 180,
        "requests": {"POST /oauth/par": 10, "GET /oauth/interaction/<id>": 20},
        "seconds": {
            "POST /oauth/par": {"window": 0.020, "views": 0.012, "statements": 0.004},
            "GET /oauth/interaction/<id>": {"window": 0.040, "views": 0.030, "templates": 0.010, "forms": 0.005},
        },
    }
    layers = oidc_flow.layers(probe, flows=10, server_ms=8.0)
    assert layers == {
        "gunicorn outside the requests": 2.0,
        "Werkzeug, Flask and the extensions around the views": 1.8,
        "views: statements": 0.4,
        "views: templates": 1.0,
        "views: forms": 0.5,
        "views: the rest": 2.3,
    }
    assert sum(layers.values()) == pytest.approx(8.0)
