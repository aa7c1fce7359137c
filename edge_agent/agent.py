"""The edge agent: sources -> outbox (disk) -> MQTT batches -> confirmed by ingest -> deleted.

One agent = one gateway = one thread that owns the outbox. Each turn of its loop it takes due
readings from its sources into the outbox, applies the ingest service's acks, re-arms
everything after a reconnect, publishes due rows in batches, and every few seconds refreshes
its retained status. Retry timing is a pure function (:func:`retry_delay`).

With local alarms on, every accepted reading also goes through the rules engine
(:mod:`edge_agent.alarms`): alarms go into the outbox's ``alarm`` lane (published on
``.../events`` before any reading) and to the local notification. A config down-link
(:mod:`edge_agent.downlink`) re-binds devices to patients, sets the local thresholds and the
status cadence; it is applied whole or not at all, and acknowledged on the status.

Crew events (:class:`vitals.incident.IncidentEvent`, issue 9) come in through
:meth:`EdgeAgent.submit_event` from any thread; the agent's thread writes them to the outbox's
``alarm`` lane (on disk, like local alarms) and publishes each one on its own on
``.../events``, the shape the handoff service reads. The handoff service confirms an event on
``.../ack`` (its ``event_id`` as the batch id) after the transaction that recorded it, and
only then does the row leave the outbox.

Lanes: a reading measured more than ``backfill_after_s`` before the agent accepts it (a
device's stored records, a late resend) goes into the ``backfill`` lane, the others into
``vitals``; ECG snippets go into ``waveform`` and are published on ``.../waveform``. The outbox
is bounded (``max_outbox_rows``); what its overflow policy drops is logged, counted and put on
the retained status (``dropped``). In ambulance mode the status also carries the last GPS fix
and a crude ETA to the destination hospital (:mod:`edge_agent.ambulance`).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TypeVar, cast

from edge_agent.alarms import LocalAlarms, LocalAlarmSettings, local_ruleset
from edge_agent.ambulance import AmbulanceTracker
from edge_agent.downlink import (
    ConfigRefusedError,
    check_version,
    load_saved_config,
    parse_downlink,
    save_config,
    saved_config_path,
)
from edge_agent.link import GatewayLink, LinkBackoff, LinkSealing, LinkTls
from edge_agent.outbox import DroppedRow, Outbox, OutboxRow
from edge_agent.overflow import DEFAULT_MAX_ROWS
from vitals import (
    Batch,
    BrokerAddress,
    DeviceStatus,
    DroppedCount,
    EventBatch,
    GatewayConfig,
    GatewayStatus,
    LocalAlarm,
    Reading,
    VitalsError,
    WaveformBatch,
    WaveformSnippet,
    encode,
    now_utc,
)
from vitals.incident import IncidentEvent

log = logging.getLogger("vitalstream.edge")

#: A source returns the readings (and ECG snippets) that became available since it was last
#: asked.
Source = Callable[[], Sequence[Reading | WaveformSnippet]]
_Item = TypeVar("_Item", bound=Reading | WaveformSnippet)


def retry_delay(attempts: int, *, first_s: float = 10.0, cap_s: float = 120.0) -> float:
    """Seconds to wait for the ingest ack before re-sending, doubling per attempt, capped."""
    return float(min(cap_s, first_s * 2 ** max(0, attempts)))


@dataclass(frozen=True, slots=True)
class AgentSettings:
    """How an agent batches and paces its uplink."""

    batch_size: int = 250
    max_unconfirmed_batches: int = 32
    status_interval_s: float = 5.0
    idle_sleep_s: float = 0.02
    #: Outbox bound in rows (None = unbounded); see :data:`edge_agent.overflow.DEFAULT_MAX_ROWS`.
    max_outbox_rows: int | None = DEFAULT_MAX_ROWS
    #: A reading older than this when accepted goes into the backfill lane (None = never).
    backfill_after_s: float | None = 3600.0
    #: ECG snippets per ``.../waveform`` message (~10 kB each; the ingest takes up to 1 MB).
    waveform_batch_size: int = 8


@dataclass
class AgentCounters:
    """What the agent did, for status and the demo summary."""

    accepted: int = 0
    batches_sent: int = 0
    confirmed: int = 0
    resent: int = 0
    alarms_raised: int = 0
    configs_applied: int = 0
    configs_refused: int = 0
    waveforms_accepted: int = 0
    #: Crew incident events written to the outbox (:meth:`EdgeAgent.submit_event`).
    crew_events_accepted: int = 0
    #: Rows dropped by the outbox's overflow policy (docs/reliability.md, "Overflow").
    dropped: int = 0
    accepted_keys: set[tuple[str, str, str]] = field(default_factory=set)
    #: (device, metric, time) of readings dropped by policy: accounted, not lost.
    dropped_keys: set[tuple[str, str, str]] = field(default_factory=set)


class EdgeAgent:
    """One gateway's agent. ``run`` blocks; ``start``/``stop`` run it in a thread."""

    def __init__(
        self,
        gateway: str,
        outbox_path: Path,
        broker: BrokerAddress,
        *,
        prefix: str,
        sources: Sequence[Source] = (),
        settings: AgentSettings | None = None,
        tls: LinkTls | None = None,
        backoff: LinkBackoff | None = None,
        local_alarms: LocalAlarmSettings | None = None,
        ambulance: AmbulanceTracker | None = None,
        sealing: LinkSealing | None = None,
    ) -> None:
        self.gateway = gateway
        self._outbox_path = outbox_path
        self._broker = broker
        self._prefix = prefix
        self._sources = list(sources)
        #: device -> newest measurement time accepted (for the retained status).
        self._last_reading: dict[str, datetime] = {}
        self._settings = settings or AgentSettings()
        self._tls = tls
        self._backoff = backoff
        self._sealing = sealing  # SM4 payload layer (docs/security.md); None = clear payloads
        self.counters = AgentCounters()
        #: None = no local alarms (library default; `edge run` turns them on by config).
        self._alarms = LocalAlarms(gateway, local_alarms) if local_alarms else None
        self._ambulance = ambulance
        self._dropped: list[DroppedCount] = []
        self._config_path = saved_config_path(outbox_path)
        self._config: GatewayConfig | None = None
        self._config_error: str | None = None
        self._assigned: dict[str, str] = {}
        self._status_interval_s = self._settings.status_interval_s
        self._status_now = False
        # batch id -> (outbox row ids, retry time): batches published but not yet confirmed.
        self._unconfirmed: dict[str, tuple[list[int], float]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._depth = 0
        self._sources_done = threading.Event()
        # Crew events handed over by other threads, written to the outbox by the agent's own.
        self._crew_events: queue.SimpleQueue[IncidentEvent] = queue.SimpleQueue()

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        """Run the agent in a background thread."""
        self._thread = threading.Thread(target=self.run, name=f"edge-{self.gateway}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the loop and close the link (the outbox keeps whatever is unconfirmed)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def stop_sources(self) -> None:
        """Stop taking new readings; keep draining the outbox."""
        self._sources_done.set()

    def submit_event(self, event: IncidentEvent) -> None:
        """Queue a crew incident event (thread-safe; returns at once).

        The agent's thread writes it to the outbox's ``alarm`` lane on its next turn (so it
        survives a dead zone and a restart from then on) and publishes it on ``.../events``
        ahead of any reading; it leaves the outbox when the handoff service confirms it.
        ``counters.crew_events_accepted`` counts the events on disk. Raises ``ValueError`` for
        an event of another gateway (the broker lets a gateway publish only its own topics).
        """
        if event.gateway != self.gateway:
            raise ValueError(
                f"event {event.event_id} is of gateway {event.gateway!r}, not {self.gateway!r}"
            )
        self._crew_events.put(event)

    @property
    def depth(self) -> int:
        """Readings in the outbox as of the last loop turn."""
        return self._depth

    @property
    def config_version(self) -> int | None:
        """The version of the down-link config in force (None: none yet)."""
        return self._config.version if self._config else None

    def run(self) -> None:
        """The agent loop (blocks until :meth:`stop`); a crash is logged, never silent."""
        try:
            self._loop()
        except Exception:
            log.exception(
                "edge agent %s stopped on an error; its outbox keeps the data", self.gateway
            )
            raise

    def _loop(self) -> None:
        saved = load_saved_config(self._config_path, self.gateway)
        if saved is not None:
            self._apply_config(saved, persist=False)
        with (
            Outbox(self._outbox_path, max_rows=self._settings.max_outbox_rows) as outbox,
            GatewayLink(
                self.gateway,
                self._broker,
                self._prefix,
                tls=self._tls,
                backoff=self._backoff,
                sealing=self._sealing,
            ) as link,
        ):
            next_status = 0.0
            self._dropped = _dropped_counts(outbox)
            while not self._stop.is_set():
                self._take_configs(link)
                self._take_crew_events(outbox)
                if not self._sources_done.is_set():
                    self._collect(outbox, uplink_up=link.connected)
                self._apply_acks(outbox, link)
                if link.take_reconnected():
                    self._unconfirmed.clear()
                    outbox.make_all_due()
                    next_status = 0.0
                sent = self._drain(outbox, link) if link.connected else 0
                self._depth = outbox.depth()
                now = time.monotonic()
                if link.connected and (now >= next_status or self._status_now):
                    self._publish_status(link)
                    self._status_now = False
                    next_status = now + self._status_interval_s
                if not sent:
                    self._stop.wait(self._settings.idle_sleep_s)

    # -- steps -------------------------------------------------------------------------------
    def _collect(self, outbox: Outbox, *, uplink_up: bool) -> None:
        for source in self._sources:
            items = source()
            if not items:
                continue
            if self._assigned:
                items = [self._assign(item) for item in items]
            snippets = [item for item in items if isinstance(item, WaveformSnippet)]
            if snippets:
                outbox.put_waveforms(snippets)
                self.counters.waveforms_accepted += len(snippets)
            readings = [item for item in items if isinstance(item, Reading)]
            if not readings:
                self._account_drops(outbox)
                continue
            accepted = self._put_readings(outbox, readings)
            # `depth` before `accepted`: whoever watches both never sees new readings counted
            # as accepted while `depth` still says the outbox is empty.
            self._depth = outbox.depth()
            for reading in accepted:
                self.counters.accepted += 1
                self.counters.accepted_keys.add(
                    (reading.device, reading.metric, reading.time.isoformat())
                )
                seen = self._last_reading.get(reading.device)
                if seen is None or reading.time > seen:
                    self._last_reading[reading.device] = reading.time
            if self._alarms is not None:
                # After the readings are durable: an alarm never exists without its reading.
                alarms = self._alarms.judge(accepted, now_utc(), uplink_up=uplink_up)
                if alarms:
                    outbox.put_events(alarms, lane="alarm")
                    self.counters.alarms_raised += len(alarms)
                    self._alarms.notify(alarms, uplink_up=uplink_up)
            self._account_drops(outbox)

    def _take_crew_events(self, outbox: Outbox) -> None:
        events: list[IncidentEvent] = []
        while not self._crew_events.empty():
            events.append(self._crew_events.get_nowait())
        if not events:
            return
        outbox.put_crew_events(events)
        self.counters.crew_events_accepted += len(events)
        self._depth = outbox.depth()
        self._account_drops(outbox)

    def _put_readings(self, outbox: Outbox, readings: Sequence[Reading]) -> list[Reading]:
        """Current readings into ``vitals``; old ones (older than backfill_after_s) and
        records downloaded from a device's memory (RACP, ``stored_record``) into ``backfill``."""
        after = self._settings.backfill_after_s
        cutoff = now_utc() - timedelta(seconds=after) if after is not None else None

        def is_old(reading: Reading) -> bool:
            return "stored_record" in reading.quality or (
                cutoff is not None and reading.time < cutoff
            )

        current = [reading for reading in readings if not is_old(reading)]
        old = [reading for reading in readings if is_old(reading)]
        accepted = outbox.put(current) if current else []
        if old:
            accepted += outbox.put(old, lane="backfill")
        return accepted

    def _account_drops(self, outbox: Outbox) -> None:
        """Log, count and report what the overflow policy dropped (never silently)."""
        drops = outbox.take_drops()
        if not drops:
            return
        self.counters.dropped += len(drops)
        for row in drops:
            if row.kind == "reading":
                self.counters.dropped_keys.add((row.device, row.metric, row.time))
        log.warning(
            "gateway %s: outbox over its bound of %s rows; dropped %s (oldest first; "
            "alarms are never dropped)",
            self.gateway,
            outbox.max_rows,
            _describe_drops(drops),
        )
        self._dropped = _dropped_counts(outbox)
        self._status_now = True

    def _assign(self, item: _Item) -> _Item:
        """Put a reading/snippet on the patient its device is bound to by the config down-link."""
        subject = self._assigned.get(item.device)
        if subject is None or subject == item.subject:
            return item
        return cast(_Item, item.model_copy(update={"subject": subject}))

    # -- config down-link ---------------------------------------------------------------------
    def _take_configs(self, link: GatewayLink) -> None:
        while not link.configs.empty():
            payload = link.configs.get_nowait()
            try:
                config = parse_downlink(payload, self.gateway)
            except ConfigRefusedError as exc:
                self._refuse(exc.detail)
                continue
            self._apply_config(config, persist=True)

    def _apply_config(self, config: GatewayConfig, *, persist: bool) -> None:
        """Whole or nothing: everything is built and saved before anything is switched."""
        try:
            if not check_version(config, self._config):
                return  # the config in force, seen again (retained copy after a reconnect)
            rules = (
                local_ruleset(self._alarms.settings.packs, config.thresholds)
                if self._alarms is not None
                else None
            )
            assigned = {binding.device: binding.subject for binding in config.devices}
            if persist:
                save_config(self._config_path, config)
        except ConfigRefusedError as exc:
            self._refuse(exc.detail)
            return
        except (VitalsError, ValueError) as exc:
            self._refuse(f"config version {config.version}: {exc}")
            return
        except OSError as exc:
            self._refuse(f"config version {config.version} could not be saved: {exc}")
            return
        # The switch: plain assignments in the agent's thread, between two loop turns.
        if self._alarms is not None and rules is not None:
            self._alarms.set_rules(rules)
        self._assigned = assigned
        self._status_interval_s = config.cadence_s or self._settings.status_interval_s
        self._config = config
        self._config_error = None
        self._status_now = True
        self.counters.configs_applied += 1
        log.info("gateway %s: config version %d in force", self.gateway, config.version)

    def _refuse(self, reason: str) -> None:
        log.error("gateway %s refused a config down-link: %s", self.gateway, reason)
        self._config_error = reason
        self._status_now = True
        self.counters.configs_refused += 1

    def _apply_acks(self, outbox: Outbox, link: GatewayLink) -> None:
        while not link.acks.empty():
            ack = link.acks.get_nowait()
            for batch_id in ack.batch_ids:
                entry = self._unconfirmed.pop(batch_id, None)
                if entry:
                    self.counters.confirmed += outbox.confirm(entry[0])

    def _drain(self, outbox: Outbox, link: GatewayLink) -> int:
        now = time.time()
        # A batch whose retry time passed is forgotten: its rows are due again in the outbox
        # and will be confirmed through the batch that re-sends them.
        for batch_id in [b for b, (_, retry_at) in self._unconfirmed.items() if retry_at <= now]:
            del self._unconfirmed[batch_id]
        room = self._settings.max_unconfirmed_batches - len(self._unconfirmed)
        if room <= 0:
            return 0
        # Rows already in an unconfirmed batch have a future retry time, so `due` skips them.
        rows = outbox.due(now, room * self._settings.batch_size)
        sent = 0
        # `due` is in lane order (alarms first); consecutive rows of one kind form a batch.
        for chunk in _chunks(rows, self._settings.batch_size, self._settings.waveform_batch_size):
            batch_id = uuid.uuid4().hex
            if chunk[0].kind == "waveform":
                kind = "waveform"
                payload = encode(
                    WaveformBatch(
                        batch_id=batch_id,
                        gateway=self.gateway,
                        sent_at=now_utc(),
                        snippets=tuple(
                            row.item for row in chunk if isinstance(row.item, WaveformSnippet)
                        ),
                    )
                )
            elif chunk[0].kind == "crew_event":
                # One raw IncidentEvent per message, as the handoff service reads it; it
                # confirms by the event id (see the module docstring).
                (crew_event,) = (row.item for row in chunk if isinstance(row.item, IncidentEvent))
                batch_id = crew_event.event_id
                kind = "events"
                payload = encode(crew_event)
            elif chunk[0].kind == "event":
                events = tuple(row.item for row in chunk if isinstance(row.item, LocalAlarm))
                kind = "events"
                payload = encode(
                    EventBatch(
                        batch_id=batch_id, gateway=self.gateway, sent_at=now_utc(), events=events
                    )
                )
            else:
                kind = "readings"
                payload = encode(
                    Batch(
                        batch_id=batch_id,
                        gateway=self.gateway,
                        sent_at=now_utc(),
                        readings=tuple(row.reading for row in chunk),
                    )
                )
            if not link.publish(kind, payload):
                break
            ids = [row.row_id for row in chunk]
            attempts = max(row.attempts for row in chunk)
            self.counters.resent += sum(1 for row in chunk if row.attempts)
            retry_at = now + retry_delay(attempts)
            outbox.mark_sent(ids, retry_at)
            earlier = self._unconfirmed.get(batch_id)  # the same crew event submitted twice
            self._unconfirmed[batch_id] = ([*earlier[0], *ids] if earlier else ids, retry_at)
            self.counters.batches_sent += 1
            sent += len(chunk)
        return sent

    def _publish_status(self, link: GatewayLink) -> None:
        position, eta = self._ambulance.report(now_utc()) if self._ambulance else (None, None)
        status = GatewayStatus(
            gateway=self.gateway,
            state="online",
            time=now_utc(),
            queue_depth=self._depth,
            software="vitalstream-edge",
            config_version=self.config_version,
            config_error=self._config_error,
            dropped=tuple(self._dropped),
            position=position,
            eta=eta,
            devices=self._device_status(),
        )
        link.publish("status", encode(status), retain=True)

    def _device_status(self) -> tuple[DeviceStatus, ...]:
        """Each device's newest reading; battery where a source knows it (BLE battery level)."""
        battery: dict[str, float] = {}
        for source in self._sources:
            report = getattr(source, "device_status", None)
            if callable(report):
                for device in report():
                    if isinstance(device, DeviceStatus) and device.battery_pct is not None:
                        battery[device.device] = device.battery_pct
        return tuple(
            DeviceStatus(device=device, last_reading_at=seen, battery_pct=battery.get(device))
            for device, seen in sorted(self._last_reading.items())
        )


def _chunks(
    rows: Sequence[OutboxRow], size: int, waveform_size: int | None = None
) -> list[list[OutboxRow]]:
    """Split rows (in lane order) into batches of one kind and at most ``size`` rows
    (``waveform_size`` for ECG snippets, which are ~40 times larger than a reading; one per
    message for crew events)."""
    chunks: list[list[OutboxRow]] = []
    for row in rows:
        limit = (waveform_size or size) if row.kind == "waveform" else size
        if row.kind == "crew_event":
            limit = 1
        if chunks and len(chunks[-1]) < limit and chunks[-1][0].kind == row.kind:
            chunks[-1].append(row)
        else:
            chunks.append([row])
    return chunks


def _dropped_counts(outbox: Outbox) -> list[DroppedCount]:
    return [
        DroppedCount(lane=lane, device=device, count=count)
        for lane, device, count in outbox.drop_counts()
    ]


def _describe_drops(drops: Sequence[DroppedRow]) -> str:
    """``backfill 12 (dev-1 10, dev-2 2), vitals 3 (dev-1 3)`` for the log line."""
    per_lane: dict[str, Counter[str]] = {}
    for row in drops:
        per_lane.setdefault(row.lane, Counter())[row.device] += 1
    return ", ".join(
        f"{lane} {sum(devices.values())} ("
        + ", ".join(f"{device} {count}" for device, count in sorted(devices.items()))
        + ")"
        for lane, devices in per_lane.items()
    )
