"""The rules consumer: every stored reading judged once, by one engine that sees it all.

Ingest workers do not judge. Each ingest transaction appends the readings it stored for the
first time to ``rule_inbox`` (:func:`append`, one row per transaction, in the same
transaction as the readings) and notifies. One :class:`RuleConsumer` - whichever process
holds the advisory lock; the others wait as hot standbys - drains the inbox in order, runs
the engine, writes alerts and clearances, folds the readings into the plain path's rollup
tables and deletes the rows in one transaction, then hands the alerts to the notifier. It
also runs what needs time to pass: stale-data rules, rule-settings reloads, state
checkpoints and the alert lifecycle.

Why (docs/ingest.md, "Parallel workers"): an MQTT shared subscription hands each message to
one worker, so with several workers each worker's engine used to see only part of a
subject's stream, and sustained or history rules could misjudge. The rule state is keyed by
subject (ARCHITECTURE.md); one consumer keeps it whole while the storage work scales out.

Guarantees: a reading committed is in the inbox (same transaction); an inbox row is deleted
only with the alerts it raised (same transaction). A consumer crash loses at most one
checkpoint interval of engine memory, as before; the ``alerts_one_open`` index still folds
a repeated alert into the open one.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from datetime import datetime

import msgspec
import psycopg

from alert_rules import EngineOutput, Observation
from ingest_service import alert_lifecycle
from ingest_service.notifier import Notifier
from ingest_service.rules_runner import RuleRunner
from ingest_service.schema import storage_kind
from ingest_service.settings import IngestSettings
from ingest_service.storage import fold_rollups, observed
from vitals import now_utc
from vitals.wire import ReadingLike

log = logging.getLogger("vitalstream.ingest.rules")

Connection = psycopg.Connection[tuple[object, ...]]

#: The LISTEN/NOTIFY channel that wakes the consumer when an ingest transaction commits.
CHANNEL = "vs_rule_inbox"
#: Session advisory-lock key held by the one active consumer ("vsrl").
LEADER_LOCK = 0x76_73_72_6C
#: Inbox rows judged per transaction (each holds one ingest transaction's readings).
_ROWS_PER_DRAIN = 20
#: The inbox's JSON, [[subject, metric, POSIX time, value|null], ...], straight to and from
#: the engine's named tuples in C: the json module plus building the tuples in Python cost
#: the consumer more than the engine itself (docs/benchmarks.md).
_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder(list[Observation])
#: Longest wait between looks at the inbox when no notification arrives.
_POLL_S = 0.5


def append(conn: Connection, readings: Sequence[ReadingLike], committed_at: datetime) -> None:
    """Queue first-time ``readings`` for the rules (inside the ingest transaction)."""
    if not readings:
        return
    observations = _ENCODER.encode(observed(readings)).decode()
    conn.execute(
        "WITH queued AS (INSERT INTO rule_inbox (committed_at, observations)"
        " VALUES (%s, %s::json) RETURNING id) SELECT pg_notify(%s, '') FROM queued",
        (committed_at, observations, CHANNEL),
    )


def pending(conn: Connection) -> int:
    """Readings stored but not judged yet (the rules' backlog, for health and tests)."""
    row = conn.execute(
        "SELECT coalesce(sum(json_array_length(observations)), 0) FROM rule_inbox"
    ).fetchone()
    return int(str(row[0])) if row else 0


class RuleConsumer:
    """Judges the rule inbox while it holds the leader lock; run with :meth:`run_until`."""

    def __init__(self, settings: IngestSettings) -> None:
        self.settings = settings
        self.rules = RuleRunner()
        # Alert notifications go out on their own threads after the commit (no-op without URLs).
        self.notifier = Notifier.from_settings(settings)
        self.leading = threading.Event()
        self.judged = 0  # readings judged since start
        self.alerts = 0  # alerts raised since start
        self._next_tick = 0.0
        self._fold = False  # whether this database keeps rollup tables (plain PostgreSQL)

    def run_until(self, stop: threading.Event) -> None:
        """Wait for the leader lock, then judge and tick until ``stop``; a lost database is
        waited out (the inbox keeps what arrives meanwhile)."""
        try:
            while not stop.is_set():
                try:
                    self._lead(stop)
                except psycopg.Error as exc:  # lost, or not migrated yet: the inbox waits
                    log.error("the rules consumer lost the database (%s); retrying in 1 s", exc)
                    stop.wait(1.0)
                except Exception:  # a bug: say so loudly, never let judging stop for good
                    log.exception("the rules consumer failed; restarting it in 1 s")
                    stop.wait(1.0)
                finally:
                    self.leading.clear()
        finally:
            self.notifier.close()

    def _lead(self, stop: threading.Event) -> None:
        with psycopg.connect(
            self.settings.database_url, autocommit=True, connect_timeout=5
        ) as conn:
            while not _try_lead(conn):
                if stop.wait(1.0):
                    return
            conn.execute(f"LISTEN {CHANNEL}")
            self._fold = storage_kind(conn) == "postgresql"
            self.rules.load(conn)  # the newest checkpoint: another consumer may have led
            self._next_tick = 0.0
            self.leading.set()
            log.info("rules consumer leading")
            try:
                while not stop.is_set():
                    self._drain(conn)
                    self._maintain(conn)
                    for _ in conn.notifies(timeout=_POLL_S, stop_after=1):
                        pass
            finally:
                if not conn.closed:
                    try:
                        self.rules.checkpoint(conn, now_utc())
                    except psycopg.Error as error:
                        log.warning("could not checkpoint rule state (%s)", error)

    def _drain(self, conn: Connection) -> None:
        """Judge the inbox until it is empty, a few ingest transactions at a time."""
        while True:
            now = now_utc()
            with conn.transaction():
                rows = conn.execute(
                    "SELECT id, observations::text FROM rule_inbox ORDER BY id LIMIT %s FOR UPDATE",
                    (_ROWS_PER_DRAIN,),
                ).fetchall()
                if not rows:
                    return
                observations = _observations(rows)
                judged = self._judge(conn, observations, now)
                if self._fold:  # the plain path's rollups; TimescaleDB aggregates by itself
                    fold_rollups(conn, observations)
                conn.execute(
                    "DELETE FROM rule_inbox WHERE id = ANY(%s)", ([row[0] for row in rows],)
                )
            self.judged += len(observations)
            if judged is not None:
                self._adopt(judged, {o.subject for o in observations})

    def _judge(
        self, conn: Connection, observations: Sequence[Observation], now: datetime
    ) -> EngineOutput | None:
        """Run the rules in a savepoint: a failing rule costs its alerts, never the queue."""
        try:
            with conn.transaction():
                return self.rules.judge_observations(conn, observations, now)
        except psycopg.OperationalError:
            raise
        except Exception:
            log.exception("the rules engine failed on %d readings; not judged", len(observations))
            return None

    def _adopt(self, judged: EngineOutput, subjects: set[str]) -> None:
        self.rules.adopt(judged, subjects)
        self.alerts += len(judged.alerts)
        self.notifier.submit(judged.alerts)

    def _maintain(self, conn: Connection) -> None:
        """Every few seconds: rule settings, stale-data rules, state checkpoint, lifecycle."""
        if time.monotonic() < self._next_tick:
            return
        self._next_tick = time.monotonic() + self.settings.rules_tick_s
        try:
            self.rules.refresh_settings(conn)
            now = now_utc()
            with conn.transaction():
                judged = self._judge(conn, [], now)
            if judged is not None:
                self._adopt(judged, set())
            self.rules.checkpoint(conn, now)
            # Snooze/shelve expiries, escalation, re-notification (commits on its own).
            self.notifier.submit_lifecycle(alert_lifecycle.tick(conn, now).notices)
        except psycopg.OperationalError:
            raise
        except psycopg.Error as exc:
            log.warning("rule maintenance skipped (%s)", exc)


def _observations(rows: Sequence[tuple[object, ...]]) -> list[Observation]:
    """The observations of inbox rows; a row that does not decode is logged and skipped."""
    observations: list[Observation] = []
    for row_id, text in rows:
        try:
            observations.extend(_DECODER.decode(str(text)))
        except msgspec.DecodeError as exc:  # only append() writes rows: a bug if here
            log.error("rule_inbox row %s is not a list of observations (%s); skipped", row_id, exc)
    return observations


def _try_lead(conn: Connection) -> bool:
    row = conn.execute("SELECT pg_try_advisory_lock(%s)", (LEADER_LOCK,)).fetchone()
    return bool(row and row[0])
