"""Storage on plain PostgreSQL: weekly partitions, rollups, migrations, poison isolation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
from integration_support import publish_raw, wait_for

from ingest_service import IngestService, IngestSettings, migrate
from ingest_service.partitions import ensure_ahead, existing, week_start
from ingest_service.storage import Delivery, ReadingWriter
from ingest_service.validate import validate_message
from vitals import Batch, BrokerAddress, Reading, encode, gateway_topic

NOW = datetime(2026, 11, 25, 10, 2, 30, tzinfo=UTC)


def reading(minutes_ago: float, value: float | None, device: str = "oxi") -> Reading:
    return Reading(
        subject="sim-st-1",
        device=device,
        metric="spo2",
        value=value,
        no_value=None if value is not None else "NaN",
        unit="%",
        time=NOW - timedelta(minutes=minutes_ago),
        source="sim",
    )


def deliver(*readings: Reading, batch_id: str = "b1") -> Delivery:
    batch = Batch(batch_id=batch_id, gateway="gw", sent_at=NOW, readings=readings)
    payload = encode(batch)
    topic = "t/v1/gw/gw/readings"
    return Delivery(topic, payload, NOW, validate_message(topic, payload, prefix="t", now=NOW))


def test_migrations_are_idempotent_and_choose_the_plain_path(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        assert migrate(conn) == "postgresql"
        assert migrate(conn) == "postgresql"
        versions = conn.execute("SELECT version FROM schema_migrations ORDER BY 1").fetchall()
        partitioned = conn.execute(
            "SELECT 1 FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid "
            "WHERE c.relname = 'readings'"
        ).fetchone()
    assert versions[0] == (1,)
    assert partitioned is not None


def test_partitions_are_made_ahead_and_on_demand_for_late_data(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        migrate(conn)
        with conn.transaction():
            created = ensure_ahead(conn, NOW, weeks_back=1, weeks_ahead=2)
        assert len(created) == 4
        writer = ReadingWriter("postgresql")
        two_months = 60 * 24 * 61
        with conn.transaction():
            result = writer.write(conn, [deliver(reading(two_months, 97), reading(1, 96))], NOW)
        assert len(result.inserted) == 2
        assert week_start(NOW - timedelta(minutes=two_months)) in existing(conn)
        row = conn.execute(
            "SELECT tableoid::regclass::text FROM readings WHERE value = 97"
        ).fetchone()
    assert row is not None and str(row[0]).startswith("readings_p")


def test_rollups_count_each_reading_once_and_skip_no_values(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        migrate(conn)
        writer = ReadingWriter("postgresql")
        readings = (reading(0.5, 90), reading(1.5, 94), reading(2.0, None))
        for batch_id in ("b1", "b2"):  # the second delivery is a re-send: all duplicates
            with conn.transaction():
                writer.write(conn, [deliver(*readings, batch_id=batch_id)], NOW)
        five = conn.execute(
            "SELECT bucket, n, sum, min, max FROM readings_5min ORDER BY bucket"
        ).fetchall()
        hour = conn.execute("SELECT n, sum / n FROM readings_1h").fetchall()
    # 10:01:00 and 10:02:00 fall in the 10:00 bucket; the no-value reading is not counted.
    assert five == [(datetime(2026, 11, 25, 10, 0, tzinfo=UTC), 2, 184.0, 90.0, 94.0)]
    assert hour == [(2, 92.0)]


def test_a_message_the_database_refuses_is_dead_lettered_and_the_rest_stored(
    ingest_settings: IngestSettings, broker: BrokerAddress, topic_prefix: str
) -> None:
    """A row trigger stands in for any storage-level refusal of one message."""
    with psycopg.connect(ingest_settings.database_url) as conn:
        migrate(conn)
        conn.execute("""
            CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF NEW.device = 'poison' THEN RAISE EXCEPTION 'refused by test trigger'; END IF;
                RETURN NEW;
            END $$;
            CREATE TRIGGER refuse_poison BEFORE INSERT ON readings
                FOR EACH ROW EXECUTE FUNCTION refuse_poison();
        """)
        conn.commit()
    gateway = f"{topic_prefix}-gw"
    topic = gateway_topic(gateway, "readings", topic_prefix)
    now = datetime.now(UTC)

    def batch(batch_id: str, device: str) -> bytes:
        return encode(
            Batch(
                batch_id=batch_id,
                gateway=gateway,
                sent_at=now,
                readings=(
                    Reading(
                        subject="sim-st-2",
                        device=device,
                        metric="spo2",
                        value=95,
                        unit="%",
                        time=now,
                        source="sim",
                    ),
                ),
            )
        )

    service = IngestService(ingest_settings)
    service.start()
    try:
        assert service.wait_ready(10)
        publish_raw(
            broker, topic, batch("ok-1", "good-1"), batch("bad", "poison"), batch("ok-2", "good-2")
        )
        assert wait_for(
            lambda: service.counters.stored == 2 and service.counters.dead_lettered == 1
        )
    finally:
        service.stop()
    with psycopg.connect(ingest_settings.database_url) as conn:
        dead = conn.execute("SELECT reason_kind, reason_detail FROM dead_letters").fetchall()
    assert dead[0][0] == "storage_error" and "refused by test trigger" in str(dead[0][1])
