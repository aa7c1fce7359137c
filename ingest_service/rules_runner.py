"""Runs the pure rules engine for the rules consumer: state, settings, alerts, clearances.

- **Rule settings** come from ``subject_rules`` (a doctor's packs, targets and disabled rules
  per patient) and are reloaded when that table changes; everyone else gets the default packs.
- **State** (streaks, open alerts, history windows) lives in memory and is checkpointed to
  ``rule_state`` every few seconds and at shutdown, then reloaded at start-up. A crash loses
  at most one checkpoint interval of memory: a sustained condition may then be confirmed a
  little later, and the ``alerts_one_open`` index still refuses a second open alert.
- **Alerts** are inserted in the caller's transaction - the rules consumer's, which also
  deletes the judged rows of ``rule_inbox`` (:mod:`ingest_service.rule_consumer`);
  **clearances** (the condition went back past its hysteresis margin) are stamped on the open
  alert and written to the audit log. Resolution by a clinician is the lifecycle's business.
- **Stale-data rules** need time to pass without readings: :meth:`RuleRunner.tick` runs the
  engine with no readings on a timer.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from types import MappingProxyType

import psycopg
from psycopg.types.json import Jsonb

from alert_rules import (
    DEFAULT_RULESET,
    EMPTY_STATE,
    EngineOutput,
    EngineState,
    Observation,
    PackError,
    RuleSet,
    SubjectOverrides,
    build_ruleset,
    run,
)
from alert_rules.state import STATE_FORMAT
from ingest_service import audit
from ingest_service.storage import observed
from vitals import Alert
from vitals.wire import ReadingLike

log = logging.getLogger("vitalstream.ingest.rules")

Connection = psycopg.Connection[tuple[object, ...]]


class RuleRunner:
    """The engine's state and rule set for one ingest worker."""

    def __init__(self) -> None:
        self.state: EngineState = EMPTY_STATE
        self.rules: RuleSet = DEFAULT_RULESET
        self._settings_stamp: object = None
        self._dirty: set[str] = set()

    # -- loading ---------------------------------------------------------------------------
    def load(self, conn: Connection) -> None:
        """Load the checkpointed state and the per-subject settings (start-up)."""
        rows = conn.execute("SELECT state FROM rule_state").fetchall()
        subjects = {}
        for (raw,) in rows:
            data = raw if isinstance(raw, dict) else json.loads(str(raw))
            if data.get("format") != STATE_FORMAT:
                continue  # an older engine's memory: start that subject afresh
            subjects.update(data["subjects"])
        self.state = EngineState.from_json({"format": STATE_FORMAT, "subjects": subjects})
        self.refresh_settings(conn)
        log.info(
            "rules: %d subjects' state loaded, packs %s",
            len(subjects),
            ", ".join(self.rules.pack_names),
        )

    def refresh_settings(self, conn: Connection) -> None:
        """Rebuild the rule set when ``subject_rules`` changed since the last look."""
        stamp = conn.execute("SELECT count(*), max(updated_at) FROM subject_rules").fetchone()
        if stamp == self._settings_stamp:
            return
        overrides: dict[str, SubjectOverrides] = {}
        for subject, packs, parameters, disabled in conn.execute(
            "SELECT subject, packs, parameters, disabled_rules FROM subject_rules"
        ):
            overrides[str(subject)] = SubjectOverrides(
                packs=tuple(packs) if isinstance(packs, list) else None,
                parameters=MappingProxyType(
                    {str(k): float(v) for k, v in dict(parameters or {}).items()}  # type: ignore[call-overload]
                ),
                disabled_rules=frozenset(disabled or ()),  # type: ignore[call-overload]
            )
        try:
            self.rules = build_ruleset(overrides=overrides)
        except (PackError, ValueError):
            # One bad row must not cost every other patient their settings: keep the rows
            # that compile on their own, and say which ones were refused and why.
            good: dict[str, SubjectOverrides] = {}
            for subject, override in overrides.items():
                try:
                    build_ruleset(overrides={subject: override})
                except (PackError, ValueError) as exc:
                    log.error(
                        "subject_rules for %s refused (%s); default rules apply", subject, exc
                    )
                    continue
                good[subject] = override
            self.rules = build_ruleset(overrides=good)
        self._settings_stamp = stamp

    # -- judging ---------------------------------------------------------------------------
    def judge(
        self, conn: Connection, readings: Sequence[ReadingLike], now: datetime
    ) -> EngineOutput:
        """Run the engine on first-time readings and write alerts and clearances.

        Runs inside the caller's transaction; call :meth:`adopt` after the commit.
        """
        return self.judge_observations(conn, [Observation(*o) for o in observed(readings)], now)

    def judge_observations(
        self, conn: Connection, observations: Sequence[Observation], now: datetime
    ) -> EngineOutput:
        """:meth:`judge` for the engine's own view of readings (what the rule inbox holds)."""
        # Stale-data rules of subjects absent from this batch wait for the tick (no
        # observations): sweeping the whole fleet on every call would cost O(subjects).
        output = run(
            observations, self.state, now.timestamp(), self.rules, sweep_absent=not observations
        )
        write_alerts(conn, output.alerts)
        for cleared in output.cleared:
            _stamp_clearance(conn, cleared.subject, cleared.rule, cleared.time, cleared.detail)
        return output

    def adopt(self, output: EngineOutput, subjects: Iterable[str]) -> None:
        """Take the new state once the transaction that wrote its alerts has committed."""
        self.state = output.state
        self._dirty.update(subjects)
        self._dirty.update(alert.subject for alert in output.alerts)
        self._dirty.update(cleared.subject for cleared in output.cleared)

    def tick(self, conn: Connection, now: datetime) -> EngineOutput:
        """Let time pass with no readings (stale-data rules); caller commits, then adopts."""
        return self.judge(conn, (), now)

    def checkpoint(self, conn: Connection, now: datetime) -> int:
        """Write the memory of subjects that changed since the last checkpoint."""
        if not self._dirty:
            return 0
        part = self.state.only(self._dirty).to_json()["subjects"]
        with conn.transaction(), conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO rule_state (subject, state, updated_at) VALUES (%s, %s, %s) "
                "ON CONFLICT (subject) DO UPDATE SET state = EXCLUDED.state, "
                " updated_at = EXCLUDED.updated_at",
                [
                    (subject, Jsonb({"format": STATE_FORMAT, "subjects": {subject: data}}), now)
                    for subject, data in part.items()
                ],
            )
        written = len(part)
        self._dirty.clear()
        return written


