"""Configuration layers and validation (DESIGN §7)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from mydata.config import Settings, load_settings
from mydata.errors import ConfigError, MissingSetting
from tests.factories.identity import production_environment

SANDBOX = {"MYDATA_SANDBOX": "true"}
REQUIRED = [
    "MYDATA_ISSUER", "MYDATA_DATABASE_URL", "MYDATA_MASTER_KEY", "MYDATA_SECRET_KEY",
    "MYDATA_EID_CA_ROOTS", "MYDATA_EID_ISSUING_CAS", "MYDATA_EID_POLICY_OIDS",
]  # fmt: skip


def test_sandbox_is_off_unless_asked_for(tmp_path: Path) -> None:
    assert Settings(instance_path=tmp_path).sandbox is False
    # Nothing configured: start-up stops, naming every setting that is missing, in one line.
    with pytest.raises(MissingSetting) as raised:
        load_settings({"MYDATA_INSTANCE_PATH": str(tmp_path)})
    assert raised.value.settings == REQUIRED
    assert raised.value.line() == f"mydata: missing settings {', '.join(REQUIRED)} (required when sandbox is off)"
    settings = load_settings({"MYDATA_INSTANCE_PATH": str(tmp_path), **SANDBOX})
    assert settings.sandbox is True
    assert settings.database_url == ""
    assert settings.instance_path == tmp_path
    assert settings.default_locale == "zh_Hant_TW"


def test_the_demo_defaults_to_the_sandbox_but_the_configuration_wins(tmp_path: Path) -> None:
    assert load_settings({}, defaults={"sandbox": True}).sandbox is True
    off = tmp_path / "off.toml"
    off.write_text("sandbox = false\n")
    with pytest.raises(MissingSetting):
        load_settings({"MYDATA_CONFIG": str(off)}, defaults={"sandbox": True})
    with pytest.raises(MissingSetting):
        load_settings({"MYDATA_SANDBOX": "false"}, defaults={"sandbox": True})


def test_one_missing_secret_is_named_alone(tmp_path: Path) -> None:
    complete = production_environment(tmp_path)
    del complete["MYDATA_SECRET_KEY"]
    with pytest.raises(MissingSetting) as raised:
        load_settings(complete)
    assert raised.value.line() == "mydata: missing setting MYDATA_SECRET_KEY (required when sandbox is off)"


def test_file_then_environment_take_precedence(tmp_path: Path) -> None:
    extra = tmp_path / "site.toml"
    extra.write_text('log_level = "WARNING"\nissuer = "http://file.example"\n')
    settings = load_settings({"MYDATA_CONFIG": str(extra), "MYDATA_ISSUER": "http://env.example", **SANDBOX})
    assert settings.log_level == "WARNING"
    assert settings.issuer == "http://env.example"


@pytest.mark.parametrize(
    ("environ", "setting"),
    [
        ({"MYDATA_DATABASE_URL": "nonsense"}, "MYDATA_DATABASE_URL"),
        ({"MYDATA_DATABASE_URL": "mysql://x@y/z"}, "MYDATA_DATABASE_URL"),
        ({"MYDATA_DATABASE_URL": "postgresql+psycopg2://x@y/z"}, "MYDATA_DATABASE_URL"),
        ({"MYDATA_SANDBOX": "perhaps"}, "MYDATA_SANDBOX"),
        ({"MYDATA_ISSUER": "ftp://x"}, "MYDATA_ISSUER"),
        ({"MYDATA_ISSUER": "https://x/"}, "MYDATA_ISSUER"),
        ({"MYDATA_DEFAULT_LOCALE": "fr"}, "MYDATA_DEFAULT_LOCALE"),
        ({"MYDATA_MASTER_KEY": "c2hvcnQ"}, "MYDATA_MASTER_KEY"),
        ({"MYDATA_RATELIMIT_STORAGE_URI": "memcached://x"}, "MYDATA_RATELIMIT_STORAGE_URI"),
        ({"MYDATA_CONFIG": "/nonexistent.toml"}, "MYDATA_CONFIG"),
    ],
)
def test_invalid_setting_names_the_setting(environ: dict[str, str], setting: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings(environ)
    assert raised.value.setting == setting


def test_unknown_setting_in_a_file_is_refused(tmp_path: Path) -> None:
    extra = tmp_path / "site.toml"
    extra.write_text('databse_url = "sqlite://"\n')
    with pytest.raises(ConfigError, match="unknown setting"):
        load_settings({"MYDATA_CONFIG": str(extra)})


def test_production_requires_its_secrets(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings({"MYDATA_SANDBOX": "false"})
    assert raised.value.setting == "MYDATA_ISSUER"
    complete = {"MYDATA_SANDBOX": "false", **production_environment(tmp_path)}
    assert load_settings(complete).sandbox is False
    with pytest.raises(ConfigError) as raised:
        load_settings({**complete, "MYDATA_ISSUER": "http://mydata.example"})
    assert raised.value.setting == "MYDATA_ISSUER"
    with pytest.raises(ConfigError) as raised:
        load_settings({**complete, "MYDATA_RATELIMIT_STORAGE_URI": "memory://"})
    assert raised.value.setting == "MYDATA_RATELIMIT_STORAGE_URI"
    # Without trusted eID roots nobody could log in with a card: refused at start-up.
    with pytest.raises(ConfigError) as raised:
        load_settings({**complete, "MYDATA_EID_CA_ROOTS": ""})
    assert raised.value.setting == "MYDATA_EID_CA_ROOTS"


def write_root_bundle(path: Path, *, self_signed: bool = True) -> Path:
    """Write a PEM file with one CA certificate (self-signed, or issued by another key)."""
    key = ec.generate_private_key(ec.SECP256R1())
    issuer_key = key if self_signed else ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test eID root")])
    issuer = subject if self_signed else x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Elsewhere")])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(issuer_key, hashes.SHA256())
    )
    path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return path


def test_eid_ca_roots_must_be_a_pem_bundle_with_a_root(tmp_path: Path) -> None:
    root = write_root_bundle(tmp_path / "roots.pem")
    assert load_settings({"MYDATA_EID_CA_ROOTS": str(root), **SANDBOX}).eid_ca_roots == str(root)
    (tmp_path / "empty.pem").write_text("not a certificate\n")
    intermediate_only = write_root_bundle(tmp_path / "intermediate.pem", self_signed=False)
    for bad in (tmp_path / "missing.pem", tmp_path / "empty.pem", intermediate_only):
        with pytest.raises(ConfigError) as raised:
            load_settings({"MYDATA_EID_CA_ROOTS": str(bad), **SANDBOX})
        assert raised.value.setting == "MYDATA_EID_CA_ROOTS"


def test_example_production_file_is_complete_but_for_secrets() -> None:
    path = Path(__file__).resolve().parents[3] / "config" / "production.example.toml"
    with pytest.raises(ConfigError) as raised:
        load_settings({"MYDATA_CONFIG": str(path)})
    assert raised.value.setting == "MYDATA_MASTER_KEY"


def test_ledger_tree_head_cadence_is_configurable(tmp_path: Path) -> None:
    defaults = load_settings({"MYDATA_INSTANCE_PATH": str(tmp_path), **SANDBOX})
    assert (defaults.ledger_sth_every_entries, defaults.ledger_sth_every_seconds) == (1000, 300)
    extra = tmp_path / "site.toml"
    extra.write_text("ledger_sth_every_entries = 50\n")
    settings = load_settings({"MYDATA_CONFIG": str(extra), "MYDATA_LEDGER_STH_EVERY_SECONDS": " 30 ", **SANDBOX})
    assert (settings.ledger_sth_every_entries, settings.ledger_sth_every_seconds) == (50, 30)


def test_ledger_sequencing_is_inline_unless_set(tmp_path: Path) -> None:
    assert load_settings({"MYDATA_INSTANCE_PATH": str(tmp_path), **SANDBOX}).ledger_sequencing == "inline"
    environ = {"MYDATA_INSTANCE_PATH": str(tmp_path), "MYDATA_LEDGER_SEQUENCING": "sequencer", **SANDBOX}
    assert load_settings(environ).ledger_sequencing == "sequencer"
    with pytest.raises(ConfigError) as raised:
        load_settings({**environ, "MYDATA_LEDGER_SEQUENCING": "later"})
    assert raised.value.setting == "MYDATA_LEDGER_SEQUENCING"


@pytest.mark.parametrize("value", ["0", "-5", "ten", "1.5", "true", ""])
def test_ledger_tree_head_cadence_must_be_a_positive_whole_number(value: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings({"MYDATA_LEDGER_STH_EVERY_ENTRIES": value})
    assert raised.value.setting == "MYDATA_LEDGER_STH_EVERY_ENTRIES"


def test_ledger_tree_head_cadence_in_a_file_must_be_a_number(tmp_path: Path) -> None:
    extra = tmp_path / "site.toml"
    extra.write_text('ledger_sth_every_seconds = "soon"\n')
    with pytest.raises(ConfigError, match="whole number"):
        load_settings({"MYDATA_CONFIG": str(extra)})


def test_production_requires_eid_issuing_cas_a_policy_and_a_revocation_source(tmp_path: Path) -> None:
    complete = production_environment(tmp_path)
    for name in ("MYDATA_EID_ISSUING_CAS", "MYDATA_EID_POLICY_OIDS", "MYDATA_EID_CRL_SOURCES"):
        with pytest.raises(ConfigError) as raised:
            load_settings({**complete, name: ""})
        assert raised.value.setting == name
    ocsp_only = {**complete, "MYDATA_EID_CRL_SOURCES": "", "MYDATA_EID_OCSP_URL": "http://ocsp.example/"}
    assert load_settings(ocsp_only).eid_ocsp_url == "http://ocsp.example/"
    # In the sandbox the same settings may stay empty: they mean the sandbox CA's.
    assert load_settings({"MYDATA_INSTANCE_PATH": str(tmp_path), **SANDBOX}).eid_issuing_cas == ""


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MYDATA_EID_POLICY_OIDS", "citizen"),
        ("MYDATA_EID_POLICY_OIDS", "2.16.886.101.0.3, 3.1"),
        ("MYDATA_EID_EXTENDED_KEY_USAGES", "1.3.6.1.5.5.7.3.02"),
        ("MYDATA_EID_CRL_SOURCES", "ftp://crl.example/ca.crl"),
        ("MYDATA_EID_OCSP_URL", "/var/ocsp"),
        ("MYDATA_EID_REVOCATION_GRACE_SECONDS", "-1"),
        ("MYDATA_EID_REVOCATION_GRACE_SECONDS", "700000"),
        ("MYDATA_EID_REVOCATION_TIMEOUT_SECONDS", "0"),
        ("MYDATA_EID_ISSUING_CAS", "/nonexistent/issuing.pem"),
    ],
)
def test_eid_settings_are_checked(tmp_path: Path, name: str, value: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings({**production_environment(tmp_path), name: value})
    assert raised.value.setting == name


def test_issuing_cas_must_be_cas_issued_under_the_roots(tmp_path: Path) -> None:
    complete = production_environment(tmp_path)
    stranger = write_root_bundle(tmp_path / "stranger.pem")  # a CA, but not under the configured root
    with pytest.raises(ConfigError) as raised:
        load_settings({**complete, "MYDATA_EID_ISSUING_CAS": str(stranger)})
    assert "is not issued by a certificate of" in str(raised.value)
    card = tmp_path / "card.pem"
    now = dt.datetime.now(dt.UTC)
    issuing = tmp_path / "eid-issuing.pem"
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Not a CA")]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Not a CA")]))
        .public_key(key.public_key())
        .serial_number(2)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    card.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    with pytest.raises(ConfigError) as raised:
        load_settings({**complete, "MYDATA_EID_ISSUING_CAS": str(card)})
    assert "is not a CA certificate" in str(raised.value)
    assert load_settings(complete).eid_issuing_cas == str(issuing)
