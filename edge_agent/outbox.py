"""The edge outbox: every accepted reading sits on disk until the ingest service confirms it.

SQLite in WAL mode with ``synchronous=FULL`` (fsync on every commit), so a reading accepted by
:meth:`Outbox.put` survives a power cut. A row leaves only through :meth:`Outbox.confirm`, which
the agent calls when the ingest service's ack for its batch arrives (after the database commit,
which implies the broker's PUBACK came earlier). Until then a sent row is re-sent when its
retry time passes or the link reconnects; the ingest service's idempotent write makes a
re-send harmless.

Per-device sequence numbers are assigned here, in the same transaction as the insert, so they
are gap-free and survive restarts. One Outbox object belongs to one thread (sqlite3 rule).

Besides readings the outbox holds **events** (``kind = 'event'``: local alarms, published on
``.../events``); they normally go into the ``alarm`` lane, so they leave first when the link
comes back. Events carry their own id and take no device sequence number. **Crew events**
(``kind = 'crew_event'``: a :class:`vitals.incident.IncidentEvent` the ambulance crew
recorded) go into the ``alarm`` lane as well, so they are durable on disk like alarms; the
agent publishes each one on its own on ``.../events`` (the shape the handoff service reads).
**Waveform
snippets** (``kind = 'waveform'``: ECG, published on ``.../waveform``) go into the
``waveform`` lane, below current vitals and above backfill; they take no sequence number either.

**Bounded**: with ``max_rows`` set, every put ends (in the same transaction) by applying the
overflow policy (:func:`edge_agent.overflow.overflow_drops`): the oldest rows of the backfill,
then waveform, then vitals lane are dropped until the bound holds; alarms never. Every drop is
counted per lane and device (``outbox_drops``) and summarised per device and metric with its
first/last measurement time (``outbox_dropped``), so a reading that never arrives is either
stored, dead-lettered, still here, or accounted as dropped by policy: nothing is lost silently.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

from edge_agent.overflow import overflow_drops
from vitals import Lane, LocalAlarm, PayloadError, Reading, WaveformSnippet, decode, encode
from vitals.incident import IncidentEvent

log = logging.getLogger("vitalstream.edge.outbox")

#: Lane order = drain priority (ARCHITECTURE.md: alarms > current vitals > waveform > backfill).
LANE_PRIORITY: dict[Lane, int] = {"alarm": 0, "vitals": 1, "waveform": 2, "backfill": 3}
_LANE_BY_PRIORITY: dict[int, Lane] = {number: lane for lane, number in LANE_PRIORITY.items()}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    lane INTEGER NOT NULL,
    device TEXT NOT NULL,
    seq INTEGER NOT NULL,
    payload BLOB NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL DEFAULT 0,
    kind TEXT NOT NULL DEFAULT 'reading'
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (lane, next_attempt_at, id);
CREATE TABLE IF NOT EXISTS outbox_rejected (
    id INTEGER PRIMARY KEY,
    payload BLOB NOT NULL,
    reason TEXT NOT NULL,
    moved_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS device_seq (
    device TEXT PRIMARY KEY,
    last_seq INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS outbox_drops (
    lane TEXT NOT NULL,
    device TEXT NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (lane, device)
);
CREATE TABLE IF NOT EXISTS outbox_dropped (
    device TEXT NOT NULL,
    metric TEXT NOT NULL,
    first_time TEXT NOT NULL,
    last_time TEXT NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (device, metric)
);
"""


#: What an outbox row holds: a reading (``.../readings``), an event (``.../events``: a local
#: alarm or a crew event) or a waveform snippet (``.../waveform``).
OutboxItem = Reading | LocalAlarm | IncidentEvent | WaveformSnippet
ItemKind = Literal["reading", "event", "crew_event", "waveform"]
_MODELS: dict[
    str, type[Reading] | type[LocalAlarm] | type[IncidentEvent] | type[WaveformSnippet]
] = {
    "reading": Reading,
    "event": LocalAlarm,
    "crew_event": IncidentEvent,
    "waveform": WaveformSnippet,
}


