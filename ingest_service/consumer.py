"""The MQTT client of a platform consumer (ingest, handoff): persistent session, manual acks.

Both services promise the same thing (docs/reliability.md): the broker keeps what they have
not acknowledged across their restarts (``clean_session=False`` with a fixed client id), and
a message is acknowledged only after the database transaction that handled it committed
(paho-mqtt 2's ``manual_ack``). One constructor keeps the two from drifting apart.
"""

from __future__ import annotations

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from ingest_service.settings import ConsumerSettings
from vitals import parse_broker_url


def persistent_consumer(client_id: str) -> mqtt.Client:
    """A paho client for ``client_id`` with a persistent session, manual acknowledgement and
    reconnects paced between 1 and 10 s. The caller sets its callbacks and connects."""
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        clean_session=False,
        protocol=mqtt.MQTTv311,
        manual_ack=True,
    )
    client.reconnect_delay_set(min_delay=1, max_delay=10)
    return client


def connect(client: mqtt.Client, settings: ConsumerSettings, broker_url: str) -> None:
    """Connect ``client`` in the background (paho reconnects by itself). For ``mqtts://``:
    verify the broker with ``tls_ca_file`` and present ``tls_cert_file`` (mutual TLS)."""
    broker = parse_broker_url(broker_url)
    if broker.tls:
        client.tls_set(
            ca_certs=settings.tls_ca_file,
            certfile=settings.tls_cert_file,
            keyfile=settings.tls_key_file,
        )
    client.connect_async(broker.host, broker.port, keepalive=20)
