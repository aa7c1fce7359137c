"""The gateway's MQTT link: one paho-mqtt client, QoS1, retained status, last will "offline".

paho runs its network loop in its own thread; everything it reports (connects, batch acks,
config down-links) is handed to the agent's thread through thread-safe queues and flags,
because the outbox's SQLite connection belongs to the agent's thread.

- **TLS / mTLS**: with an ``mqtts://`` broker the link verifies the broker against ``ca_file``
  (the system store when unset) and presents the gateway's client certificate, whose CN is the
  gateway id the broker ACL checks (docs/security.md).
- **Reconnect backoff with jitter**: paho's own reconnect delay doubles without jitter, so a
  whole region of gateways would come back in lock-step. After every lost connection or
  failed attempt the link sets paho's next delay from :func:`edge_agent.backoff.reconnect_delay`
  (full jitter); a successful connection resets the attempt count.
- **SM4 payload layer** (optional, ``LinkSealing``; docs/security.md): every payload the link
  publishes -- batches, events, waveforms, status and the "offline" last will -- is sealed
  with this gateway's newest key (``vitals.sealed``, SM4-GCM, bound to the topic). Sealed acks
  and config from the ingest side are opened with the gateway's keys; clear ones are taken as
  they are (only the ingest identity and the gateway itself may write those topics). Sealing
  happens at publish time, so the outbox keeps clear payloads and a key rotation applies to
  whatever is sent next, re-sends included.
"""

from __future__ import annotations

import logging
import queue
import random
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from edge_agent.backoff import DEFAULT_BASE_S, DEFAULT_CAP_S, RandomSource, reconnect_delay
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
from vitals.sealed import SealedKeyError, SealKeyStore, is_sealed, open_sealed, seal

log = logging.getLogger("vitalstream.edge.link")


@dataclass(frozen=True, slots=True)
class LinkTls:
    """TLS material of an ``mqtts://`` link (PEM files).

    ``ca_file``: the CA that signed the broker's certificate (None = the system's store);
    ``cert_file`` + ``key_file``: the gateway's client certificate (mutual TLS).
    """

    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None

    def __post_init__(self) -> None:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("a client certificate needs both cert_file and key_file")


@dataclass(frozen=True, slots=True)
class LinkSealing:
    """The SM4 payload layer of a link: seal every publish with the gateway's newest key.

    ``key_dir``: the gateway's key store (``<gateway>.k<N>.sm4`` files, mode 0600, from
    ``vitalstream pki sm4-key --gateway <id> --out <dir>``).
    """

    key_dir: Path


class PayloadSealer:
    """Seals a gateway's outgoing payloads and opens sealed ones addressed to it.

    Keys are read at start (no key: :class:`vitals.sealed.SealedKeyError`, so a gateway told
    to seal never sends clear) and again whenever the key directory changes, so a new key
    version installed beside the old ones is used from the next publish on, without a restart.
    Thread-safe: the agent's thread seals, paho's thread opens.
    """

    def __init__(self, gateway: str, key_dir: Path) -> None:
        self.gateway = gateway
        self._store = SealKeyStore(key_dir)
        self._lock = threading.Lock()
        self._stamp: int | None = None
        self._keys = self._store.keys(gateway)
        self._current = self._store.current(gateway)
        self._stamp = self._directory_stamp()

    @property
    def key_id(self) -> str:
        """The key id new payloads are sealed with."""
        with self._lock:
            return self._current[0]

    def _directory_stamp(self) -> int | None:
        try:
            return self._store.directory.stat().st_mtime_ns
        except OSError:
            return None

    def _refresh(self) -> None:
        stamp = self._directory_stamp()
        if stamp == self._stamp:
            return
        self._stamp = stamp
        try:
            keys = self._store.keys(self.gateway)
            current = self._store.current(self.gateway)
        except SealedKeyError as error:
            log.warning("gateway %s: keeping the SM4 keys in use: %s", self.gateway, error.detail)
            return
        if current[0] != self._current[0]:
            log.info("gateway %s: sealing with SM4 key %s from now on", self.gateway, current[0])
        self._keys, self._current = keys, current

    def seal(self, topic: str, payload: bytes) -> bytes:
        """``payload`` sealed for ``topic`` with the newest key."""
        with self._lock:
            self._refresh()
            key_id, key = self._current
        return seal(payload, key, key_id, topic)

    def open(self, topic: str, payload: bytes) -> bytes:
        """A received payload in clear: sealed ones opened (PayloadError when they do not
        open), clear ones as they are."""
        if not is_sealed(payload):
            return payload
        with self._lock:
            self._refresh()
            keys = dict(self._keys)
        return open_sealed(payload, keys, topic)


