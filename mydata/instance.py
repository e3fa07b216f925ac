"""The instance folder: the embedded database and, in the sandbox only, generated secrets."""

from __future__ import annotations

import base64
import os
import secrets
from collections.abc import Callable
from pathlib import Path

from mydata.config import Settings


def prepare(settings: Settings) -> Settings:
    """Create the instance folder; in the sandbox, fill in missing secrets from files kept there.

    Outside the sandbox the settings are already required to carry their secrets.
    """
    path = Path(settings.instance_path)
    path.mkdir(parents=True, exist_ok=True)
    if not settings.sandbox:
        return settings
    changes = {}
    if not settings.master_key:
        changes["master_key"] = _read_or_create(
            path / "master.key", lambda: base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode()
        )
    if not settings.secret_key:
        changes["secret_key"] = _read_or_create(path / "secret.key", lambda: secrets.token_urlsafe(48))
    return settings.replace(**changes) if changes else settings


def _read_or_create(file: Path, make: Callable[[], str]) -> str:
    if not file.exists():
        # Written aside then linked into place: two processes starting at once agree on one value,
        # and neither can read a half-written file.
        tmp = file.with_name(f".{file.name}.{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(make() + "\n")
        try:
            os.link(tmp, file)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return file.read_text().strip()
