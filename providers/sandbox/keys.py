"""The sandbox agencies' response-signing keys: one ES256 key per agency, in the instance folder.

`mydata sandbox seed` creates them (never in the repository) and registers their public halves in
the catalogue. Each file holds the private JWK, readable by its owner only.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from mydata.keys import public_jwk, thumbprint


@dataclass(frozen=True)
class AgencyKey:
    """An agency's private signing key and its kid."""

    kid: str
    private_key: ec.EllipticCurvePrivateKey

    def public_jwk(self) -> dict[str, str]:
        """Return the public JWK to register in the catalogue."""
        return public_jwk(self.private_key.public_key(), self.kid, "ES256")

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        """Return a JWKS holding this key's public half."""
        return {"keys": [self.public_jwk()]}


def agency_keys_dir(instance_path: Path) -> Path:
    """Return the folder of the sandbox agencies' keys inside the instance folder."""
    return Path(instance_path) / "sandbox" / "agencies"


def generate_agency_key(provider_id: str) -> AgencyKey:
    """Create a new ES256 key whose kid names the provider and the key's thumbprint."""
    private_key = ec.generate_private_key(ec.SECP256R1())
    kid = f"{provider_id}-{thumbprint(public_jwk(private_key.public_key(), ''))[:12]}"
    return AgencyKey(kid=kid, private_key=private_key)


def load_agency_key(folder: Path, provider_id: str) -> AgencyKey | None:
    """Return the provider's key from *folder*, or ``None`` when it has not been created yet."""
    try:
        jwk = json.loads(_path(folder, provider_id).read_text())
    except FileNotFoundError:
        return None
    key = ECAlgorithm.from_jwk(jwk)
    assert isinstance(key, ec.EllipticCurvePrivateKey), "an agency key file must hold a private EC key"
    return AgencyKey(kid=jwk["kid"], private_key=key)


def ensure_agency_key(folder: Path, provider_id: str) -> AgencyKey:
    """Return the provider's key, creating its file on first use."""
    existing = load_agency_key(folder, provider_id)
    if existing is not None:
        return existing
    folder.mkdir(parents=True, exist_ok=True)
    key = generate_agency_key(provider_id)
    private = json.loads(ECAlgorithm.to_jwk(key.private_key))
    document = {**private, "kid": key.kid, "alg": "ES256", "use": "sig"}
    target = _path(folder, provider_id)
    # Written aside with owner-only permissions, then linked into place: two seeders starting at
    # once agree on one key, and nobody reads a half-written file.
    tmp = target.with_name(f".{target.name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(document, fh)
    try:
        os.link(tmp, target)
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    loaded = load_agency_key(folder, provider_id)
    assert loaded is not None
    return loaded


def _path(folder: Path, provider_id: str) -> Path:
    return Path(folder) / f"{provider_id}.jwk.json"