@dataclass(frozen=True, slots=True)
class LinkBackoff:
    """Reconnect pacing: full-jitter exponential (``edge_agent.backoff``)."""

    base_s: float = DEFAULT_BASE_S
    cap_s: float = DEFAULT_CAP_S
    random: RandomSource = random.random


class GatewayLink:
    """A connected MQTT session for one gateway (context manager)."""

    def __init__(
        self,
        gateway: str,
        broker: BrokerAddress,
        prefix: str,
        *,
        tls: LinkTls | None = None,
        backoff: LinkBackoff | None = None,
        sealing: LinkSealing | None = None,
    ) -> None:
        self.gateway = gateway
        self._prefix = prefix
        self._broker = broker
        self._backoff = backoff or LinkBackoff()
        #: None = payloads go out as encoded (the default); else every publish is sealed.
        self.sealer = PayloadSealer(gateway, sealing.key_dir) if sealing is not None else None
        self.acks: queue.SimpleQueue[BatchAck] = queue.SimpleQueue()
        #: Raw payloads received on this gateway's ``config`` topic (the agent validates them).
        self.configs: queue.SimpleQueue[bytes] = queue.SimpleQueue()
        self._connected = threading.Event()
        self._reconnected = threading.Event()
        self._closing = False
        self._attempt = 0
        #: The delays chosen so far (seconds), newest last: for logs and tests.
        self.reconnect_delays: list[float] = []
        # Persistent session (clean_session=False): acks sent while we were away still arrive.
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=gateway,
            clean_session=False,
            protocol=mqtt.MQTTv311,
        )
        self._client.max_inflight_messages_set(64)
        if broker.tls:
            material = tls or LinkTls()
            self._client.tls_set(
                ca_certs=str(material.ca_file) if material.ca_file else None,
                certfile=str(material.cert_file) if material.cert_file else None,
                keyfile=str(material.key_file) if material.key_file else None,
            )
        elif tls is not None and (tls.cert_file or tls.ca_file):
            raise ValueError(f"TLS files are set but the broker URL {broker.url} is not mqtts://")
        offline = GatewayStatus(gateway=gateway, state="offline", time=now_utc())
        status_topic = self.topic("status")
        self._client.will_set(
            status_topic, self._outgoing(status_topic, encode(offline)), qos=1, retain=True
        )
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_connect_fail = self._on_connect_fail
        self._client.on_message = self._on_message

    def topic(self, kind: str) -> str:
        """This gateway's topic of ``kind``."""
        return gateway_topic(self.gateway, kind, self._prefix)  # type: ignore[arg-type]

    def _outgoing(self, topic: str, payload: bytes) -> bytes:
        """What goes on the wire for ``payload`` on ``topic`` (sealed when sealing is on)."""
        return self.sealer.seal(topic, payload) if self.sealer is not None else payload

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
            topic = self.topic("status")
            info = self._client.publish(
                topic, self._outgoing(topic, encode(status)), qos=1, retain=True
            )
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
        topic = self.topic(kind)
        info = self._client.publish(topic, self._outgoing(topic, payload), qos=1, retain=retain)
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
        client.subscribe([(self.topic("ack"), 1), (self.topic("config"), 1)])
        self._attempt = 0  # the next loss starts the backoff over
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
        if not self._closing:
            self._set_next_delay()

    def _on_connect_fail(self, client: mqtt.Client, userdata: object) -> None:
        # A refused TCP connection or TLS handshake: paho waits its reconnect delay next.
        self._set_next_delay()

    def _set_next_delay(self) -> None:
        """Give paho the jittered delay of the next attempt (min = max: exactly that wait).

        paho's ``_reconnect_wait`` doubles from ``min_delay`` unless ``reconnect_delay_set``
        reset it, which it does; setting both bounds to our delay makes paho wait exactly it.
        """
        delay = reconnect_delay(
            self._attempt,
            self._backoff.random,
            base_s=self._backoff.base_s,
            cap_s=self._backoff.cap_s,
        )
        self._attempt += 1
        self.reconnect_delays.append(delay)
        del self.reconnect_delays[:-100]
        # paho annotates the delays as int but computes with them as float seconds.
        self._client.reconnect_delay_set(min_delay=cast(int, delay), max_delay=cast(int, delay))

    def _on_message(self, client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        payload = bytes(message.payload)
        if self.sealer is not None and payload:
            try:
                payload = self.sealer.open(message.topic, payload)
            except PayloadError as exc:
                log.warning(
                    "gateway %s: ignoring a sealed message on %s that does not open: %s",
                    self.gateway,
                    message.topic,
                    exc.detail,
                )
                return
        if message.topic == self.topic("config"):
            if payload:  # a zero-length retained publish only clears the topic
                self.configs.put(payload)
            return
        try:
            self.acks.put(decode(payload, BatchAck))
        except PayloadError as exc:
            log.warning("gateway %s: ignoring a malformed ack: %s", self.gateway, exc.detail)
