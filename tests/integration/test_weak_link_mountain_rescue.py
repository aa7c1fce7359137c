"""Weak link (issue 9, mountain rescue): the ambulance loses its uplink in a valley, the crew
records findings meanwhile, and when the link returns what matters goes first.

The test runs its own mosquitto (`vitalstream.services.BrokerProcess`, as in
test_edge_alarms.py) so that it can stop and restart it; the machine's broker is never
touched. The ingest service and the handoff service subscribe first (persistent sessions),
the broker stops, and the ambulance's agent buffers monitor vitals, ECG snippets and, last of
all, the crew's `open` and `findings` events (`EdgeAgent.submit_event`). The agent process
then stops too (the gateway rebooted in the dead zone: nothing may be held in memory), the
broker comes back, and a new agent on the same outbox file sends everything. Expected:

- the crew events reach the handoff service (recorded, the stroke team pre-alerted) and are
  confirmed back to the gateway, so they leave the outbox;
- the order follows the outbox lanes, not the order of capture (ECG first, vitals, crew events
  last): on the wire (a watcher subscribed to the gateway's topics before the agent
  reconnects) the crew events come first, then every vitals batch, the ECG snippets last; and
  in the database the crew events are received before any vital sign, every vital sign no
  later than the first ECG snippet.
"""

from __future__ import annotations

import shutil
import threading
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import psycopg
import pytest
from integration_support import count, wait_for
from paho.mqtt.enums import CallbackAPIVersion

from edge_agent import AgentSettings, EdgeAgent, LinkBackoff
from ingest_service import IngestService, IngestSettings
from ingest_service.handoff import ErNotice, HandoffService, HandoffSettings
from vitals import BrokerAddress, Reading, WaveformSnippet, decode, encode_samples
from vitals.incident import Findings, IncidentEvent, Timeline
from vitalstream.services import BrokerProcess

MOSQUITTO = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin:/sbin")
pytestmark = pytest.mark.skipif(MOSQUITTO is None, reason="mosquitto is not installed")

GATEWAY = "sim-amb-mountain"
INCIDENT = "sim-inc-mountain"
SUBJECT = "tmp-5e0c71"
DEVICE = f"{GATEWAY}-monitor"
VITALS = {"heart_rate": ("/min", 96.0), "spo2": ("%", 93.0), "respiratory_rate": ("/min", 22.0)}


def monitor_capture(start: datetime) -> list[Reading | WaveformSnippet]:
    """4 min of a monitor every 15 s (48 readings) and a 10-s ECG lead II snippet every 20 s
    (12 snippets); the snippets come *first* in capture order, so only the lanes can put them
    last on the wire."""
    snippets: list[Reading | WaveformSnippet] = [
        WaveformSnippet(
            subject=SUBJECT,
            device=DEVICE,
            channel="ecg_ii",
            start=start + timedelta(seconds=20 * i),
            sample_rate_hz=250,
            scale=0.005,
            samples=encode_samples([0.4 * ((n % 250) < 20) for n in range(2500)], 0.005),
            source="sim",
            incident=INCIDENT,
        )
        for i in range(12)
    ]
    readings: list[Reading | WaveformSnippet] = [
        Reading(
            subject=SUBJECT,
            device=DEVICE,
            metric=metric,
            value=value + (step % 3),
            unit=unit,
            time=start + timedelta(seconds=15 * step),
            source="sim",
            incident=INCIDENT,
        )
        for step in range(16)
        for metric, (unit, value) in VITALS.items()
    ]
    return snippets + readings


def feeder(
    items: Sequence[Reading | WaveformSnippet],
) -> Callable[[], Sequence[Reading | WaveformSnippet]]:
    pending = list(items)

    def source() -> Sequence[Reading | WaveformSnippet]:
        taken = pending[:10]  # a few per turn, like a real monitor
        del pending[:10]
        return taken

    return source


class WireWatcher:
    """A plain MQTT client that records, in arrival order, what the gateway publishes."""

    def __init__(self, broker: BrokerAddress, prefix: str) -> None:
        self.seen: list[tuple[str, bytes]] = []
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"watch-{uuid.uuid4().hex[:8]}"
        )
        self._client.on_message = self._on_message
        self._subscribed = threading.Event()
        self._client.on_subscribe = lambda *_: self._subscribed.set()
        self._client.connect(broker.host, broker.port)
        self._client.loop_start()
        self._client.subscribe(f"{prefix}/v1/gw/{GATEWAY}/+", qos=1)
        assert self._subscribed.wait(10)

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        kind = msg.topic.rsplit("/", 1)[-1]
        if kind in ("events", "readings", "waveform"):
            self.seen.append((kind, bytes(msg.payload)))

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


def crew_events(now: datetime) -> list[IncidentEvent]:
    call = now - timedelta(minutes=40)
    common = {"incident": INCIDENT, "gateway": GATEWAY}
    return [
        IncidentEvent(
            event_id=f"{INCIDENT}-open",
            kind="open",
            time=call + timedelta(minutes=25),
            subject=SUBJECT,
            chief_complaint="hiker found confused, left arm weakness (SYNTHETIC)",
            pathway="stroke",
            timeline=Timeline(call=call, on_scene=call + timedelta(minutes=25)),
            **common,
        ),
        IncidentEvent(
            event_id=f"{INCIDENT}-findings",
            kind="findings",
            time=now,
            findings=Findings(
                age_years=61, befast_positive=True, last_known_well=call - timedelta(minutes=30)
            ),
            **common,
        ),
    ]


