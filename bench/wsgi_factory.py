"""The WSGI app for servers that take a module attribute rather than a factory call (uWSGI).

``MYDATA_WSGI_FACTORY`` names the factory, "module:function" (e.g. ``mydata.app:create_app``); it is
called once per worker process (uWSGI's ``--lazy-apps``), as gunicorn and granian call theirs.
"""

from __future__ import annotations

import importlib
import os

_module, _, _function = os.environ["MYDATA_WSGI_FACTORY"].partition(":")
application = getattr(importlib.import_module(_module), _function)()