@dataclass(frozen=True, slots=True)
class DroppedRow:
    """A row the overflow policy dropped: what it was, for the log, counters and accounting.

    ``metric`` is the reading's metric, the snippet's channel, or the event's kind; ``time``
    its measurement (or start) time as ISO 8601 in UTC.
    """

    lane: Lane
    kind: ItemKind
    device: str
    metric: str
    time: str


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """One reading or event waiting in the outbox."""

    row_id: int
    item: OutboxItem
    attempts: int

    @property
    def kind(self) -> ItemKind:
        """``reading``, ``event`` (local alarm), ``crew_event`` or ``waveform``."""
        if isinstance(self.item, Reading):
            return "reading"
        if isinstance(self.item, IncidentEvent):
            return "crew_event"
        return "waveform" if isinstance(self.item, WaveformSnippet) else "event"

    @property
    def reading(self) -> Reading:
        """The reading of a reading row (TypeError for an event row)."""
        if not isinstance(self.item, Reading):
            raise TypeError(f"outbox row {self.row_id} holds an event, not a reading")
        return self.item


class Outbox:
    """A durable, prioritised queue of readings on local disk."""

    def __init__(self, path: Path, *, max_rows: int | None = None) -> None:
        if max_rows is not None and max_rows < 1:
            raise ValueError("max_rows must be at least 1 (or None for unbounded)")
        self.max_rows = max_rows
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        # An outbox written before events existed has no `kind` column: every row is a reading.
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(outbox)")}
        if columns and "kind" not in columns:
            self._db.execute("ALTER TABLE outbox ADD COLUMN kind TEXT NOT NULL DEFAULT 'reading'")
        self._db.executescript(_SCHEMA)
        # Rows per lane, kept in step with every insert and delete: the bound is checked on
        # every put, and count(*) over a large outbox on each of them would cost too much.
        self._lane_counts: dict[Lane, int] = dict.fromkeys(LANE_PRIORITY, 0)
        for number, count in self._db.execute("SELECT lane, count(*) FROM outbox GROUP BY lane"):
            self._lane_counts[_LANE_BY_PRIORITY[int(number)]] = int(count)
        self._drops: list[DroppedRow] = []

    def close(self) -> None:
        """Close the database file (everything committed is already on disk)."""
        self._db.close()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def put(self, readings: Sequence[Reading], lane: Lane = "vitals") -> list[Reading]:
        """Accept readings durably; returns them with their per-device ``seq`` assigned."""
        accepted: list[Reading] = []
        with _transaction(self._db):
            for reading in readings:
                row = self._db.execute(
                    "INSERT INTO device_seq(device, last_seq) VALUES (?, 1) "
                    "ON CONFLICT(device) DO UPDATE SET last_seq = last_seq + 1 "
                    "RETURNING last_seq",
                    (reading.device,),
                ).fetchone()
                numbered = reading.model_copy(update={"seq": int(row[0])})
                self._db.execute(
                    "INSERT INTO outbox(lane, device, seq, payload) VALUES (?, ?, ?, ?)",
                    (LANE_PRIORITY[lane], numbered.device, numbered.seq, encode(numbered)),
                )
                accepted.append(numbered)
            self._lane_counts[lane] += len(accepted)
            self._enforce_bound()
        return accepted

    def put_events(self, events: Sequence[LocalAlarm], lane: Lane = "alarm") -> None:
        """Accept events (local alarms) durably, by default in the most urgent lane."""
        with _transaction(self._db):
            self._db.executemany(
                "INSERT INTO outbox(lane, device, seq, payload, kind) VALUES (?, ?, 0, ?, 'event')",
                [(LANE_PRIORITY[lane], event.gateway, encode(event)) for event in events],
            )
            self._lane_counts[lane] += len(events)
            self._enforce_bound()

    def put_crew_events(self, events: Sequence[IncidentEvent], lane: Lane = "alarm") -> None:
        """Accept crew incident events durably, by default in the most urgent lane (with the
        alarms: on a weak link what the crew found goes before any reading)."""
        with _transaction(self._db):
            self._db.executemany(
                "INSERT INTO outbox(lane, device, seq, payload, kind) "
                "VALUES (?, ?, 0, ?, 'crew_event')",
                [(LANE_PRIORITY[lane], event.gateway, encode(event)) for event in events],
            )
            self._lane_counts[lane] += len(events)
            self._enforce_bound()

    def put_waveforms(self, snippets: Sequence[WaveformSnippet], lane: Lane = "waveform") -> None:
        """Accept waveform snippets durably, by default in the ``waveform`` lane."""
        with _transaction(self._db):
            self._db.executemany(
                "INSERT INTO outbox(lane, device, seq, payload, kind) "
                "VALUES (?, ?, 0, ?, 'waveform')",
                [(LANE_PRIORITY[lane], snippet.device, encode(snippet)) for snippet in snippets],
            )
            self._lane_counts[lane] += len(snippets)
            self._enforce_bound()

    # -- the bound ---------------------------------------------------------------------------
    def _enforce_bound(self) -> None:
        """Apply the overflow policy inside the caller's transaction (whole or nothing)."""
        if self.max_rows is None or sum(self._lane_counts.values()) <= self.max_rows:
            return
        for lane, count in overflow_drops(self._lane_counts, self.max_rows).items():
            rows = self._db.execute(
                "DELETE FROM outbox WHERE id IN "
                "(SELECT id FROM outbox WHERE lane = ? ORDER BY id LIMIT ?) "
                "RETURNING device, payload, kind",
                (LANE_PRIORITY[lane], count),
            ).fetchall()
            self._lane_counts[lane] -= len(rows)
            for device, payload, kind in rows:
                self._record_drop(_dropped_row(lane, str(kind), str(device), bytes(payload)))

    def _record_drop(self, row: DroppedRow) -> None:
        self._db.execute(
            "INSERT INTO outbox_drops(lane, device, count) VALUES (?, ?, 1) "
            "ON CONFLICT(lane, device) DO UPDATE SET count = count + 1",
            (row.lane, row.device),
        )
        self._db.execute(
            "INSERT INTO outbox_dropped(device, metric, first_time, last_time, count) "
            "VALUES (?, ?, ?, ?, 1) ON CONFLICT(device, metric) DO UPDATE SET "
            "first_time = min(first_time, excluded.first_time), "
            "last_time = max(last_time, excluded.last_time), count = count + 1",
            (row.device, row.metric, row.time, row.time),
        )
        self._drops.append(row)

    def take_drops(self) -> list[DroppedRow]:
        """Rows dropped by the overflow policy since the last call (for logs and counters)."""
        drops, self._drops = self._drops, []
        return drops

    def drop_counts(self) -> list[tuple[Lane, str, int]]:
        """Rows dropped so far (cumulative, survives restarts) as (lane, device, count)."""
        return [
            (_lane(str(lane)), str(device), int(count))
            for lane, device, count in self._db.execute(
                "SELECT lane, device, count FROM outbox_drops ORDER BY lane, device"
            )
        ]

    def lane_counts(self) -> dict[Lane, int]:
        """Rows waiting per lane (kept in memory, exact)."""
        return dict(self._lane_counts)

    def due(self, now: float, limit: int) -> list[OutboxRow]:
        """Rows to (re)send at ``now`` (epoch seconds), most urgent lane first, oldest first."""
        rows = self._db.execute(
            "SELECT id, payload, attempts, kind FROM outbox WHERE next_attempt_at <= ? "
            "ORDER BY lane, id LIMIT ?",
            (now, limit),
        ).fetchall()
        due: list[OutboxRow] = []
        for row_id, payload, attempts, kind in rows:
            try:
                model = _MODELS.get(str(kind))
                if model is None:
                    raise PayloadError(f"unknown outbox row kind {kind!r}", kind="schema")
                item: OutboxItem = decode(bytes(payload), model)
                due.append(OutboxRow(int(row_id), item, int(attempts)))
            except PayloadError as exc:
                self._set_aside(int(row_id), bytes(payload), exc.detail, now)
        return due

    def _set_aside(self, row_id: int, payload: bytes, reason: str, now: float) -> None:
        """A row that no longer decodes (e.g. written by an older version) must not stop the
        agent: it moves to ``outbox_rejected`` with the reason, kept for inspection."""
        log.error(
            "outbox row %d cannot be decoded (%s); set aside in outbox_rejected", row_id, reason
        )
        with _transaction(self._db):
            self._db.execute(
                "INSERT INTO outbox_rejected (id, payload, reason, moved_at) VALUES (?, ?, ?, ?)",
                (row_id, payload, reason, now),
            )
            deleted = self._db.execute(
                "DELETE FROM outbox WHERE id = ? RETURNING lane", (row_id,)
            ).fetchone()
            if deleted is not None:
                self._lane_counts[_LANE_BY_PRIORITY[int(deleted[0])]] -= 1

    def rejected(self) -> int:
        """How many rows were set aside as undecodable."""
        return int(self._db.execute("SELECT count(*) FROM outbox_rejected").fetchone()[0])

    def mark_sent(self, row_ids: Iterable[int], retry_at: float) -> None:
        """Record a send; the rows become due again at ``retry_at`` unless confirmed first."""
        with _transaction(self._db):
            self._db.executemany(
                "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ? WHERE id = ?",
                [(retry_at, row_id) for row_id in row_ids],
            )

    def confirm(self, row_ids: Iterable[int]) -> int:
        """Delete rows the ingest service has durably handled; returns how many were deleted."""
        deleted = 0
        with _transaction(self._db):
            for row_id in row_ids:
                row = self._db.execute(
                    "DELETE FROM outbox WHERE id = ? RETURNING lane", (row_id,)
                ).fetchone()
                if row is not None:  # None: dropped by the overflow policy meanwhile
                    self._lane_counts[_LANE_BY_PRIORITY[int(row[0])]] -= 1
                    deleted += 1
        return deleted

    def make_all_due(self) -> None:
        """After a reconnect, everything unconfirmed is re-sent (the broker may have lost it)."""
        with _transaction(self._db):
            self._db.execute("UPDATE outbox SET next_attempt_at = 0")

    def depth(self) -> int:
        """How many readings and events wait in the outbox."""
        return int(self._db.execute("SELECT count(*) FROM outbox").fetchone()[0])

    def depth_by_kind(self) -> dict[ItemKind, int]:
        """Waiting rows per kind (``reading``, ``event``, ``waveform``); crew events count as
        events."""
        counts = dict(self._db.execute("SELECT kind, count(*) FROM outbox GROUP BY kind"))
        return {
            "reading": int(counts.get("reading", 0)),
            "event": int(counts.get("event", 0)) + int(counts.get("crew_event", 0)),
            "waveform": int(counts.get("waveform", 0)),
        }


