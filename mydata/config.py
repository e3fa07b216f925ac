"""Load and validate settings: config/default.toml, then $MYDATA_CONFIG, then MYDATA_* variables."""

from __future__ import annotations

import base64
import binascii
import dataclasses
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.x509 import BasicConstraints, Certificate, ExtensionNotFound, load_pem_x509_certificates
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from mydata.errors import ConfigError, MissingSetting

ROOT = Path(__file__).resolve().parent.parent
CONFIG_DIR = ROOT / "config"
ENV_PREFIX = "MYDATA_"
LOCALES = ("zh_Hant_TW", "en")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


@dataclasses.dataclass(frozen=True)
class Settings:
    """The validated settings of one platform instance."""

    instance_path: Path
    # Off unless asked for (DESIGN §7): a deployment that forgets a setting fails closed.
    sandbox: bool = False
    issuer: str = ""
    database_url: str = ""
    database_echo: bool = False
    ratelimit_storage_uri: str = "memory://"
    master_key: str = ""
    secret_key: str = ""
    default_locale: str = "zh_Hant_TW"
    session_cookie_secure: bool = False
    log_level: str = "INFO"
    eid_ca_roots: str = ""
    # eID trust (DESIGN §3.2): the CAs that issue citizen certificates, what the certificates must
    # carry, and where their revocation is checked. Lists are separated by commas or spaces.
    eid_issuing_cas: str = ""
    eid_policy_oids: str = ""
    eid_extended_key_usages: str = "1.3.6.1.5.5.7.3.2"
    eid_crl_sources: str = ""
    eid_ocsp_url: str = ""
    eid_revocation_grace_seconds: int = 21_600
    eid_revocation_timeout_seconds: float = 3.0
    # Provider protocol client (DESIGN §4.2).
    provider_timeout_seconds: float = 5.0
    provider_max_workers: int = 32
    provider_breaker_threshold: int = 5
    provider_breaker_cool_down_seconds: float = 30.0
    # Sandbox agencies (DESIGN §4.3): the faults they inject by default; relative to the repository.
    sandbox_faults_file: str = "config/sandbox-faults.toml"
    # Transparency ledger (DESIGN §6.3): signed tree head cadence.
    ledger_sth_every_entries: int = 1000
    ledger_sth_every_seconds: int = 300
    # "inline": each append integrates its entry in its own transaction (one lock on the ledger
    # head per append); "sequencer": appends only queue their entry and `mydata ledger sequencer`
    # integrates the queue in batches (docs/decisions/0011).
    ledger_sequencing: str = "inline"
    # Notifications (DESIGN §6.4): the outbox's sender delivers over SMTP. No host: messages stay
    # queued (the sandbox shows them at /sandbox/outbox).
    smtp_host: str = ""
    smtp_port: int = 25
    smtp_from: str = ""
    smtp_starttls: bool = False
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_timeout_seconds: float = 10.0

    def replace(self, **changes: Any) -> Settings:
        """Return a copy with some settings changed, validated again."""
        return validate(dataclasses.replace(self, **changes))


_FIELDS = {f.name: f for f in dataclasses.fields(Settings) if f.name != "instance_path"}


def env_name(setting: str) -> str:
    """Return the environment variable that sets *setting*."""
    return ENV_PREFIX + setting.upper()


def load_settings(
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    *,
    defaults: Mapping[str, Any] | None = None,
) -> Settings:
    """Read every layer of configuration and return validated settings.

    *defaults* stand in for those of config/default.toml (`mydata demo` defaults to the sandbox);
    *overrides* win over every layer. Raise :class:`ConfigError` naming the first setting that is
    missing a valid value.
    """
    environ = os.environ if environ is None else environ
    values: dict[str, tuple[Any, str]] = {}
    _merge(values, _read_toml(CONFIG_DIR / "default.toml"), "config/default.toml")
    _merge(values, defaults or {}, "the defaults of the command")
    extra = environ.get(env_name("config"))
    if extra:
        _merge(values, _read_toml(Path(extra), setting=env_name("config")), extra)
    for name in _FIELDS:
        if env_name(name) in environ:
            values[name] = (environ[env_name(name)], env_name(name))
    for name, value in (overrides or {}).items():
        values[name] = (value, name)

    instance = environ.get(env_name("instance_path")) or str(ROOT / "instance")
    kwargs: dict[str, Any] = {"instance_path": Path(instance).expanduser().resolve()}
    for name, (raw, source) in values.items():
        kwargs[name] = _coerce(name, raw, source)
    return validate(Settings(**kwargs))


