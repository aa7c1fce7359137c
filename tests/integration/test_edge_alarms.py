"""Must show (issue 6): broker down for a while, then back: every buffered reading arrives,
alarms first; and the gateway alarms locally while its uplink is down.

The test runs its own mosquitto (`vitalstream.services.BrokerProcess`) on a free port so that
it can stop and restart it; the machine's broker is never touched. The ingest service
subscribes first (its persistent session survives the broker restart), then the broker
stops, the agent accepts readings that cross critical thresholds while offline, and the
broker comes back.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from integration_support import count, wait_for

from edge_agent import EdgeAgent, LinkBackoff, LocalAlarmSettings
from ingest_service import IngestService, IngestSettings
from vitals import BrokerAddress, LocalAlarm, Reading
from vitalstream.services import BrokerProcess

MOSQUITTO = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin:/sbin")
pytestmark = pytest.mark.skipif(MOSQUITTO is None, reason="mosquitto is not installed")
T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
GATEWAY = "gw-alarm"


def reading(device: str, metric: str, value: float, unit: str, seconds: int) -> Reading:
    return Reading(
        subject="s-alarm",
        device=device,
        metric=metric,
        value=value,
        unit=unit,
        time=T0 + timedelta(seconds=seconds),
        source="sim",
    )


def buffered_stream() -> list[Reading]:
    """150 ordinary heart rates, then SpO2 87/86 % (spo2_low, high) and SBP 190 (critical)."""
    readings = [reading("dev-hr", "heart_rate", 72.0, "/min", i) for i in range(150)]
    readings += [
        reading("dev-ox", "spo2", 87.0, "%", 200),
        reading("dev-ox", "spo2", 86.0, "%", 201),
        reading("dev-cuff", "bp_systolic", 190.0, "mm[Hg]", 202),
    ]
    return readings


def feeder(readings: Sequence[Reading]) -> Callable[[], Sequence[Reading]]:
    pending = list(readings)

    def source() -> Sequence[Reading]:
        taken = pending[:20]  # a few per turn, like a real source
        del pending[:20]
        return taken

    return source


def test_buffered_alarms_and_readings_arrive_alarms_first(
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
    ingest.start()
    heard: list[LocalAlarm] = []
    agent = EdgeAgent(
        GATEWAY,
        tmp_path / "outbox.sqlite",
        BrokerAddress("127.0.0.1", private_broker.port),
        prefix=topic_prefix,
        sources=[feeder(buffered_stream())],
        backoff=LinkBackoff(base_s=0.2, cap_s=1.0),
        local_alarms=LocalAlarmSettings(hooks=(heard.append,)),
    )
    try:
        assert ingest.wait_ready(15)
        private_broker.stop()  # the uplink goes down (the ingest session is saved)

        agent.start()
        assert wait_for(lambda: agent.counters.accepted == 153, 20)
        # Local alarms while offline: both rules, raised and heard in the room.
        assert wait_for(lambda: len(heard) == 2, 5), heard
        assert {a.rule for a in heard} == {"spo2_low", "bp_crisis_systolic"}
        assert all(a.uplink == "down" for a in heard)
        assert agent.depth == 153 + 2
        assert count(database_url, "SELECT count(*) FROM readings") == 0

        private_broker.start()  # the uplink is back
        assert wait_for(
            lambda: (
                count(database_url, "SELECT count(*) FROM readings") == 153
                and count(database_url, "SELECT count(*) FROM edge_events") == 2
            ),
            45,
        ), "the buffered readings and alarms did not all arrive"
        assert wait_for(lambda: agent.depth == 0, 20)
    finally:
        agent.stop()
        ingest.stop()

    with psycopg.connect(database_url) as conn:
        events = conn.execute(
            "SELECT rule, severity, subject, received_at, payload FROM edge_events ORDER BY rule"
        ).fetchall()
        first_reading = conn.execute("SELECT min(received_at) FROM readings").fetchone()
    assert first_reading is not None
    assert [(e[0], e[1], e[2]) for e in events] == [
        ("bp_crisis_systolic", "critical", "s-alarm"),
        ("spo2_low", "high", "s-alarm"),
    ]
    # Alarms first: no buffered reading was committed before the alarms.
    assert max(e[3] for e in events) <= first_reading[0]
    payloads = [e[4] if isinstance(e[4], dict) else json.loads(str(e[4])) for e in events]
    assert {p["uplink"] for p in payloads} == {"down"}
    assert {p["device"] for p in payloads} == {"dev-ox", "dev-cuff"}
