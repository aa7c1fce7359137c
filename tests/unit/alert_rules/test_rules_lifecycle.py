"""The alert lifecycle: transitions, dedup, snooze/shelve expiry, escalation, audit records."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alert_rules.lifecycle import (
    EMPTY_LIFECYCLE,
    LifecyclePolicy,
    LifecycleState,
    acknowledge,
    condition_cleared,
    raise_alerts,
    resolve,
    shelve,
    snooze,
    tick,
)
from vitals import Alert

T0 = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
POLICY = LifecyclePolicy(contacts=("family_doctor", "duty_doctor", "emergency_desk"))
MIN = timedelta(minutes=1)


def _alert(rule: str = "spo2_low", subject: str = "sim-a", severity: str = "high") -> Alert:
    return Alert(subject=subject, rule=rule, severity=severity, time=T0, message=f"{rule} fired")


def _opened() -> tuple[LifecycleState, str]:
    state, transitions, notes = raise_alerts(EMPTY_LIFECYCLE, [_alert()], T0, POLICY)
    assert [(t.from_status, t.to_status, t.by) for t in transitions] == [(None, "active", "system")]
    assert [(n.contact, n.reason) for n in notes] == [("family_doctor", "new")]
    return state, transitions[0].alert_id


def test_active_acknowledged_resolved_with_who_when_why() -> None:
    state, alert_id = _opened()
    state, ack, _ = acknowledge(state, alert_id, "dr.li", T0 + MIN, "called the patient")
    assert [(t.from_status, t.to_status, t.by, t.at, t.why) for t in ack] == [
        ("active", "acknowledged", "dr.li", T0 + MIN, "called the patient")
    ]
    state, done, _ = resolve(state, alert_id, "dr.li", T0 + 2 * MIN, "SpO2 back to 96 %")
    assert [(t.from_status, t.to_status) for t in done] == [("acknowledged", "resolved")]
    assert state.open == {}


def test_one_open_alert_per_subject_and_rule() -> None:
    state, _alert_id = _opened()
    state, transitions, notes = raise_alerts(state, [_alert()], T0 + MIN, POLICY)
    assert len(state.open) == 1 and notes == []
    assert transitions[0].why.startswith("suppressed duplicate")
    state, _, notes = raise_alerts(state, [_alert(subject="sim-b")], T0 + MIN, POLICY)
    assert len(state.open) == 2 and len(notes) == 1


@given(st.integers(1, 5))
def test_resolving_is_idempotent(times: int) -> None:
    state, alert_id = _opened()
    state, first, _ = resolve(state, alert_id, "dr.li", T0 + MIN)
    after = state
    for _ in range(times):
        state, again, notes = resolve(state, alert_id, "dr.li", T0 + 2 * MIN)
        assert again == [] and notes == []
    assert state == after and len(first) == 1


def test_escalates_to_the_next_contact_when_not_acknowledged() -> None:
    state, _alert_id = _opened()
    state, transitions, notes = tick(state, T0 + 16 * MIN, POLICY)
    assert [(n.contact, n.reason) for n in notes] == [("duty_doctor", "escalation")]
    assert "escalated to duty_doctor" in transitions[0].why
    state, _, notes = tick(state, T0 + 31 * MIN, POLICY)
    assert [(n.contact, n.reason) for n in notes] == [("emergency_desk", "escalation")]


def test_critical_alerts_escalate_sooner() -> None:
    state, _, _ = raise_alerts(EMPTY_LIFECYCLE, [_alert(severity="critical")], T0, POLICY)
    _, _, notes = tick(state, T0 + 6 * MIN, POLICY)
    assert [n.reason for n in notes] == ["escalation"]


def test_renotifies_the_current_contact_at_most_max_times() -> None:
    state, _ = _opened()
    reasons = []
    for minute in range(5, 15, 1):
        state, _, notes = tick(state, T0 + minute * MIN, POLICY)
        reasons += [(n.contact, n.reason) for n in notes]
    assert reasons == [("family_doctor", "renotify")] * 2  # at 5 and 10 min, before escalation


def test_acknowledged_alerts_do_not_escalate() -> None:
    state, alert_id = _opened()
    state, _, _ = acknowledge(state, alert_id, "dr.li", T0 + MIN)
    _, transitions, notes = tick(state, T0 + 60 * MIN, POLICY)
    assert transitions == [] and notes == []


def test_snooze_expires_back_to_active_and_renotifies() -> None:
    state, alert_id = _opened()
    state, parked, _ = snooze(state, alert_id, "dr.li", T0 + MIN, T0 + 31 * MIN, POLICY)
    assert parked[0].to_status == "snoozed"
    _, transitions, notes = tick(state, T0 + 20 * MIN, POLICY)
    assert transitions == [] and notes == []  # snoozed: no escalation
    state, transitions, notes = tick(state, T0 + 31 * MIN, POLICY)
    assert [(t.from_status, t.to_status) for t in transitions] == [("snoozed", "active")]
    assert [n.reason for n in notes] == ["snooze_expired"]


def test_snooze_is_capped_and_shelving_needs_a_reason() -> None:
    state, alert_id = _opened()
    capped, transitions, _ = snooze(state, alert_id, "dr.li", T0, T0 + timedelta(days=2), POLICY)
    assert capped.find(alert_id).until == T0 + POLICY.max_snooze  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="reason"):
        shelve(state, alert_id, "dr.li", T0, T0 + timedelta(days=1), POLICY, " ")
    shelved, transitions, _ = shelve(
        state, alert_id, "dr.li", T0, T0 + timedelta(days=1), POLICY, "known chronic hypoxaemia"
    )
    assert transitions[0].to_status == "shelved" and "chronic" in transitions[0].why
    # A new engine alert for a shelved pair is suppressed, not re-raised.
    _, _, notes = raise_alerts(shelved, [_alert()], T0 + MIN, POLICY)
    assert notes == []


def test_condition_cleared_resolves_acknowledged_but_keeps_unacknowledged() -> None:
    state, alert_id = _opened()
    kept, transitions, _ = condition_cleared(state, "sim-a", "spo2_low", T0 + MIN, POLICY)
    assert kept.find(alert_id).condition_cleared  # type: ignore[union-attr]
    assert transitions[0].why.startswith("condition cleared")
    acked, _, _ = acknowledge(kept, alert_id, "dr.li", T0 + 2 * MIN)
    done, transitions, _ = condition_cleared(acked, "sim-a", "spo2_low", T0 + 3 * MIN, POLICY)
    assert done.open == {} and transitions[0].to_status == "resolved"


def test_lifecycle_state_is_json_able() -> None:
    import json

    state, _ = _opened()
    assert json.loads(json.dumps(state.to_json()))["open"]["sim-a|spo2_low"]["status"] == "active"