def validate(settings: Settings) -> Settings:
    """Check the settings against each other; raise :class:`ConfigError` on the first problem."""
    if settings.database_url:
        try:
            url = make_url(settings.database_url)
        except ArgumentError:
            raise ConfigError(
                env_name("database_url"),
                f"not a database URL: {settings.database_url!r} "
                "(expected sqlite:///path or postgresql+psycopg://user@host/db)",
            ) from None
        if url.get_backend_name() not in ("sqlite", "postgresql"):
            raise ConfigError(
                env_name("database_url"),
                f"unsupported database {url.get_backend_name()!r} (use sqlite or postgresql)",
            )
        if url.get_backend_name() == "postgresql" and url.get_driver_name() != "psycopg":
            raise ConfigError(
                env_name("database_url"), "PostgreSQL URLs must use the psycopg 3 driver: postgresql+psycopg://..."
            )
    if settings.issuer:
        parts = urlsplit(settings.issuer)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
            raise ConfigError(env_name("issuer"), f"not a base URL: {settings.issuer!r}")
        if settings.issuer.endswith("/"):
            raise ConfigError(env_name("issuer"), "must not end with '/'")
    if settings.default_locale not in LOCALES:
        raise ConfigError(env_name("default_locale"), f"must be one of {', '.join(LOCALES)}")
    if settings.log_level.upper() not in LOG_LEVELS:
        raise ConfigError(env_name("log_level"), f"must be one of {', '.join(LOG_LEVELS)}")
    if not settings.ratelimit_storage_uri.startswith(("memory://", "redis://", "rediss://")):
        raise ConfigError(env_name("ratelimit_storage_uri"), "must be memory://, redis:// or rediss://")
    if settings.master_key:
        decode_master_key(settings.master_key)
    _validate_providers(settings)
    if not 1 <= settings.ledger_sth_every_entries <= 10_000_000:
        raise ConfigError(env_name("ledger_sth_every_entries"), "must be between 1 and 10000000 entries")
    if not 1 <= settings.ledger_sth_every_seconds <= 86_400:
        raise ConfigError(env_name("ledger_sth_every_seconds"), "must be between 1 and 86400 seconds")
    if settings.ledger_sequencing not in ("inline", "sequencer"):
        raise ConfigError(env_name("ledger_sequencing"), "must be inline or sequencer")
    _validate_smtp(settings)
    if not settings.sandbox:
        _validate_production(settings)
    if settings.eid_ca_roots:
        _validate_eid_ca_roots(settings.eid_ca_roots)
    _validate_eid(settings)
    return settings


def setting_list(value: str) -> list[str]:
    """Split a list setting (separated by commas or whitespace) into its items."""
    return value.replace(",", " ").split()


_OID = re.compile(r"[0-2](\.(0|[1-9][0-9]*))+")


