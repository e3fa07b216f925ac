"""A gunicorn configuration that measures where the CPU of each request goes (bench/oidc_flow.py --breakdown).

For a server of one worker with one thread, serving one request at a time. It records the thread CPU
of each request between gunicorn's `pre_request` and `post_request` hooks: the WSGI app and the
writing of its answer. Within that window it also records the CPU of these parts:

* the views (Flask's `dispatch_request`);
* inside the views: the statements run on the driver (`mydata.db._DriverStatement.execute`), the
  templates (Flask's `_render`) and the forms built or validated (WTForms), each counted once when
  it runs inside itself.

What the window holds besides the views is Werkzeug's, Flask's and the extensions' work around them.
What the server spends outside the windows (gunicorn's poller, HTTP parser and keep-alive) is its
CPU from /proc minus the windows'.

    gunicorn -w 1 --threads 1 -c bench/probe.py 'mydata.app:create_app()'

Environment: MYDATA_BENCH_PROBE, the JSON file written when the worker exits: its figures in
seconds by request ("METHOD /path", long identifiers as <id>) and part, and the requests counted.
MYDATA_BENCH_PROBE_START, a file: requests are counted from the first that begins once it exists
(the bench creates it after its warm-up); every request is counted without it.
"""

from __future__ import annotations

import functools
import importlib
import json
import os
import re
import threading
import time
from collections import defaultdict
from typing import Any

#: The parts measured inside a request's window: (name in the results, module, attribute).
PARTS = (
    ("views", "flask.app", "Flask.dispatch_request"),
    ("statements", "mydata.db", "_DriverStatement.execute"),
    ("templates", "flask.templating", "_render"),
    ("forms", "wtforms.form", "FormMeta.__call__"),
    ("forms", "wtforms.form", "Form.validate"),
)

_spent: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
_counted: dict[str, int] = defaultdict(int)
_started = [False]
_current = threading.local()


def _endpoint(method: str, path: str) -> str:
    return f"{method} {re.sub(r'/[A-Za-z0-9_-]{32,}', '/<id>', path)}"


def _measured(part: str, function: Any) -> Any:
    @functools.wraps(function)
    def measured(*args: Any, **kwargs: Any) -> Any:
        endpoint = getattr(_current, "endpoint", None)
        depth = getattr(_current, part, 0)
        started = time.thread_time()
        setattr(_current, part, depth + 1)
        try:
            return function(*args, **kwargs)
        finally:
            setattr(_current, part, depth)
            if endpoint is not None and depth == 0:  # a part inside itself counts once
                _spent[endpoint][part] += time.thread_time() - started

    return measured


def post_worker_init(worker: Any) -> None:
    """Wrap the measured parts, once the worker has loaded the app."""
    for part, module_name, attribute in PARTS:
        owner: Any = importlib.import_module(module_name)
        *classes, name = attribute.split(".")
        for class_name in classes:
            owner = getattr(owner, class_name)
        setattr(owner, name, _measured(part, getattr(owner, name)))


def pre_request(worker: Any, request: Any) -> None:
    """Start measuring a request, unless it is part of the warm-up."""
    if not _started[0]:
        start = os.environ.get("MYDATA_BENCH_PROBE_START")
        _started[0] = start is None or os.path.exists(start)
    _current.endpoint = _endpoint(request.method, request.path) if _started[0] else None
    _current.started = time.thread_time()


def post_request(worker: Any, request: Any, environ: Any, response: Any) -> None:
    """Count the request's window."""
    endpoint = getattr(_current, "endpoint", None)
    if endpoint is not None:
        _spent[endpoint]["window"] += time.thread_time() - _current.started
        _counted[endpoint] += 1
    _current.endpoint = None


def worker_exit(server: Any, worker: Any) -> None:
    """Write what was measured."""
    target = os.environ.get("MYDATA_BENCH_PROBE")
    if target:
        with open(target, "w") as out:
            json.dump({"requests": dict(_counted), "seconds": {k: dict(v) for k, v in _spent.items()}}, out)
