"""Gateway PKI: certificate contents (RFC 5280 §4.2), chain to the CA, CRL, broker config."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import stat
import subprocess
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import typer
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from typer.testing import CliRunner

from ingest_service.pki import (
    CertificateAuthority,
    PkiError,
    acl_text,
    acl_with_denials,
    build_ca,
    build_client_certificate,
    build_crl,
    common_name,
    generate_key,
    mosquitto_config_text,
    read_pid_file,
    reload_broker,
)
from vitalstream.commands.pki import pki_app

NOW = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)


def _ca() -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = generate_key()
    return key, build_ca(key, now=NOW)


def test_ca_certificate() -> None:
    key, ca = _ca()
    assert isinstance(key.curve, ec.SECP256R1)
    assert ca.subject == ca.issuer
    constraints = ca.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical
    assert constraints.value.ca
    assert constraints.value.path_length == 0
    usage = ca.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign
    assert usage.crl_sign
    ca.verify_directly_issued_by(ca)


def test_gateway_certificate_contents_and_chain() -> None:
    ca_key, ca = _ca()
    gateway_key = generate_key()
    cert = build_client_certificate(ca_key, ca, gateway_key.public_key(), "gw-0042", now=NOW)
    assert common_name(cert) == "gw-0042"
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "gw-0042"
    assert cert.issuer == ca.subject
    public = cert.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    assert public.public_numbers() == gateway_key.public_key().public_numbers()
    # short validity: 90 days (+ clock skew allowance before now)
    assert cert.not_valid_after_utc == NOW + timedelta(days=90)
    assert NOW - timedelta(minutes=10) < cert.not_valid_before_utc <= NOW
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical
    assert usage.value.digital_signature
    assert not usage.value.key_cert_sign
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    cert.verify_directly_issued_by(ca)
    # and not by another CA
    _, stranger = _ca()
    with pytest.raises((ValueError, InvalidSignature)):
        cert.verify_directly_issued_by(stranger)


@pytest.mark.parametrize("name", ["gw/1", "gw+", "#", "gw 1", "", "-x"])
def test_gateway_names_that_would_break_topics_are_refused(name: str) -> None:
    ca_key, ca = _ca()
    with pytest.raises(PkiError) as caught:
        build_client_certificate(ca_key, ca, generate_key().public_key(), name, now=NOW)
    assert caught.value.kind == "invalid_gateway"


def test_crl_lists_revoked_serials() -> None:
    ca_key, ca = _ca()
    crl = build_crl(ca_key, ca, [(1234, NOW), (99, NOW)], now=NOW, number=7)
    assert crl.is_signature_valid(ca.public_key())  # type: ignore[arg-type]
    assert crl.get_revoked_certificate_by_serial_number(1234) is not None
    assert crl.get_revoked_certificate_by_serial_number(99) is not None
    assert crl.get_revoked_certificate_by_serial_number(5) is None
    assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == 7
    assert crl.next_update_utc == NOW + timedelta(days=30)


def test_certificate_authority_files(tmp_path: Path) -> None:
    authority = CertificateAuthority(tmp_path / "ca")
    authority.init(now=NOW)
    assert stat.S_IMODE(authority.key_path.stat().st_mode) == 0o600
    with pytest.raises(PkiError, match="already exists"):
        authority.init(now=NOW)
    issued = authority.issue_client("gw-1", now=NOW)
    again = authority.issue_client("gw-1", now=NOW)
    other = authority.issue_client("gw-2", now=NOW)
    serials = authority.revoke("gw-1", now=NOW)
    assert sorted(serials) == sorted(
        [issued.certificate.serial_number, again.certificate.serial_number]
    )
    crl = x509.load_pem_x509_crl(authority.crl_path.read_bytes())
    for serial in serials:
        assert crl.get_revoked_certificate_by_serial_number(serial) is not None
    assert crl.get_revoked_certificate_by_serial_number(other.certificate.serial_number) is None
    with pytest.raises(PkiError) as caught:
        authority.revoke("gw-1", now=NOW)  # nothing left to revoke
    assert caught.value.kind == "unknown_gateway"
    number = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    renewed = authority.write_crl(now=NOW + timedelta(days=20))
    assert renewed.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number > number


def test_acl_and_config_text(tmp_path: Path) -> None:
    acl = acl_text("vs-ingest-1")
    assert "pattern readwrite vs/v1/gw/%u/#" in acl.splitlines()
    assert "user vs-ingest-1" in acl.splitlines()
    assert "topic read vs/v1/gw/+/#" in acl.splitlines()
    config = mosquitto_config_text(tmp_path, port=8883).splitlines()
    for line in (
        "listener 8883",
        "require_certificate true",
        "use_identity_as_username true",
        "allow_anonymous false",
        f"crlfile {tmp_path.resolve() / 'crl.pem'}",
        f"acl_file {tmp_path.resolve() / 'acl'}",
    ):
        assert line in config


def _me() -> str:
    return pwd.getpwuid(os.getuid()).pw_name


def _app() -> typer.Typer:
    app = typer.Typer()
    app.add_typer(pki_app, name="pki")

    @app.callback()
    def _root() -> None:
        """Test root."""

    return app


def test_pki_cli_flow(tmp_path: Path) -> None:
    runner = CliRunner()
    app = _app()
    ca_dir, gw_dir, broker_dir = tmp_path / "ca", tmp_path / "gw", tmp_path / "broker"

    def run(*args: str) -> dict[str, object]:
        result = runner.invoke(app, ["pki", *args, "--json"])
        assert result.exit_code == 0, result.output
        payload: dict[str, object] = json.loads(result.stdout.strip().splitlines()[-1])
        return payload

    run("init-ca", "--out", str(ca_dir))
    issued = run("issue", "--ca-dir", str(ca_dir), "--gateway", "gw-7", "--out", str(gw_dir))
    key_file = gw_dir / "gw-7.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    cert = x509.load_pem_x509_certificate((gw_dir / "gw-7.crt").read_bytes())
    assert common_name(cert) == "gw-7"
    assert format(cert.serial_number, "x") == issued["serial"]
    ca = x509.load_pem_x509_certificate((gw_dir / "ca.crt").read_bytes())
    cert.verify_directly_issued_by(ca)
    run("broker-config", "--ca-dir", str(ca_dir), "--out", str(broker_dir), "--owner", _me())
    assert (broker_dir / "mosquitto.conf").is_file()
    assert stat.S_IMODE((broker_dir / "server.key").stat().st_mode) == 0o600
    run("revoke", "--ca-dir", str(ca_dir), "--gateway", "gw-7", "--broker-dir", str(broker_dir))
    crl = x509.load_pem_x509_crl((broker_dir / "crl.pem").read_bytes())
    assert crl.get_revoked_certificate_by_serial_number(cert.serial_number) is not None
    unknown = runner.invoke(app, ["pki", "revoke", "--ca-dir", str(ca_dir), "--gateway", "gw-9"])
    assert unknown.exit_code == 3
    assert json.loads(unknown.stdout.splitlines()[0])["error"]["kind"] == "unknown_gateway"
    bad = runner.invoke(
        app, ["pki", "issue", "--ca-dir", str(ca_dir), "--gateway", "gw/1", "--out", str(gw_dir)]
    )
    assert bad.exit_code == 3


# ---------------------------------------------------------------- revocation at a live broker


def test_acl_denials_block_is_replaced_not_duplicated() -> None:
    base = acl_text("vs-ingest-1")
    once = acl_with_denials(base, ["gw-2", "gw-1"])
    lines = once.splitlines()
    assert lines[: len(base.splitlines())] == base.rstrip("\n").splitlines()
    assert lines.index("user gw-1") < lines.index("user gw-2")
    assert lines.count("topic deny #") == 2
    # Rewriting keeps everything outside the block and replaces the block itself.
    twice = acl_with_denials(once + "# an operator's own line\n", ["gw-2"])
    assert "user gw-1" not in twice.splitlines()
    assert twice.splitlines().count("topic deny #") == 1
    assert "# an operator's own line" in twice.splitlines()
    assert acl_with_denials(once, []) == base
    with pytest.raises(PkiError):
        acl_with_denials(base, ["gw/1"])


def test_revoked_names_lift_when_a_new_certificate_is_issued(tmp_path: Path) -> None:
    authority = CertificateAuthority(tmp_path / "ca")
    authority.init(now=NOW)
    authority.issue_client("gw-1", now=NOW)
    authority.issue_client("gw-2", now=NOW)
    authority.issue_server(["localhost"], now=NOW)
    authority.revoke("gw-1", now=NOW)
    assert authority.revoked_names(now=NOW) == ["gw-1"]
    authority.issue_client("gw-1", now=NOW + timedelta(days=1))  # a replacement gateway
    assert authority.revoked_names(now=NOW + timedelta(days=1)) == []


def test_crl_this_update_always_moves_forward(tmp_path: Path) -> None:
    authority = CertificateAuthority(tmp_path / "ca")
    authority.init(now=NOW)
    first = x509.load_pem_x509_crl(authority.crl_path.read_bytes())
    authority.issue_client("gw-1", now=NOW)
    authority.revoke("gw-1", now=NOW)  # the same second as init
    second = x509.load_pem_x509_crl(authority.crl_path.read_bytes())
    renewed = authority.write_crl(now=NOW - timedelta(hours=1))  # a clock that went back
    assert first.last_update_utc < second.last_update_utc < renewed.last_update_utc


def test_reload_broker_refuses_what_is_not_a_running_mosquitto(tmp_path: Path) -> None:
    with pytest.raises(PkiError) as caught:
        reload_broker(os.getpid())  # this test process: SIGHUP would end it
    assert caught.value.kind == "broker_reload"
    with pytest.raises(PkiError):
        reload_broker(1)
    (tmp_path / "bad.pid").write_text("not a pid\n")
    with pytest.raises(PkiError):
        read_pid_file(tmp_path / "bad.pid")
    with pytest.raises(PkiError):
        read_pid_file(tmp_path / "missing.pid")


@pytest.mark.skipif(not Path("/proc/self/comm").exists(), reason="needs Linux /proc")
def test_reload_broker_sends_sighup_to_a_process_named_mosquitto(tmp_path: Path) -> None:
    # A stand-in named mosquitto: `sleep` copied under that name (SIGHUP ends it, so its exit
    # status shows which signal arrived). No real broker is needed for this part.
    sleeper = shutil.which("sleep")
    assert sleeper is not None
    fake = tmp_path / "mosquitto"
    shutil.copy(sleeper, fake)
    process = subprocess.Popen([str(fake), "30"])
    try:
        assert _wait(lambda: Path(f"/proc/{process.pid}/comm").read_text().strip() == "mosquitto")
        (tmp_path / "m.pid").write_text(f"{process.pid}\n")
        reload_broker(read_pid_file(tmp_path / "m.pid"))
        assert process.wait(timeout=10) == -signal.SIGHUP
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    with pytest.raises(PkiError) as caught:
        reload_broker(process.pid)  # gone now
    assert caught.value.kind == "broker_not_running"


def _wait(condition: Callable[[], bool]) -> bool:
    for _ in range(200):
        try:
            if condition():
                return True
        except OSError:
            pass
        time.sleep(0.01)
    return False


def test_pki_revoke_updates_the_broker_acl_and_crl_refuses_to_signal_strangers(
    tmp_path: Path,
) -> None:
    runner = CliRunner()
    app = _app()
    ca_dir, gw_dir, broker_dir = tmp_path / "ca", tmp_path / "gw", tmp_path / "broker"

    def run(*args: str) -> dict[str, object]:
        result = runner.invoke(app, ["pki", *args, "--json"])
        assert result.exit_code == 0, result.output
        payload: dict[str, object] = json.loads(result.stdout.strip().splitlines()[-1])
        return payload

    run("init-ca", "--out", str(ca_dir))
    run("issue", "--ca-dir", str(ca_dir), "--gateway", "gw-7", "--out", str(gw_dir))
    run("broker-config", "--ca-dir", str(ca_dir), "--out", str(broker_dir), "--owner", _me())
    assert "topic deny #" not in (broker_dir / "acl").read_text()
    revoked = run(
        "revoke", "--ca-dir", str(ca_dir), "--gateway", "gw-7", "--broker-dir", str(broker_dir)
    )
    assert revoked["acl_denied"] == ["gw-7"] and revoked["reloaded_pid"] is None
    acl = (broker_dir / "acl").read_text().splitlines()
    assert acl[acl.index("user gw-7") + 1] == "topic deny #"
    assert "pattern readwrite vs/v1/gw/%u/#" in acl  # the rest of the ACL is kept
    # A replacement certificate for gw-7, then `pki crl --broker-dir`: the deny is lifted.
    run("issue", "--ca-dir", str(ca_dir), "--gateway", "gw-7", "--out", str(gw_dir))
    renewed = run("crl", "--ca-dir", str(ca_dir), "--broker-dir", str(broker_dir))
    assert renewed["acl_denied"] == []
    assert "user gw-7" not in (broker_dir / "acl").read_text().splitlines()
    # --reload-pid naming a process that is not mosquitto: exit 3, nothing signalled.
    stranger = runner.invoke(
        app, ["pki", "crl", "--ca-dir", str(ca_dir), "--reload-pid", str(os.getpid())]
    )
    assert stranger.exit_code == 3
    assert json.loads(stranger.stdout.splitlines()[0])["error"]["kind"] == "broker_reload"
