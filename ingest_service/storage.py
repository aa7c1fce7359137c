"""The write path: one transaction per group of MQTT messages, committed before any ack.

Readings go through binary COPY into a temporary staging table, then
``INSERT ... ON CONFLICT (device, metric, time) DO NOTHING RETURNING`` into ``readings``: the
RETURNING rows are exactly the readings stored for the first time, which are the only ones
handed to the rules engine (a re-sent reading never raises a second alert).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

import psycopg
from psycopg.types.json import Jsonb

from ingest_service import partitions
from ingest_service.schema import DatabaseKind
from ingest_service.validate import AcceptedBatch, RejectedMessage
from vitals import Alert, GatewayStatus, Reading, encode

_STAGING = """
CREATE TEMP TABLE IF NOT EXISTS staging_readings (
    LIKE readings INCLUDING DEFAULTS
) ON COMMIT DELETE ROWS
"""

_COLUMNS = (
    "time",
    "subject",
    "device",
    "metric",
    "value",
    "no_value",
    "unit",
    "seq",
    "source",
    "quality",
    "original_value",
    "original_unit",
    "incident",
    "gateway",
    "batch_id",
    "received_at",
)
_TYPES = (
    "timestamptz",
    "text",
    "text",
    "text",
    "float8",
    "text",
    "text",
    "int8",
    "text",
    "text[]",
    "float8",
    "text",
    "text",
    "text",
    "text",
    "timestamptz",
)

# Column names are module constants; no value ever reaches the SQL text.
_INSERT = (
    f"INSERT INTO readings ({', '.join(_COLUMNS)}) "
    f"SELECT {', '.join(_COLUMNS)} FROM staging_readings "
    "ON CONFLICT (device, metric, time) DO NOTHING"
)
_INSERT_TIMESCALE = _INSERT + " RETURNING device, metric, time"


def _rollup(table: str, width: str) -> str:
    # date_bin with a UTC origin: buckets do not depend on the session's TimeZone and match
    # TimescaleDB's time_bucket for widths that divide a day.
    return f"""{table} AS (
    INSERT INTO {table} (bucket, subject, metric, n, sum, min, max)
    SELECT date_bin(INTERVAL '{width}', time, TIMESTAMPTZ '2000-01-01 00:00:00+00'),
           subject, metric, count(*), sum(value), min(value), max(value)
    FROM inserted WHERE value IS NOT NULL GROUP BY 1, 2, 3
    ON CONFLICT (subject, metric, bucket) DO UPDATE SET
        n = {table}.n + EXCLUDED.n, sum = {table}.sum + EXCLUDED.sum,
        min = least({table}.min, EXCLUDED.min), max = greatest({table}.max, EXCLUDED.max))"""


#: Plain path: the first-time rows (RETURNING) also feed the rollup tables, in one statement,
#: so a re-sent reading is neither stored nor counted twice.
_INSERT_PLAIN = (
    f"WITH inserted AS ({_INSERT} RETURNING device, metric, time, subject, value), "
    + _rollup("readings_5min", "5 minutes")
    + ", "
    + _rollup("readings_1h", "1 hour")
    + " SELECT device, metric, time FROM inserted"
)
_COPY = f"COPY staging_readings ({', '.join(_COLUMNS)}) FROM STDIN (FORMAT BINARY)"


@dataclass(frozen=True, slots=True)
class Delivery:
    """One MQTT message as received, validated."""

    topic: str
    payload: bytes
    received_at: datetime
    outcome: AcceptedBatch | RejectedMessage


@dataclass
class WriteResult:
    """What one transaction did."""

    inserted: list[Reading] = field(default_factory=list)
    duplicates: int = 0
    dead_lettered: int = 0


Connection = psycopg.Connection[tuple[object, ...]]


class ReadingWriter:
    """Writes deliveries on either storage path; remembers which weekly partitions exist."""

    def __init__(self, kind: DatabaseKind) -> None:
        self.kind = kind
        self._weeks: set[date] = set()

    def forget_partitions(self) -> None:
        """Drop the partition cache (after a rollback that may have undone a creation)."""
        self._weeks.clear()

    def write(
        self, conn: Connection, deliveries: Sequence[Delivery], committed_at: datetime
    ) -> WriteResult:
        """Store readings and dead letters of ``deliveries`` (inside the caller's transaction)."""
        if self.kind == "postgresql":
            weeks = {
                partitions.week_start(reading.time)
                for delivery in deliveries
                if isinstance(delivery.outcome, AcceptedBatch)
                for reading in delivery.outcome.readings
            }
            if not weeks <= self._weeks:
                partitions.create(conn, weeks - self._weeks)
                self._weeks |= weeks
            return _write(conn, deliveries, committed_at, _INSERT_PLAIN)
        return _write(conn, deliveries, committed_at, _INSERT_TIMESCALE)


def _write(
    conn: Connection, deliveries: Sequence[Delivery], committed_at: datetime, insert: str
) -> WriteResult:
    result = WriteResult()
    staged: dict[tuple[str, str, datetime], Reading] = {}
    per_batch: list[tuple[AcceptedBatch, Delivery]] = []
    conn.execute(_STAGING)
    with conn.cursor() as cur:
        with cur.copy(_COPY) as copy:
            copy.set_types(list(_TYPES))
            for delivery in deliveries:
                outcome = delivery.outcome
                if isinstance(outcome, RejectedMessage):
                    continue
                per_batch.append((outcome, delivery))
                for reading in outcome.readings:
                    staged[reading.key] = reading
                    copy.write_row(_row(reading, outcome, delivery.received_at))
        cur.execute(insert.encode())
        inserted_keys = {
            (str(d), str(m), t) for d, m, t in cur.fetchall() if isinstance(t, datetime)
        }
    result.inserted = [staged[key] for key in inserted_keys if key in staged]

    for delivery in deliveries:
        outcome = delivery.outcome
        if isinstance(outcome, RejectedMessage):
            _dead_letter(
                conn,
                delivery,
                outcome.gateway,
                None,
                outcome.kind,
                outcome.detail,
                delivery.payload,
                None,
            )
            result.dead_lettered += 1
    for accepted, delivery in per_batch:
        dead = 0
        for rejected in accepted.rejected:
            dead += _dead_letter(
                conn,
                delivery,
                accepted.batch.gateway,
                accepted.batch.batch_id,
                rejected.kind,
                rejected.detail,
                encode(rejected.reading),
                rejected.reading,
            )
        result.dead_lettered += dead
        new = sum(1 for r in accepted.readings if r.key in inserted_keys)
        inserted_keys.difference_update(r.key for r in accepted.readings)
        duplicates = len(accepted.readings) - new
        result.duplicates += duplicates
        conn.execute(
            "INSERT INTO ingest_batches (batch_id, gateway, sent_at, first_committed_at, "
            " readings, inserted, duplicates, dead_lettered) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (batch_id) DO UPDATE SET deliveries = ingest_batches.deliveries + 1, "
            " duplicates = ingest_batches.duplicates + EXCLUDED.duplicates",
            (
                accepted.batch.batch_id,
                accepted.batch.gateway,
                accepted.batch.sent_at,
                committed_at,
                len(accepted.batch.readings),
                new,
                duplicates,
                dead,
            ),
        )
    return result


def write_alerts(conn: Connection, alerts: Sequence[Alert]) -> None:
    """Insert the rules engine's new alerts (inside the caller's transaction)."""
    if not alerts:
        return
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO alerts (subject, rule, severity, time, message, metric, value, state) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            [
                (a.subject, a.rule, a.severity, a.time, a.message, a.metric, a.value, a.state)
                for a in alerts
            ],
        )


