"""``vitalstream bench ingest``: the full ingest path against a ceiling measured in the same run.

1. **Ceiling**: binary COPY of N readings straight into ``readings`` (same partitioned table,
   same database, same indexes) — the fastest any writer could store them. Measured before
   and after the full path into the emptied table; the ratio uses the mean of the two, so a
   machine whose speed drifts during the run (shared vCPUs) biases it neither way.
2. **Full path**: the same N readings as pre-encoded batches, published over MQTT (QoS 1) as
   fast as the broker takes them, consumed by a real ``vitalstream ingest run --workers W``
   child process (validate → COPY → rollups → commit → acks); with W > 1 it supervises W
   worker processes that share the stream through an MQTT shared subscription.
   Throughput = N / (first publish → last reading committed). The rules judge the stored
   readings from the rule inbox alongside; ``rules_behind_s`` is how long after the last
   commit they had judged them all (0 = they kept up).
3. **Latency**: batches published at a fixed rate (default 10 000 readings/s) for a few
   seconds; latency per batch = commit time - publish time (``ingest_batches``).

Everything runs in a fresh database that is dropped afterwards.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion
from psycopg import sql

from ingest_service import migrate
from ingest_service.partitions import create, week_start
from ingest_service.rule_consumer import pending
from ingest_service.storage import COPY_DIRECT, COPY_TYPES, reading_row
from vitals import Batch, Reading, encode, gateway_topic, parse_broker_url
from vitals.broker import forget_session
from vitalstream import services
from vitalstream.ingest_workers import await_ready, start_ingest

log = logging.getLogger("vitalstream.bench")

Progress = Callable[[str], None]


def synthetic_readings(count: int, start: datetime, devices: int = 200) -> list[Reading]:
    """``count`` SpO2 readings from ``devices`` synthetic oximeters, one per second each."""
    return [
        Reading(
            subject=f"sim-bench-s{i % devices:04d}",
            device=f"sim-bench-d{i % devices:04d}",
            metric="spo2",
            value=float(90 + i % 10),
            unit="%",
            time=start + timedelta(seconds=i // devices),
            seq=i // devices + 1,
            source="sim",
        )
        for i in range(count)
    ]


def _ceiling(url: str, readings: list[Reading]) -> float:
    """Readings per second of one binary COPY straight into ``readings``: the same rows the
    ingest writer builds (``reading_row``), without MQTT, validation or deduplication."""
    now = datetime.now(UTC)
    rows = [reading_row(r, "bench", "ceiling", now) for r in readings]
    with psycopg.connect(url) as conn:
        with conn.transaction():
            create(conn, {week_start(r.time) for r in readings})
        started = time.perf_counter()
        with (
            conn.transaction(),
            conn.cursor() as cur,
            cur.copy(COPY_DIRECT) as copy,
        ):
            copy.set_types(list(COPY_TYPES))
            for row in rows:
                copy.write_row(row)
        elapsed = time.perf_counter() - started
        conn.execute("TRUNCATE readings, readings_5min, readings_1h")
        conn.commit()
    return len(readings) / elapsed


class _Publisher:
    """A bare QoS 1 publisher (the edge outbox is not what this measures)."""

    def __init__(self, host: str, port: int) -> None:
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{uuid.uuid4().hex[:8]}"
        )
        self.client.max_inflight_messages_set(200)
        self.client.max_queued_messages_set(0)
        self.client.connect(host, port)
        self.client.loop_start()

    def publish(self, topic: str, payload: bytes) -> mqtt.MQTTMessageInfo:
        return self.client.publish(topic, payload, qos=1)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _count(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM readings").fetchone()
    return int(str(row[0])) if row else 0


def _committed(conn: psycopg.Connection[tuple[object, ...]]) -> int:
    # ingest_batches gets one row per batch in the transaction that stores its readings: a
    # cheap exact count to poll. count(*) over readings, polled every 0.1 s, scanned up to
    # 400 000 rows each time and took CPU from the path being measured.
    row = conn.execute("SELECT coalesce(sum(inserted), 0) FROM ingest_batches").fetchone()
    return int(str(row[0])) if row else 0


def _wait_stored(url: str, expected: int, timeout_s: float) -> float:
    deadline = time.monotonic() + timeout_s
    with psycopg.connect(url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            if _committed(conn) >= expected:
                finished = time.perf_counter()
                stored = _count(url)
                if stored != expected:
                    raise services.ServiceError(
                        f"{stored} readings stored where {expected} were published"
                    )
                return finished
            time.sleep(0.05)
    raise services.ServiceError(
        f"only {_count(url)} of {expected} readings were stored within {timeout_s:.0f} s"
    )


def default_workers(broker_name: str) -> int:
    """One worker per CPU core where the broker shares subscriptions, else one."""
    shares = broker_name.lower().startswith(("mosquitto", "emqx"))
    return min(os.cpu_count() or 1, 16) if shares else 1


def _wait_judged(url: str, timeout_s: float) -> float:
    """When the rules consumer has judged every stored reading (the rule inbox is empty)."""
    deadline = time.monotonic() + timeout_s
    with psycopg.connect(url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            if pending(conn) == 0:
                return time.perf_counter()
            time.sleep(0.1)
        raise services.ServiceError(f"{pending(conn)} readings still unjudged after {timeout_s} s")


def run_bench_ingest(
    database_url: str,
    broker_url: str,
    data_dir: Path,
    *,
    readings: int = 200_000,
    batch_size: int = 500,
    rate: float = 10_000.0,
    latency_seconds: float = 10.0,
    workers: int | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Measure and return the CONTRACTS.md ``bench ingest`` object."""
    say = progress or (lambda text: None)
    run = uuid.uuid4().hex[:8]
    name = f"vs_bench_{run}"
    prefix = f"bench{run}"
    gateway = f"sim-bench-{run}"
    workdir = data_dir / f"bench-{run}"
    workdir.mkdir(parents=True, exist_ok=True)
    with (
        services.database(database_url, data_dir=data_dir, database_name=name) as db,
        services.broker(broker_url, data_dir=data_dir) as broker,
    ):
        try:
            with psycopg.connect(db.url) as conn:
                migrate(conn)
            start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
            data = synthetic_readings(readings, start)
            say(f"ceiling: binary COPY of {readings} readings")
            ceilings = [_ceiling(db.url, data)]

            if workers is None:
                workers = default_workers(broker.name)
            say(f"starting the ingest service ({workers} worker(s))")
            client_id = f"vs-ingest-bench-{run}"
            ingest = _start_ingest(db.url, broker.url, prefix, client_id, workdir, workers)
            publisher = _Publisher(broker.host, broker.port)
            topic = gateway_topic(gateway, "readings", prefix)
            try:
                payloads = [
                    encode(
                        Batch(
                            batch_id=f"t{k}",
                            gateway=gateway,
                            sent_at=datetime.now(UTC),
                            readings=tuple(data[k : k + batch_size]),
                        )
                    )
                    for k in range(0, readings, batch_size)
                ]
                say(f"full path: {readings} readings over MQTT")
                started = time.perf_counter()
                for payload in payloads:
                    publisher.publish(topic, payload)
                finished = _wait_stored(db.url, readings, timeout_s=600)
                throughput = readings / (finished - started)
                rules_behind = _wait_judged(db.url, timeout_s=600) - finished

                say(f"latency: {rate:.0f} readings/s for {latency_seconds:.0f} s")
                latency_start = start + timedelta(hours=1)
                sent = _paced(
                    publisher, topic, gateway, latency_start, rate, latency_seconds, batch_size
                )
                _wait_stored(db.url, readings + sent, timeout_s=120)
                latency = _latency(db.url)
            finally:
                publisher.close()
                ingest.terminate()
                ingest.wait(60)
                sessions = [f"{client_id}-{n}" for n in range(workers)] if workers > 1 else []
                for session in sessions or [client_id]:
                    forget_session(parse_broker_url(broker.url), session)
            say("ceiling again, after the full path")
            with psycopg.connect(db.url) as conn:
                conn.execute("TRUNCATE readings, readings_5min, readings_1h")
            ceilings.append(_ceiling(db.url, data))
        finally:
            _drop(db.url, name)
            shutil.rmtree(workdir, ignore_errors=True)
    ceiling = sum(ceilings) / len(ceilings)
    return {
        "readings_per_s": round(throughput, 1),
        "ceiling_readings_per_s": round(ceiling, 1),
        "ratio": round(throughput / ceiling, 3),
        "ceiling_runs_readings_per_s": [round(c, 1) for c in ceilings],
        "latency_ms": latency,
        "rules_behind_s": round(rules_behind, 2),
        "readings": readings,
        "latency_rate_readings_per_s": rate,
        "batch_size": batch_size,
        "workers": workers,
        "database": db.server_version,
        "broker": broker.name,
    }


