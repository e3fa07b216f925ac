"""eID revocation across real HTTP: the sandbox CA's OCSP responder and CRL, and `mydata sandbox revoke-card`."""

from __future__ import annotations

import html
import os
import subprocess
import sys
from pathlib import Path

from cryptography import x509

from identity import eid_trust
from identity.sandbox.pki import OCSP_LIFETIME
from tests.factories.live import Browser, SandboxCard, ShiftedClock, serve_platform

MYDATA = str(Path(sys.executable).with_name("mydata"))


def test_a_card_revoked_with_the_command_is_refused_through_ocsp_over_http(tmp_path: Path) -> None:
    clock = ShiftedClock()
    with serve_platform(tmp_path, clock=clock) as live:
        # The platform asks the sandbox CA's OCSP responder, over HTTP, instead of reading its CRL file.
        settings = live.app.config["MYDATA_SETTINGS"]
        pki = live.app.extensions["identity.sandbox_pki"]
        ocsp_url = f"{live.base}/sandbox/eid/ocsp"
        live.app.extensions["identity.eid_trust"] = eid_trust(settings.replace(eid_ocsp_url=ocsp_url), pki)
        instance = settings.instance_path
        card = SandboxCard.of(instance, "A123456789")
        browser = Browser(live.base)
        assert browser.log_in_with_card(browser.get("/login"), card).status_code == 303

        environment = {k: v for k, v in os.environ.items() if not k.startswith("MYDATA_")}
        environment |= {
            "MYDATA_INSTANCE_PATH": str(instance),
            "MYDATA_DATABASE_URL": settings.database_url,
            "MYDATA_SANDBOX": "true",
        }
        revoked = subprocess.run(
            [MYDATA, "sandbox", "revoke-card", "A123456789"],
            env=environment,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert revoked.returncode == 0, revoked.stderr
        assert "Revoked the eID card of A123456789" in revoked.stdout

        # The CRL the sandbox publishes lists the card.
        crl = x509.load_der_x509_crl(Browser(live.base).get("/sandbox/eid/ca.crl").content)
        serial = x509.load_pem_x509_certificates(card.certificate_pem.encode())[0].serial_number
        assert crl.get_revoked_certificate_by_serial_number(serial) is not None

        clock.offset += OCSP_LIFETIME.total_seconds()  # the "good" answer the platform holds has expired
        other = Browser(live.base)
        refused = other.log_in_with_card(other.get("/login?lang=en"), card)
        assert refused.status_code == 401
        assert "The certificate was refused: it was revoked on" in html.unescape(refused.text)
        fine = Browser(live.base)
        assert fine.log_in_with_card(fine.get("/login"), SandboxCard.of(instance, "B223456782")).status_code == 303
