"""The lifecycle tick against a real PostgreSQL: a snooze expiry wakes the alert, an alert
nobody acknowledged escalates after the policy's delay, re-notification, the notice a manual
escalation left for the tick, and transitions + audit rows for each change."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from ingest_service import alert_lifecycle, migrate
from ingest_service.alert_lifecycle import DEFAULT_POLICY, SYSTEM_ACTOR, act, tick

T0 = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)


def _insert(conn: psycopg.Connection[Any], rule: str, severity: str) -> int:
    """An alert raised (stored) at T0, as the rules runner writes it."""
    row = conn.execute(
        "INSERT INTO alerts (subject, rule, severity, time, message, created_at, active_since)"
        " VALUES ('ptick', %s, %s, %s, 'synthetic', %s, %s) RETURNING id",
        (rule, severity, T0, T0, T0),
    ).fetchone()
    conn.commit()
    assert row is not None
    return int(row[0])


def _row(conn: psycopg.Connection[Any], alert_id: int) -> tuple[object, ...]:
    row = conn.execute(
        "SELECT state, escalation_level, renotified, notified_at, active_since, pending_notice"
        " FROM alerts WHERE id = %s",
        (alert_id,),
    ).fetchone()
    assert row is not None
    return tuple(row)


def test_snooze_expiry_wakes_the_alert_and_tells_its_contact(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        migrate(conn)
        alert_id = _insert(conn, "spo2_low", "high")
        act(conn, alert_id, "snooze", "doctor:dr-li", T0 + timedelta(minutes=1),
            until=T0 + timedelta(minutes=31), note="after clinic")  # fmt: skip
        assert tick(conn, T0 + timedelta(minutes=30), DEFAULT_POLICY).transitions == ()
        woke_at = T0 + timedelta(minutes=31)
        result = tick(conn, woke_at, DEFAULT_POLICY)
        assert [(t.from_status, t.to_status, t.by) for t in result.transitions] == [
            ("snoozed", "active", "system")
        ]
        ((notice, alert),) = result.notices
        assert (notice.reason, notice.contact, alert.raised_at) == (
            "snooze_expired", "family_doctor", T0,
        )  # fmt: skip
        state, level, renotified, notified_at, active_since, _ = _row(conn, alert_id)
        assert (state, level, renotified, notified_at, active_since) == (
            "active", 0, 0, woke_at, woke_at,
        )  # fmt: skip
        # The escalation clock restarted: a minute later nothing escalates, 15 min later it does.
        assert tick(conn, woke_at + timedelta(minutes=1), DEFAULT_POLICY).transitions == ()
        later = tick(conn, woke_at + timedelta(minutes=15), DEFAULT_POLICY)
        assert [n.reason for n, _ in later.notices] == ["escalation"]
        steps = conn.execute(
            "SELECT t.action, t.from_state, t.to_state, t.actor, l.action, l.actor"
            " FROM alert_transitions t JOIN audit_log l ON l.id = t.audit_id"
            " WHERE t.alert_id = %s ORDER BY t.id",
            (alert_id,),
        ).fetchall()
    assert steps == [
        ("snooze", "active", "snoozed", "doctor:dr-li", "alert_snoozed", "doctor:dr-li"),
        ("snooze_expired", "snoozed", "active", SYSTEM_ACTOR, "alert_snooze_expired",
         SYSTEM_ACTOR),
        ("escalate", "active", "active", SYSTEM_ACTOR, "alert_escalated", SYSTEM_ACTOR),
    ]  # fmt: skip


def test_unacknowledged_alerts_escalate_after_the_policy_delay(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        migrate(conn)
        high = _insert(conn, "hr_high", "high")
        critical = _insert(conn, "bp_crisis_systolic", "critical")
        acknowledged = _insert(conn, "fever", "high")
        act(conn, acknowledged, "acknowledge", "doctor:dr-li", T0 + timedelta(minutes=2))

        # 5 min: the critical alert escalates (5 min policy); the high one is re-notified.
        first = tick(conn, T0 + timedelta(minutes=5), DEFAULT_POLICY)
        assert [(t.alert_id, t.why) for t in first.transitions] == [
            (str(critical), "escalated to duty_doctor: not acknowledged for 5 min")
        ]
        assert sorted((n.alert_id, n.reason, n.contact) for n, _ in first.notices) == sorted([
            (str(high), "renotify", "family_doctor"),
            (str(critical), "escalation", "duty_doctor"),
        ])  # fmt: skip
        assert _row(conn, high)[:3] == ("active", 0, 1)
        assert _row(conn, critical)[:3] == ("active", 1, 0)
        # The same moment again changes nothing (each change happens once).
        again = tick(conn, T0 + timedelta(minutes=5), DEFAULT_POLICY)
        assert again.transitions == () and again.notices == ()

        # 15 min: the high alert escalates; 30 min: to the last contact; then it stays there.
        tick(conn, T0 + timedelta(minutes=15), DEFAULT_POLICY)
        assert _row(conn, high)[1] == 1
        tick(conn, T0 + timedelta(minutes=30), DEFAULT_POLICY)
        assert _row(conn, high)[1] == 2
        tick(conn, T0 + timedelta(hours=3), DEFAULT_POLICY)
        assert _row(conn, high)[1] == 2
        assert _row(conn, acknowledged)[:2] == ("acknowledged", 0)  # never escalated
        escalations = conn.execute(
            "SELECT count(*) FROM audit_log WHERE action = 'alert_escalated' AND resource = %s",
            (f"alert/{high}",),
        ).fetchone()
    assert escalations == (2,)


def test_a_manual_escalation_is_notified_by_the_tick(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        migrate(conn)
        alert_id = _insert(conn, "spo2_low", "high")
        outcome = act(conn, alert_id, "escalate", "doctor:dr-li", T0 + timedelta(minutes=1))
        assert outcome.alert.pending_notice == "escalation"
        assert outcome.alert.escalation_level == 1
        result = tick(conn, T0 + timedelta(minutes=2), DEFAULT_POLICY)
        assert [(n.reason, n.contact) for n, _ in result.notices] == [("escalation", "duty_doctor")]
        assert _row(conn, alert_id)[5] is None
        assert tick(conn, T0 + timedelta(minutes=3), DEFAULT_POLICY).notices == ()
        # At the last contact a further escalation is no change.
        act(conn, alert_id, "escalate", "doctor:dr-li", T0 + timedelta(minutes=4))
        last = act(conn, alert_id, "escalate", "doctor:dr-li", T0 + timedelta(minutes=4))
        assert not last.changed and last.alert.escalation_level == 2
    assert alert_lifecycle.DEFAULT_POLICY.contacts[2] == "clinic_desk"
