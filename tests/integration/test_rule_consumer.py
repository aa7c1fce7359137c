"""One rules consumer judges what every ingest worker stores, and folds it into the rollups
(ingest_service.rule_consumer)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
from integration_support import count, publish_raw, wait_for

from ingest_service import IngestService, IngestSettings, migrate
from ingest_service.rule_consumer import LEADER_LOCK, pending
from vitals import Batch, BrokerAddress, Reading, encode, gateway_topic
from vitals.broker import forget_session

START = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=10)


def one_spo2(gateway: str, subject: str, minute: int, value: float) -> bytes:
    return encode(
        Batch(
            batch_id=f"m{minute}",
            gateway=gateway,
            sent_at=datetime.now(UTC),
            readings=(
                Reading(
                    subject=subject,
                    device=f"{gateway}-oxi",
                    metric="spo2",
                    value=value,
                    unit="%",
                    time=START + timedelta(minutes=minute),
                    source="sim",
                ),
            ),
        )
    )


def two_workers(settings: IngestSettings, client_id: str) -> list[IngestService]:
    """Two ingest workers in one shared group, client ids ``<client_id>0`` and ``1``."""
    return [
        IngestService(
            settings.model_copy(
                update={
                    "shared_group": "rc",
                    "ingest_client_id": f"{client_id}{n}",
                    "rules_tick_s": 0.2,
                }
            )
        )
        for n in range(2)
    ]


def test_two_workers_split_a_stream_and_one_engine_judges_all_of_it(
    ingest_settings: IngestSettings, broker: BrokerAddress, topic_prefix: str
) -> None:
    """spo2_low needs two consecutive low readings. The broker hands one to each worker; a
    per-worker engine would see one low reading each and stay silent. The inbox keeps both
    while no consumer leads, and the consumer that takes over judges them together."""
    url = ingest_settings.database_url
    gateway = f"{topic_prefix}-gw"
    subject = f"{topic_prefix}-s1"
    with psycopg.connect(url, autocommit=True) as holder:
        migrate(holder)
        # Stand in for a consumer elsewhere: hold the leader lock while the workers store.
        assert holder.execute("SELECT pg_try_advisory_lock(%s)", (LEADER_LOCK,)).fetchone() == (
            True,
        )
        workers = two_workers(ingest_settings, f"{topic_prefix}-w")
        try:
            for worker in workers:
                worker.start()
                assert worker.wait_ready(10)
            topic = gateway_topic(gateway, "readings", topic_prefix)
            publish_raw(broker, topic, one_spo2(gateway, subject, 1, 85))
            publish_raw(broker, topic, one_spo2(gateway, subject, 2, 84))
            assert wait_for(lambda: count(url, "SELECT count(*) FROM readings") == 2)
            assert [w.counters.stored for w in workers] == [1, 1], "the broker did not split"
            assert not any(w.rules.leading.is_set() for w in workers)
            assert pending(holder) == 2  # stored, not judged yet, not lost
            assert count(url, "SELECT count(*) FROM alerts") == 0
            assert count(url, "SELECT count(*) FROM readings_5min") == 0  # folded there too

            holder.execute("SELECT pg_advisory_unlock(%s)", (LEADER_LOCK,))
            assert wait_for(lambda: any(w.rules.leading.is_set() for w in workers), 10)
            assert wait_for(
                lambda: count(url, "SELECT count(*) FROM alerts WHERE rule = 'spo2_low'") == 1
            )
            assert pending(holder) == 0
            assert sum(w.rules.judged for w in workers) == 2
            assert count(url, "SELECT coalesce(sum(n), 0) FROM readings_1h") == 2
            assert [w.rules.leading.is_set() for w in workers].count(True) == 1
        finally:
            for n, worker in enumerate(workers):
                worker.stop()
                forget_session(broker, f"{topic_prefix}-w{n}")


def test_a_standby_consumer_takes_over_when_the_leader_stops(
    ingest_settings: IngestSettings, broker: BrokerAddress, topic_prefix: str
) -> None:
    """Rule judging survives the loss of the worker that led it: the standby loads the
    checkpointed state and judges what is stored afterwards."""
    url = ingest_settings.database_url
    gateway = f"{topic_prefix}-gw"
    subject = f"{topic_prefix}-s2"
    workers = two_workers(ingest_settings, f"{topic_prefix}-v")
    try:
        for worker in workers:
            worker.start()
            assert worker.wait_ready(10)
        assert wait_for(lambda: any(w.rules.leading.is_set() for w in workers), 10)
        leader = next(w for w in workers if w.rules.leading.is_set())
        standby = next(w for w in workers if w is not leader)
        topic = gateway_topic(gateway, "readings", topic_prefix)
        publish_raw(broker, topic, one_spo2(gateway, subject, 1, 85))
        assert wait_for(lambda: leader.rules.judged == 1)
        leader.stop()  # checkpoints the memory of the first low reading
        assert wait_for(standby.rules.leading.is_set, 10)
        publish_raw(broker, topic, one_spo2(gateway, subject, 2, 84))
        assert wait_for(
            lambda: count(url, "SELECT count(*) FROM alerts WHERE rule = 'spo2_low'") == 1
        )
        assert standby.rules.judged == 1
    finally:
        for n, worker in enumerate(workers):
            worker.stop()
            forget_session(broker, f"{topic_prefix}-v{n}")
