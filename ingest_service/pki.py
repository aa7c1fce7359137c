"""Gateway identity: a small X.509 CA for the MQTT broker's mutual TLS (issue 10, part 2).

Every gateway gets a client certificate whose subject CN is its gateway id. The broker
(Mosquitto) requires a client certificate, takes the CN as the MQTT username
(``use_identity_as_username``) and its ACL lets user ``%u`` write only under
``vs/v1/gw/%u/#``; a revoked certificate is refused by the CRL (RFC 5280 §5) the broker loads.

Keys are EC P-256 (ECDSA with SHA-256): short, fast on gateway hardware, and supported by every
TLS stack Mosquitto and paho use. Certificates follow RFC 5280 §4.2: the CA has
``basicConstraints cA=TRUE, pathLen=0`` and ``keyCertSign, cRLSign``; end entities have
``cA=FALSE``, ``digitalSignature`` and an extended key usage of ``clientAuth`` (gateways,
services) or ``serverAuth`` (the broker). Gateway certificates are short-lived (90 days by
default) so a lost gateway stops working soon even if nobody revokes it.

Pure builders (``build_*``: keys, ``now`` and serials in, objects out) and a small file store
(:class:`CertificateAuthority`) that keeps ``ca.key``, ``ca.crt``, ``crl.pem`` and
``issued.json`` in one directory. Private keys are written mode 0600 and never committed.

Revocation without a broker restart (docs/security.md, "Revoking at a running broker"):
Mosquitto 2.0 re-reads ``crlfile`` on SIGHUP (checked against 2.0.11 by
``tests/integration/test_security_crl_reload.py``), so new handshakes with a revoked
certificate fail; a session that was already connected stays up, so revocation also writes a
``topic deny #`` block for the gateway's CN into the broker's ACL (:func:`acl_with_denials`),
which the same SIGHUP applies to open sessions: they can no longer publish or receive.
:func:`reload_broker` sends the signal, after checking that the process is a mosquitto.
"""

from __future__ import annotations

import ipaddress
import json
import os
import pwd
import signal
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from vitals import VitalsError
from vitals.models import is_identifier

CA_DAYS = 3650
GATEWAY_DAYS = 90
SERVER_DAYS = 397  # the CA/Browser Forum ceiling; plenty for a broker behind a private CA
#: How long a CRL is valid (RFC 5280 §5.1.2.5 nextUpdate). An expired CRL makes the broker
#: refuse every client, so `vitalstream pki revoke` (or `pki crl`) must run well within this.
CRL_DAYS = 30
#: Allow for gateway clocks a little behind the CA's.
CLOCK_SKEW = timedelta(minutes=5)

Role = Literal["gateway", "service", "broker"]


class PkiError(VitalsError):
    """A PKI request that cannot be carried out (bad name, unknown gateway, missing CA)."""

    kind = "pki"


def generate_key() -> ec.EllipticCurvePrivateKey:
    """A fresh EC P-256 (secp256r1) private key."""
    return ec.generate_private_key(ec.SECP256R1())


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "vitalstream"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def build_ca(
    key: ec.EllipticCurvePrivateKey,
    *,
    now: datetime,
    days: int = CA_DAYS,
    common_name: str = "vitalstream gateway CA",
) -> x509.Certificate:
    """A self-signed CA certificate that may sign end-entity certificates and CRLs only."""
    public = key.public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )


def _end_entity_usage() -> x509.KeyUsage:
    # ECDHE-ECDSA needs only digitalSignature from the certificate key (RFC 5280 §4.2.1.3).
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )


def check_client_name(name: str) -> str:
    """A gateway or service name usable as CN, MQTT username and topic level, or PkiError."""
    if not is_identifier(name):
        raise PkiError(
            f"{name!r} is not a gateway id: use letters, digits and _ . : - (no '/', '+', '#', "
            "spaces), at most 128 characters",
            kind="invalid_gateway",
        )
    return name