def _validate_eid(settings: Settings) -> None:
    """Check the eID trust settings; outside the sandbox, require issuing CAs, a policy and a revocation source."""
    if settings.eid_issuing_cas:
        _validate_eid_issuing_cas(settings.eid_issuing_cas, settings.eid_ca_roots)
    for name in ("eid_policy_oids", "eid_extended_key_usages"):
        for oid in setting_list(getattr(settings, name)):
            if not _OID.fullmatch(oid):
                raise ConfigError(env_name(name), f"{oid!r} is not a dotted object identifier such as 2.16.886.101")
    for url in [*setting_list(settings.eid_crl_sources), settings.eid_ocsp_url]:
        parts = urlsplit(url)
        if url and parts.scheme not in ("", "file") and (parts.scheme not in ("http", "https") or not parts.netloc):
            name = "eid_ocsp_url" if url == settings.eid_ocsp_url else "eid_crl_sources"
            raise ConfigError(env_name(name), f"{url!r} is neither an http(s) URL nor a file")
    if settings.eid_ocsp_url and not settings.eid_ocsp_url.startswith(("http://", "https://")):
        raise ConfigError(env_name("eid_ocsp_url"), "must be an http:// or https:// URL")
    if not 0 <= settings.eid_revocation_grace_seconds <= 7 * 86_400:
        raise ConfigError(env_name("eid_revocation_grace_seconds"), "must be between 0 and 604800 seconds (7 days)")
    if not 0 < settings.eid_revocation_timeout_seconds <= 30:
        raise ConfigError(env_name("eid_revocation_timeout_seconds"), "must be more than 0 and at most 30 seconds")
    if settings.sandbox:
        return  # empty settings mean the sandbox CA, its policy and its CRL (identity.init_app)
    # The issuing CAs and the policy are required with the other settings (_validate_production).
    if not settings.eid_crl_sources and not settings.eid_ocsp_url:
        raise ConfigError(env_name("eid_crl_sources"), "or MYDATA_EID_OCSP_URL is required when sandbox is off")


def _validate_eid_issuing_cas(path: str, roots: str) -> None:
    """Check that the issuing CAs file holds CA certificates, each issued by a certificate of the roots bundle."""
    try:
        certificates = load_pem_x509_certificates(Path(path).expanduser().read_bytes())
    except OSError as exc:
        raise ConfigError(env_name("eid_issuing_cas"), f"cannot read {path}: {exc.strerror}") from None
    except ValueError:
        raise ConfigError(env_name("eid_issuing_cas"), f"{path} holds no PEM certificate") from None
    try:
        bundle = load_pem_x509_certificates(Path(roots).expanduser().read_bytes()) if roots else []
    except (OSError, ValueError):
        bundle = []  # reported for eid_ca_roots itself
    for certificate in certificates:
        try:
            is_ca = certificate.extensions.get_extension_for_class(BasicConstraints).value.ca
        except ExtensionNotFound:
            is_ca = False
        subject = certificate.subject.rfc4514_string()
        if not is_ca:
            raise ConfigError(env_name("eid_issuing_cas"), f"{subject} in {path} is not a CA certificate")
        if bundle and not any(_issued_by(certificate, ca) for ca in bundle):
            raise ConfigError(
                env_name("eid_issuing_cas"), f"{subject} in {path} is not issued by a certificate of {roots}"
            )


def _issued_by(certificate: Certificate, ca: Certificate) -> bool:
    try:
        certificate.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _validate_providers(settings: Settings) -> None:
    """Keep the provider client's timeout, pool and circuit breaker within sensible bounds."""
    if not 0 < settings.provider_timeout_seconds <= 60:
        raise ConfigError(env_name("provider_timeout_seconds"), "must be more than 0 and at most 60 seconds")
    if not 1 <= settings.provider_max_workers <= 256:
        raise ConfigError(env_name("provider_max_workers"), "must be between 1 and 256")
    if not 1 <= settings.provider_breaker_threshold <= 1000:
        raise ConfigError(env_name("provider_breaker_threshold"), "must be between 1 and 1000 failures")
    if not 0 < settings.provider_breaker_cool_down_seconds <= 3600:
        raise ConfigError(
            env_name("provider_breaker_cool_down_seconds"), "must be more than 0 and at most 3600 seconds"
        )


_MAIL_ADDRESS = re.compile(r"[^@\s<>\"]+@[^@\s<>\"]+\.[^@\s<>\"]+")


def _validate_smtp(settings: Settings) -> None:
    """Check the outbox sender's SMTP settings: a host needs a sender address; login needs both halves."""
    if not 1 <= settings.smtp_port <= 65_535:
        raise ConfigError(env_name("smtp_port"), "must be a TCP port between 1 and 65535")
    if not 0 < settings.smtp_timeout_seconds <= 120:
        raise ConfigError(env_name("smtp_timeout_seconds"), "must be more than 0 and at most 120 seconds")
    if settings.smtp_host and not settings.smtp_from:
        raise ConfigError(env_name("smtp_from"), "is required when MYDATA_SMTP_HOST is set")
    if settings.smtp_from and not _MAIL_ADDRESS.fullmatch(settings.smtp_from):
        raise ConfigError(env_name("smtp_from"), f"not an email address: {settings.smtp_from!r}")
    if bool(settings.smtp_username) != bool(settings.smtp_password):
        missing = "smtp_password" if settings.smtp_username else "smtp_username"
        raise ConfigError(env_name(missing), "SMTP login needs both MYDATA_SMTP_USERNAME and MYDATA_SMTP_PASSWORD")


