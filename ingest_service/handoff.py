"""The handoff service: crew events in, pathway pre-alerts to the ER, the FHIR packet out.

Flow (docs/handoff.md):

1. Subscribes to ``{prefix}/v1/gw/+/events`` with its own paho client: QoS 1, persistent
   session (clean_session=False, fixed client id) and manual acks, so an event is released by
   the broker only after the transaction that recorded it committed (the same rule as
   ingest, docs/reliability.md). Payloads that are not :class:`vitals.incident.IncidentEvent`
   (alarms share the topic) are acknowledged and ignored.
   Once an event is recorded (or known already) the service also confirms it to the gateway
   that published it: a :class:`vitals.BatchAck` with the ``event_id`` as the batch id on
   ``.../gw/{gateway}/ack``, which lets the edge agent delete the event from its durable
   outbox (``EdgeAgent.submit_event``), like the ingest service's ack of a batch.
2. Folds each event into its :class:`~vitals.incident.Incident` (table ``incidents``); an
   ``event_id`` seen before is skipped (QoS 1 may deliver twice).
3. Reads the incident's latest vitals from ``readings`` (``incident`` column; stored by the
   ingest service), runs :mod:`alert_rules.pathways` when findings arrive and, by polling,
   when new readings of an open incident are stored.
4. Records each new activation (``pathway_activations``, once per incident and pathway),
   notifies the ER (an in-process callback and/or a webhook) and records the notification
   with ``activation_to_notification_ms`` = ER notified - finding received (the event's
   arrival here, or the ingest commit of the readings that tipped the rule).
5. On ``handover``: builds the FHIR Bundle (:mod:`ingest_service.handoff_fhir`), stores it
   (``handoffs``), hands it to the ER receiver and logs the :class:`HandoffReceipt`.

Tables: ``incidents``, ``incident_events``, ``pathway_activations``, ``pathway_notifications``
and ``handoffs``, migration 8 of :mod:`ingest_service.schema` (applied by ``migrate()`` at
start-up, like every service).
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
from pydantic import Field

from alert_rules.pathways import assess_pathways
from ingest_service.consumer import connect, persistent_consumer
from ingest_service.handoff_fhir import build_handoff_bundle, bundle_json
from ingest_service.schema import migrate
from ingest_service.sealing import PayloadOpener
from ingest_service.settings import ConsumerSettings
from vitals import (
    BatchAck,
    PayloadError,
    Reading,
    decode,
    encode,
    gateway_topic,
    now_utc,
    parse_topic,
    subscription,
)
from vitals.incident import HandoffReceipt, Incident, IncidentEvent, PathwayActivation

log = logging.getLogger("vitalstream.handoff")


class HandoffSettings(ConsumerSettings):
    """Settings of the handoff service (``VITALSTREAM_*``, docs/configuration.md)."""

    database_url: str = Field("postgresql://postgres@127.0.0.1:5432/vitalstream")
    broker_url: str = Field("mqtt://127.0.0.1:1883")
    topic_prefix: str = Field("vs")
    handoff_client_id: str = Field(
        "vs-handoff-1", description="MQTT client id of the handoff service's persistent session."
    )
    er_webhook_url: str | None = Field(
        None, description="http(s) URL the ER pre-alerts and handoff Bundles are POSTed to."
    )
    handoff_poll_s: float = Field(
        0.25, gt=0, description="How often open incidents are checked for new readings."
    )
    handoff_lookback_h: float = Field(
        6.0, gt=0, description="Readings older than this before the incident opened are ignored."
    )


@dataclass(frozen=True, slots=True)
class ErNotice:
    """What the ER receives when a pathway activates."""

    activation: PathwayActivation
    finding_received_at: datetime


@dataclass(frozen=True, slots=True)
class NotificationRecord:
    """One delivered (or failed) ER notification, as stored."""

    incident: str
    pathway: str
    team: str
    channel: str
    status: str
    activation_to_notification_ms: float


Notify = Callable[[ErNotice], None]
"""In-process ER notification; returning normally means delivered."""
ReceiveHandoff = Callable[[Incident, str], HandoffReceipt | None]
"""The ER's receiving side for the Bundle JSON; returns the hospital's receipt."""


@dataclass(frozen=True, slots=True)
class _Event:
    payload: bytes
    mid: int
    qos: int
    session: int
    received_at: datetime
    topic: str = ""


class HandoffService:
    """Use ``with HandoffService(settings, notify=...) as svc:`` or ``start()``/``stop()``."""

    def __init__(
        self,
        settings: HandoffSettings,
        *,
        notify: Notify | None = None,
        receive_handoff: ReceiveHandoff | None = None,
    ) -> None:
        self.settings = settings
        self._notify = notify
        self._receive_handoff = receive_handoff
        # SM4 payload layer: crew events sealed by the gateway are opened like ingest does.
        self._opener = PayloadOpener.from_settings(settings)
        self.notifications: list[NotificationRecord] = []
        self._inbox: queue.SimpleQueue[_Event] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._conn: psycopg.Connection[tuple[Any, ...]] | None = None
        self._session = 0
        self._closing = False
        #: incident -> newest readings.received_at already evaluated.
        self._vitals_seen: dict[str, datetime] = {}
        #: incident -> newest incidents.updated_at already judged (API/CLI writes included).
        self._updates_seen: dict[str, datetime] = {}
        self._client = persistent_consumer(settings.handoff_client_id)
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message

    # -- lifecycle ---------------------------------------------------------------------------
    def __enter__(self) -> HandoffService:
        self._conn = psycopg.connect(self.settings.database_url, connect_timeout=5)
        migrate(self._conn)
        connect(self._client, self.settings, self.settings.broker_url)
        self._client.loop_start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._closing = True
        self._client.disconnect()
        self._client.loop_stop()
        if self._conn is not None:
            self._conn.close()

    def start(self) -> None:
        """Enter and run in a background thread."""
        self.__enter__()
        self._thread = threading.Thread(target=self._run, name="handoff", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Finish the event in hand, then disconnect."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)
        self.__exit__(None, None, None)

    def wait_ready(self, timeout: float) -> bool:
        """Block until subscribed."""
        return self._ready.wait(timeout)

    # -- MQTT callbacks (paho's thread) ------------------------------------------------------
    def _on_connect(
        self, client: mqtt.Client, userdata: object, flags: object, reason: object, props: object
    ) -> None:
        if getattr(reason, "is_failure", False):
            log.error("broker refused the handoff connection: %s", reason)
            return
        client.subscribe(subscription("events", self.settings.topic_prefix), qos=1)
        self._session += 1

    def _on_subscribe(
        self, client: mqtt.Client, userdata: object, mid: int, reasons: object, props: object
    ) -> None:
        self._ready.set()  # on SUBACK: only then does the broker route events to us

    def _on_disconnect(
        self, client: mqtt.Client, userdata: object, flags: object, reason: object, props: object
    ) -> None:
        self._ready.clear()
        if not self._closing:
            log.warning("handoff service lost the broker (%s); paho reconnects", reason)

    def _on_message(self, client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        self._inbox.put(
            _Event(
                bytes(message.payload),
                message.mid,
                message.qos,
                self._session,
                now_utc(),
                message.topic,
            )
        )

    # -- the loop ----------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                event = self._inbox.get(timeout=self.settings.handoff_poll_s)
            except queue.Empty:
                event = None
            try:
                if event is not None:
                    self._handle(event)
                self._poll_vitals()
            except psycopg.Error:
                # Not acked: the broker redelivers the event after the reconnect.
                log.exception("handoff database error; reconnecting")
                self._reconnect_database()
                self._stop.wait(1.0)

    def _db(self) -> psycopg.Connection[tuple[Any, ...]]:
        if self._conn is None or self._conn.closed:
            raise psycopg.OperationalError("no database connection")
        return self._conn

    def _reconnect_database(self) -> None:
        if self._conn is not None and not self._conn.closed:
            self._conn.close()
        try:
            self._conn = psycopg.connect(self.settings.database_url, connect_timeout=5)
        except psycopg.OperationalError as exc:
            log.error("cannot reach the database: %s", exc)
            self._conn = None

    def _ack(self, event: _Event) -> None:
        if event.session == self._session:
            self._client.ack(event.mid, event.qos)

    def _handle(self, raw: _Event) -> None:
        try:
            event = decode(self._opener.open(raw.topic, raw.payload), IncidentEvent)
        except PayloadError as exc:
            # Not a crew event (local alarms share the topic; ingest stores and dead-letters
            # those, sealed or not), so nothing of ours is lost by letting it go.
            log.debug("not an incident event (%s); ignored", exc.detail)
            self._ack(raw)
            return
        incident = record_event(self._db(), event, raw.received_at)
        self._ack(raw)
        self._confirm_to_gateway(raw, event)
        if incident is None:
            return  # a duplicate delivery or an event for an unknown incident
        self._evaluate(incident, raw.received_at)
        if event.kind == "handover":
            self._hand_over(incident)

    def _confirm_to_gateway(self, raw: _Event, event: IncidentEvent) -> None:
        """Tell the publishing gateway its event is recorded (after the commit), so its
        outbox may let it go; a duplicate is confirmed again (its first ack may be lost)."""
        try:
            gateway, _ = parse_topic(raw.topic, self.settings.topic_prefix)
        except PayloadError:
            return
        ack = BatchAck(batch_ids=(event.event_id,), committed_at=now_utc())
        topic = gateway_topic(gateway, "ack", self.settings.topic_prefix)
        self._client.publish(topic, self._opener.seal_for(gateway, topic, encode(ack)), qos=1)

    def _poll_vitals(self) -> None:
        """Re-judge open incidents whose vitals or record changed since the last look.

        A change to the record itself (``updated_at``) also comes from the API or the CLI
        (findings typed in at the ER desk), not only from crew events on MQTT; activations
        are unique per (incident, pathway), so judging again never notifies twice.
        """
        conn = self._db()
        with conn.transaction():
            rows = conn.execute(
                "SELECT incident, updated_at FROM incidents WHERE handed_over_at IS NULL "
                "AND updated_at > now() - interval '24 hours'"
            ).fetchall()
        for incident_id, updated_at in rows:
            key = str(incident_id)
            newest = newest_reading(conn, key)
            seen = self._vitals_seen.get(key)
            new_vitals = newest is not None and (seen is None or newest > seen)
            known_update = self._updates_seen.get(key)
            new_record = isinstance(updated_at, datetime) and (
                known_update is None or updated_at > known_update
            )
            if not (new_vitals or new_record):
                continue
            if isinstance(updated_at, datetime):
                self._updates_seen[key] = updated_at
            incident = load_incident(conn, key)
            if incident is not None:
                received = newest if new_vitals and newest is not None else updated_at
                self._evaluate(incident, received if isinstance(received, datetime) else now_utc())

    # -- rules and notification --------------------------------------------------------------
    def _evaluate(self, incident: Incident, finding_received_at: datetime) -> None:
        conn = self._db()
        newest = newest_reading(conn, incident.id)
        vitals = latest_vitals(conn, incident, timedelta(hours=self.settings.handoff_lookback_h))
        if newest is not None:
            self._vitals_seen[incident.id] = newest
        values = {r.metric: r.value for r in vitals}
        now = now_utc()
        for assessment in assess_pathways(values, incident.findings, now):
            if not assessment.activated:
                continue
            activation = assessment.activation(incident.id, now)
            activation_id = record_activation(conn, activation, finding_received_at)
            if activation_id is not None:
                self._notify_er(activation_id, activation, finding_received_at)

    def _notify_er(
        self, activation_id: int, activation: PathwayActivation, received_at: datetime
    ) -> None:
        notice = ErNotice(activation, received_at)
        channels: list[tuple[str, str, Callable[[], None]]] = []
        if self._notify is not None:
            notify = self._notify
            channels.append(("callback", "in-process", lambda: notify(notice)))
        if self.settings.er_webhook_url:
            url = self.settings.er_webhook_url
            body = {"kind": "activation", **activation.model_dump(mode="json")}
            channels.append(("webhook", url, lambda: _post_json(url, body)))
        if not channels:
            log.warning("no ER channel configured; activation %s only recorded", activation_id)
        for channel, target, send in channels:
            status, detail = "delivered", None
            try:
                send()
            except Exception as exc:  # a failing ER channel must not stop the service
                status, detail = "failed", f"{type(exc).__name__}: {exc}"
            notified_at = now_utc()
            elapsed_ms = (notified_at - received_at).total_seconds() * 1000
            conn = self._db()
            with conn.transaction():
                conn.execute(
                    "INSERT INTO pathway_notifications (activation_id, channel, target, status,"
                    " detail, notified_at, activation_to_notification_ms)"
                    " VALUES (%s, %s, %s, %s, %s, %s, %s)",
                    (activation_id, channel, target, status, detail, notified_at, elapsed_ms),
                )
            self.notifications.append(
                NotificationRecord(
                    activation.incident,
                    activation.pathway,
                    activation.team,
                    channel,
                    status,
                    elapsed_ms,
                )
            )
            log.info(
                "ER %s: %s pre-alert (%s) for incident %s via %s in %.0f ms",
                status,
                activation.team,
                activation.pathway,
                activation.incident,
                channel,
                elapsed_ms,
            )

    # -- handover ----------------------------------------------------------------------------
    def _hand_over(self, incident: Incident) -> None:
        conn = self._db()
        vitals = latest_vitals(conn, incident, timedelta(hours=self.settings.handoff_lookback_h))
        activations = load_activations(conn, incident.id)
        now = now_utc()
        bundle = build_handoff_bundle(incident, vitals, activations, now=now)
        text = bundle_json(bundle)
        bundle_id = str(bundle.id)
        with conn.transaction():
            conn.execute(
                "INSERT INTO handoffs (incident, bundle_id, bundle, created_at)"
                " VALUES (%s, %s, %s::jsonb, %s) ON CONFLICT (incident) DO UPDATE"
                " SET bundle_id = excluded.bundle_id, bundle = excluded.bundle,"
                " created_at = excluded.created_at",
                (incident.id, bundle_id, text, now),
            )
        receipt: HandoffReceipt | None = None
        try:
            if self._receive_handoff is not None:
                receipt = self._receive_handoff(incident, text)
            if self.settings.er_webhook_url:
                _post_json(self.settings.er_webhook_url, {"kind": "handoff", "bundle": text})
        except Exception:
            log.exception("the ER did not take the handoff Bundle of %s", incident.id)
        if receipt is not None:
            with conn.transaction():
                conn.execute(
                    "UPDATE handoffs SET receipt = %s::jsonb, received_at = %s WHERE incident = %s",
                    (receipt.model_dump_json(), receipt.received_at, incident.id),
                )
            log.info("handoff of %s %s by %s", incident.id, receipt.status, receipt.received_by)


# -- storage (plain functions over a connection, so tests and the CLI can use them) ---------


def load_incident(conn: psycopg.Connection[tuple[Any, ...]], incident: str) -> Incident | None:
    """The stored incident, or None."""
    with conn.transaction():
        row = conn.execute(
            "SELECT state FROM incidents WHERE incident = %s", (incident,)
        ).fetchone()
    return None if row is None else Incident.model_validate(row[0])


def record_event(
    conn: psycopg.Connection[tuple[Any, ...]], event: IncidentEvent, received_at: datetime
) -> Incident | None:
    """Store ``event`` once and fold it into its incident; None for a duplicate or an event of
    an incident never opened (kept in ``incident_events`` for the audit trail)."""
    with conn.transaction():
        inserted = conn.execute(
            "INSERT INTO incident_events (event_id, incident, gateway, kind, time, received_at,"
            " payload) VALUES (%s, %s, %s, %s, %s, %s, %s::jsonb)"
            " ON CONFLICT (event_id) DO NOTHING RETURNING event_id",
            (
                event.event_id,
                event.incident,
                event.gateway,
                event.kind,
                event.time,
                received_at,
                event.model_dump_json(exclude_none=True),
            ),
        ).fetchone()
        if inserted is None:
            return None
        row = conn.execute(
            "SELECT state FROM incidents WHERE incident = %s FOR UPDATE", (event.incident,)
        ).fetchone()
        if row is None:
            if event.kind != "open":
                log.warning("event %s for unknown incident; kept, not applied", event.event_id)
                return None
            incident = Incident.open(event)
        else:
            incident = Incident.model_validate(row[0]).apply(event)
        conn.execute(
            "INSERT INTO incidents (incident, gateway, subject, pathway, state, opened_at,"
            " updated_at, handed_over_at) VALUES (%s, %s, %s, %s, %s::jsonb, %s, %s, %s)"
            " ON CONFLICT (incident) DO UPDATE SET pathway = excluded.pathway,"
            " state = excluded.state, updated_at = excluded.updated_at,"
            " handed_over_at = excluded.handed_over_at",
            (
                incident.id,
                incident.gateway,
                incident.subject,
                incident.pathway,
                incident.model_dump_json(),
                incident.opened_at,
                received_at,
                incident.timeline.handover,
            ),
        )
    return incident


def newest_reading(conn: psycopg.Connection[tuple[Any, ...]], incident: str) -> datetime | None:
    """When the newest reading of ``incident`` was received by ingest (None if none)."""
    with conn.transaction():
        row = conn.execute(
            "SELECT max(received_at) FROM readings WHERE incident = %s", (incident,)
        ).fetchone()
    return None if row is None or row[0] is None else row[0]


def latest_vitals(
    conn: psycopg.Connection[tuple[Any, ...]], incident: Incident, lookback: timedelta
) -> list[Reading]:
    """The newest reading of each numeric metric of ``incident`` (waveforms excluded)."""
    with conn.transaction():
        rows = conn.execute(
            "SELECT DISTINCT ON (metric) subject, device, metric, value, no_value, unit, time,"
            " seq, source, incident FROM readings"
            " WHERE incident = %s AND time >= %s AND metric NOT LIKE 'ecg\\_%%'"
            " ORDER BY metric, time DESC",
            (incident.id, incident.opened_at - lookback),
        ).fetchall()
    fields = ("subject", "device", "metric", "value", "no_value", "unit", "time", "seq")
    out = []
    for row in rows:
        data = dict(zip(fields, row[:8], strict=True))
        out.append(Reading.model_validate({**data, "source": row[8], "incident": row[9]}))
    return out


def record_activation(
    conn: psycopg.Connection[tuple[Any, ...]],
    activation: PathwayActivation,
    finding_received_at: datetime,
) -> int | None:
    """Store a first activation of (incident, pathway); None when it was activated before."""
    with conn.transaction():
        row = conn.execute(
            "INSERT INTO pathway_activations (incident, pathway, team, reasons, missing, advice,"
            " guideline, deadline, finding_received_at, activated_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (incident, pathway) DO NOTHING RETURNING id",
            (
                activation.incident,
                activation.pathway,
                activation.team,
                list(activation.reasons),
                list(activation.missing),
                list(activation.advice),
                activation.guideline,
                activation.deadline,
                finding_received_at,
                activation.time,
            ),
        ).fetchone()
    return None if row is None else int(row[0])


def load_activations(
    conn: psycopg.Connection[tuple[Any, ...]], incident: str
) -> list[PathwayActivation]:
    """Every activation of ``incident``, first first."""
    with conn.transaction():
        rows = conn.execute(
            "SELECT pathway, team, reasons, missing, advice, guideline, activated_at, deadline"
            " FROM pathway_activations WHERE incident = %s ORDER BY activated_at",
            (incident,),
        ).fetchall()
    return [
        PathwayActivation(
            incident=incident,
            pathway=r[0],
            team=r[1],
            reasons=tuple(r[2]),
            missing=tuple(r[3]),
            advice=tuple(r[4]),
            guideline=r[5],
            time=r[6],
            deadline=r[7],
        )
        for r in rows
    ]


def _post_json(url: str, body: dict[str, Any]) -> None:
    """POST ``body`` as JSON; raises on a non-2xx answer or a timeout (2 s)."""
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"webhook URL {url!r} is not http(s)")
    request = urllib.request.Request(  # noqa: S310 - scheme checked above
        url,
        data=json.dumps(body, default=str).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=2) as response:  # noqa: S310
        if not 200 <= response.status < 300:
            raise OSError(f"webhook answered {response.status}")


def write_bundle(path: Path, text: str) -> Path:
    """Write Bundle JSON text to ``path`` (directories made), pretty-printed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(json.loads(text), indent=2) + "\n", encoding="utf-8")
    return path


__all__: Sequence[str] = (
    "ErNotice",
    "HandoffService",
    "HandoffSettings",
    "NotificationRecord",
    "latest_vitals",
    "load_activations",
    "load_incident",
    "record_activation",
    "record_event",
    "write_bundle",
)
