"""Dead letters can be replayed after a fix; a replay never stores a reading twice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg

from ingest_service import migrate
from ingest_service.replay import replay
from ingest_service.storage import Delivery, ReadingWriter
from ingest_service.validate import validate_message
from vitals import Batch, Reading, encode

NOW = datetime.now(UTC).replace(microsecond=0)
TOPIC = "vs/v1/gw/gw-r/readings"


def deliver(conn: psycopg.Connection[tuple[object, ...]], payload: bytes) -> None:
    outcome = validate_message(TOPIC, payload, prefix="vs", now=NOW)
    with conn.transaction():
        ReadingWriter("postgresql").write(conn, [Delivery(TOPIC, payload, NOW, outcome)], NOW)


def test_a_message_refused_before_a_fix_is_stored_by_the_replay(database_url: str) -> None:
    good = Batch(
        batch_id="b1",
        gateway="gw-r",
        sent_at=NOW,
        readings=(
            Reading(
                subject="sim-r",
                device="oxi",
                metric="spo2",
                value=95,
                unit="%",
                time=NOW - timedelta(minutes=1),
                source="sim",
            ),
        ),
    )
    # As it arrived: a gateway with a firmware bug that spelled the metric name wrong.
    broken = encode(good).replace(b'"spo2"', b'"SpO2"')
    with psycopg.connect(database_url) as conn:
        migrate(conn)
        deliver(conn, broken)
        assert replay(conn, NOW).still_rejected[0]["kind"] == "schema"  # not fixed yet
        # The fix: here, correcting the stored bytes stands in for a catalogue alias release.
        conn.execute("UPDATE dead_letters SET payload = %s", (encode(good),))
        conn.commit()
        outcome = replay(conn, NOW)
        assert (outcome.examined, outcome.stored) == (1, 1)
        again = replay(conn, NOW, ids=[1])
        assert again.examined == 0  # replayed rows are marked
        stored = conn.execute("SELECT count(*) FROM readings").fetchone()
    assert stored == (1,)


def test_a_replayed_implausible_reading_that_is_still_implausible_stays(database_url: str) -> None:
    batch = Batch(
        batch_id="b2",
        gateway="gw-r",
        sent_at=NOW,
        readings=(
            Reading(
                subject="sim-r",
                device="cuff",
                metric="pulse_rate",
                value=400,
                unit="/min",
                time=NOW - timedelta(minutes=2),
                source="sim",
            ),
            Reading(
                subject="sim-r",
                device="cuff",
                metric="pulse_rate",
                value=70,
                unit="/min",
                time=NOW - timedelta(minutes=1),
                source="sim",
            ),
        ),
    )
    with psycopg.connect(database_url) as conn:
        migrate(conn)
        deliver(conn, encode(batch))
        outcome = replay(conn, NOW, kinds=["implausible"])
        pending = conn.execute(
            "SELECT count(*) FROM dead_letters WHERE replayed_at IS NULL"
        ).fetchone()
    assert outcome.examined == 1 and outcome.stored == 0
    assert outcome.still_rejected[0]["kind"] == "implausible"
    assert pending == (1,)
