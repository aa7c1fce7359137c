"""The ingest service's rules: per-patient packs from the database, durable state, clearance."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
from integration_support import count, publish_raw, wait_for

from ingest_service import IngestService, IngestSettings, migrate
from vitals import Batch, BrokerAddress, Reading, encode, gateway_topic

NOW = datetime.now(UTC).replace(microsecond=0)


def spo2_batch(
    gateway: str, batch_id: str, subject: str, values: list[float], start: datetime
) -> bytes:
    return encode(
        Batch(
            batch_id=batch_id,
            gateway=gateway,
            sent_at=datetime.now(UTC),
            readings=tuple(
                Reading(
                    subject=subject,
                    device=f"{gateway}-oxi",
                    metric="spo2",
                    value=v,
                    unit="%",
                    time=start + timedelta(minutes=i),
                    source="sim",
                )
                for i, v in enumerate(values)
            ),
        )
    )


def run_service(settings: IngestSettings) -> IngestService:
    service = IngestService(settings.model_copy(update={"rules_tick_s": 0.2}))
    service.start()
    assert service.wait_ready(10)
    return service


def test_a_copd_patients_own_target_replaces_the_default_one(
    ingest_settings: IngestSettings, broker: BrokerAddress, topic_prefix: str
) -> None:
    """BTS 2017 / GOLD 2024: 88-92 % for hypercapnic COPD, set per patient by the doctor;
    the same readings breach the default 94-98 % target of another patient on the pack."""
    url = ingest_settings.database_url
    with psycopg.connect(url) as conn:
        migrate(conn)
        conn.execute(
            "INSERT INTO subject_rules (subject, packs, parameters, updated_by, reason) VALUES "
            "('sim-copd-88', ARRAY['copd'], "
            "'{\"spo2_target_low\": 88, \"spo2_target_high\": 92}', 'dr-test', 'GOLD 2024'), "
            "('sim-copd-94', ARRAY['copd'], '{}', 'dr-test', 'default target')"
        )
        conn.commit()
    service = run_service(ingest_settings)
    topic = gateway_topic(f"{topic_prefix}-gw", "readings", topic_prefix)
    try:
        start = NOW - timedelta(hours=1)
        publish_raw(
            broker,
            topic,
            spo2_batch(f"{topic_prefix}-gw", "b1", "sim-copd-88", [91, 90, 91, 90], start),
            spo2_batch(f"{topic_prefix}-gw", "b2", "sim-copd-94", [91, 90, 91, 90], start).replace(
                b"-gw-oxi", b"-gw-oxi2"
            ),
        )
        assert wait_for(lambda: count(url, "SELECT count(*) FROM readings") == 8)
        assert wait_for(lambda: count(url, "SELECT count(*) FROM alerts") >= 1)
    finally:
        service.stop()
    with psycopg.connect(url) as conn:
        rules = conn.execute("SELECT subject, rule FROM alerts ORDER BY 1, 2").fetchall()
    assert rules == [("sim-copd-94", "spo2_below_target")]


def test_rule_state_survives_a_restart_so_a_streak_completes_across_it(
    ingest_settings: IngestSettings, broker: BrokerAddress, topic_prefix: str
) -> None:
    """spo2_low needs two consecutive readings < 90 %; one arrives before, one after."""
    url = ingest_settings.database_url
    gateway = f"{topic_prefix}-gw"
    topic = gateway_topic(gateway, "readings", topic_prefix)
    first = run_service(ingest_settings)
    try:
        publish_raw(
            broker, topic, spo2_batch(gateway, "b1", "sim-s", [96, 88], NOW - timedelta(minutes=10))
        )
        assert wait_for(lambda: count(url, "SELECT count(*) FROM readings") == 2)
    finally:
        first.stop()  # checkpoints the state at shutdown
    assert count(url, "SELECT count(*) FROM rule_state WHERE subject = 'sim-s'") == 1
    second = run_service(ingest_settings)
    try:
        publish_raw(
            broker, topic, spo2_batch(gateway, "b2", "sim-s", [87], NOW - timedelta(minutes=8))
        )
        assert wait_for(
            lambda: count(url, "SELECT count(*) FROM alerts WHERE rule = 'spo2_low'") == 1
        )
        # Recovery past the hysteresis margin stamps the clearance and audits it.
        publish_raw(
            broker, topic, spo2_batch(gateway, "b3", "sim-s", [97], NOW - timedelta(minutes=7))
        )
        assert wait_for(
            lambda: (
                count(url, "SELECT count(*) FROM alerts WHERE condition_cleared_at IS NOT NULL")
                == 1
            )
        )
        assert count(url, "SELECT count(*) FROM audit_log WHERE action = 'condition_cleared'") == 1
        # A new episode while the alert is still open folds into it (one open alert).
        publish_raw(
            broker, topic, spo2_batch(gateway, "b4", "sim-s", [86, 85], NOW - timedelta(minutes=6))
        )
        assert wait_for(lambda: count(url, "SELECT max(occurrences) FROM alerts") == 2)
        assert count(url, "SELECT count(*) FROM alerts") == 1
    finally:
        second.stop()
