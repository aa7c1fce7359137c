"""The gateway link and the ingest service over mutual TLS, against a real Mosquitto with the
`vitalstream pki broker-config` configuration and its ACL.

A CA, two gateway certificates, the ingest identity and the broker's server certificate are
made at test time (ingest_service.pki) in a fresh directory that is removed afterwards; no key
is ever committed. The test starts its own mosquitto on a free port and stops it.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import typer
from integration_support import count, free_port, make_data_dir, private_mosquitto, wait_for
from typer.testing import CliRunner

from edge_agent import EdgeAgent, LinkTls
from ingest_service import IngestService, IngestSettings
from ingest_service.handoff import HandoffService, HandoffSettings
from ingest_service.pki import (
    CertificateAuthority,
    certificate_pem,
    private_key_pem,
    utc_now,
    write_public,
    write_secret,
)
from vitals import BrokerAddress, Reading
from vitalstream.commands.pki import pki_app

MOSQUITTO = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin:/sbin")
pytestmark = pytest.mark.skipif(MOSQUITTO is None, reason="mosquitto is not installed")
INGEST_IDENTITY = "vs-ingest-tls"
T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)


@dataclass(frozen=True)
class SecuredBroker:
    port: int
    root: Path
    prefix: str

    @property
    def address(self) -> BrokerAddress:
        return BrokerAddress("localhost", self.port, tls=True)

    def tls(self, identity: str) -> LinkTls:
        folder = self.root / identity
        return LinkTls(folder / "ca.crt", folder / f"{identity}.crt", folder / f"{identity}.key")


def _issue(authority: CertificateAuthority, name: str, out: Path, *, service: bool) -> None:
    issued = authority.issue_client(name, now=utc_now(), role="service" if service else "gateway")
    write_secret(out / f"{name}.key", private_key_pem(issued.key))
    write_public(out / f"{name}.crt", certificate_pem(issued.certificate))
    write_public(out / "ca.crt", authority.certificate_path.read_bytes())


@pytest.fixture
def secured(topic_prefix: str) -> Iterator[SecuredBroker]:
    root = make_data_dir()  # 0755: mosquitto drops root and must reach its files
    authority = CertificateAuthority(root / "ca")
    authority.init(now=utc_now())
    for gateway in ("gw-a", "gw-b"):
        _issue(authority, gateway, root / gateway, service=False)
    _issue(authority, INGEST_IDENTITY, root / INGEST_IDENTITY, service=True)
    port = free_port()
    app = typer.Typer()
    app.add_typer(pki_app, name="pki")

    @app.callback()
    def _root() -> None:
        """Test root."""

    result = CliRunner().invoke(
        app,
        [
            "pki",
            "broker-config",
            "--ca-dir",
            str(root / "ca"),
            "--out",
            str(root / "broker"),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--ingest-identity",
            INGEST_IDENTITY,
            "--topic-prefix",
            topic_prefix,
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    json.loads(result.stdout.strip().splitlines()[-1])
    try:
        with private_mosquitto(root / "broker" / "mosquitto.conf", port, root / "mosquitto.log"):
            yield SecuredBroker(port, root, topic_prefix)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def once(readings: Sequence[Reading]) -> Callable[[], Sequence[Reading]]:
    pending = list(readings)

    def source() -> Sequence[Reading]:
        taken = list(pending)
        pending.clear()
        return taken

    return source


def heart_rates(device: str, n: int) -> list[Reading]:
    return [
        Reading(
            subject=f"s-{device}",
            device=device,
            metric="heart_rate",
            value=70.0 + i % 5,
            unit="/min",
            time=T0 + timedelta(seconds=i),
            source="sim",
        )
        for i in range(n)
    ]


@pytest.fixture
def tls_ingest(secured: SecuredBroker, database_url: str) -> Iterator[IngestService]:
    folder = secured.root / INGEST_IDENTITY
    service = IngestService(
        IngestSettings(
            database_url=database_url,
            broker_url=f"mqtts://localhost:{secured.port}",
            topic_prefix=secured.prefix,
            ingest_client_id=INGEST_IDENTITY,
            tls_ca_file=str(folder / "ca.crt"),
            tls_cert_file=str(folder / f"{INGEST_IDENTITY}.crt"),
            tls_key_file=str(folder / f"{INGEST_IDENTITY}.key"),
        )
    )
    service.start()
    assert service.wait_ready(15), "the ingest service could not connect over mTLS"
    yield service
    service.stop()


def _stored(database_url: str, device: str) -> int:
    return count(database_url, f"SELECT count(*) FROM readings WHERE device = '{device}'")


def test_readings_arrive_over_mutual_tls(
    secured: SecuredBroker, tls_ingest: IngestService, database_url: str, tmp_path: Path
) -> None:
    agent = EdgeAgent(
        "gw-a",
        tmp_path / "a.sqlite",
        secured.address,
        prefix=secured.prefix,
        sources=[once(heart_rates("dev-a", 40))],
        tls=secured.tls("gw-a"),
    )
    agent.start()
    try:
        assert wait_for(lambda: _stored(database_url, "dev-a") == 40, 30)
        assert wait_for(lambda: agent.depth == 0, 20), "acks did not come back over mTLS"
        assert wait_for(
            lambda: (
                count(database_url, "SELECT count(*) FROM gateways WHERE gateway = 'gw-a'") == 1
            ),
            15,
        ), "the retained status did not arrive"
    finally:
        agent.stop()


def test_a_gateway_cannot_get_readings_stored_under_another_gateways_id(
    secured: SecuredBroker, tls_ingest: IngestService, database_url: str, tmp_path: Path
) -> None:
    # Gateway A's certificate, but configured as gateway B (topics and client id gw-b).
    spoofer = EdgeAgent(
        "gw-b",
        tmp_path / "spoof.sqlite",
        secured.address,
        prefix=secured.prefix,
        sources=[once(heart_rates("dev-spoof", 25))],
        tls=secured.tls("gw-a"),
    )
    honest = EdgeAgent(
        "gw-a",
        tmp_path / "a.sqlite",
        secured.address,
        prefix=secured.prefix,
        sources=[once(heart_rates("dev-a2", 10))],
        tls=secured.tls("gw-a"),
    )
    spoofer.start()
    try:
        assert wait_for(lambda: spoofer.counters.batches_sent >= 1, 20), "never connected"
        honest.start()
        try:
            # A's own readings, sent after the forgeries, arrive: the forgeries would have too.
            assert wait_for(lambda: _stored(database_url, "dev-a2") == 10, 30)
            time.sleep(1.0)
        finally:
            honest.stop()
        assert _stored(database_url, "dev-spoof") == 0
        assert count(database_url, "SELECT count(*) FROM gateways WHERE gateway = 'gw-b'") == 0
        # Never confirmed, so the spoofing agent's outbox still holds every reading.
        assert spoofer.depth == 25
        assert spoofer.counters.confirmed == 0
    finally:
        spoofer.stop()


def test_the_handoff_service_joins_a_broker_that_requires_client_certificates(
    secured: SecuredBroker, database_url: str
) -> None:
    """Same TLS settings as ingest (ConsumerSettings): with the identity it connects, without
    a client certificate the broker refuses it."""
    folder = secured.root / INGEST_IDENTITY

    def handoff(with_certificate: bool) -> HandoffService:
        return HandoffService(
            HandoffSettings(
                database_url=database_url,
                broker_url=f"mqtts://localhost:{secured.port}",
                topic_prefix=secured.prefix,
                handoff_client_id=f"{INGEST_IDENTITY}-handoff",
                tls_ca_file=str(folder / "ca.crt"),
                tls_cert_file=str(folder / f"{INGEST_IDENTITY}.crt") if with_certificate else None,
                tls_key_file=str(folder / f"{INGEST_IDENTITY}.key") if with_certificate else None,
            )
        )

    with handoff(with_certificate=True) as service:
        assert service.wait_ready(15), "the handoff service could not connect over mTLS"
    with handoff(with_certificate=False) as service:
        assert not service.wait_ready(3)
