"""Ingest validation policy: what is stored, flagged, or dead-lettered."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ingest_service.validate import AcceptedBatch, RejectedMessage, validate_message
from vitals import Batch, Reading, encode

NOW = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
TOPIC = "t/v1/gw/gw-1/readings"


def batch(*readings: Reading, gateway: str = "gw-1") -> bytes:
    return encode(Batch(batch_id="b1", gateway=gateway, sent_at=NOW, readings=readings))


def pulse(value: float, when: datetime = NOW) -> Reading:
    return Reading(
        subject="sim-s",
        device="cuff",
        metric="pulse_rate",
        value=value,
        unit="/min",
        time=when,
        source="sim",
    )


def test_good_batch_is_accepted() -> None:
    outcome = validate_message(TOPIC, batch(pulse(70)), prefix="t", now=NOW)
    assert isinstance(outcome, AcceptedBatch)
    assert len(outcome.readings) == 1 and outcome.rejected == ()


def test_implausible_reading_alone_is_rejected_with_the_range() -> None:
    outcome = validate_message(
        TOPIC, batch(pulse(70), pulse(400, NOW - timedelta(minutes=1))), prefix="t", now=NOW
    )
    assert isinstance(outcome, AcceptedBatch)
    assert [r.value for r in outcome.readings] == [70]
    assert outcome.rejected[0].kind == "implausible"
    assert "15..300" in outcome.rejected[0].detail


def test_future_and_stale_times_are_flagged_not_dropped() -> None:
    outcome = validate_message(
        TOPIC,
        batch(pulse(70, NOW + timedelta(hours=1)), pulse(71, NOW - timedelta(days=40))),
        prefix="t",
        now=NOW,
    )
    assert isinstance(outcome, AcceptedBatch)
    assert [r.quality for r in outcome.readings] == [("future_time",), ("stale_time",)]


def test_a_gateway_cannot_speak_for_another() -> None:
    outcome = validate_message(TOPIC, batch(pulse(70), gateway="gw-2"), prefix="t", now=NOW)
    assert isinstance(outcome, RejectedMessage) and outcome.kind == "gateway_mismatch"


def test_garbage_and_bad_topics_are_rejected_whole() -> None:
    garbage = validate_message(TOPIC, b"\x00garbage", prefix="t", now=NOW)
    assert isinstance(garbage, RejectedMessage) and garbage.kind == "malformed"
    assert garbage.gateway == "gw-1"
    topic = validate_message("t/v1/gw/a/b/readings", batch(pulse(70)), prefix="t", now=NOW)
    assert isinstance(topic, RejectedMessage) and topic.kind == "bad_topic"


def test_migration_versions_are_unique() -> None:
    from ingest_service.schema import MIGRATIONS

    versions = [version for version, _, _ in MIGRATIONS]
    assert len(versions) == len(set(versions))
