"""Device policy: register on first sight, or quarantine unknown devices until registered."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
from integration_support import count, publish_raw, wait_for

from ingest_service import IngestService, IngestSettings, migrate
from ingest_service.devices import register
from ingest_service.replay import replay
from vitals import Batch, BrokerAddress, Reading, encode, gateway_topic

NOW = datetime.now(UTC).replace(microsecond=0)


def batch(gateway: str, batch_id: str, device: str) -> bytes:
    return encode(
        Batch(
            batch_id=batch_id,
            gateway=gateway,
            sent_at=NOW,
            readings=(
                Reading(
                    subject="sim-dev",
                    device=device,
                    metric="heart_rate",
                    value=70,
                    unit="/min",
                    time=NOW - timedelta(minutes=1),
                    source="sim",
                ),
            ),
        )
    )


def run(settings: IngestSettings) -> IngestService:
    service = IngestService(settings)
    service.start()
    assert service.wait_ready(10)
    return service


def test_register_policy_records_devices_and_last_seen(
    ingest_settings: IngestSettings, broker: BrokerAddress, topic_prefix: str
) -> None:
    gateway = f"{topic_prefix}-gw"
    service = run(ingest_settings)
    try:
        publish_raw(
            broker,
            gateway_topic(gateway, "readings", topic_prefix),
            batch(gateway, "b1", "hr-strap-1"),
        )
        url = ingest_settings.database_url
        assert wait_for(lambda: count(url, "SELECT count(*) FROM readings") == 1)
    finally:
        service.stop()
    with psycopg.connect(ingest_settings.database_url) as conn:
        row = conn.execute("SELECT gateway, registered_by, last_seen FROM devices").fetchone()
    assert row is not None and row[0] == gateway and row[1] == "auto" and row[2] is not None


def test_quarantine_holds_an_unknown_device_until_it_is_registered_and_replayed(
    ingest_settings: IngestSettings, broker: BrokerAddress, topic_prefix: str
) -> None:
    settings = ingest_settings.model_copy(update={"device_policy": "quarantine"})
    url = settings.database_url
    gateway = f"{topic_prefix}-gw"
    with psycopg.connect(url) as conn:
        migrate(conn)
        register(conn, "known-oxi", gateway, "test", NOW)
        conn.commit()
    service = run(settings)
    try:
        topic = gateway_topic(gateway, "readings", topic_prefix)
        publish_raw(
            broker, topic, batch(gateway, "b1", "known-oxi"), batch(gateway, "b2", "stray-device")
        )
        assert wait_for(
            lambda: (
                count(url, "SELECT count(*) FROM readings") == 1
                and count(url, "SELECT count(*) FROM dead_letters") == 1
            )
        )
    finally:
        service.stop()
    with psycopg.connect(url) as conn:
        kind = conn.execute("SELECT reason_kind FROM dead_letters").fetchone()
        assert kind == ("unknown_device",)
        register(conn, "stray-device", gateway, "operator", NOW)
        conn.commit()
        outcome = replay(conn, NOW, kinds=["unknown_device"])
    assert outcome.stored == 1
    assert count(url, "SELECT count(*) FROM readings") == 2