def _start_ingest(
    db_url: str, broker_url: str, prefix: str, client_id: str, workdir: Path, workers: int
) -> subprocess.Popen[bytes]:
    ready = workdir / f"{client_id}.ready"
    env = dict(os.environ)
    env |= {
        "VITALSTREAM_DATABASE_URL": db_url,
        "VITALSTREAM_BROKER_URL": broker_url,
        "VITALSTREAM_TOPIC_PREFIX": prefix,
        "VITALSTREAM_INGEST_CLIENT_ID": client_id,
    }
    proc = start_ingest(
        env,
        ready,
        "--log-level",
        "WARNING",
        "--workers",
        str(workers),
        log_file=workdir / f"{client_id}.log",
    )
    if not await_ready(proc, ready, 60):
        proc.kill()
        raise services.ServiceError("the ingest service did not start for the benchmark")
    return proc


def _paced(
    publisher: _Publisher,
    topic: str,
    gateway: str,
    start: datetime,
    rate: float,
    seconds: float,
    batch_size: int,
) -> int:
    """Publish ``rate`` readings/s for ``seconds``; each batch stamped when it is sent."""
    total = int(rate * seconds)
    data = synthetic_readings(total, start)
    interval = batch_size / rate
    began = time.perf_counter()
    for n, k in enumerate(range(0, total, batch_size)):
        delay = began + n * interval - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        batch = Batch(
            batch_id=f"l{k}",
            gateway=gateway,
            sent_at=datetime.now(UTC),
            readings=tuple(data[k : k + batch_size]),
        )
        publisher.publish(topic, encode(batch))
    return total


def _latency(url: str) -> dict[str, float]:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY "
            " extract(epoch FROM first_committed_at - sent_at) * 1000) "
            "FROM ingest_batches WHERE batch_id LIKE 'l%'"
        ).fetchone()
    values = list(row[0]) if row and row[0] else [0.0, 0.0, 0.0]
    return {
        "p50": round(float(values[0]), 1),
        "p95": round(float(values[1]), 1),
        "p99": round(float(values[2]), 1),
    }


def _drop(url: str, name: str) -> None:
    admin = psycopg.conninfo.make_conninfo(url, dbname="postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
