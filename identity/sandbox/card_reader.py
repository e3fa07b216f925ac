"""The virtual card reader: the sandbox's stand-in for a smart-card reader and its local component.

It holds the sandbox cards of the instance folder. Like a real card, it signs only once the PIN
unlocks the key (the key file is encrypted under the PIN); what it returns goes through the same
verification as a real card's answer.
"""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from identity import national_id as nid
from identity.interfaces import CardSignature, NoCardInReader, WrongPin
from identity.sandbox.pki import SandboxPki


class VirtualCardReader:
    """A card reader holding the sandbox eID cards of *folder* (``instance/sandbox/eid``)."""

    def __init__(self, folder: Path) -> None:
        self.pki = SandboxPki(folder)

    def sign(self, national_id: str, pin: str, nonce: str) -> CardSignature:
        """Unlock the card of *national_id* with *pin* and sign *nonce* (ECDSA P-256, SHA-256)."""
        if not nid.checksum_ok(national_id):  # also keeps the file name inside the cards folder
            raise NoCardInReader()
        certificate_path, key_path = self.pki.card_paths(national_id)
        if not (certificate_path.is_file() and key_path.is_file()):
            raise NoCardInReader()
        try:
            key = serialization.load_pem_private_key(key_path.read_bytes(), password=pin.encode())
        except (ValueError, TypeError):
            raise WrongPin() from None
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        signature = key.sign(nonce.encode(), ec.ECDSA(hashes.SHA256()))
        return CardSignature(certificate_pem=certificate_path.read_text(), signature=signature)
