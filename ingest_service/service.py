"""The ingest service: MQTT in, PostgreSQL out, acknowledgements after commit.

Each transaction also queues its first-time readings for the rules (``rule_inbox``); the
rules consumer (:mod:`ingest_service.rule_consumer`, a thread here that leads or stands by)
judges them for every worker.

Delivery guarantee (docs/reliability.md): the service subscribes with a persistent session
(clean_session=False, fixed client id) and paho-mqtt's *manual* acknowledgement, so the
broker's copy of a message is released only after the database transaction that stored or
dead-lettered it has committed. Then it publishes a :class:`vitals.BatchAck` to the gateway so
the edge outbox can delete the rows. A crash at any point before the commit leaves the message
with the broker (redelivered) and in the edge outbox (re-sent); the unique key makes both
harmless.

Back-pressure: with manual acks the broker stops sending once its in-flight window for this
client is full, so a slow database slows the broker's delivery instead of filling memory.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import queue
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import datetime

import paho.mqtt.client as mqtt
import psycopg
from psycopg.errors import TransactionRollback
from psycopg.types.json import Jsonb

from ingest_service import partitions, rule_consumer
from ingest_service.consumer import connect, persistent_consumer
from ingest_service.devices import DeviceRegistry
from ingest_service.rule_consumer import RuleConsumer
from ingest_service.schema import DatabaseKind, migrate
from ingest_service.sealing import PayloadOpener
from ingest_service.settings import IngestSettings
from ingest_service.storage import (
    Delivery,
    ReadingWriter,
    dead_letter_message,
    upsert_gateway_status,
)
from ingest_service.validate import AcceptedBatch, validate_message
from ingest_service.waveforms import store_waveforms
from vitals import (
    BatchAck,
    EventBatch,
    GatewayStatus,
    PayloadError,
    decode,
    encode,
    gateway_topic,
    now_utc,
    parse_topic,
    subscription,
)
from vitals.incident import IncidentEvent

log = logging.getLogger("vitalstream.ingest")


@dataclass(frozen=True, slots=True)
class _Message:
    topic: str
    payload: bytes
    mid: int
    qos: int
    session: int


@dataclass(slots=True)
class _Prepared:
    """Messages decoded and validated, ready for one database transaction (no I/O yet)."""

    messages: list[_Message]
    deliveries: list[Delivery]
    statuses: list[GatewayStatus]
    events: list[_Message]
    waveforms: list[tuple[str, bytes]]
    received_at: datetime


@dataclass
class IngestCounters:
    """Running totals since start (also exported on /metrics later)."""

    messages: int = 0
    stored: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    commits: int = 0
    events: int = 0  # event batches from gateways (local alarms) stored
    waveforms: int = 0  # ECG snippets from gateways stored (first time)


class IngestService:
    """Run with ``with IngestService(settings) as svc: svc.run_until(event)`` or start()/stop()."""

    def __init__(self, settings: IngestSettings) -> None:
        self.settings = settings
        self.counters = IngestCounters()
        self.database_kind: DatabaseKind | None = None
        self._writer: ReadingWriter | None = None
        self._devices = DeviceRegistry(settings.device_policy)
        self._inbox: queue.SimpleQueue[_Message] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # The one engine that judges what every worker stores (a standby in all but one).
        self.rules = RuleConsumer(settings)
        self._rules_stop = threading.Event()
        self._rules_thread: threading.Thread | None = None
        # SM4 payload layer (docs/security.md): opens sealed payloads, seals our answers.
        self._opener = PayloadOpener.from_settings(settings)
        self._conn: psycopg.Connection[tuple[object, ...]] | None = None
        self._ready = threading.Event()
        # Bumped on every (re)connect: a message id is only meaningful in the connection that
        # delivered it, so acks for older connections are skipped (the broker redelivers).
        self._session = 0
        self._closing = False
        self._client = persistent_consumer(settings.ingest_client_id)
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message
        self._client.on_disconnect = self._on_disconnect

    # -- lifecycle ---------------------------------------------------------------------------
    def __enter__(self) -> IngestService:
        self._connect_database()
        if self.settings.rules_consumer:
            self._rules_thread = threading.Thread(
                target=self.rules.run_until, args=(self._rules_stop,), name="rules", daemon=True
            )
            self._rules_thread.start()
        connect(self._client, self.settings, self.settings.broker_url)
        self._client.loop_start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._closing = True
        self._rules_stop.set()
        if self._rules_thread is not None:
            self._rules_thread.join(30)  # it checkpoints the rule state on its way out
        self._client.disconnect()
        self._client.loop_stop()
        if self._conn is not None:
            self._conn.close()

    def start(self) -> None:
        """Enter and run in a background thread (tests, demo in-process)."""
        self.__enter__()
        self._thread = threading.Thread(
            target=self.run_until, args=(self._stop,), name="ingest", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop the loop (after the batch in hand is committed) and disconnect."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)
        self.__exit__(None, None, None)

    def wait_ready(self, timeout: float) -> bool:
        """Block until subscribed to the broker."""
        return self._ready.wait(timeout)

    def run_until(self, stop: threading.Event) -> None:
        """Consume until ``stop`` is set."""
        while not stop.is_set():
            messages = self._collect()
            if messages:
                self._process_with_retry(self._prepare(messages), stop)

    # -- MQTT callbacks (paho's thread) ------------------------------------------------------
    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: object,
        reason: object,
        properties: object,
    ) -> None:
        if getattr(reason, "is_failure", False):
            log.error("broker refused the ingest connection: %s", reason)
            return
        prefix = self.settings.topic_prefix
        client.subscribe(
            [
                (self._shared(subscription("readings", prefix)), 1),
                (self._shared(subscription("status", prefix)), 1),
                (self._shared(subscription("events", prefix)), 1),
                (self._shared(subscription("waveform", prefix)), 1),
            ]
        )
        self._session += 1

    def _on_subscribe(
        self,
        client: mqtt.Client,
        userdata: object,
        mid: int,
        reasons: object,
        properties: object,
    ) -> None:
        # Ready only once the broker confirmed the subscription (SUBACK): a message published
        # before that would find no subscriber and, without a session yet, be dropped.
        self._ready.set()
        log.info("ingest subscribed at %s", self.settings.broker_url)

    def _shared(self, topic_filter: str) -> str:
        group = self.settings.shared_group
        return f"$share/{group}/{topic_filter}" if group else topic_filter

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: object,
        reason: object,
        properties: object,
    ) -> None:
        self._ready.clear()
        if not self._closing:
            log.warning("ingest lost the broker (%s); paho reconnects", reason)

    def _on_message(self, client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        self._inbox.put(
            _Message(message.topic, bytes(message.payload), message.mid, message.qos, self._session)
        )

    # -- the loop ------------------------------------------------------------------------------
    def _collect(self) -> list[_Message]:
        try:
            first = self._inbox.get(timeout=0.2)
        except queue.Empty:
            return []
        messages = [first]
        deadline = time.monotonic() + self.settings.batch_max_wait_s
        budget = self.settings.batch_max_readings
        while budget > 0:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                message = self._inbox.get(timeout=remaining)
            except queue.Empty:
                break
            messages.append(message)
            budget -= max(1, len(message.payload) // 200)  # ~200 bytes per JSON reading
        return messages

    def _process_with_retry(self, prepared: _Prepared, stop: threading.Event) -> None:
        """Commit ``prepared``; wait out an unavailable database; isolate a poison message.

        Connection loss and serialisation failures are retried with backoff (nothing is acked
        meanwhile). Any other database error means some message in the group cannot be
        stored as it is: the group is retried one message at a time, and the one that still
        fails is dead-lettered with the error, so one bad message never blocks the stream.
        """
        messages = prepared.messages
        delay = 0.5
        while True:
            try:
                self._commit(prepared)
                return
            except (psycopg.OperationalError, TransactionRollback) as exc:
                log.error(
                    "database unavailable (%s); retrying in %.1f s, nothing acked", exc, delay
                )
                if stop.wait(delay):
                    return
                delay = min(delay * 2, 10.0)
                self._connect_database()
            except psycopg.Error as exc:
                if self._writer is not None:
                    self._writer.forget_partitions()
                self._devices.forget()
                if len(messages) > 1:
                    log.error(
                        "a group of %d messages failed (%s); retrying one by one",
                        len(messages),
                        exc,
                    )
                    for message in messages:
                        self._process_with_retry(self._prepare([message]), stop)
                    return
                log.exception("dead-lettering a message the database refused")
                self._dead_letter_unstorable(messages[0], exc)
                return

    def _dead_letter_unstorable(self, message: _Message, error: psycopg.Error) -> None:
        conn = self._require_connection()
        gateway = None
        with contextlib.suppress(PayloadError):
            gateway = parse_topic(message.topic, self.settings.topic_prefix)[0]
        with conn.transaction():
            dead_letter_message(
                conn,
                message.topic,
                message.payload,
                now_utc(),
                gateway,
                "storage_error",
                f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}",
            )
        if message.session == self._session:
            self._client.ack(message.mid, message.qos)
        self.counters.dead_lettered += 1

    def _prepare(self, messages: list[_Message]) -> _Prepared:
        """Decode and validate ``messages``: pure CPU work, no database, nothing acknowledged."""
        now = now_utc()
        prefix = self.settings.topic_prefix
        deliveries: list[Delivery] = []
        statuses: list[GatewayStatus] = []
        events: list[_Message] = []
        waveforms: list[tuple[str, bytes]] = []
        for received in messages:
            try:  # the SM4 layer first: nothing may read a payload before it is opened
                payload = self._opener.open(received.topic, received.payload)
            except PayloadError as exc:
                deliveries.append(
                    self._opener.rejection(received.topic, received.payload, now, exc)
                )
                continue
            message = (
                received if payload is received.payload else replace(received, payload=payload)
            )
            kind = _topic_kind(message.topic, prefix)
            if kind == "waveform":
                waveforms.append((message.topic, message.payload))
                continue
            if kind == "events":
                events.append(message)
                continue
            if kind == "status":
                if not message.payload:
                    continue  # a cleared retained status (zero-length publish)
                try:
                    statuses.append(decode(message.payload, GatewayStatus))
                except PayloadError as exc:
                    log.warning("ignoring a malformed status on %s: %s", message.topic, exc.detail)
                continue
            deliveries.append(
                Delivery(
                    message.topic,
                    message.payload,
                    now,
                    validate_message(message.topic, message.payload, prefix=prefix, now=now),
                )
            )
        return _Prepared(messages, deliveries, statuses, events, waveforms, now)

    def _commit(self, prepared: _Prepared) -> None:
        """Store ``prepared`` in one transaction, then acknowledge its messages."""
        conn = self._require_connection()
        messages, statuses = prepared.messages, prepared.statuses
        events, waveforms = prepared.events, prepared.waveforms
        now = prepared.received_at
        prefix = self.settings.topic_prefix
        committed_at = now_utc()
        writer = self._require_writer()
        with conn.transaction():
            deliveries = self._devices.screen(conn, prepared.deliveries)
            result = writer.write(conn, deliveries, committed_at, rollups=False)
            # Judged, and folded into the rollups, once, by the rules consumer.
            rule_consumer.append(conn, result.inserted, committed_at)
            for status in statuses:
                upsert_gateway_status(conn, status)
            event_acks, events_bad = _store_events(conn, events, now, prefix)
            wave_acks, waves_stored, waves_bad = store_waveforms(conn, waveforms, now, prefix)
            # Rows every worker updates (device last_seen) go last, in sorted order: their
            # locks are then held only until the commit just below, so parallel workers do not
            # queue behind each other's COPY (docs/ingest.md). The rollup cells, shared too,
            # are folded by the rules consumer from the inbox.
            self._devices.touch(conn, deliveries, committed_at)
        # Committed: now (and only now) release the broker's copies and confirm to the edge.
        for message in messages:
            if message.session == self._session:
                self._client.ack(message.mid, message.qos)
        self._confirm_to_gateways(deliveries)
        self._send_acks(event_acks)
        self._send_acks(wave_acks)
        self.counters.messages += len(messages)
        self.counters.stored += len(result.inserted)
        self.counters.duplicates += result.duplicates
        self.counters.dead_lettered += result.dead_lettered + events_bad + waves_bad
        self.counters.waveforms += waves_stored
        self.counters.events += sum(len(ids) for ids in event_acks.values())
        self.counters.commits += 1

    def _confirm_to_gateways(self, deliveries: list[Delivery]) -> None:
        by_gateway: dict[str, list[str]] = defaultdict(list)
        for delivery in deliveries:
            if isinstance(delivery.outcome, AcceptedBatch):
                batch = delivery.outcome.batch
                by_gateway[batch.gateway].append(batch.batch_id)
        self._send_acks(by_gateway)

    def _send_acks(self, acks: dict[str, list[str]]) -> None:
        """One BatchAck per gateway for the batch ids it may now drop from its outbox."""
        for gateway, batch_ids in acks.items():
            ack = BatchAck(batch_ids=tuple(batch_ids), committed_at=now_utc())
            topic = gateway_topic(gateway, "ack", self.settings.topic_prefix)
            self._client.publish(topic, self._opener.seal_for(gateway, topic, encode(ack)), qos=1)

    def _connect_database(self) -> None:
        if self._conn is not None and not self._conn.closed:
            self._conn.close()
        try:
            self._conn = psycopg.connect(self.settings.database_url, connect_timeout=5)
        except psycopg.OperationalError as exc:
            self._conn = None
            log.error("cannot reach the database (%s); check VITALSTREAM_DATABASE_URL", exc)
            return
        if self.database_kind is None:
            self.database_kind = migrate(self._conn)
            self._writer = ReadingWriter(self.database_kind)
            self._conn.commit()
            if self.database_kind == "postgresql":
                with self._conn.transaction():
                    partitions.ensure_ahead(self._conn, now_utc())

    def _require_writer(self) -> ReadingWriter:
        if self._writer is None:
            raise psycopg.OperationalError("the schema is not migrated yet")
        return self._writer

    def _require_connection(self) -> psycopg.Connection[tuple[object, ...]]:
        if self._conn is None or self._conn.closed:
            raise psycopg.OperationalError("no database connection")
        return self._conn


def tune_garbage_collector() -> None:
    """Make CPython's cyclic garbage collector cheap for a long-running ingest process.

    Every batch allocates thousands of short-lived objects (decoded readings, rows), which
    under the default threshold (700) triggers a young collection every few hundred readings
    and, now and then, a full one that walks every object alive - including the rules
    engine's per-subject history. Readings form no reference cycles, so reference counting
    frees them anyway. Freezing what start-up built (settings, catalogue, compiled rules) and
    raising the young threshold cut the service's own CPU per reading by about a quarter
    (15.2 -> 11.4 us, docs/benchmarks.md). Process-wide: call it only from the process entry
    point (``ingest run``), never from a library or a test.
    """
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)


def _topic_kind(topic: str, prefix: str) -> str | None:
    try:
        return parse_topic(topic, prefix)[1]
    except PayloadError:
        return None


def _is_crew_event(payload: bytes) -> bool:
    """Whether an events-topic payload is a crew ``IncidentEvent`` (handoff's, not ours)."""
    try:
        decode(payload, IncidentEvent)
    except PayloadError:
        return False
    return True


def _store_events(
    conn: psycopg.Connection[tuple[object, ...]],
    messages: list[_Message],
    received_at: datetime,
    prefix: str,
) -> tuple[dict[str, list[str]], int]:
    """Store gateways' event batches (local alarms) in the caller's transaction.

    Returns the batch ids to acknowledge per gateway and how many messages were
    dead-lettered (malformed, or events under another gateway's topic). An event re-sent by
    the edge has the same id and is stored once.
    """
    acks: dict[str, list[str]] = defaultdict(list)
    bad = 0
    for message in messages:
        gateway = _topic_gateway(message.topic, prefix)
        try:
            batch = decode(message.payload, EventBatch)
        except PayloadError as exc:
            if _is_crew_event(message.payload):
                continue  # an ambulance crew's event: the handoff service stores and acks it
            dead_letter_message(
                conn, message.topic, message.payload, received_at, gateway, exc.kind, exc.detail
            )
            bad += 1
            continue
        if {batch.gateway, *(e.gateway for e in batch.events)} != {gateway}:
            dead_letter_message(
                conn,
                message.topic,
                message.payload,
                received_at,
                gateway,
                "gateway_mismatch",
                f"events of gateway {batch.gateway} on the topic of {gateway}",
            )
            bad += 1
            continue
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO edge_events (gateway, event_id, kind, subject, rule, severity, time,"
                " raised_at, received_at, batch_id, payload)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (gateway, event_id) DO NOTHING",
                [
                    (
                        e.gateway,
                        e.event_id,
                        e.kind,
                        e.subject,
                        e.rule,
                        e.severity,
                        e.time,
                        e.raised_at,
                        received_at,
                        batch.batch_id,
                        Jsonb(e.model_dump(mode="json")),
                    )
                    for e in batch.events
                ],
            )
        acks[batch.gateway].append(batch.batch_id)
    return acks, bad


def _topic_gateway(topic: str, prefix: str) -> str | None:
    try:
        return parse_topic(topic, prefix)[0]
    except PayloadError:
        return None
