"""End to end on the real broker and database: edge agent -> MQTT -> ingest -> PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from integration_support import count, publish_raw, wait_for

from edge_agent import EdgeAgent
from edge_agent.simulator import SimPatient, simulate_home
from ingest_service import IngestService, IngestSettings
from vitals import Batch, BrokerAddress, DeviceStatus, Reading, encode, gateway_topic
from vitals.broker import forget_session

NOW = datetime.now(UTC).replace(microsecond=0)


def spo2_batch(gateway: str, batch_id: str, n: int, value: float = 96.0) -> Batch:
    return Batch(
        batch_id=batch_id,
        gateway=gateway,
        sent_at=datetime.now(UTC),
        readings=tuple(
            Reading(
                subject="sim-it-s1",
                device=f"{gateway}-oxi",
                metric="spo2",
                value=value,
                unit="%",
                time=NOW - timedelta(minutes=n - i),
                source="sim",
                seq=i + 1,
            )
            for i in range(n)
        ),
    )


def test_n_simulated_readings_in_exactly_n_stored(
    ingest: IngestService,
    ingest_settings: IngestSettings,
    broker: BrokerAddress,
    topic_prefix: str,
    tmp_path: Path,
) -> None:
    gateway = f"{topic_prefix}-gw"
    patient = SimPatient("sim-it-p1", gateway, "copd")
    readings = simulate_home(patient, NOW - timedelta(hours=6), NOW, seed=1)
    pending = [readings]
    agent = EdgeAgent(
        gateway,
        tmp_path / "outbox.sqlite",
        broker,
        prefix=topic_prefix,
        sources=[lambda: pending.pop() if pending else []],
    )
    agent.start()
    try:
        assert wait_for(lambda: agent.counters.accepted == len(readings) and agent.depth == 0, 30)
    finally:
        agent.stop()
        forget_session(broker, gateway, retained=[gateway_topic(gateway, "status", topic_prefix)])
    url = ingest_settings.database_url
    assert count(url, "SELECT count(*) FROM readings") == len(readings)
    assert count(url, "SELECT count(DISTINCT (device, seq)) FROM readings") == len(readings)
    # The COPD desaturation in the script raises the SpO2 rule exactly once.
    assert count(url, "SELECT count(*) FROM alerts WHERE rule = 'spo2_low'") == 1
    assert agent.counters.confirmed == len(readings)


def test_the_same_batch_published_twice_is_stored_once(
    ingest: IngestService,
    ingest_settings: IngestSettings,
    broker: BrokerAddress,
    topic_prefix: str,
) -> None:
    gateway = f"{topic_prefix}-gw"
    batch = spo2_batch(gateway, "b-twice", 25)
    resent = batch.model_copy(update={"batch_id": "b-resent"})  # an outbox re-send
    topic = gateway_topic(gateway, "readings", topic_prefix)
    publish_raw(broker, topic, encode(batch), encode(batch), encode(resent))
    url = ingest_settings.database_url
    assert wait_for(
        lambda: count(url, "SELECT coalesce(sum(deliveries), 0) FROM ingest_batches") == 3
    )
    assert count(url, "SELECT count(*) FROM readings") == 25
    assert count(url, "SELECT sum(duplicates) FROM ingest_batches") == 50
    assert count(url, "SELECT count(*) FROM ingest_batches") == 2


def test_malformed_payload_is_dead_lettered_and_consumption_goes_on(
    ingest: IngestService,
    ingest_settings: IngestSettings,
    broker: BrokerAddress,
    topic_prefix: str,
) -> None:
    gateway = f"{topic_prefix}-gw"
    topic = gateway_topic(gateway, "readings", topic_prefix)
    good = spo2_batch(gateway, "b-good", 3)
    spoofed = spo2_batch("someone-else", "b-spoof", 2)
    publish_raw(broker, topic, b"\x00not json at all", encode(spoofed), encode(good))
    url = ingest_settings.database_url
    assert wait_for(lambda: count(url, "SELECT count(*) FROM readings") == 3)
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT reason_kind, reason_detail, payload, gateway FROM dead_letters ORDER BY id"
        ).fetchall()
    assert [(r[0], r[3]) for r in rows] == [("malformed", gateway), ("gateway_mismatch", gateway)]
    assert bytes(rows[0][2]) == b"\x00not json at all"  # raw bytes kept for replay
    assert "someone-else" in str(rows[1][1])


def test_implausible_value_is_dead_lettered_once_even_when_resent(
    ingest: IngestService,
    ingest_settings: IngestSettings,
    broker: BrokerAddress,
    topic_prefix: str,
) -> None:
    gateway = f"{topic_prefix}-gw"
    batch = spo2_batch(gateway, "b-art", 2, value=12.0)  # below the plausible 40 %
    topic = gateway_topic(gateway, "readings", topic_prefix)
    publish_raw(
        broker, topic, encode(batch), encode(batch.model_copy(update={"batch_id": "b-art-2"}))
    )
    url = ingest_settings.database_url
    assert wait_for(lambda: count(url, "SELECT count(*) FROM ingest_batches") == 2)
    assert count(url, "SELECT count(*) FROM readings") == 0
    assert count(url, "SELECT count(*) FROM dead_letters WHERE reason_kind = 'implausible'") == 2


def test_messages_published_while_ingest_is_down_arrive_after_restart(
    ingest_settings: IngestSettings,
    broker: BrokerAddress,
    topic_prefix: str,
) -> None:
    """Persistent session + manual ack: the broker keeps what ingest has not committed."""
    first = IngestService(ingest_settings)
    first.start()
    assert first.wait_ready(10)
    first.stop()
    gateway = f"{topic_prefix}-gw"
    topic = gateway_topic(gateway, "readings", topic_prefix)
    publish_raw(broker, topic, encode(spo2_batch(gateway, "b-offline", 10)))
    second = IngestService(ingest_settings)
    second.start()
    try:
        url = ingest_settings.database_url
        assert wait_for(lambda: count(url, "SELECT count(*) FROM readings") == 10)
    finally:
        second.stop()


def test_edge_outbox_buffers_while_ingest_is_away_and_drains_after(
    ingest_settings: IngestSettings,
    broker: BrokerAddress,
    topic_prefix: str,
    tmp_path: Path,
) -> None:
    """Rows stay in the outbox until ingest confirms; a late ingest still gets them all."""
    gateway = f"{topic_prefix}-gw"
    batch = spo2_batch(gateway, "unused", 40)
    pending = [list(batch.readings)]
    agent = EdgeAgent(
        gateway,
        tmp_path / "o.sqlite",
        broker,
        prefix=topic_prefix,
        sources=[lambda: pending.pop() if pending else []],
    )
    agent.start()
    try:
        assert wait_for(lambda: agent.counters.batches_sent > 0)
        assert agent.depth == 40  # published, but nobody confirmed: still on disk
        service = IngestService(ingest_settings)
        service.start()
        try:
            assert wait_for(lambda: agent.depth == 0, 60)
        finally:
            service.stop()
    finally:
        agent.stop()
        forget_session(broker, gateway, retained=[gateway_topic(gateway, "status", topic_prefix)])
    assert count(ingest_settings.database_url, "SELECT count(*) FROM readings") == 40


def test_gateway_status_is_recorded(
    ingest: IngestService,
    ingest_settings: IngestSettings,
    broker: BrokerAddress,
    topic_prefix: str,
    tmp_path: Path,
) -> None:
    gateway = f"{topic_prefix}-gw"
    agent = EdgeAgent(gateway, tmp_path / "o.sqlite", broker, prefix=topic_prefix)
    agent.start()
    url = ingest_settings.database_url
    try:
        assert wait_for(
            lambda: count(url, "SELECT count(*) FROM gateways WHERE state = 'online'") == 1
        )
    finally:
        agent.stop()
        forget_session(broker, gateway, retained=[gateway_topic(gateway, "status", topic_prefix)])
    assert wait_for(
        lambda: count(url, "SELECT count(*) FROM gateways WHERE state = 'offline'") == 1
    )


def test_two_workers_in_a_shared_group_store_everything_once(
    ingest_settings: IngestSettings, broker: BrokerAddress, topic_prefix: str
) -> None:
    """$share/<group>/...: the broker splits the stream; the unique key keeps it exact."""
    workers = [
        IngestService(
            ingest_settings.model_copy(
                update={"shared_group": "g1", "ingest_client_id": f"{topic_prefix}-w{n}"}
            )
        )
        for n in range(2)
    ]
    for worker in workers:
        worker.start()
        assert worker.wait_ready(10)
    gateway = f"{topic_prefix}-gw"
    topic = gateway_topic(gateway, "readings", topic_prefix)
    try:
        publish_raw(
            broker,
            topic,
            *[
                encode(
                    spo2_batch(gateway, f"b{n}", 10).model_copy(
                        update={
                            "readings": tuple(
                                r.model_copy(update={"device": f"{gateway}-oxi{n}"})
                                for r in spo2_batch(gateway, "x", 10).readings
                            )
                        }
                    )
                )
                for n in range(20)
            ],
        )
        url = ingest_settings.database_url
        assert wait_for(lambda: count(url, "SELECT count(*) FROM readings") == 200)
        assert all(worker.counters.messages > 0 for worker in workers)
    finally:
        for n, worker in enumerate(workers):
            worker.stop()
            forget_session(broker, f"{topic_prefix}-w{n}")


class _StrapWithBattery:
    """A source that also reports device status, as the BLE source does (battery level)."""

    def __init__(self, readings: list[Reading]) -> None:
        self._pending = [readings]

    def __call__(self) -> list[Reading]:
        return self._pending.pop() if self._pending else []

    def device_status(self) -> tuple[DeviceStatus, ...]:
        return (DeviceStatus(device="strap-1", battery_pct=64.0),)


def test_retained_status_lists_each_device_with_its_last_reading_and_battery(
    ingest: IngestService,
    ingest_settings: IngestSettings,
    broker: BrokerAddress,
    topic_prefix: str,
    tmp_path: Path,
) -> None:
    gateway = f"{topic_prefix}-gw"
    newest = NOW - timedelta(minutes=1)
    readings = [
        Reading(
            subject="sim-st",
            device=device,
            metric="heart_rate",
            value=70,
            unit="/min",
            time=newest - timedelta(minutes=k),
            source="sim",
        )
        for device in ("strap-1", "cuff-1")
        for k in range(2)
    ]
    agent = EdgeAgent(
        gateway,
        tmp_path / "o.sqlite",
        broker,
        prefix=topic_prefix,
        sources=[_StrapWithBattery(readings)],
    )
    agent.start()
    url = ingest_settings.database_url
    try:
        assert wait_for(lambda: agent.counters.confirmed == 4)
        assert wait_for(
            lambda: (
                count(
                    url,
                    "SELECT count(*) FROM gateways, jsonb_array_elements(status->'devices') d "
                    "WHERE d->>'device' = 'strap-1' AND (d->>'battery_pct')::float = 64",
                )
                == 1
            )
        )
        with psycopg.connect(url) as conn:
            row = conn.execute(
                "SELECT d->>'last_reading_at' FROM gateways, "
                "jsonb_array_elements(status->'devices') d WHERE d->>'device' = 'cuff-1'"
            ).fetchone()
        assert row is not None
        assert datetime.fromisoformat(str(row[0])) == newest
    finally:
        agent.stop()
        forget_session(broker, gateway, retained=[gateway_topic(gateway, "status", topic_prefix)])
