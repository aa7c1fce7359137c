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
comes back. Events carry their own id and take no device sequence number.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from vitals import Lane, LocalAlarm, PayloadError, Reading, decode, encode

log = logging.getLogger("vitalstream.edge.outbox")

#: Lane order = drain priority (ARCHITECTURE.md: alarms > current vitals > waveform > backfill).
LANE_PRIORITY: dict[Lane, int] = {"alarm": 0, "vitals": 1, "waveform": 2, "backfill": 3}

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
"""


#: What an outbox row holds: a reading (``.../readings``) or an event (``.../events``).
OutboxItem = Reading | LocalAlarm
ItemKind = Literal["reading", "event"]
_MODELS: dict[str, type[Reading] | type[LocalAlarm]] = {"reading": Reading, "event": LocalAlarm}


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """One reading or event waiting in the outbox."""

    row_id: int
    item: OutboxItem
    attempts: int

    @property
    def kind(self) -> ItemKind:
        """``reading`` or ``event``."""
        return "reading" if isinstance(self.item, Reading) else "event"

    @property
    def reading(self) -> Reading:
        """The reading of a reading row (TypeError for an event row)."""
        if not isinstance(self.item, Reading):
            raise TypeError(f"outbox row {self.row_id} holds an event, not a reading")
        return self.item


class Outbox:
    """A durable, prioritised queue of readings on local disk."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        # An outbox written before events existed has no `kind` column: every row is a reading.
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(outbox)")}
        if columns and "kind" not in columns:
            self._db.execute("ALTER TABLE outbox ADD COLUMN kind TEXT NOT NULL DEFAULT 'reading'")
        self._db.executescript(_SCHEMA)

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
        return accepted

    def put_events(self, events: Sequence[LocalAlarm], lane: Lane = "alarm") -> None:
        """Accept events (local alarms) durably, by default in the most urgent lane."""
        with _transaction(self._db):
            self._db.executemany(
                "INSERT INTO outbox(lane, device, seq, payload, kind) VALUES (?, ?, 0, ?, 'event')",
                [(LANE_PRIORITY[lane], event.gateway, encode(event)) for event in events],
            )

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
            self._db.execute("DELETE FROM outbox WHERE id = ?", (row_id,))

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
        with _transaction(self._db):
            cursor = self._db.executemany(
                "DELETE FROM outbox WHERE id = ?", [(row_id,) for row_id in row_ids]
            )
        return cursor.rowcount

    def make_all_due(self) -> None:
        """After a reconnect, everything unconfirmed is re-sent (the broker may have lost it)."""
        with _transaction(self._db):
            self._db.execute("UPDATE outbox SET next_attempt_at = 0")

    def depth(self) -> int:
        """How many readings and events wait in the outbox."""
        return int(self._db.execute("SELECT count(*) FROM outbox").fetchone()[0])

    def depth_by_kind(self) -> dict[ItemKind, int]:
        """Waiting rows per kind (``reading``, ``event``)."""
        counts = dict(self._db.execute("SELECT kind, count(*) FROM outbox GROUP BY kind"))
        return {"reading": int(counts.get("reading", 0)), "event": int(counts.get("event", 0))}


class _transaction:  # noqa: N801 - used as a statement-like context manager
    """BEGIN IMMEDIATE ... COMMIT (or ROLLBACK on error) on an autocommit connection."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *rest: object) -> None:
        self._db.execute("ROLLBACK" if exc_type is not None else "COMMIT")
