"""Pure parts of the follow-up metrics (percentiles, months, the per-doctor rows) and of the
lifecycle shell's decisions (snooze/shelve limits, reasons, manual escalation)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from ingest_service.alert_lifecycle import (
    DEFAULT_POLICY,
    ActionError,
    StoredAlert,
    decide,
    tick_kind,
)
from ingest_service.web.followup import (
    CLINIC,
    AlertFact,
    FollowUp,
    followup_rows,
    month_start,
    percentile,
)

ZONE = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)


def test_percentile_interpolates_linearly_type_7() -> None:
    assert percentile([3.0, 10.0, 20.0, 40.0], 50) == 15.0
    assert percentile([3.0, 10.0, 20.0, 40.0], 90) == pytest.approx(34.0)
    assert percentile([7.0], 90) == 7.0
    assert percentile([1.0, 2.0], 0) == 1.0 and percentile([1.0, 2.0], 100) == 2.0
    with pytest.raises(ValueError):
        percentile([], 50)


def test_month_start_counts_local_calendar_months() -> None:
    # 2026-12-01 01:00 in Shanghai is still November in UTC.
    local_december = datetime(2026, 11, 30, 17, 0, tzinfo=UTC)
    assert month_start(local_december, ZONE, 1) == datetime(2026, 11, 30, 16, 0, tzinfo=UTC)
    assert month_start(NOW, ZONE, 12) == datetime(2025, 11, 30, 16, 0, tzinfo=UTC)


def test_rows_per_doctor_and_for_the_clinic() -> None:
    t0 = NOW - timedelta(hours=2)
    facts = [
        AlertFact(1, "a", "r1", "critical", t0, t0, t0 + 4 * MIN, "doctor:li"),
        AlertFact(2, "a", "r2", "high", t0, t0, t0 + 16 * MIN, "doctor:wang"),
        AlertFact(3, "b", "r3", "high", t0, t0),  # unanswered for 2 h: late
        AlertFact(4, "b", "r4", "critical", NOW - MIN, NOW - MIN),  # still within 5 min
    ]
    notes = [FollowUp(1, "a", "doctor:li", t0 + 4 * MIN)]
    observed = {"2026-11": {"a": (t0 - timedelta(hours=22), t0 + timedelta(hours=2))}}
    rows = followup_rows(facts, notes, observed, {"doctor:li": 4}, 8, NOW, ZONE)
    assert [r.scope for r in rows] == [CLINIC, "doctor:li", "doctor:wang"]
    clinic, li, wang = rows
    assert (clinic.acted, clinic.tta_median_min, clinic.urgent, clinic.urgent_in_time) == (
        2, 10.0, 3, 1,
    )  # fmt: skip
    assert clinic.follow_ups_per_patient == 1 / 8 and clinic.patient_days == 1.0
    assert clinic.alerts_per_patient_day == 4.0
    assert (li.urgent_share, li.follow_ups_per_patient) == (1.0, 0.25)
    assert (wang.urgent_share, wang.contracted, wang.follow_ups_per_patient) == (0.0, None, None)
    assert wang.as_csv()[9] == "" and li.as_csv()[:3] == ("2026-11", "doctor:li", "1")


def _stored(state: str = "active", level: int = 0) -> StoredAlert:
    return StoredAlert(
        id=7, subject="p", rule="spo2_low", severity="high", time=NOW, message="m",
        state=state, created_at=NOW, active_since=NOW, escalation_level=level,
    )  # fmt: skip


def test_snooze_is_capped_and_shelving_needs_a_reason() -> None:
    snoozed = decide(_stored(), "snooze", "doctor:li", NOW, until=NOW + timedelta(hours=9))
    assert snoozed.alert.state == "snoozed"
    assert snoozed.alert.snoozed_until == NOW + DEFAULT_POLICY.max_snooze
    with pytest.raises(ActionError) as missing:
        decide(_stored(), "shelve", "doctor:li", NOW, until=NOW + timedelta(days=1))
    assert missing.value.kind == "invalid"
    with pytest.raises(ActionError):
        decide(_stored(), "snooze", "doctor:li", NOW, until=NOW - MIN)
    shelved = decide(_stored(), "shelve", "d", NOW, note="known", until=NOW + timedelta(days=30))
    assert shelved.alert.shelved_until == NOW + DEFAULT_POLICY.max_shelve
    assert decide(shelved.alert, "acknowledge", "d", NOW).alert.shelved_until is None


def test_manual_escalation_moves_one_contact_and_stops_at_the_last() -> None:
    up = decide(_stored(), "escalate", "doctor:li", NOW, note="please call")
    assert (up.alert.escalation_level, up.notice, up.alert.pending_notice) == (
        1, "escalation", "escalation",
    )  # fmt: skip
    (step,) = up.transitions
    assert (step.from_status, step.to_status, step.why) == (
        "active", "active", "escalated to duty_doctor: please call",
    )  # fmt: skip
    assert tick_kind(step) == "escalate"
    top = decide(_stored(level=2), "escalate", "doctor:li", NOW)
    assert top.transitions == () and top.alert.escalation_level == 2


def test_resolved_alerts_refuse_parking_and_ignore_repeats() -> None:
    closed = _stored("resolved")
    assert decide(closed, "resolve", "d", NOW, note="again").transitions == ()
    assert decide(closed, "acknowledge", "d", NOW).transitions == ()
    with pytest.raises(ActionError) as refused:
        decide(closed, "escalate", "d", NOW)
    assert refused.value.kind == "closed"
    with pytest.raises(ActionError):
        decide(_stored(), "resolve", "d", NOW)  # a note is required
    done = decide(_stored("acknowledged"), "resolve", "doctor:li", NOW, note="ok")
    assert (done.alert.state, done.alert.resolved_by) == ("resolved", "doctor:li")