def write_alerts(conn: Connection, alerts: Sequence[Alert]) -> None:
    """Insert new alerts; a recurrence while the previous alert is still open folds into it.

    One open alert per subject and rule: the open row counts ``occurrences``, remembers when
    it was last seen, and is no longer marked as cleared.
    """
    if not alerts:
        return
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO alerts (subject, rule, severity, time, message, metric, value, state) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (subject, rule)"
            " WHERE state IN ('active', 'acknowledged', 'snoozed', 'shelved') DO UPDATE "
            "SET occurrences = alerts.occurrences + 1, last_seen_at = EXCLUDED.time, "
            " condition_cleared_at = NULL",
            [
                (a.subject, a.rule, a.severity, a.time, a.message, a.metric, a.value, a.state)
                for a in alerts
            ],
        )


def _stamp_clearance(conn: Connection, subject: str, rule: str, at: float, detail: str) -> None:
    moment = datetime.fromtimestamp(at, tz=UTC)
    row = conn.execute(
        "UPDATE alerts SET condition_cleared_at = %s WHERE subject = %s AND rule = %s "
        "AND state IN ('active', 'acknowledged', 'snoozed', 'shelved') "
        "AND condition_cleared_at IS NULL RETURNING id",
        (moment, subject, rule),
    ).fetchone()
    if row is None:
        return
    audit.append(
        conn,
        audit.AuditEntry(
            time=moment,
            actor="system:rules",
            action="condition_cleared",
            resource=f"alert/{row[0]}",
            detail={"subject": subject, "rule": rule, "detail": detail},
        ),
    )
