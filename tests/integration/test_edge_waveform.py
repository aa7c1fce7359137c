"""Issue 6, remaining edge items against the real broker and database:

- ECG snippets (MIT-BIH record 100, lead MLII at 360 Hz, replayed through
  ``edge_agent.replay``) travel in the outbox's waveform lane, are published on
  ``.../waveform`` and stored once each in ``waveforms``; buffered together with vitals, they
  arrive after the vitals.
- A tiny outbox bound: the overflow policy drops backfill, then waveform, then vitals, never
  the alarm; every reading is stored or accounted as dropped; the retained status (stored by
  ingest in ``gateways.status``) carries the ``dropped`` counters, ``edge status`` too.
- Ambulance mode: position and ETA from a simulated NMEA route on the retained status.

Each test runs its own mosquitto on a free port (stopped to cut the uplink), never the
machine's broker.
"""

from __future__ import annotations

import json
import shutil
import struct
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from integration_support import count, wait_for

from edge_agent import AgentSettings, EdgeAgent, LinkBackoff, LocalAlarmSettings
from edge_agent.ambulance import (
    AmbulanceTracker,
    Destination,
    NmeaReplaySource,
    NmeaSchedule,
    simulate_route,
)
from edge_agent.replay import ReplaySource, WaveformSchedule, load_wfdb_waveform
from ingest_service import IngestService, IngestSettings
from vitals import BrokerAddress, Reading, WaveformSnippet, encode_samples
from vitalstream.commands.edge import outbox_status
from vitalstream.services import BrokerProcess

MOSQUITTO = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin:/sbin")
MITDB_100 = Path("/work/shared/data/mitdb_af_and_nsr/100")
pytestmark = pytest.mark.skipif(MOSQUITTO is None, reason="mosquitto is not installed")
NOW = datetime.now(UTC).replace(microsecond=0)


def ingest_on(broker: BrokerProcess, database_url: str, prefix: str) -> IngestService:
    service = IngestService(
        IngestSettings(
            database_url=database_url,
            broker_url=f"mqtt://127.0.0.1:{broker.port}",
            topic_prefix=prefix,
            ingest_client_id=f"{prefix}-ingest",
        )
    )
    service.start()
    assert service.wait_ready(15)
    return service


def reading(device: str, metric: str, value: float, unit: str, moment: datetime) -> Reading:
    return Reading(
        subject="s-wave",
        device=device,
        metric=metric,
        value=value,
        unit=unit,
        time=moment,
        source="sim",
    )


def feeder(
    items: Sequence[Reading | WaveformSnippet], per_turn: int = 10
) -> Callable[[], Sequence[Reading | WaveformSnippet]]:
    pending = list(items)

    def source() -> Sequence[Reading | WaveformSnippet]:
        taken = pending[:per_turn]
        del pending[:per_turn]
        return taken

    return source


