"""The foundation rules engine: thresholds, streaks, one open alert per subject and rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from alert_rules import EMPTY_STATE, evaluate
from vitals import Reading

T0 = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)


def spo2(values: list[float | None], subject: str = "sim-s1") -> list[Reading]:
    return [
        Reading(
            subject=subject,
            device="oxi",
            metric="spo2",
            value=v,
            no_value=None if v is not None else "NaN",
            unit="%",
            time=T0 + timedelta(minutes=i),
            source="sim",
        )
        for i, v in enumerate(values)
    ]


def test_spo2_below_90_on_two_consecutive_readings_alerts_once() -> None:
    """BTS oxygen guideline 2017: SpO2 < 90 % needs review; two readings rule out a blip."""
    alerts, _ = evaluate(spo2([95, 89, 88, 87, 86]), EMPTY_STATE, T0)
    assert [(a.rule, a.value, a.time) for a in alerts] == [
        ("spo2_low", 88.0, T0 + timedelta(minutes=2))
    ]


def test_a_single_low_reading_does_not_alert() -> None:
    alerts, _ = evaluate(spo2([95, 88, 95, 88, 95]), EMPTY_STATE, T0)
    assert alerts == []


def test_streak_carries_across_calls_through_state() -> None:
    readings = spo2([95, 89, 88])
    _, state = evaluate(readings[:2], EMPTY_STATE, T0)
    alerts, _ = evaluate(readings[2:], state, T0)
    assert len(alerts) == 1


def test_recovery_closes_the_episode_and_a_new_one_alerts_again() -> None:
    alerts, _ = evaluate(spo2([89, 88, 96, 89, 88]), EMPTY_STATE, T0)
    assert len(alerts) == 2


def test_no_value_never_advances_or_breaks_a_streak() -> None:
    alerts, _ = evaluate(spo2([89, None, 88]), EMPTY_STATE, T0)
    assert len(alerts) == 1


def test_subjects_are_independent() -> None:
    mixed = spo2([89], "sim-a") + spo2([88], "sim-b")
    alerts, _ = evaluate(mixed, EMPTY_STATE, T0)
    assert alerts == []


def test_bp_crisis_and_level2_hypoglycaemia_alert_on_one_reading() -> None:
    """2018 Chinese hypertension guideline (SBP >= 180) and ADA 2024 (glucose < 3.0)."""
    readings = [
        Reading(
            subject="sim-h",
            device="cuff",
            metric="bp_systolic",
            value=186,
            unit="mm[Hg]",
            time=T0,
            source="sim",
        ),
        Reading(
            subject="sim-d",
            device="glu",
            metric="glucose",
            value=2.8,
            unit="mmol/L",
            time=T0,
            source="sim",
        ),
    ]
    alerts, _ = evaluate(readings, EMPTY_STATE, T0)
    assert sorted(a.rule for a in alerts) == ["bp_crisis_systolic", "glucose_level2_hypo"]
    assert {a.severity for a in alerts} == {"critical"}


@given(st.lists(st.one_of(st.none(), st.floats(40, 100)), max_size=40))
def test_no_value_readings_never_alert(values: list[float | None]) -> None:
    only_missing: list[float | None] = [None for _ in values]
    alerts, _ = evaluate(spo2(only_missing), EMPTY_STATE, T0)
    assert alerts == []


@given(st.lists(st.floats(40, 100), max_size=40))
def test_replaying_the_same_readings_raises_nothing_new(values: list[float]) -> None:
    readings = spo2(list(values))
    _, state = evaluate(readings, EMPTY_STATE, T0)
    again, _ = evaluate(readings, state, T0)
    assert again == []


def test_stale_sweep_of_absent_subjects_can_wait_for_the_tick() -> None:
    """IEC 60601-1-8 loss-of-monitoring-data alarm (elderly pack ``wearable_silent``): a batch
    of another subject's readings judges only its own subjects when ``sweep_absent=False``;
    the timer tick (no observations) still finds the silent wearable."""
    from alert_rules.engine import Observation, run
    from alert_rules.ruleset import build_ruleset

    rules = build_ruleset(["elderly"])
    silent = [
        Observation("sim-silent", "heart_rate", (T0 + timedelta(minutes=i)).timestamp(), 70.0)
        for i in range(3)
    ]
    state = run(silent, EMPTY_STATE, T0.timestamp(), rules).state
    later = (T0 + timedelta(hours=2)).timestamp()
    other = [Observation("sim-busy", "heart_rate", later, 72.0)]

    batch_only = run(other, state, later, rules, sweep_absent=False)
    assert [a.rule for a in batch_only.alerts] == []
    swept = run(other, state, later, rules)
    assert [(a.subject, a.rule) for a in swept.alerts] == [("sim-silent", "wearable_silent")]
    ticked = run([], batch_only.state, later, rules)
    assert [(a.subject, a.rule) for a in ticked.alerts] == [("sim-silent", "wearable_silent")]
