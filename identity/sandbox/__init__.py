"""Sandbox identity: the personas, the sandbox eID CA, the virtual card reader and the phone simulator.

Mounted by :func:`identity.init_app` only when sandbox mode is on.
"""

from __future__ import annotations

from pathlib import Path

from flask import Flask

from identity.sandbox import cli, views
from identity.sandbox.card_reader import VirtualCardReader
from identity.sandbox.personas import demo_notes, seed_personas
from identity.sandbox.phones import SandboxPhones
from identity.sandbox.pki import SandboxPki
from mydata.cli import register_seeder, sandbox_cli
from mydata.security import csrf


def init_app(app: Flask, folder: Path) -> None:
    """Mount the simulators, put the virtual card reader in place and register the personas' seeding."""
    app.extensions["identity.card_reader"] = VirtualCardReader(folder / "eid")
    app.extensions["identity.sandbox_pki"] = SandboxPki(folder / "eid")
    app.extensions["identity.sandbox_phones"] = SandboxPhones(folder / "mobile")
    app.register_blueprint(views.bp)
    sandbox_cli.add_command(cli.revoke_card)
    # JSON for scripts and tests, authenticated by nothing but sandbox mode: no cookie to protect.
    csrf.exempt(views.phone_approve_json)
    csrf.exempt(views.card_reader_sign)
    csrf.exempt(views.eid_ocsp)  # OCSP clients post DER, with no cookie to protect
    clock = app.extensions["mydata.clock"]
    register_seeder(app, "identity personas, eID cards and phones", lambda uow: seed_personas(uow, folder, clock))
    app.extensions.setdefault("mydata.demo_notes", []).extend(demo_notes())