def build_client_certificate(
    ca_key: ec.EllipticCurvePrivateKey,
    ca_certificate: x509.Certificate,
    public_key: ec.EllipticCurvePublicKey,
    name: str,
    *,
    now: datetime,
    days: int = GATEWAY_DAYS,
    serial: int | None = None,
) -> x509.Certificate:
    """A TLS client certificate with subject CN = ``name`` (the gateway id / MQTT username)."""
    check_client_name(name)
    return (
        x509.CertificateBuilder()
        .subject_name(_name(name))
        .issuer_name(ca_certificate.subject)
        .public_key(public_key)
        .serial_number(serial if serial is not None else x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_end_entity_usage(), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )


def _general_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def build_server_certificate(
    ca_key: ec.EllipticCurvePrivateKey,
    ca_certificate: x509.Certificate,
    public_key: ec.EllipticCurvePublicKey,
    hosts: Sequence[str],
    *,
    now: datetime,
    days: int = SERVER_DAYS,
) -> x509.Certificate:
    """The broker's TLS server certificate; clients match ``hosts`` against its SAN."""
    if not hosts:
        raise PkiError("the broker certificate needs at least one host name or address")
    return (
        x509.CertificateBuilder()
        .subject_name(_name(hosts[0]))
        .issuer_name(ca_certificate.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_end_entity_usage(), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.SubjectAlternativeName([_general_name(host) for host in hosts]), critical=False
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )


def build_crl(
    ca_key: ec.EllipticCurvePrivateKey,
    ca_certificate: x509.Certificate,
    revoked: Iterable[tuple[int, datetime]],
    *,
    now: datetime,
    number: int,
    days: int = CRL_DAYS,
    last_update: datetime | None = None,
) -> x509.CertificateRevocationList:
    """A CRL (RFC 5280 §5) listing ``(serial, revoked_at)``, valid until ``now + days``.

    ``thisUpdate`` is ``last_update`` when given, else ``now`` less the clock-skew allowance.
    """
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca_certificate.subject)
        .last_update(last_update if last_update is not None else now - CLOCK_SKEW)
        .next_update(now + timedelta(days=days))
        .add_extension(x509.CRLNumber(number), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    )
    for serial, when in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(when).build()
        )
    return builder.sign(ca_key, hashes.SHA256())


def common_name(certificate: x509.Certificate) -> str:
    """The subject CN (the gateway id of a gateway certificate)."""
    values = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(values[0].value) if values else ""


# --------------------------------------------------------------------------- broker config


def acl_text(ingest_identity: str, topic_prefix: str = "vs") -> str:
    """The Mosquitto ACL: each gateway under its own id only; the ingest service reads all.

    With ``use_identity_as_username`` the username is the certificate CN, so the pattern uses
    ``%u``. ARCHITECTURE.md's ``%c`` (client id) would trust a value the client chooses: a
    gateway could connect with another gateway's id as client id and write under its topics.
    """
    check_client_name(ingest_identity)
    base = f"{topic_prefix}/v1/gw"
    return "\n".join(
        (
            "# Mosquitto ACL written by `vitalstream pki broker-config`.",
            "# The ingest service: reads every gateway's topics, answers with acks and config.",
            f"user {ingest_identity}",
            f"topic read {base}/+/#",
            f"topic write {base}/+/ack",
            f"topic write {base}/+/config",
            "",
            "# Every client (username = certificate CN = gateway id): its own subtree only.",
            f"pattern readwrite {base}/%u/#",
            "",
        )
    )


_DENY_BEGIN = "# BEGIN revoked identities (written by `vitalstream pki revoke` / `pki crl`)"
_DENY_END = "# END revoked identities"


def acl_with_denials(acl: str, revoked: Iterable[str]) -> str:
    """``acl`` with its block of revoked identities replaced by one for ``revoked``.

    Each revoked CN gets ``user <cn>`` + ``topic deny #``. In Mosquitto a matching ``deny``
    wins over any line that allows the same topic, the user's own or a ``pattern``, wherever it
    stands in the file (checked with 2.0.11), so after a reload (SIGHUP) an already-connected
    session of that certificate can neither publish nor receive anything; the CRL refuses its
    next handshake. Lines outside the block are kept as they are.
    """
    kept: list[str] = []
    inside = False
    for line in acl.splitlines():
        if line == _DENY_BEGIN:
            inside = True
        elif line == _DENY_END and inside:
            inside = False
        elif not inside:
            kept.append(line)
    while kept and not kept[-1].strip():
        kept.pop()
    names = sorted({check_client_name(name) for name in revoked})
    if names:
        kept += [
            "",
            _DENY_BEGIN,
            "# Revoked: refused at the handshake by the CRL; open sessions denied here.",
        ]
        for name in names:
            kept += [f"user {name}", "topic deny #"]
        kept.append(_DENY_END)
    return "\n".join(kept) + "\n"


