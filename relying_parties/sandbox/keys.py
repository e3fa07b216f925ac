"""The sandbox relying parties' client keys: an ES256 signature key and an ECDH-ES+A256KW encryption key each.

`mydata sandbox seed` creates them in the instance folder (never in the repository), one private
JWKS per organisation readable by its owner only, and registers their public halves as the client's
JWKS. The sandbox RP apps sign their client assertions with the first and decrypt their data
packages with the second.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from joserfc.jwk import ECKey

SIGNATURE_ALGORITHM = "ES256"
ENCRYPTION_ALGORITHM = "ECDH-ES+A256KW"
FILE_NAME = "client.jwk.json"


@dataclass(frozen=True)
class ClientKeys:
    """A sandbox client's private signature and encryption keys."""

    signing_key: ECKey
    encryption_key: ECKey

    def private_jwks(self) -> dict[str, Any]:
        """Return both keys with their private halves (what the key file holds)."""
        return {"keys": [self.signing_key.as_dict(private=True), self.encryption_key.as_dict(private=True)]}

    def public_jwks(self) -> dict[str, Any]:
        """Return the public JWKS to register for the client."""
        return {"keys": [self.signing_key.as_dict(private=False), self.encryption_key.as_dict(private=False)]}


def client_keys_dir(instance_path: Path) -> Path:
    """Return the folder of the sandbox relying parties' keys inside the instance folder."""
    return Path(instance_path) / "sandbox" / "rp"


def key_file(folder: Path, organisation_id: str) -> Path:
    """Return the private JWKS file of an organisation's sandbox client."""
    return Path(folder) / organisation_id / FILE_NAME


def load_client_keys(folder: Path, organisation_id: str) -> ClientKeys | None:
    """Return an organisation's sandbox client keys, or ``None`` when they have not been created yet."""
    try:
        document = json.loads(key_file(folder, organisation_id).read_text())
    except FileNotFoundError:
        return None
    keys = {jwk["use"]: ECKey.import_key(jwk) for jwk in document["keys"]}
    return ClientKeys(signing_key=keys["sig"], encryption_key=keys["enc"])


def ensure_client_keys(folder: Path, organisation_id: str) -> ClientKeys:
    """Return an organisation's sandbox client keys, creating their file on first use."""
    existing = load_client_keys(folder, organisation_id)
    if existing is not None:
        return existing
    keys = ClientKeys(
        signing_key=_generate(organisation_id, "sig", SIGNATURE_ALGORITHM),
        encryption_key=_generate(organisation_id, "enc", ENCRYPTION_ALGORITHM),
    )
    target = key_file(folder, organisation_id)
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    # Written aside with owner-only permissions, then linked into place: two seeders starting at
    # once agree on one pair of keys, and nobody reads a half-written file.
    tmp = target.with_name(f".{target.name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(keys.private_jwks(), fh, indent=2)
    try:
        os.link(tmp, target)
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    loaded = load_client_keys(folder, organisation_id)
    assert loaded is not None
    return loaded


def _generate(organisation_id: str, use: str, alg: str) -> ECKey:
    key = ECKey.generate_key("P-256", private=True)
    # The kid names the organisation, the use and the key's RFC 7638 thumbprint.
    kid = f"{organisation_id}-{use}-{key.thumbprint()[:12]}"
    return ECKey.import_key(key.as_dict(private=True), {"kid": kid, "use": use, "alg": alg})
