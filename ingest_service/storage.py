"""The write path: one transaction per group of MQTT messages, committed before any ack.

Readings are stored once per (device, metric, time): a binary COPY straight into
``readings`` (inside a savepoint) when none of them exists yet — the common case — else COPY
into a staging table and ``INSERT ... ON CONFLICT DO NOTHING RETURNING``. Either way the
writer knows exactly which readings were stored for the first time: only those feed the
rollups and the rules engine, so a re-sent reading is never counted or alerted on twice.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from operator import itemgetter

import psycopg
from psycopg.types.json import Jsonb

from ingest_service import partitions
from ingest_service.schema import DatabaseKind
from ingest_service.validate import AcceptedBatch, RejectedMessage
from vitals import GatewayStatus, Reading, encode
from vitals.wire import ReadingLike

_STAGING = """
CREATE TEMP TABLE IF NOT EXISTS staging_readings (
    LIKE readings INCLUDING DEFAULTS
) ON COMMIT DELETE ROWS
"""

COPY_COLUMNS = (
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
COPY_TYPES = (
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
_COLUMN_LIST = ", ".join(COPY_COLUMNS)
COPY_DIRECT = f"COPY readings ({_COLUMN_LIST}) FROM STDIN (FORMAT BINARY)"
_COPY_STAGING = f"COPY staging_readings ({_COLUMN_LIST}) FROM STDIN (FORMAT BINARY)"
_INSERT_FROM_STAGING = (
    f"INSERT INTO readings ({_COLUMN_LIST}) SELECT {_COLUMN_LIST} FROM staging_readings "
    "ON CONFLICT (device, metric, time) DO NOTHING RETURNING device, metric, time"
)

#: Rollup widths of the plain path (TimescaleDB keeps the same ones as continuous aggregates).
ROLLUPS: tuple[tuple[str, int], ...] = (("readings_5min", 300), ("readings_1h", 3600))


def _upsert_rollup(table: str) -> str:
    # One statement per table and transaction: the cells travel as arrays (unnest).
    return (
        f"INSERT INTO {table} (bucket, subject, metric, n, sum, min, max) "
        "SELECT * FROM unnest(%b::timestamptz[], %b::text[], %b::text[], %b::bigint[], "
        "%b::float8[], %b::float8[], %b::float8[]) "
        f"ON CONFLICT (subject, metric, bucket) DO UPDATE SET n = {table}.n + EXCLUDED.n, "
        f"sum = {table}.sum + EXCLUDED.sum, min = least({table}.min, EXCLUDED.min), "
        f"max = greatest({table}.max, EXCLUDED.max)"
    )


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

    inserted: list[ReadingLike] = field(default_factory=list)
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
        self,
        conn: Connection,
        deliveries: Sequence[Delivery],
        committed_at: datetime,
        *,
        rollups: bool = True,
    ) -> WriteResult:
        """Store readings and dead letters of ``deliveries`` (inside the caller's transaction).

        ``rollups=False`` leaves the rollup tables to the caller: the ingest service queues
        the first-time readings in ``rule_inbox`` and the rules consumer folds them there.
        """
        accepted = [
            (delivery.outcome, delivery)
            for delivery in deliveries
            if isinstance(delivery.outcome, AcceptedBatch)
        ]
        rows = [
            reading_row(
                reading, outcome.batch.gateway, outcome.batch.batch_id, delivery.received_at
            )
            for outcome, delivery in accepted
            for reading in outcome.readings
        ]
        if self.kind == "postgresql" and rows:
            self._ensure_partitions(conn, rows)
        inserted_keys = _store(conn, rows)
        result = _account(conn, deliveries, accepted, inserted_keys, committed_at)
        if rollups and self.kind == "postgresql":
            fold_rollups(conn, observed(result.inserted))
        return result

    def _ensure_partitions(self, conn: Connection, rows: list[tuple[object, ...]]) -> None:
        times = [row[0] for row in rows if isinstance(row[0], datetime)]
        weeks = {partitions.week_start(moment) for moment in (min(times), max(times))}
        # A batch spanning more than two weeks is rare (backfill): then look at every row.
        if max(times) - min(times) > partitions.WEEK:
            weeks = {partitions.week_start(moment) for moment in times}
        if not weeks <= self._weeks:
            partitions.create(conn, weeks - self._weeks)
            self._weeks |= weeks


Key = tuple[str, str, datetime]


def _store(conn: Connection, rows: list[tuple[object, ...]]) -> set[Key] | None:
    """Insert rows once; returns the keys inserted, or None when every row was inserted.

    Optimistic: one binary COPY straight into ``readings`` inside a savepoint — the same work
    as the benchmark's ceiling. Only when a key already exists (a re-sent reading) does the
    savepoint roll back and the rows go through a staging table and
    ``INSERT … ON CONFLICT DO NOTHING RETURNING`` instead.
    """
    if not rows:
        return set()
    try:
        with conn.transaction(), conn.cursor() as cur, cur.copy(COPY_DIRECT) as copy:
            copy.set_types(list(COPY_TYPES))
            for row in rows:
                copy.write_row(row)
        return None
    except psycopg.errors.UniqueViolation:
        pass
    conn.execute(_STAGING)
    with conn.cursor() as cur:
        with cur.copy(_COPY_STAGING) as copy:
            copy.set_types(list(COPY_TYPES))
            for row in rows:
                copy.write_row(row)
        cur.execute(_INSERT_FROM_STAGING)
        return {(str(d), str(m), t) for d, m, t in cur.fetchall() if isinstance(t, datetime)}


#: What the rollups need of a reading: (subject, metric, POSIX time, value or None).
Observed = tuple[str, str, float, float | None]


def observed(readings: Iterable[ReadingLike]) -> list[Observed]:
    """What the rollups and the rules need of each reading (the rule inbox carries these)."""
    return [(r.subject, r.metric, r.time.timestamp(), r.value) for r in readings]


def fold_rollups(conn: Connection, readings: Iterable[Observed]) -> None:
    """Fold first-time readings with a value into the plain path's 5-minute and 1-hour
    rollup tables (TimescaleDB's continuous aggregates need nothing; do not call it there).

    Buckets are aligned to the Unix epoch in UTC, like ``date_bin``/``time_bucket``. Readings
    are folded into the finest cells once; each coarser table is folded from those cells
    (every width divides the next), so the per-reading work does not grow with the tables.
    """
    finest = ROLLUPS[0][1]
    cells: dict[tuple[int, str, str], list[float]] = {}
    for subject, metric, moment, value in readings:
        if value is None:
            continue
        epoch = math.floor(moment)
        key = (epoch - epoch % finest, subject, metric)
        cell = cells.get(key)
        if cell is None:
            cells[key] = [1.0, value, value, value]
        else:
            cell[0] += 1
            cell[1] += value
            cell[2] = min(cell[2], value)
            cell[3] = max(cell[3], value)
    for table, width in ROLLUPS:
        if width != finest:
            cells = _coarsen(cells, width)
        if cells:
            _upsert_cells(conn, table, cells)


def _coarsen(
    cells: dict[tuple[int, str, str], list[float]], width: int
) -> dict[tuple[int, str, str], list[float]]:
    coarse: dict[tuple[int, str, str], list[float]] = {}
    for (start, subject, metric), (n, total, low, high) in cells.items():
        key = (start - start % width, subject, metric)
        cell = coarse.get(key)
        if cell is None:
            coarse[key] = [n, total, low, high]
        else:
            cell[0] += n
            cell[1] += total
            cell[2] = min(cell[2], low)
            cell[3] = max(cell[3], high)
    return coarse


_CELL_ORDER = itemgetter(1, 2, 0)


def _upsert_cells(
    conn: Connection, table: str, cells: dict[tuple[int, str, str], list[float]]
) -> None:
    # Sorted like the unique key (subject, metric, bucket): parallel workers then lock shared
    # cells in the same order and cannot deadlock each other.
    keys = sorted(cells, key=_CELL_ORDER)
    values = [cells[key] for key in keys]
    conn.execute(
        _upsert_rollup(table),
        (
            [datetime.fromtimestamp(key[0], tz=UTC) for key in keys],
            [key[1] for key in keys],
            [key[2] for key in keys],
            [int(v[0]) for v in values],
            [v[1] for v in values],
            [v[2] for v in values],
            [v[3] for v in values],
        ),
    )


def _account(
    conn: Connection,
    deliveries: Sequence[Delivery],
    accepted: list[tuple[AcceptedBatch, Delivery]],
    inserted_keys: set[Key] | None,
    committed_at: datetime,
) -> WriteResult:
    """Dead letters, per-batch bookkeeping, and the first-time readings for the rules."""
    result = WriteResult()
    if inserted_keys is None:
        result.inserted = [r for outcome, _ in accepted for r in outcome.readings]
    else:
        result.inserted = [
            r for outcome, _ in accepted for r in outcome.readings if r.key in inserted_keys
        ]
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
    remaining = None if inserted_keys is None else set(inserted_keys)
    bookkeeping: list[tuple[object, ...]] = []
    for outcome, delivery in accepted:
        batch = outcome.batch
        dead = 0
        for rejected in outcome.rejected:
            dead += _dead_letter(
                conn,
                delivery,
                batch.gateway,
                batch.batch_id,
                rejected.kind,
                rejected.detail,
                encode(rejected.reading),
                rejected.reading,
            )
        result.dead_lettered += dead
        if remaining is None:
            new = len(outcome.readings)
        else:
            new = sum(1 for r in outcome.readings if r.key in remaining)
            remaining.difference_update(r.key for r in outcome.readings)
        duplicates = len(outcome.readings) - new
        result.duplicates += duplicates
        bookkeeping.append(
            (
                batch.batch_id,
                batch.gateway,
                batch.sent_at,
                committed_at,
                len(batch.readings),
                new,
                duplicates,
                dead,
            )
        )
    if bookkeeping:
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO ingest_batches (batch_id, gateway, sent_at, first_committed_at, "
                " readings, inserted, duplicates, dead_lettered) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (batch_id) DO UPDATE SET deliveries = ingest_batches.deliveries + 1,"
                " duplicates = ingest_batches.duplicates + EXCLUDED.duplicates",
                bookkeeping,
            )
    return result


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


def reading_row(
    reading: ReadingLike, gateway: str, batch_id: str, received_at: datetime
) -> tuple[object, ...]:
    """One ``readings`` row in ``COPY_COLUMNS`` order (the benchmark's ceiling uses it too)."""
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
        gateway,
        batch_id,
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