@pytest.mark.skipif(not MITDB_100.with_suffix(".dat").is_file(), reason="MIT-BIH 100 absent")
def test_buffered_ecg_snippets_arrive_after_vitals_and_are_stored_once(
    private_broker: BrokerProcess, database_url: str, tmp_path: Path, topic_prefix: str
) -> None:
    recorded = load_wfdb_waveform(MITDB_100, snippet_s=10, every_s=10, max_seconds=60)
    assert len(recorded) == 12  # 6 snippets x (MLII -> ecg_ii, V5 -> ecg_v5)
    wave = ReplaySource(
        WaveformSchedule(recorded, NOW, speed=1e6, subject="s-wave", device="mitdb-100")
    )
    vitals = [
        reading("dev-hr", "heart_rate", 72.0, "/min", NOW + timedelta(seconds=i)) for i in range(40)
    ]
    ingest = ingest_on(private_broker, database_url, topic_prefix)
    agent = EdgeAgent(
        "gw-wave",
        tmp_path / "outbox.sqlite",
        BrokerAddress("127.0.0.1", private_broker.port),
        prefix=topic_prefix,
        # the waveform source is asked first, so the snippets even enter the outbox first
        sources=[wave, feeder(vitals)],
        backoff=LinkBackoff(base_s=0.2, cap_s=1.0),
    )
    try:
        private_broker.stop()  # both buffer while the uplink is down
        agent.start()
        assert wait_for(
            lambda: agent.counters.accepted == 40 and agent.counters.waveforms_accepted == 12, 20
        )
        private_broker.start()
        assert wait_for(
            lambda: (
                count(database_url, "SELECT count(*) FROM readings") == 40
                and count(database_url, "SELECT count(*) FROM waveforms") == 12
            ),
            45,
        ), "the buffered readings and snippets did not all arrive"
        assert wait_for(lambda: agent.depth == 0, 20)
    finally:
        agent.stop()
        ingest.stop()
    with psycopg.connect(database_url) as conn:
        last_reading = conn.execute("SELECT max(received_at) FROM readings").fetchone()
        rows = conn.execute(
            "SELECT channel, start_time, sample_rate_hz, unit, scale, n_samples, samples,"
            " received_at, subject, gateway FROM waveforms ORDER BY start_time, channel"
        ).fetchall()
    assert last_reading is not None
    assert min(row[7] for row in rows) >= last_reading[0]  # vitals lane before waveform lane
    assert {row[0] for row in rows} == {"ecg_ii", "ecg_v5"}
    first = rows[0]
    assert (first[2], first[3], first[4], first[5]) == (360.0, "mV", 0.005, 3600)
    assert first[1] == NOW and first[8:] == ("s-wave", "gw-wave")
    counts = struct.unpack("<3600h", bytes(first[6]))
    # MIT-BIH 100, MLII, first sample: ADC 995, baseline 1024, gain 200/mV -> -0.145 mV
    assert counts[0] == 995 - 1024
    assert abs(counts[0] * first[4] - (-0.145)) < 1e-9


def test_a_tiny_outbox_bound_drops_backfill_then_waveform_then_vitals_never_alarms(
    private_broker: BrokerProcess, database_url: str, tmp_path: Path, topic_prefix: str
) -> None:
    old = NOW - timedelta(hours=3)
    backfill = [
        reading("dev-old", "heart_rate", 70.0, "/min", old + timedelta(minutes=i))
        for i in range(12)
    ]
    snippets = [
        WaveformSnippet(
            subject="s-wave",
            device="dev-ecg",
            channel="ecg_ii",
            start=NOW + timedelta(seconds=10 * i),
            sample_rate_hz=360,
            scale=0.005,
            samples=encode_samples([0.1] * 360, 0.005),
            source="sim",
        )
        for i in range(4)
    ]
    current = [
        reading("dev-hr", "heart_rate", 72.0, "/min", NOW + timedelta(seconds=i)) for i in range(14)
    ]
    current += [
        reading("dev-ox", "spo2", 87.0, "%", NOW + timedelta(seconds=100)),
        reading("dev-ox", "spo2", 86.0, "%", NOW + timedelta(seconds=101)),
    ]
    items: list[Reading | WaveformSnippet] = [*backfill, *snippets, *current]
    outbox = tmp_path / "outbox.sqlite"
    ingest = ingest_on(private_broker, database_url, topic_prefix)
    agent = EdgeAgent(
        "gw-tiny",
        outbox,
        BrokerAddress("127.0.0.1", private_broker.port),
        prefix=topic_prefix,
        sources=[feeder(items)],
        settings=AgentSettings(max_outbox_rows=10, status_interval_s=0.5),
        backoff=LinkBackoff(base_s=0.2, cap_s=1.0),
        local_alarms=LocalAlarmSettings(),
    )
    try:
        private_broker.stop()
        agent.start()
        assert wait_for(lambda: agent.counters.accepted == 28, 20)
        assert wait_for(lambda: agent.counters.alarms_raised == 1, 5)
        # 12 backfill + 4 waveform + 16 vitals + 1 alarm = 33 rows for a bound of 10:
        # all backfill, all waveform and 7 vitals (the oldest) dropped; the alarm kept.
        assert agent.counters.dropped == 23
        assert agent.depth == 10
        report = outbox_status(outbox, datetime.now(UTC))
        assert report["lanes"] == {"alarm": 1, "vitals": 9, "waveform": 0, "backfill": 0}
        assert report["dropped"] == {
            "backfill": {"dev-old": 12},
            "vitals": {"dev-hr": 7},
            "waveform": {"dev-ecg": 4},
        }
        summary = {r["device"]: r for r in report["dropped_readings"]}
        assert summary["dev-old"]["count"] == 12
        assert summary["dev-old"]["first_time"] == old.isoformat()
        assert summary["dev-hr"]["last_time"] == (NOW + timedelta(seconds=6)).isoformat()
        private_broker.start()
        assert wait_for(
            lambda: (
                count(database_url, "SELECT count(*) FROM readings") == 9
                and count(database_url, "SELECT count(*) FROM edge_events") == 1
            ),
            45,
        )
        assert wait_for(lambda: agent.depth == 0, 20)
        assert wait_for(
            lambda: (
                count(
                    database_url,
                    "SELECT count(*) FROM gateways WHERE gateway = 'gw-tiny'"
                    " AND jsonb_array_length(status->'dropped') = 3",
                )
                == 1
            ),
            15,
        )
        with psycopg.connect(database_url) as conn:  # the online status, before "offline"
            status_row = conn.execute(
                "SELECT status FROM gateways WHERE gateway = 'gw-tiny'"
            ).fetchone()
    finally:
        agent.stop()
        ingest.stop()
    with psycopg.connect(database_url) as conn:
        stored = {
            (str(d), str(m), t.astimezone(UTC).isoformat())
            for d, m, t in conn.execute("SELECT device, metric, time FROM readings").fetchall()
        }
    # Nothing silently lost: every accepted reading is stored or accounted as dropped.
    assert agent.counters.accepted_keys - stored - agent.counters.dropped_keys == set()
    assert len(agent.counters.dropped_keys) == 19  # readings; the other 4 drops are snippets
    assert status_row is not None
    status = status_row[0] if isinstance(status_row[0], dict) else json.loads(str(status_row[0]))
    assert {(d["lane"], d["device"], d["count"]) for d in status["dropped"]} == {
        ("backfill", "dev-old", 12),
        ("waveform", "dev-ecg", 4),
        ("vitals", "dev-hr", 7),
    }


