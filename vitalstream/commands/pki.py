"""``vitalstream pki``: the gateway CA, client certificates, revocation, broker TLS + ACL.

Thin shell around ``ingest_service.pki``. The CA directory (``--ca-dir``, default
``VITALSTREAM_PKI_DIR`` or ``<data dir>/pki``) holds the CA key; the other commands write what
a gateway or the broker needs into ``--out``.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Annotated

import typer
from pydantic import Field

from ingest_service.pki import (
    CA_DAYS,
    GATEWAY_DAYS,
    CertificateAuthority,
    PkiError,
    acl_text,
    broker_key_owner,
    certificate_pem,
    give_to,
    mosquitto_config_text,
    private_key_pem,
    utc_now,
    write_public,
    write_secret,
)
from vitals.settings import VitalstreamSettings, default_data_dir
from vitalstream.output import console, emit_json, reject

pki_app = typer.Typer(
    help="Gateway identity for the MQTT broker: a CA, one client certificate per gateway "
    "(CN = gateway id), revocation (CRL), and Mosquitto's TLS + ACL configuration.\n\n"
    "Typical flow: `vitalstream pki init-ca --out /srv/vs-ca`; "
    "`vitalstream pki broker-config --ca-dir /srv/vs-ca --out /etc/mosquitto/vitalstream`; "
    "`vitalstream pki issue --ca-dir /srv/vs-ca --gateway gw-0042 --out ./gw-0042`; "
    "`vitalstream pki revoke --ca-dir /srv/vs-ca --gateway gw-0042 "
    "--broker-dir /etc/mosquitto/vitalstream` then restart the broker. See docs/security.md.",
    no_args_is_help=True,
)


class PkiSettings(VitalstreamSettings):
    """Where the CA lives by default (``VITALSTREAM_PKI_DIR``)."""

    data_dir: Path = Field(default_factory=default_data_dir)
    pki_dir: Path | None = Field(None, description="The CA directory; default <data_dir>/pki.")

    @property
    def ca_dir(self) -> Path:
        """The CA directory in force."""
        return self.pki_dir or self.data_dir / "pki"


def _ca(ca_dir: Path | None) -> CertificateAuthority:
    return CertificateAuthority(ca_dir if ca_dir is not None else PkiSettings().ca_dir)


CaDirOption = Annotated[
    Path | None,
    typer.Option(
        "--ca-dir",
        help="The CA directory (default: VITALSTREAM_PKI_DIR or <data dir>/pki).",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")]


def _done(payload: dict[str, object], as_json: bool, human: str) -> None:
    if as_json:
        emit_json(payload)
    else:
        typer.echo(human)


@pki_app.command("init-ca")
def init_ca_command(
    out: Annotated[Path, typer.Option("--out", help="Directory for the new CA (created).")],
    days: Annotated[int, typer.Option("--days", min=1, help="CA validity in days.")] = CA_DAYS,
    as_json: JsonOption = False,
) -> None:
    """Create a CA (EC P-256): ca.key (mode 0600), ca.crt, an empty crl.pem, issued.json.

    Refuses to overwrite an existing CA. Keep ca.key off the broker and the gateways.
    """
    authority = CertificateAuthority(out)
    try:
        certificate = authority.init(now=utc_now(), days=days)
    except PkiError as error:
        reject(error)
    _done(
        {
            "ca_dir": str(out),
            "certificate": str(authority.certificate_path),
            "not_after": certificate.not_valid_after_utc.isoformat(),
        },
        as_json,
        f"CA created in {out} (valid until {certificate.not_valid_after_utc:%Y-%m-%d})",
    )


@pki_app.command("issue")
def issue_command(
    out: Annotated[Path, typer.Option("--out", help="Directory for <id>.crt, <id>.key, ca.crt.")],
    gateway: Annotated[
        str | None,
        typer.Option("--gateway", help="Gateway id: the certificate CN and MQTT username."),
    ] = None,
    service: Annotated[
        str | None,
        typer.Option(
            "--service",
            help="A service identity instead of a gateway (e.g. vs-ingest-1, the ingest "
            "service the broker ACL lets read every gateway).",
        ),
    ] = None,
    days: Annotated[
        int, typer.Option("--days", min=1, help="Validity in days (short on purpose).")
    ] = GATEWAY_DAYS,
    ca_dir: CaDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Issue a client certificate (EC P-256, clientAuth) whose CN is the gateway id.

    Example: vitalstream pki issue --gateway gw-0042 --out ./gw-0042
    """
    if (gateway is None) == (service is None):
        raise typer.BadParameter("give exactly one of --gateway or --service")
    name = gateway if gateway is not None else service
    assert name is not None
    authority = _ca(ca_dir)
    try:
        issued = authority.issue_client(
            name, now=utc_now(), role="gateway" if gateway else "service", days=days
        )
    except PkiError as error:
        reject(error)
    write_secret(out / f"{name}.key", private_key_pem(issued.key))
    write_public(out / f"{name}.crt", certificate_pem(issued.certificate))
    shutil.copyfile(authority.certificate_path, out / "ca.crt")
    _done(
        {
            "name": name,
            "serial": format(issued.certificate.serial_number, "x"),
            "certificate": str(out / f"{name}.crt"),
            "key": str(out / f"{name}.key"),
            "not_after": issued.certificate.not_valid_after_utc.isoformat(),
        },
        as_json,
        f"issued {out / f'{name}.crt'} and {out / f'{name}.key'} (mode 0600) for {name}, "
        f"valid until {issued.certificate.not_valid_after_utc:%Y-%m-%d}",
    )


