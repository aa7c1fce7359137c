"""The SM4 payload layer end to end: a sealing gateway link, the real broker, the ingest service
with ``sealing_policy = required``, PostgreSQL.

Shows: readings sealed by the edge link are stored; the broker (and anyone subscribed) only
ever sees sealed bytes on the gateway's topics, the ack included; the ingest's ack opens at
the gateway; a tampered sealed payload is dead-lettered as ``sealed_invalid`` and a clear
one as ``sealed_required``, both with the bytes as received. Keys are made in tmp_path.

Needs the ingest service to call ``ingest_service.sealing.PayloadOpener`` (open before
decoding, ``seal_for`` on acks); see docs/security.md, "SM4 payload layer".
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import psycopg
import pytest
from integration_support import count, publish_raw, wait_for
from paho.mqtt.enums import CallbackAPIVersion

from edge_agent.link import GatewayLink, LinkSealing
from ingest_service import IngestService, IngestSettings
from vitals import Batch, BrokerAddress, GatewayStatus, Reading, encode, gateway_topic
from vitals.broker import forget_session
from vitals.sealed import SealKeyStore, is_sealed, seal

GATEWAY = f"gw-sealed-{uuid.uuid4().hex[:8]}"  # its own persistent session
T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=20)


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Path, Path]:
    """(ingest key store, gateway key store) with one key of GATEWAY, as `pki sm4-key` makes."""
    ingest_keys, gateway_keys = tmp_path / "ingest-keys", tmp_path / "gateway-keys"
    key_id, key = SealKeyStore(ingest_keys).create(GATEWAY)
    SealKeyStore(gateway_keys).install(key_id, key)
    return ingest_keys, gateway_keys


@pytest.fixture
def sealed_ingest(
    ingest_settings: IngestSettings, keys: tuple[Path, Path]
) -> Iterator[IngestService]:
    settings = ingest_settings.model_copy(
        update={"sealing_policy": "required", "sealing_key_dir": keys[0]}
    )
    service = IngestService(settings)
    service.start()
    assert service.wait_ready(10), "the ingest service could not subscribe"
    yield service
    service.stop()


class Sniffer:
    """A bare subscriber on the gateway's topics: what an observer of the broker sees."""

    def __init__(self, broker: BrokerAddress, prefix: str) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self._ready = threading.Event()
        self._lock = threading.Lock()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"sniff-{uuid.uuid4().hex[:8]}"
        )
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *_args: self._ready.set()
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        self.client.subscribe(f"{prefix}/v1/gw/{GATEWAY}/#", qos=1)
        assert self._ready.wait(10)

    def _on_message(self, _c: object, _u: object, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((message.topic, bytes(message.payload)))

    def on(self, kind: str) -> list[bytes]:
        with self._lock:
            return [payload for topic, payload in self.messages if topic.endswith(f"/{kind}")]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _batch(batch_id: str, device: str, n: int) -> Batch:
    readings = tuple(
        Reading(
            subject="s-sealed",
            device=device,
            metric="heart_rate",
            value=60.0 + i,
            unit="/min",
            time=T0 + timedelta(seconds=i),
            source="sim",
        )
        for i in range(n)
    )
    return Batch(batch_id=batch_id, gateway=GATEWAY, sent_at=T0, readings=readings)


def _dead_letters(database_url: str) -> list[tuple[str, bytes]]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT reason_kind, payload FROM dead_letters WHERE gateway = %s ORDER BY id",
            (GATEWAY,),
        ).fetchall()
    return [(str(kind), bytes(payload)) for kind, payload in rows]


def test_sealed_readings_are_stored_and_bad_ones_dead_lettered(
    sealed_ingest: IngestService,
    broker: BrokerAddress,
    topic_prefix: str,
    database_url: str,
    keys: tuple[Path, Path],
) -> None:
    sniffer = Sniffer(broker, topic_prefix)
    link = GatewayLink(GATEWAY, broker, topic_prefix, sealing=LinkSealing(keys[1]))
    try:
        with link:
            assert link.wait_connected(10)
            batch = _batch("b-sealed-1", "dev-sealed", 12)
            assert link.publish("readings", encode(batch))
            status = GatewayStatus(gateway=GATEWAY, state="online", time=T0, queue_depth=0)
            assert link.publish("status", encode(status))
            assert wait_for(
                lambda: count(database_url, "SELECT count(*) FROM readings") == 12, 30
            ), "sealed readings were not stored"
            ack = link.acks.get(timeout=20)  # opened by the link: sealed with the gateway's key
            assert ack.batch_ids == ("b-sealed-1",)
            assert wait_for(
                lambda: (
                    count(
                        database_url, f"SELECT count(*) FROM gateways WHERE gateway = '{GATEWAY}'"
                    )
                    == 1
                ),
                15,
            ), "the sealed status was not stored"

            # On the wire: sealed bytes only, in both directions.
            assert wait_for(lambda: bool(sniffer.on("ack")), 10)
            wire = sniffer.on("readings") + sniffer.on("status") + sniffer.on("ack")
            assert wire and all(is_sealed(payload) for payload in wire)
            assert not any(b"dev-sealed" in payload or b"b-sealed-1" in payload for payload in wire)

            # A tampered sealed payload and a clear one: dead-lettered with the reason.
            readings_topic = gateway_topic(GATEWAY, "readings", topic_prefix)
            key_id, key = SealKeyStore(keys[1]).current(GATEWAY)
            good = seal(
                encode(_batch("b-tampered", "dev-tampered", 3)), key, key_id, readings_topic
            )
            tampered = bytearray(good)
            tampered[-5] ^= 0x01
            clear = encode(_batch("b-clear", "dev-clear", 3))
            publish_raw(broker, readings_topic, bytes(tampered), clear)
            assert wait_for(lambda: len(_dead_letters(database_url)) == 2, 30)
    finally:
        sniffer.close()
        forget_session(broker, GATEWAY, retained=[gateway_topic(GATEWAY, "status", topic_prefix)])
    letters = dict(_dead_letters(database_url))
    assert letters["sealed_invalid"] == bytes(tampered)  # kept as received
    assert letters["sealed_required"] == clear
    assert count(database_url, "SELECT count(*) FROM readings") == 12
    assert count(database_url, "SELECT count(*) FROM readings WHERE device <> 'dev-sealed'") == 0