def test_ambulance_position_and_eta_on_the_retained_status(
    private_broker: BrokerProcess, database_url: str, tmp_path: Path, topic_prefix: str
) -> None:
    # SYNTHETIC route towards a hospital (coordinates in Shanghai), driven at 60 km/h.
    hospital = Destination("Ruijin Hospital", 31.2130, 121.4700)
    route = simulate_route([(31.2300, 121.4500), (31.2200, 121.4600)], 60.0, NOW)
    tracker = AmbulanceTracker(
        NmeaReplaySource(NmeaSchedule(route, speed=50.0)), hospital, position_source="sim"
    )
    ingest = ingest_on(private_broker, database_url, topic_prefix)
    agent = EdgeAgent(
        "amb-7",
        tmp_path / "outbox.sqlite",
        BrokerAddress("127.0.0.1", private_broker.port),
        prefix=topic_prefix,
        settings=AgentSettings(status_interval_s=0.3),
        ambulance=tracker,
    )
    try:
        agent.start()
        assert wait_for(
            lambda: (
                count(
                    database_url,
                    "SELECT count(*) FROM gateways WHERE gateway = 'amb-7'"
                    " AND status ? 'position' AND status ? 'eta'",
                )
                == 1
            ),
            20,
        )
        with psycopg.connect(database_url) as conn:
            row = conn.execute("SELECT status FROM gateways WHERE gateway = 'amb-7'").fetchone()
    finally:
        agent.stop()
        ingest.stop()
    assert row is not None
    status = row[0] if isinstance(row[0], dict) else json.loads(str(row[0]))
    assert status["state"] == "online"
    position, eta = status["position"], status["eta"]
    assert 31.219 < position["lat"] < 31.231 and 121.449 < position["lon"] < 121.461
    assert position["source"] == "sim"
    assert eta["destination"] == "Ruijin Hospital" and eta["method"] == "great_circle"
    # 60 km/h over ground once moving (40 km/h default before the first RMC speed)
    assert eta["speed_kmh"] in (60.0, 40.0)
    assert 0.5 < eta["distance_km"] < 3.5
    assert datetime.fromisoformat(eta["arrival"]) > datetime.fromisoformat(status["time"])
    assert tracker.rejected == 0
