"""Revoking a gateway at a running Mosquitto, without a restart: `pki revoke --reload-pid`.

A private mosquitto (the installed one; 2.0.11 when this was written) runs the
`vitalstream pki broker-config` configuration (mutual TLS, CRL, %u ACL) on a free port. Gateway
A and gateway B are connected and publishing; `vitalstream pki revoke --gateway gw-a
--broker-dir ... --reload-pid <broker pid>` then rewrites the CRL and the ACL and sends SIGHUP.
The test shows, against the real broker:

- a NEW connection with A's certificate is refused at the TLS handshake (CRL re-read);
- A's session that was already open stays connected but can no longer publish to or receive
  from anyone (ACL deny);
- the broker is the same process, and B's session was never dropped (no restart happened),
  and B's messages still flow.

Everything is generated at test time in a fresh directory that is removed afterwards.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
import typer
from integration_support import free_port, make_data_dir, private_mosquitto, wait_for
from paho.mqtt.enums import CallbackAPIVersion
from typer.testing import CliRunner

from vitalstream.commands.pki import pki_app

MOSQUITTO = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin:/sbin")
pytestmark = pytest.mark.skipif(MOSQUITTO is None, reason="mosquitto is not installed")
INGEST = "vs-ingest-crl"


def _pki(*args: str) -> dict[str, object]:
    app = typer.Typer()
    app.add_typer(pki_app, name="pki")

    @app.callback()
    def _root() -> None:
        """Test root."""

    result = CliRunner().invoke(app, ["pki", *args, "--json"])
    assert result.exit_code == 0, result.output
    payload: dict[str, object] = json.loads(result.stdout.strip().splitlines()[-1])
    return payload


@dataclass(frozen=True)
class Broker:
    port: int
    root: Path
    process: subprocess.Popen[bytes]

    @property
    def ca_dir(self) -> Path:
        return self.root / "ca"

    @property
    def broker_dir(self) -> Path:
        return self.root / "broker"


@pytest.fixture
def broker() -> Iterator[Broker]:
    root = make_data_dir()  # 0755: mosquitto drops root and must reach its files
    ca = root / "ca"
    _pki("init-ca", "--out", str(ca))
    for gateway in ("gw-a", "gw-b"):
        _pki("issue", "--ca-dir", str(ca), "--gateway", gateway, "--out", str(root / gateway))
    _pki("issue", "--ca-dir", str(ca), "--service", INGEST, "--out", str(root / INGEST))
    port = free_port()
    _pki(
        "broker-config",
        "--ca-dir",
        str(ca),
        "--out",
        str(root / "broker"),
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--ingest-identity",
        INGEST,
    )
    try:
        with private_mosquitto(
            root / "broker" / "mosquitto.conf", port, root / "mosquitto.log"
        ) as process:
            yield Broker(port, root, process)
    finally:
        shutil.rmtree(root, ignore_errors=True)


class Session:
    """A paho client with a TLS client certificate that records what happens to it."""

    def __init__(self, broker: Broker, name: str, client_id: str | None = None) -> None:
        self.connected = threading.Event()
        self.ended = threading.Event()  # refused or dropped
        self.disconnects = 0
        self.subscribed = threading.Event()
        self.messages: list[bytes] = []
        self._lock = threading.Lock()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id or name, protocol=mqtt.MQTTv311
        )
        certs = broker.root / name
        self.client.tls_set(
            ca_certs=str(certs / "ca.crt"),
            certfile=str(certs / f"{name}.crt"),
            keyfile=str(certs / f"{name}.key"),
        )
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_connect_fail = lambda *_args: self.ended.set()
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *_args: self.subscribed.set()
        self.port = broker.port

    def _on_connect(self, _c: object, _u: object, _f: object, reason: object, _p: object) -> None:
        if not getattr(reason, "is_failure", True):
            self.connected.set()

    def _on_disconnect(self, *_args: object) -> None:
        self.disconnects += 1
        self.ended.set()

    def _on_message(self, _c: object, _u: object, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append(bytes(message.payload))

    def start(self) -> bool:
        """Connect; True when the broker accepted the certificate and the CONNECT."""
        try:
            self.client.connect("localhost", self.port, keepalive=30)
        except OSError:  # ssl.SSLError included: the handshake was refused
            return False
        self.client.loop_start()
        wait_for(lambda: self.connected.is_set() or self.ended.is_set(), 5)
        return self.connected.is_set()

    def got(self, payload: bytes) -> bool:
        with self._lock:
            return payload in self.messages

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _handshake_refused(broker: Broker, name: str) -> bool:
    """A fresh connection with ``name``'s certificate: True when the broker refuses it.

    Its own client id, so it never takes over (and drops) the session under test.
    """
    probe = Session(broker, name, client_id=f"{name}-probe")
    try:
        return not probe.start()
    finally:
        probe.stop()


def test_revoke_with_reload_refuses_the_certificate_without_a_restart(broker: Broker) -> None:
    ingest, alpha, beta = Session(broker, INGEST), Session(broker, "gw-a"), Session(broker, "gw-b")
    sessions = [ingest, alpha, beta]
    try:
        assert ingest.start() and alpha.start() and beta.start()
        ingest.client.subscribe("vs/v1/gw/+/#", qos=1)
        alpha.client.subscribe("vs/v1/gw/gw-a/ack", qos=1)
        beta.client.subscribe("vs/v1/gw/gw-b/ack", qos=1)
        assert ingest.subscribed.wait(5) and alpha.subscribed.wait(5) and beta.subscribed.wait(5)
        alpha.client.publish("vs/v1/gw/gw-a/readings", b"a-before", qos=1).wait_for_publish(5)
        assert wait_for(lambda: ingest.got(b"a-before"), 10)
        ingest.client.publish("vs/v1/gw/gw-a/ack", b"ack-a-before", qos=1).wait_for_publish(5)
        assert wait_for(lambda: alpha.got(b"ack-a-before"), 10)
        assert not _handshake_refused(broker, "gw-a")  # a second connection works before

        pid = broker.process.pid
        result = _pki(
            "revoke",
            "--ca-dir",
            str(broker.ca_dir),
            "--gateway",
            "gw-a",
            "--broker-dir",
            str(broker.broker_dir),
            "--reload-pid",
            str(pid),
        )
        assert result["reloaded_pid"] == pid
        assert result["acl_denied"] == ["gw-a"]

        # The SIGHUP is handled by the broker's loop: wait until a new handshake fails ...
        assert wait_for(lambda: _handshake_refused(broker, "gw-a"), 15), (
            "the broker kept accepting the revoked certificate after SIGHUP"
        )
        assert _handshake_refused(broker, "gw-a")  # ... and it stays refused
        assert not _handshake_refused(broker, "gw-b")  # the same CA's other certificate: fine

        # Same broker process: never exited, never restarted (a restart drops every session).
        assert broker.process.poll() is None
        assert beta.disconnects == 0 and ingest.disconnects == 0

        # A's session opened before the revocation gets nothing through any more, while B's
        # message sent after it arrives (so A's would have too).
        alpha.client.publish("vs/v1/gw/gw-a/readings", b"a-after", qos=1).wait_for_publish(5)
        beta.client.publish("vs/v1/gw/gw-b/readings", b"b-after", qos=1).wait_for_publish(5)
        assert wait_for(lambda: ingest.got(b"b-after"), 10)
        assert not ingest.got(b"a-after")
        # ... and receives nothing either: an ack to A is not delivered, one to B is.
        ingest.client.publish("vs/v1/gw/gw-a/ack", b"ack-a", qos=1).wait_for_publish(5)
        ingest.client.publish("vs/v1/gw/gw-b/ack", b"ack-b", qos=1).wait_for_publish(5)
        assert wait_for(lambda: beta.got(b"ack-b"), 10)
        assert not alpha.got(b"ack-a")
    finally:
        for session in sessions:
            session.stop()