def mosquitto_config_text(directory: Path, *, port: int, bind: str | None = None) -> str:
    """A standalone ``mosquitto.conf`` with one mutual-TLS listener (Mosquitto 2.0 options).

    ``require_certificate``: no client without a certificate signed by our CA;
    ``use_identity_as_username``: the CN becomes the username the ACL sees; ``crlfile``: revoked
    certificates are refused at the TLS handshake; ``allow_anonymous false`` and the ACL file
    apply to this listener (``per_listener_settings true``).
    """
    folder = directory.resolve()
    listener = f"listener {port}" + (f" {bind}" if bind else "")
    return "\n".join(
        (
            "# Written by `vitalstream pki broker-config`; run: mosquitto -c "
            + str(folder / "mosquitto.conf"),
            "per_listener_settings true",
            "",
            listener,
            "protocol mqtt",
            f"cafile {folder / 'ca.crt'}",
            f"certfile {folder / 'server.crt'}",
            f"keyfile {folder / 'server.key'}",
            f"crlfile {folder / 'crl.pem'}",
            "tls_version tlsv1.2",
            "require_certificate true",
            "use_identity_as_username true",
            "allow_anonymous false",
            f"acl_file {folder / 'acl'}",
            "",
        )
    )


# --------------------------------------------------------------------------- files


def private_key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    """PKCS#8 PEM, unencrypted: the file mode (0600) protects it, as Mosquitto needs it clear."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def write_secret(path: Path, data: bytes) -> None:
    """Write a private key atomically with mode 0600 from the start (never briefly readable)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.unlink(missing_ok=True)
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    temporary.replace(path)