def test_after_a_dead_zone_crew_events_go_first_then_vitals_then_waveforms(
    private_broker: BrokerProcess, database_url: str, tmp_path: Path, topic_prefix: str
) -> None:
    url = f"mqtt://127.0.0.1:{private_broker.port}"
    ingest = IngestService(
        IngestSettings(
            database_url=database_url,
            broker_url=url,
            topic_prefix=topic_prefix,
            ingest_client_id=f"{topic_prefix}-ingest",
        )
    )
    notices: list[ErNotice] = []
    handoff_id = f"{topic_prefix}-handoff-{uuid.uuid4().hex[:6]}"
    handoff = HandoffService(
        HandoffSettings(
            database_url=database_url,
            broker_url=url,
            topic_prefix=topic_prefix,
            handoff_client_id=handoff_id,
            er_webhook_url=None,
        ),
        notify=notices.append,
    )
    outbox = tmp_path / "ambulance.outbox"
    broker = BrokerAddress("127.0.0.1", private_broker.port)
    settings = AgentSettings(batch_size=20, status_interval_s=60.0)
    backoff = LinkBackoff(base_s=0.2, cap_s=1.0)
    now = datetime.now(UTC).replace(microsecond=0)
    captured = monitor_capture(now - timedelta(minutes=4))
    ingest.start()
    handoff.start()
    in_valley: EdgeAgent | None = None
    watcher: WireWatcher | None = None
    back_in_coverage: EdgeAgent | None = None
    try:
        assert ingest.wait_ready(15) and handoff.wait_ready(15)
        private_broker.stop()  # the valley: no uplink (the services' sessions are saved)

        in_valley = EdgeAgent(
            GATEWAY, outbox, broker, prefix=topic_prefix, sources=[feeder(captured)],
            settings=settings, backoff=backoff,
        )  # fmt: skip
        in_valley.start()
        assert wait_for(lambda: in_valley is not None and in_valley.counters.accepted == 48, 20)
        assert in_valley.counters.waveforms_accepted == 12
        for event in crew_events(now):  # recorded last, while still offline
            in_valley.submit_event(event)
        assert wait_for(
            lambda: in_valley is not None and in_valley.counters.crew_events_accepted == 2, 10
        )
        assert in_valley.depth == 48 + 12 + 2
        in_valley.stop()  # the gateway reboots in the dead zone: only the disk remembers
        assert count(database_url, "SELECT count(*) FROM readings") == 0

        private_broker.start()  # coverage again
        assert handoff.wait_ready(30), "the handoff service did not resubscribe"
        watcher = WireWatcher(broker, topic_prefix)
        back_in_coverage = EdgeAgent(
            GATEWAY, outbox, broker, prefix=topic_prefix, settings=settings, backoff=backoff
        )
        back_in_coverage.start()
        assert wait_for(
            lambda: (
                count(database_url, "SELECT count(*) FROM incident_events") == 2
                and count(database_url, "SELECT count(*) FROM readings") == 48
                and count(database_url, "SELECT count(*) FROM waveforms") == 12
            ),
            60,
        ), "the buffered crew events, vitals and ECG did not all arrive"
        # Everything confirmed end to end: the crew events by the handoff service's ack.
        assert wait_for(lambda: back_in_coverage is not None and back_in_coverage.depth == 0, 30)
        assert wait_for(lambda: any(n.activation.team == "stroke_team" for n in notices), 10)
        # The ingest service leaves crew events to the handoff service: no dead letters.
        assert count(database_url, "SELECT count(*) FROM dead_letters") == 0
    finally:
        for agent in (in_valley, back_in_coverage):
            if agent is not None:
                agent.stop()
        if watcher is not None:
            watcher.close()
        handoff.stop()
        ingest.stop()  # the private broker and its sessions go with the fixture

    with psycopg.connect(database_url) as conn:
        events = conn.execute(
            "SELECT kind, received_at FROM incident_events ORDER BY received_at"
        ).fetchall()
        readings = conn.execute(
            "SELECT min(received_at), max(received_at) FROM readings WHERE incident = %s",
            (INCIDENT,),
        ).fetchone()
        waves = conn.execute(
            "SELECT min(received_at) FROM waveforms WHERE incident = %s", (INCIDENT,)
        ).fetchone()
        state = conn.execute(
            "SELECT state->'findings'->>'befast_positive' FROM incidents WHERE incident = %s",
            (INCIDENT,),
        ).fetchone()
    assert readings is not None and waves is not None and state == ("true",)
    # On the wire: crew events (alarm lane) first, then vitals, the ECG snippets last.
    assert watcher is not None
    kinds = [kind for kind, _ in watcher.seen]
    assert kinds[:2] == ["events", "events"], kinds
    assert [decode(payload, IncidentEvent).kind for _, payload in watcher.seen[:2]] == [
        "open",
        "findings",
    ]
    assert "events" not in kinds[2:] and "readings" in kinds and "waveform" in kinds
    last_vitals = max(i for i, kind in enumerate(kinds) if kind == "readings")
    assert last_vitals < kinds.index("waveform"), kinds
    assert [kind for kind, _ in events] == ["open", "findings"]
    # The lanes: crew events (alarm lane) before any vital, vitals no later than the ECG.
    assert max(at for _, at in events) <= readings[0], (events, readings)
    assert readings[1] <= waves[0], (readings, waves)