def _lane(text: str) -> Lane:
    for lane in LANE_PRIORITY:
        if lane == text:
            return lane
    raise ValueError(f"unknown lane {text!r}")


def _dropped_row(lane: Lane, kind: str, device: str, payload: bytes) -> DroppedRow:
    """Describe a dropped row from its stored payload (JSON written by :func:`vitals.encode`).

    The payload is read as plain JSON, not validated: a row dropped by policy must be
    accounted for even if it would no longer decode.
    """
    try:
        data = json.loads(payload)
    except ValueError:
        data = {}
    if not isinstance(data, dict):
        data = {}
    if kind == "waveform":
        return DroppedRow(
            lane, "waveform", device, str(data.get("channel", "?")), _time(data, "start")
        )
    if kind == "event":
        return DroppedRow(
            lane, "event", device, str(data.get("kind", "event")), _time(data, "time")
        )
    if kind == "crew_event":
        return DroppedRow(
            lane, "crew_event", device, str(data.get("kind", "event")), _time(data, "time")
        )
    return DroppedRow(lane, "reading", device, str(data.get("metric", "?")), _time(data, "time"))


def _time(data: dict[str, object], field: str) -> str:
    """The row's time as ISO 8601 UTC (as the wire has it), or ``?`` when unreadable."""
    text = str(data.get(field, ""))
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).isoformat()
    except ValueError:
        return "?"


class _transaction:  # noqa: N801 - used as a statement-like context manager
    """BEGIN IMMEDIATE ... COMMIT (or ROLLBACK on error) on an autocommit connection."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *rest: object) -> None:
        self._db.execute("ROLLBACK" if exc_type is not None else "COMMIT")
