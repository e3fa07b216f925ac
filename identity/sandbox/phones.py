"""The mobile app simulator's phones: one enrolled device key per sandbox persona.

A real phone keeps its key in secure hardware and signs after a fingerprint or face check; here
the keys are files in ``instance/sandbox/mobile`` and approving is a click (or a JSON call). The
signature is real and goes through the same check as a phone's.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from identity import mobile, services
from identity import national_id as nid
from identity.interfaces import NoMobileDevice
from identity.models import MobileRequest
from mydata.db import UnitOfWork
from mydata.keys import public_jwk


class SandboxPhones:
    """The simulated phones of the sandbox personas, keyed by national ID."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    @staticmethod
    def device_id(national_id: str) -> str:
        """Return the device id of a persona's phone (stable, so seeding twice changes nothing)."""
        return f"sandbox-phone-{national_id}"

    def _path(self, national_id: str) -> Path:
        if not nid.checksum_ok(national_id):  # also keeps the file name inside the folder
            raise NoMobileDevice()
        return self.folder / f"{national_id}.key"

    def key(self, national_id: str) -> ec.EllipticCurvePrivateKey | None:
        """Return the device key of a persona's phone, if the phone exists."""
        path = self._path(national_id)
        if not path.is_file():
            return None
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        return key

    def ensure_key(self, national_id: str) -> ec.EllipticCurvePrivateKey:
        """Return the phone's device key, creating the phone on first use."""
        key = self.key(national_id)
        if key is None:
            key = ec.generate_private_key(ec.SECP256R1())
            data = key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
            path = self._path(national_id)
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
        return key

    def enrol(self, uow: UnitOfWork, citizen_id: str, national_id: str, now: dt.datetime) -> None:
        """Enrol the persona's phone (its current key) for mobile ID."""
        jwk = public_jwk(self.ensure_key(national_id).public_key(), kid=self.device_id(national_id))
        services.enrol_device(uow, citizen_id, jwk, "Sandbox phone", now, device_id=self.device_id(national_id))

    def approve(self, uow: UnitOfWork, national_id: str, now: dt.datetime) -> MobileRequest:
        """Approve the persona's newest pending request, as their phone would after a fingerprint."""
        citizen = services.find_citizen(uow, national_id)
        key = self.key(national_id)
        if citizen is None or key is None:
            raise NoMobileDevice()
        request = mobile.latest_pending(uow, citizen.id, now)
        approval = mobile.sign_approval(key, self.device_id(national_id), mobile.approval_claims(request))
        return mobile.approve(uow, approval, now)