def write_public(path: Path, data: bytes) -> None:
    """Write a certificate, CRL or config file atomically (mode 0644)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_bytes(data)
    temporary.chmod(0o644)
    temporary.replace(path)


#: The user Debian's and Mosquitto's own packages run the broker as (it drops root at start,
#: before it reads its key file).
MOSQUITTO_USER = "mosquitto"


def broker_key_owner(requested: str | None) -> str | None:
    """Who should own the broker's key file: ``requested``, else ``mosquitto`` when we are
    root and that user exists (so the broker can read its 0600 key), else nobody (keep ours)."""
    if requested is not None:
        return requested
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        try:
            pwd.getpwnam(MOSQUITTO_USER)
        except KeyError:
            return None
        return MOSQUITTO_USER
    return None


def give_to(path: Path, user: str) -> None:
    """``chown user:<its group> path`` (root only), or PkiError naming the problem."""
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        raise PkiError(f"no user {user!r} on this machine", kind="invalid_user") from None
    try:
        os.chown(path, entry.pw_uid, entry.pw_gid)
    except PermissionError:
        raise PkiError(f"only root may give {path} to {user!r}", kind="invalid_user") from None


def certificate_pem(certificate: x509.Certificate) -> bytes:
    """The certificate in PEM."""
    return certificate.public_bytes(serialization.Encoding.PEM)


@dataclass
class IssuedRecord:
    """One certificate the CA issued (a line of ``issued.json``)."""

    serial: int
    name: str
    role: Role
    not_after: datetime
    revoked_at: datetime | None = None

    def as_json(self) -> dict[str, object]:
        """The JSON form kept in ``issued.json``."""
        return {
            "serial": format(self.serial, "x"),
            "name": self.name,
            "role": self.role,
            "not_after": self.not_after.isoformat(),
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
        }

    @classmethod
    def from_json(cls, data: dict[str, object]) -> IssuedRecord:
        """Read one record back."""
        role = str(data["role"])
        revoked = data.get("revoked_at")
        return cls(
            serial=int(str(data["serial"]), 16),
            name=str(data["name"]),
            role="service" if role == "service" else "broker" if role == "broker" else "gateway",
            not_after=datetime.fromisoformat(str(data["not_after"])),
            revoked_at=datetime.fromisoformat(str(revoked)) if revoked else None,
        )


@dataclass
class Issued:
    """A freshly issued key and certificate."""

    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey = field(repr=False)


class CertificateAuthority:
    """The CA's directory: ``ca.key`` (0600), ``ca.crt``, ``crl.pem``, ``issued.json``.

    Keep this directory off the broker and off gateways; only ``ca.crt`` and ``crl.pem`` are
    public. (A production CA key belongs in an HSM or at least an offline machine.)
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @property
    def certificate_path(self) -> Path:
        """``ca.crt``."""
        return self.directory / "ca.crt"

    @property
    def key_path(self) -> Path:
        """``ca.key``."""
        return self.directory / "ca.key"

    @property
    def crl_path(self) -> Path:
        """``crl.pem``."""
        return self.directory / "crl.pem"

    @property
    def index_path(self) -> Path:
        """``issued.json``."""
        return self.directory / "issued.json"

    def exists(self) -> bool:
        """Whether a CA was initialised here."""
        return self.certificate_path.is_file() and self.key_path.is_file()

    def init(self, *, now: datetime, days: int = CA_DAYS) -> x509.Certificate:
        """Create the CA key, certificate and an empty CRL; refuses to overwrite a CA."""
        if self.exists():
            raise PkiError(f"a CA already exists in {self.directory}; refusing to overwrite it")
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        key = generate_key()
        certificate = build_ca(key, now=now, days=days)
        write_secret(self.key_path, private_key_pem(key))
        write_public(self.certificate_path, certificate_pem(certificate))
        self._save({"crl_number": 0, "issued": []})
        self.write_crl(now=now)
        return certificate

    def load(self) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
        """The CA key and certificate, or PkiError when there is no CA here."""
        if not self.exists():
            raise PkiError(
                f"no CA in {self.directory}: run `vitalstream pki init-ca --out {self.directory}`",
                kind="no_ca",
            )
        key = serialization.load_pem_private_key(self.key_path.read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise PkiError(f"{self.key_path} is not an EC private key")
        certificate = x509.load_pem_x509_certificate(self.certificate_path.read_bytes())
        return key, certificate

    def _index(self) -> dict[str, object]:
        if not self.index_path.is_file():
            return {"crl_number": 0, "issued": []}
        data: dict[str, object] = json.loads(self.index_path.read_text(encoding="utf-8"))
        return data

    def _save(self, index: dict[str, object]) -> None:
        write_public(self.index_path, (json.dumps(index, indent=2) + "\n").encode())

    def records(self) -> list[IssuedRecord]:
        """Everything issued so far."""
        raw = self._index().get("issued", [])
        assert isinstance(raw, list)
        return [IssuedRecord.from_json(item) for item in raw]

    def _save_records(self, records: list[IssuedRecord], crl_number: int | None = None) -> None:
        index = self._index()
        index["issued"] = [record.as_json() for record in records]
        if crl_number is not None:
            index["crl_number"] = crl_number
        self._save(index)

    def issue_client(
        self, name: str, *, now: datetime, role: Role = "gateway", days: int = GATEWAY_DAYS
    ) -> Issued:
        """Issue a client certificate (CN = ``name``) and record it."""
        check_client_name(name)
        ca_key, ca_certificate = self.load()
        key = generate_key()
        certificate = build_client_certificate(
            ca_key, ca_certificate, key.public_key(), name, now=now, days=days
        )
        records = self.records()
        records.append(
            IssuedRecord(
                serial=certificate.serial_number,
                name=name,
                role=role,
                not_after=certificate.not_valid_after_utc,
            )
        )
        self._save_records(records)
        return Issued(certificate=certificate, key=key)

    def issue_server(self, hosts: Sequence[str], *, now: datetime) -> Issued:
        """Issue the broker's server certificate and record it."""
        ca_key, ca_certificate = self.load()
        key = generate_key()
        certificate = build_server_certificate(
            ca_key, ca_certificate, key.public_key(), hosts, now=now
        )
        records = self.records()
        records.append(
            IssuedRecord(
                serial=certificate.serial_number,
                name=hosts[0],
                role="broker",
                not_after=certificate.not_valid_after_utc,
            )
        )
        self._save_records(records)
        return Issued(certificate=certificate, key=key)

    def revoke(self, name: str, *, now: datetime) -> list[int]:
        """Revoke every unrevoked certificate issued to ``name``; write the new CRL."""
        records = self.records()
        revoked: list[int] = []
        for record in records:
            if record.name == name and record.role != "broker" and record.revoked_at is None:
                record.revoked_at = now
                revoked.append(record.serial)
        if not revoked:
            raise PkiError(
                f"no unrevoked certificate was issued to {name!r} by the CA in {self.directory}",
                kind="unknown_gateway",
            )
        self._save_records(records)
        self.write_crl(now=now)
        return revoked

    def revoked_names(self, *, now: datetime) -> list[str]:
        """Client identities (gateways, services) with a revoked certificate and no other
        certificate still valid at ``now``: those the broker ACL must deny."""
        revoked: set[str] = set()
        valid: set[str] = set()
        for record in self.records():
            if record.role == "broker":
                continue
            if record.revoked_at is not None:
                revoked.add(record.name)
            elif record.not_after > now:
                valid.add(record.name)
        return sorted(revoked - valid)

    def write_crl(self, *, now: datetime, days: int = CRL_DAYS) -> x509.CertificateRevocationList:
        """Re-sign the CRL from ``issued.json`` (also to renew it before ``nextUpdate``).

        ``thisUpdate`` always moves forward (by at least a second, the resolution of X.509
        times): a broker that reloads CRLs keeps the old ones in its store too, and OpenSSL
        prefers the CRL with the later ``thisUpdate``.
        """
        ca_key, ca_certificate = self.load()
        index = self._index()
        number = int(str(index.get("crl_number", 0))) + 1
        last_update = (now - CLOCK_SKEW).replace(microsecond=0)
        previous = index.get("crl_last_update")
        if previous is not None:
            earlier = datetime.fromisoformat(str(previous))
            if last_update <= earlier:
                last_update = earlier + timedelta(seconds=1)
        revoked = [
            (record.serial, record.revoked_at)
            for record in self.records()
            if record.revoked_at is not None
        ]
        crl = build_crl(
            ca_key,
            ca_certificate,
            revoked,
            now=now,
            number=number,
            days=days,
            last_update=last_update,
        )
        write_public(self.crl_path, crl.public_bytes(serialization.Encoding.PEM))
        index = self._index()
        index["crl_number"] = number
        index["crl_last_update"] = last_update.isoformat()
        self._save(index)
        return crl


# --------------------------------------------------------------------------- broker reload


def read_pid_file(path: Path) -> int:
    """The process id in a pid file (mosquitto's ``pid_file``), or PkiError."""
    try:
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as error:
        raise PkiError(
            f"cannot read the broker pid file {path}: {error}", kind="broker_reload"
        ) from None
    if not text.isdigit() or int(text) <= 1:
        raise PkiError(f"{path} does not hold a process id", kind="broker_reload")
    return int(text)


def _process_name(pid: int) -> str | None:
    """The executable name of ``pid`` (Linux /proc), or None where there is no /proc."""
    try:
        return Path(f"/proc/{pid}/comm").read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        if Path("/proc/self/comm").exists():
            raise PkiError(f"no process {pid} is running", kind="broker_not_running") from None
        return None
    except OSError:
        return None


def reload_broker(pid: int) -> None:
    """Send SIGHUP to the Mosquitto process ``pid``: it re-reads its configuration, the CRL
    (``crlfile``), the ACL file and its certificates, without dropping connections.

    Refuses (PkiError) when ``pid`` is not a running mosquitto: SIGHUP ends most programs, and
    a stale pid file may name anything.
    """
    if pid <= 1:
        raise PkiError(f"{pid} is not a broker process id", kind="broker_reload")
    name = _process_name(pid)
    if name is not None and not name.startswith("mosquitto"):
        raise PkiError(
            f"process {pid} is {name!r}, not mosquitto; not signalling it", kind="broker_reload"
        )
    try:
        os.kill(pid, signal.SIGHUP)
    except ProcessLookupError:
        raise PkiError(f"no process {pid} is running", kind="broker_not_running") from None
    except PermissionError:
        raise PkiError(
            f"not allowed to signal process {pid}: run as the broker's user or root, or "
            "`systemctl reload mosquitto`",
            kind="broker_reload",
        ) from None


def utc_now() -> datetime:
    """The CA's clock (kept in one place so the builders above stay pure)."""
    return datetime.now(UTC)
