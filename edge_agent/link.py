"""The gateway's MQTT link: one paho-mqtt client, QoS1, retained status, last will "offline".

paho runs its network loop in its own thread; everything it reports (connects, batch acks) is
handed to the agent's thread through thread-safe queues and flags, because the outbox's SQLite
connection belongs to the agent's thread.
"""

from __future__ import annotations

import logging
import queue
import threading

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from vitals import (
    BatchAck,
    BrokerAddress,
    GatewayStatus,
    PayloadError,
    decode,
    encode,
    gateway_topic,
    now_utc,
)

log = logging.getLogger("vitalstream.edge.link")


class GatewayLink:
    """A connected MQTT session for one gateway (context manager)."""

    def __init__(self, gateway: str, broker: BrokerAddress, prefix: str) -> None:
        self.gateway = gateway
        self._prefix = prefix
        self._broker = broker
        self.acks: queue.SimpleQueue[BatchAck] = queue.SimpleQueue()
        self._connected = threading.Event()
        self._reconnected = threading.Event()
        self._closing = False
        # Persistent session (clean_session=False): acks sent while we were away still arrive.
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=gateway,
            clean_session=False,
            protocol=mqtt.MQTTv311,
        )
        self._client.max_inflight_messages_set(64)
        self._client.reconnect_delay_set(min_delay=1, max_delay=15)
        offline = GatewayStatus(gateway=gateway, state="offline", time=now_utc())
        self._client.will_set(self.topic("status"), encode(offline), qos=1, retain=True)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message

    def topic(self, kind: str) -> str:
        """This gateway's topic of ``kind``."""
        return gateway_topic(self.gateway, kind, self._prefix)  # type: ignore[arg-type]

    def __enter__(self) -> GatewayLink:
        self._client.connect_async(self._broker.host, self._broker.port, keepalive=20)
        self._client.loop_start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self, *, publish_offline: bool = True) -> None:
        """Say "offline" (retained) and disconnect cleanly."""
        if publish_offline and self._connected.is_set():
            status = GatewayStatus(gateway=self.gateway, state="offline", time=now_utc())
            info = self._client.publish(self.topic("status"), encode(status), qos=1, retain=True)
            info.wait_for_publish(timeout=2)
        self._closing = True
        self._client.disconnect()
        self._client.loop_stop()

    @property
    def connected(self) -> bool:
        """True while the broker session is up."""
        return self._connected.is_set()

    def take_reconnected(self) -> bool:
        """True once after each (re)connection: the agent then re-sends what is unconfirmed."""
        if self._reconnected.is_set():
            self._reconnected.clear()
            return True
        return False

    def wait_connected(self, timeout: float) -> bool:
        """Block until connected or ``timeout`` seconds pass."""
        return self._connected.wait(timeout)

    def publish(self, kind: str, payload: bytes, *, retain: bool = False) -> bool:
        """Queue a QoS1 publish; False when the link is down (the caller keeps the data)."""
        if not self._connected.is_set():
            return False
        info = self._client.publish(self.topic(kind), payload, qos=1, retain=retain)
        return info.rc == mqtt.MQTT_ERR_SUCCESS

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: object,
        reason: object,
        properties: object,
    ) -> None:
        if getattr(reason, "is_failure", False):
            log.warning("gateway %s: broker refused the connection: %s", self.gateway, reason)
            return
        client.subscribe(self.topic("ack"), qos=1)
        self._connected.set()
        self._reconnected.set()
        log.info("gateway %s connected to %s", self.gateway, self._broker.url)

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: object,
        reason: object,
        properties: object,
    ) -> None:
        if self._connected.is_set() and not self._closing:
            log.warning(
                "gateway %s lost the broker (%s); buffering in the outbox", self.gateway, reason
            )
        self._connected.clear()

    def _on_message(self, client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        try:
            self.acks.put(decode(bytes(message.payload), BatchAck))
        except PayloadError as exc:
            log.warning("gateway %s: ignoring a malformed ack: %s", self.gateway, exc.detail)