@pki_app.command("revoke")
def revoke_command(
    gateway: Annotated[str, typer.Option("--gateway", help="Gateway (or service) id.")],
    ca_dir: CaDirOption = None,
    broker_dir: Annotated[
        Path | None,
        typer.Option(
            "--broker-dir",
            help="A broker-config directory whose crl.pem to update too.",
            show_default=False,
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Revoke every certificate of a gateway and write the new CRL (crl.pem).

    Mosquitto reads the CRL when it starts: copy crl.pem to the broker (or pass --broker-dir)
    and restart it. An unknown gateway exits 3 (kind unknown_gateway).
    """
    authority = _ca(ca_dir)
    try:
        serials = authority.revoke(gateway, now=utc_now())
    except PkiError as error:
        reject(error)
    if broker_dir is not None:
        write_public(broker_dir / "crl.pem", authority.crl_path.read_bytes())
    _done(
        {
            "gateway": gateway,
            "revoked_serials": [format(serial, "x") for serial in serials],
            "crl": str(authority.crl_path),
        },
        as_json,
        f"revoked {len(serials)} certificate(s) of {gateway}; CRL written to "
        f"{authority.crl_path}. Restart the broker to apply it.",
    )


@pki_app.command("crl")
def crl_command(ca_dir: CaDirOption = None, as_json: JsonOption = False) -> None:
    """Re-sign the CRL (it expires after 30 days; an expired CRL locks every gateway out)."""
    authority = _ca(ca_dir)
    try:
        crl = authority.write_crl(now=utc_now())
    except PkiError as error:
        reject(error)
    next_update = crl.next_update_utc
    _done(
        {"crl": str(authority.crl_path), "next_update": next_update and next_update.isoformat()},
        as_json,
        f"CRL written to {authority.crl_path}",
    )


@pki_app.command("broker-config")
def broker_config_command(
    out: Annotated[Path, typer.Option("--out", help="Directory for the broker's files.")],
    host: Annotated[
        list[str] | None,
        typer.Option(
            "--host",
            help="Name or address gateways use to reach the broker (repeatable); it goes "
            "into the server certificate. Default: localhost and 127.0.0.1.",
            show_default=False,
        ),
    ] = None,
    port: Annotated[int, typer.Option("--port", help="TLS listener port.")] = 8883,
    bind: Annotated[
        str | None, typer.Option("--bind", help="Listen address (default: all).")
    ] = None,
    ingest_identity: Annotated[
        str,
        typer.Option("--ingest-identity", help="CN of the ingest service's client certificate."),
    ] = "vs-ingest-1",
    topic_prefix: Annotated[str, typer.Option("--topic-prefix", help="First topic level.")] = "vs",
    owner: Annotated[
        str | None,
        typer.Option(
            "--owner",
            help="User to own server.key (mode 0600), i.e. the user mosquitto runs as. "
            "Default when run as root: mosquitto, if that user exists.",
            show_default=False,
        ),
    ] = None,
    ca_dir: CaDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Write a standalone Mosquitto config with one mutual-TLS listener and its ACL.

    Files: mosquitto.conf (require_certificate, use_identity_as_username, crlfile),
    acl (pattern readwrite vs/v1/gw/%u/# - the username is the certificate CN - and read
    access for the ingest identity), server.crt, server.key (0600), ca.crt, crl.pem.
    Run: mosquitto -c <out>/mosquitto.conf
    """
    hosts = host or ["localhost", "127.0.0.1"]
    authority = _ca(ca_dir)
    try:
        acl = acl_text(ingest_identity, topic_prefix)
        issued = authority.issue_server(hosts, now=utc_now())
        out.mkdir(parents=True, exist_ok=True)
        write_secret(out / "server.key", private_key_pem(issued.key))
        key_owner = broker_key_owner(owner)
        if key_owner is not None:
            give_to(out / "server.key", key_owner)
    except PkiError as error:
        reject(error)
    write_public(out / "server.crt", certificate_pem(issued.certificate))
    write_public(out / "ca.crt", authority.certificate_path.read_bytes())
    write_public(out / "crl.pem", authority.crl_path.read_bytes())
    write_public(out / "acl", acl.encode())
    config = out / "mosquitto.conf"
    write_public(config, mosquitto_config_text(out, port=port, bind=bind).encode())
    if key_owner is None:
        console.print("server.key is mode 0600: run mosquitto as its owner (or pass --owner USER).")
    _done(
        {"config": str(config), "acl": str(out / "acl"), "port": port, "hosts": hosts},
        as_json,
        f"wrote {config} and {out / 'acl'}; run: mosquitto -c {config}",
    )
