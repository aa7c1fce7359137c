"""``vitalstream pki``: the gateway CA, client certificates, revocation, broker TLS + ACL.

Thin shell around ``ingest_service.pki``. The CA directory (``--ca-dir``, default
``VITALSTREAM_PKI_DIR`` or ``<data dir>/pki``) holds the CA key; the other commands write what
a gateway or the broker needs into ``--out``. ``sm4-key`` keeps the gateways' SM4 payload keys
(``vitals.sealed``) in the ingest's key store and copies a gateway's keys to ``--out``.
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
    acl_with_denials,
    broker_key_owner,
    certificate_pem,
    check_client_name,
    give_to,
    mosquitto_config_text,
    private_key_pem,
    read_pid_file,
    reload_broker,
    utc_now,
    write_public,
    write_secret,
)
from ingest_service.sealing import DEFAULT_KEY_DIR_NAME
from vitals.sealed import SealedKeyError, SealKeyStore
from vitals.settings import VitalstreamSettings, default_data_dir
from vitalstream.output import console, emit_json, reject

pki_app = typer.Typer(
    help="Gateway identity for the MQTT broker: a CA, one client certificate per gateway "
    "(CN = gateway id), revocation (CRL), and Mosquitto's TLS + ACL configuration.\n\n"
    "Typical flow: `vitalstream pki init-ca --out /srv/vs-ca`; "
    "`vitalstream pki broker-config --ca-dir /srv/vs-ca --out /etc/mosquitto/vitalstream`; "
    "`vitalstream pki issue --ca-dir /srv/vs-ca --gateway gw-0042 --out ./gw-0042`; "
    "`vitalstream pki revoke --ca-dir /srv/vs-ca --gateway gw-0042 "
    "--broker-dir /etc/mosquitto/vitalstream --reload-pidfile /run/mosquitto/mosquitto.pid` "
    "(the broker re-reads the CRL and ACL on SIGHUP: no restart); "
    "`vitalstream pki sm4-key --gateway gw-0042 --out ./gw-0042/sm4-keys` for the optional "
    "SM4 payload layer. See docs/security.md.",
    no_args_is_help=True,
)


class PkiSettings(VitalstreamSettings):
    """Where the CA lives by default (``VITALSTREAM_PKI_DIR``)."""

    data_dir: Path = Field(default_factory=default_data_dir)
    pki_dir: Path | None = Field(None, description="The CA directory; default <data_dir>/pki.")
    sealing_key_dir: Path | None = Field(
        None,
        description="Directory of the gateways' SM4 keys <gateway>.k<N>.sm4; default "
        "<data_dir>/sm4-keys.",
    )
    broker_pid_file: Path | None = Field(
        None,
        description="Mosquitto's pid file (its pid_file option, e.g. "
        "/run/mosquitto/mosquitto.pid): `pki revoke` and `pki crl` then send the broker "
        "SIGHUP so it re-reads the CRL and ACL without a restart. None = print how to reload "
        "it.",
    )

    @property
    def ca_dir(self) -> Path:
        """The CA directory in force."""
        return self.pki_dir or self.data_dir / "pki"

    @property
    def key_dir(self) -> Path:
        """The SM4 key store in force (the ingest service's, by the same settings)."""
        return self.sealing_key_dir or self.data_dir / DEFAULT_KEY_DIR_NAME


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
BrokerDirOption = Annotated[
    Path | None,
    typer.Option(
        "--broker-dir",
        help="A broker-config directory whose crl.pem and acl to update too.",
        show_default=False,
    ),
]
ReloadPidOption = Annotated[
    int | None,
    typer.Option(
        "--reload-pid",
        help="Send this mosquitto process SIGHUP afterwards: it re-reads the CRL and the ACL "
        "without dropping other clients.",
        show_default=False,
    ),
]
ReloadPidFileOption = Annotated[
    Path | None,
    typer.Option(
        "--reload-pidfile",
        help="Like --reload-pid, the pid read from this file (default: "
        "VITALSTREAM_BROKER_PID_FILE when set).",
        show_default=False,
    ),
]
KeyDirOption = Annotated[
    Path | None,
    typer.Option(
        "--key-dir",
        help="The SM4 key store (default: VITALSTREAM_SEALING_KEY_DIR or <data dir>/sm4-keys).",
        show_default=False,
    ),
]


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
    sm4_key: Annotated[
        bool,
        typer.Option(
            "--sm4-key",
            help="Gateways: also make its SM4 payload key (first time) and copy its keys to "
            "<out>/sm4-keys, as `pki sm4-key` does.",
        ),
    ] = False,
    key_dir: KeyDirOption = None,
    ca_dir: CaDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Issue a client certificate (EC P-256, clientAuth) whose CN is the gateway id.

    Example: vitalstream pki issue --gateway gw-0042 --out ./gw-0042
    """
    if sm4_key and gateway is None:
        raise typer.BadParameter("--sm4-key is for gateways (--gateway)")
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
    payload: dict[str, object] = {
        "name": name,
        "serial": format(issued.certificate.serial_number, "x"),
        "certificate": str(out / f"{name}.crt"),
        "key": str(out / f"{name}.key"),
        "not_after": issued.certificate.not_valid_after_utc.isoformat(),
    }
    human = (
        f"issued {out / f'{name}.crt'} and {out / f'{name}.key'} (mode 0600) for {name}, "
        f"valid until {issued.certificate.not_valid_after_utc:%Y-%m-%d}"
    )
    if sm4_key:
        sealing, _line = _sm4_key(name, _key_store(key_dir), out / "sm4-keys", rotate=False)
        payload["sm4"] = sealing
        human += f"; SM4 key {sealing['key_id']} in {out / 'sm4-keys'}"
    _done(payload, as_json, human)


def _update_broker(authority: CertificateAuthority, broker_dir: Path) -> list[str]:
    """Copy the CRL into a broker-config directory and rewrite its ACL's revoked block."""
    write_public(broker_dir / "crl.pem", authority.crl_path.read_bytes())
    denied = authority.revoked_names(now=utc_now())
    acl_path = broker_dir / "acl"
    if acl_path.is_file():
        acl = acl_path.read_text(encoding="utf-8")
        write_public(acl_path, acl_with_denials(acl, denied).encode())
    return denied


def _broker_pid(pid: int | None, pid_file: Path | None) -> int | None:
    """The broker to signal: --reload-pid, else --reload-pidfile, else the setting."""
    if pid is not None and pid_file is not None:
        raise typer.BadParameter("give --reload-pid or --reload-pidfile, not both")
    if pid is not None:
        return pid
    path = pid_file or PkiSettings().broker_pid_file
    return read_pid_file(path) if path is not None else None


def _reload(pid: int | None, pid_file: Path | None) -> int | None:
    """SIGHUP the broker when asked to; its pid, or None when not asked."""
    try:
        target = _broker_pid(pid, pid_file)
        if target is not None:
            reload_broker(target)
    except PkiError as error:
        reject(error)
    return target


_RELOAD_HINT = (
    "Reload the broker so it applies them (kill -HUP <mosquitto pid>, `systemctl reload "
    "mosquitto`, or pass --reload-pid / --reload-pidfile); no restart is needed."
)


@pki_app.command("revoke")
def revoke_command(
    gateway: Annotated[str, typer.Option("--gateway", help="Gateway (or service) id.")],
    ca_dir: CaDirOption = None,
    broker_dir: BrokerDirOption = None,
    reload_pid: ReloadPidOption = None,
    reload_pidfile: ReloadPidFileOption = None,
    as_json: JsonOption = False,
) -> None:
    """Revoke every certificate of a gateway and write the new CRL (crl.pem).

    With --broker-dir the broker's crl.pem is replaced and its acl denies the gateway
    everything (`user <id>` + `topic deny #`), so once the broker is reloaded (SIGHUP: pass
    --reload-pid/--reload-pidfile) a new handshake with the certificate is refused and a
    session that is still connected can neither publish nor receive. No restart.
    An unknown gateway exits 3 (kind unknown_gateway).
    """
    authority = _ca(ca_dir)
    try:
        serials = authority.revoke(gateway, now=utc_now())
    except PkiError as error:
        reject(error)
    denied = _update_broker(authority, broker_dir) if broker_dir is not None else None
    reloaded = _reload(reload_pid, reload_pidfile)
    if reloaded is not None:
        tail = f"broker {reloaded} reloaded (SIGHUP): the CRL and ACL apply now."
    else:
        tail = _RELOAD_HINT
    _done(
        {
            "gateway": gateway,
            "revoked_serials": [format(serial, "x") for serial in serials],
            "crl": str(authority.crl_path),
            "acl_denied": denied,
            "reloaded_pid": reloaded,
        },
        as_json,
        f"revoked {len(serials)} certificate(s) of {gateway}; CRL written to "
        f"{authority.crl_path}. {tail}",
    )


@pki_app.command("crl")
def crl_command(
    ca_dir: CaDirOption = None,
    broker_dir: BrokerDirOption = None,
    reload_pid: ReloadPidOption = None,
    reload_pidfile: ReloadPidFileOption = None,
    as_json: JsonOption = False,
) -> None:
    """Re-sign the CRL (it expires after 30 days; an expired CRL locks every gateway out).

    With --broker-dir, also copies it to the broker and rewrites the acl's revoked block (a
    gateway issued a new certificate after a revocation is let in again); --reload-pid /
    --reload-pidfile then reload the broker (SIGHUP), e.g. weekly from cron.
    """
    authority = _ca(ca_dir)
    try:
        crl = authority.write_crl(now=utc_now())
    except PkiError as error:
        reject(error)
    denied = _update_broker(authority, broker_dir) if broker_dir is not None else None
    reloaded = _reload(reload_pid, reload_pidfile)
    next_update = crl.next_update_utc
    _done(
        {
            "crl": str(authority.crl_path),
            "next_update": next_update and next_update.isoformat(),
            "acl_denied": denied,
            "reloaded_pid": reloaded,
        },
        as_json,
        f"CRL written to {authority.crl_path}"
        + (f"; broker {reloaded} reloaded" if reloaded is not None else ""),
    )


def _key_store(key_dir: Path | None) -> SealKeyStore:
    return SealKeyStore(key_dir if key_dir is not None else PkiSettings().key_dir)


def _sm4_key(
    gateway: str, store: SealKeyStore, out: Path | None, *, rotate: bool
) -> tuple[dict[str, object], str]:
    """Make the gateway's first (or, with ``rotate``, next) key; copy its keys to ``out``.

    Returns the JSON object and a human line; both name keys by id only.
    """
    try:
        check_client_name(gateway)
        created = rotate or not store.versions(gateway)
        key_id = store.create(gateway)[0] if created else store.current(gateway)[0]
        keys = store.keys(gateway)
        if out is not None:
            copy = SealKeyStore(out)
            for each_id, key in keys.items():
                copy.install(each_id, key)
    except (PkiError, SealedKeyError) as error:
        reject(error)
    except ValueError as error:  # a gateway id too long for a key id
        reject(PkiError(str(error), kind="invalid_gateway"))
    payload: dict[str, object] = {
        "gateway": gateway,
        "key_id": key_id,
        "created": created,
        "key_ids": sorted(keys),
        "key_dir": str(store.directory),
        "out": str(out) if out is not None else None,
    }
    human = f"{'made' if created else 'kept'} SM4 key {key_id} in {store.directory}"
    if out is not None:
        human += f"; copied {len(keys)} key(s) of {gateway} to {out}"
    return payload, human


@pki_app.command("sm4-key")
def sm4_key_command(
    gateway: Annotated[str, typer.Option("--gateway", help="Gateway id (the key's owner).")],
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="A gateway key directory to copy this gateway's keys into (its seal_key_dir).",
            show_default=False,
        ),
    ] = None,
    rotate: Annotated[
        bool,
        typer.Option(
            "--rotate",
            help="Make the next key version even when one exists (older ones stay, so what "
            "was sealed under them still opens).",
        ),
    ] = False,
    key_dir: KeyDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """The SM4 payload key of a gateway (16 random bytes, mode 0600), key id <gateway>.k<N>.

    Makes the first key when the gateway has none (or the next with --rotate) in the ingest's
    key store and, with --out, copies every key of that gateway into the gateway's key
    directory. Prints key ids, never key material.
    Example: vitalstream pki sm4-key --gateway gw-0042 --out ./gw-0042/sm4-keys
    """
    payload, human = _sm4_key(gateway, _key_store(key_dir), out, rotate=rotate)
    _done(payload, as_json, human)


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
    write_public(
        out / "acl", acl_with_denials(acl, authority.revoked_names(now=utc_now())).encode()
    )
    config = out / "mosquitto.conf"
    write_public(config, mosquitto_config_text(out, port=port, bind=bind).encode())
    if key_owner is None:
        console.print("server.key is mode 0600: run mosquitto as its owner (or pass --owner USER).")
    _done(
        {"config": str(config), "acl": str(out / "acl"), "port": port, "hosts": hosts},
        as_json,
        f"wrote {config} and {out / 'acl'}; run: mosquitto -c {config}",
    )