def upsert_gateway_status(conn: Connection, status: GatewayStatus) -> None:
    """Remember a gateway's latest retained status (last seen, queue depth, devices)."""
    conn.execute(
        "INSERT INTO gateways (gateway, state, last_seen, status) VALUES (%s, %s, %s, %s) "
        "ON CONFLICT (gateway) DO UPDATE SET state = EXCLUDED.state, "
        " last_seen = greatest(gateways.last_seen, EXCLUDED.last_seen), status = EXCLUDED.status",
        (status.gateway, status.state, status.time, Jsonb(json.loads(status.model_dump_json()))),
    )


def dead_letter_message(
    conn: Connection,
    topic: str,
    payload: bytes,
    received_at: datetime,
    gateway: str | None,
    kind: str,
    detail: str,
) -> None:
    """Dead-letter a whole message (inside the caller's transaction)."""
    conn.execute(
        "INSERT INTO dead_letters (received_at, topic, gateway, reason_kind, reason_detail, "
        " payload) VALUES (%s, %s, %s, %s, %s, %s)",
        (received_at, topic, gateway, kind, detail, payload),
    )


def _row(reading: Reading, accepted: AcceptedBatch, received_at: datetime) -> tuple[object, ...]:
    return (
        reading.time,
        reading.subject,
        reading.device,
        reading.metric,
        reading.value,
        reading.no_value,
        reading.unit,
        reading.seq,
        reading.source,
        list(reading.quality),
        reading.original_value,
        reading.original_unit,
        reading.incident,
        accepted.batch.gateway,
        accepted.batch.batch_id,
        received_at,
    )


def _dead_letter(
    conn: Connection,
    delivery: Delivery,
    gateway: str | None,
    batch_id: str | None,
    kind: str,
    detail: str,
    payload: bytes,
    reading: Reading | None,
) -> int:
    cur = conn.execute(
        "INSERT INTO dead_letters (received_at, topic, gateway, batch_id, reason_kind, "
        " reason_detail, payload, device, metric, time) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
        (
            delivery.received_at,
            delivery.topic,
            gateway,
            batch_id,
            kind,
            detail,
            payload,
            reading.device if reading else None,
            reading.metric if reading else None,
            reading.time if reading else None,
        ),
    )
    return cur.rowcount
