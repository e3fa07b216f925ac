"""Benchmark of the eID revocation check on the login path (DESIGN §3.2): what a fresh cache costs.

A sandbox CA issues a card; its CRL lists many revoked serials (a national CA's CRL holds hundreds of
thousands). Measured, per call, median and p99 over many calls once the cache is warm:

* ``check`` with the CRL from a URL (no fetch: the cache is fresh) and from a file (one ``stat`` to
  see whether the file changed);
* ``check`` with an OCSP answer in the cache;
* the whole ``verify_card`` (chain, policy, signature over the nonce, revocation), for scale;
* loading the CRL once (what a refresh costs, without the network).

Prints one summary line and writes bench/results/eid_revocation.json.

    make bench, or: PYTHONPATH=. .venv/bin/python bench/eid_revocation.py [--revoked 20000] [--calls 20000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from identity import eid  # noqa: E402
from identity.interfaces import CardSignature  # noqa: E402
from identity.revocation import RevocationChecker, _load_crl  # noqa: E402
from identity.sandbox.pki import CITIZEN_POLICY_OID, SandboxPki, issue_card, make_crl, pem  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "eid_revocation.json"
URL = "http://crl.example/ca.crl"
OCSP_URL = "http://ocsp.example/"


def per_call(function: Callable[[], object], calls: int) -> dict[str, float]:
    """Return the median and p99 of *function*'s duration in microseconds."""
    for _ in range(min(calls, 1000)):
        function()
    durations = []
    for _ in range(calls):
        start = time.perf_counter_ns()
        function()
        durations.append((time.perf_counter_ns() - start) / 1000)
    durations.sort()
    return {"median_us": round(statistics.median(durations), 2), "p99_us": round(durations[int(calls * 0.99)], 2)}


def main() -> None:
    """Measure and report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--revoked", type=int, default=20_000, help="serials on the CRL (building it is slow)")
    parser.add_argument("--calls", type=int, default=20_000, help="measured calls per case")
    args = parser.parse_args()
    now = dt.datetime.now(dt.UTC)
    with tempfile.TemporaryDirectory() as folder:
        pki = SandboxPki(Path(folder))
        ca = pki.ensure_authorities(now)
        card, key = issue_card(ca, "A123456789", "王小明", now)
        crl = make_crl(ca, dict.fromkeys(range(1, args.revoked + 1), now), now, 1)
        der = crl.public_bytes(serialization.Encoding.DER)
        pki.crl_path.write_bytes(der)
        issuing = [ca.certificate]

        class Fetcher:
            def get(self, url: str) -> bytes:
                return der

            def post(self, url: str, body: bytes, content_type: str) -> bytes:
                builder = ocsp.OCSPResponseBuilder().add_response(
                    cert=card,
                    issuer=ca.certificate,
                    algorithm=hashes.SHA1(),  # noqa: S303  # RFC 5019 CertID
                    cert_status=ocsp.OCSPCertStatus.GOOD,
                    this_update=now,
                    next_update=now + dt.timedelta(hours=1),
                    revocation_time=None,
                    revocation_reason=None,
                )
                response = builder.responder_id(ocsp.OCSPResponderEncoding.HASH, ca.certificate)
                return response.sign(ca.key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)

        grace = dt.timedelta(hours=6)
        by_url = RevocationChecker([URL], "", grace, Fetcher())
        by_file = RevocationChecker([str(pki.crl_path)], "", grace, Fetcher())
        by_ocsp = RevocationChecker([], OCSP_URL, grace, Fetcher())
        figures = {
            "crl_url_fresh": per_call(lambda: by_url.check(card, ca.certificate, issuing, now), args.calls),
            "crl_file_fresh": per_call(lambda: by_file.check(card, ca.certificate, issuing, now), args.calls),
            "ocsp_fresh": per_call(lambda: by_ocsp.check(card, ca.certificate, issuing, now), args.calls),
        }
        trust = eid.EidTrust(
            eid.TrustBundle(pki.bundle_path, pki.issuing_path), eid.CardRules(frozenset({CITIZEN_POLICY_OID})), by_url
        )
        signature = key.sign(b"nonce", ec.ECDSA(hashes.SHA256()))
        answer = CardSignature((pem(card) + pem(ca.certificate)).decode(), signature)
        anchors = trust.anchors()
        figures["verify_card"] = per_call(
            lambda: eid.verify_card(answer, "nonce", anchors, trust.rules, trust.revocation, now), args.calls // 10
        )
        start = time.perf_counter()
        _load_crl(der, issuing, now)
        figures["crl_load_ms"] = {"once": round((time.perf_counter() - start) * 1000, 1)}
    report = {"revoked_serials": args.revoked, "crl_bytes": len(der), "calls": args.calls, "figures": figures}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(
        f"eID revocation check from a fresh cache, CRL of {args.revoked} serials ({len(der) // 1024} kB): "
        f"URL {figures['crl_url_fresh']['median_us']} us, file {figures['crl_file_fresh']['median_us']} us, "
        f"OCSP {figures['ocsp_fresh']['median_us']} us (median); whole verify_card "
        f"{figures['verify_card']['median_us']} us; loading the CRL {figures['crl_load_ms']['once']} ms. "
        f"-> {RESULTS.relative_to(ROOT)}"
    )


if __name__ == "__main__":
    main()
