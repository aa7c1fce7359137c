"""Small helpers shared by the integration tests (imported as a top-level module)."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion

from vitals import BrokerAddress

#: Maintenance connection of the test server; the broker the tests publish through.
PG_URL = os.environ.get(
    "VITALSTREAM_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
BROKER_URL = os.environ.get("VITALSTREAM_TEST_BROKER_URL", "mqtt://127.0.0.1:1883")


def free_port() -> int:
    """A loopback TCP port where nothing listens right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def make_data_dir() -> Path:
    """A fresh directory for servers. Not pytest's tmp_path: that lives under a 0700
    directory, which the unprivileged users the servers run as under root cannot enter."""
    path = Path(tempfile.mkdtemp(prefix="vs-services-"))
    path.chmod(0o755)
    return path


def wait_for(condition: Callable[[], bool], timeout_s: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def count(database_url: str, query: str) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(query.encode()).fetchone()
    return int(str(row[0])) if row else 0


def publish_raw(broker: BrokerAddress, topic: str, *payloads: bytes) -> None:
    """Publish as a bare MQTT client (no outbox), QoS1, waiting for each PUBACK."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"raw-{uuid.uuid4().hex[:8]}")
    client.connect(broker.host, broker.port)
    client.loop_start()
    try:
        for payload in payloads:
            client.publish(topic, payload, qos=1).wait_for_publish(10)
    finally:
        client.disconnect()
        client.loop_stop()


@contextlib.contextmanager
def private_mosquitto(config: Path, port: int, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A private mosquitto started on ``config`` (listening on ``port``), stopped afterwards.

    For tests that need a broker of their own (TLS, ACL, CRL); fails the test with the
    broker's log when it exits or does not listen within 10 s.
    """
    mosquitto = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin:/sbin")
    assert mosquitto is not None, "mosquitto is not installed"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [mosquitto, "-c", str(config), "-v"], stdout=sink, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 10
        while True:
            if process.poll() is not None:
                raise AssertionError(f"mosquitto exited: {log.read_text()}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise AssertionError(
                        f"mosquitto did not listen on {port}: {log.read_text()}"
                    ) from None
                time.sleep(0.05)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