def _validate_production(settings: Settings) -> None:
    """Refuse the settings that are only safe in the sandbox."""
    required = (
        "issuer",
        "database_url",
        "master_key",
        "secret_key",
        "eid_ca_roots",
        "eid_issuing_cas",
        "eid_policy_oids",
    )
    missing = [env_name(name) for name in required if not getattr(settings, name)]
    if missing:
        # All of them at once: an operator fixes the configuration in one go, not one restart each.
        raise MissingSetting(missing, "required when sandbox is off")
    if not settings.issuer.startswith("https://"):
        raise ConfigError(env_name("issuer"), "must be https when sandbox is off")
    if len(settings.secret_key) < 32:
        raise ConfigError(env_name("secret_key"), "must be at least 32 characters")
    if settings.ratelimit_storage_uri.startswith("memory://"):
        raise ConfigError(env_name("ratelimit_storage_uri"), "must be a shared redis:// store when sandbox is off")


def _validate_eid_ca_roots(path: str) -> None:
    """Check that the eID trust bundle is a readable PEM file holding at least one self-signed root."""
    try:
        certificates = load_pem_x509_certificates(Path(path).expanduser().read_bytes())
    except OSError as exc:
        raise ConfigError(env_name("eid_ca_roots"), f"cannot read {path}: {exc.strerror}") from None
    except ValueError:
        raise ConfigError(env_name("eid_ca_roots"), f"{path} holds no PEM certificate") from None
    if not any(cert.subject == cert.issuer for cert in certificates):
        raise ConfigError(env_name("eid_ca_roots"), f"{path} holds no root (self-signed) certificate")


def decode_master_key(value: str) -> bytes:
    """Decode a base64url master key and check that it is 32 bytes."""
    try:
        key = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        raise ConfigError(env_name("master_key"), "is not base64url") from None
    if len(key) != 32:
        raise ConfigError(env_name("master_key"), f"must decode to 32 bytes, not {len(key)}")
    return key


def _read_toml(path: Path, setting: str | None = None) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(setting or str(path), f"file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(setting or str(path), f"{path} is not valid TOML: {exc}") from None


def _merge(values: dict[str, tuple[Any, str]], layer: Mapping[str, Any], source: str) -> None:
    for name, value in layer.items():
        if name not in _FIELDS:
            raise ConfigError(name, f"unknown setting in {source}")
        values[name] = (value, source)


def _coerce(name: str, raw: Any, source: str) -> Any:
    default = _FIELDS[name].default
    if isinstance(default, bool):
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
        raise ConfigError(_label(name, source), f"must be true or false, not {raw!r}")
    if isinstance(default, int | float):
        return _coerce_number(type(default), name, raw, source)
    if not isinstance(raw, str):
        raise ConfigError(_label(name, source), f"must be a string, not {raw!r}")
    return raw.strip()


def _coerce_number(kind: type[int] | type[float], name: str, raw: Any, source: str) -> int | float:
    noun = "a whole number" if kind is int else "a number"
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise ConfigError(_label(name, source), f"must be {noun}, not {raw!r}")
    try:
        value = float(raw) if isinstance(raw, str) else raw
    except ValueError:
        raise ConfigError(_label(name, source), f"must be {noun}, not {raw!r}") from None
    if kind is int:
        if isinstance(value, float) and not value.is_integer():
            raise ConfigError(_label(name, source), f"must be {noun}, not {raw!r}")
        return int(value)
    return float(value)


def _label(name: str, source: str) -> str:
    return source if source.startswith(ENV_PREFIX) else f"{name} (in {source})"
