"""Engine properties (hypothesis) and state: no value never alerts, replay raises nothing new,
state is JSON-serialisable and partitionable, late data is not judged."""

from __future__ import annotations

import json
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st
from rules_support import T0, alerts_of, reading, series

from alert_rules import (
    EMPTY_STATE,
    EngineState,
    build_ruleset,
    evaluate,
    pack_names,
    run,
)
from alert_rules.engine import Observation
from vitals import Reading

ALL_PACKS = build_ruleset(pack_names())
METRICS = (
    "spo2",
    "heart_rate",
    "bp_systolic",
    "bp_diastolic",
    "glucose",
    "weight",
    "respiratory_rate",
    "body_temperature",
    "supplemental_o2",
)
RANGES = {
    "spo2": (70, 100),
    "heart_rate": (30, 180),
    "bp_systolic": (70, 220),
    "bp_diastolic": (40, 130),
    "glucose": (1.5, 35),
    "weight": (60, 80),
    "respiratory_rate": (5, 35),
    "body_temperature": (35, 40.5),
    "supplemental_o2": (0, 1),
}


@st.composite
def readings(draw: st.DrawFn, *, missing: bool = False) -> list[Reading]:
    count = draw(st.integers(0, 40))
    out: list[Reading] = []
    for _ in range(count):
        name = draw(st.sampled_from(METRICS))
        low, high = RANGES[name]
        value = None if missing else draw(st.floats(low, high))
        minutes = draw(st.integers(0, 3 * 24 * 60))
        subject = draw(st.sampled_from(["sim-a", "sim-b"]))
        out.append(reading(name, value, timedelta(minutes=minutes), subject))
    return out


@settings(max_examples=60, deadline=None)
@given(readings(missing=True), st.integers(0, 5 * 24 * 60))
def test_no_value_readings_never_alert_under_any_pack(batch: list[Reading], later: int) -> None:
    """A reading without a value is never a breach, a recovery or data for staleness."""
    found, state = evaluate(batch, EMPTY_STATE, T0 + timedelta(minutes=later), ALL_PACKS)
    assert found == []
    assert all(not sub.latest for sub in state.subjects.values())


@settings(max_examples=60, deadline=None)
@given(readings(), readings(missing=True))
def test_no_value_readings_change_nothing(batch: list[Reading], gaps: list[Reading]) -> None:
    """Interleaving no-value readings does not change which alerts fire."""
    now = T0 + timedelta(days=3)
    with_gaps, _ = evaluate(batch + gaps, EMPTY_STATE, now, ALL_PACKS)
    without, _ = evaluate(batch, EMPTY_STATE, now, ALL_PACKS)
    assert [(a.subject, a.rule, a.time) for a in with_gaps] == [
        (a.subject, a.rule, a.time) for a in without
    ]


@settings(max_examples=60, deadline=None)
@given(readings())
def test_replaying_the_same_readings_raises_nothing_new(batch: list[Reading]) -> None:
    """Redelivered batches (at-least-once MQTT) never alert twice."""
    now = T0 + timedelta(days=3)
    _, state = evaluate(batch, EMPTY_STATE, now, ALL_PACKS)
    again, second = evaluate(batch, state, now, ALL_PACKS)
    assert again == []
    assert second == state


@settings(max_examples=40, deadline=None)
@given(readings(), st.integers(1, 39))
def test_splitting_a_stream_in_time_order_gives_the_same_alerts(
    batch: list[Reading], cut: int
) -> None:
    """Batching does not matter when batches arrive in time order (state carries the rest)."""
    ordered = sorted(batch, key=lambda r: r.time)
    boundary = ordered[min(cut, len(ordered) - 1)].time if ordered else T0
    first = [r for r in ordered if r.time < boundary]
    rest = [r for r in ordered if r.time >= boundary]
    now = T0 + timedelta(days=3)
    whole, _ = evaluate(ordered, EMPTY_STATE, now, ALL_PACKS)
    a, state = evaluate(first, EMPTY_STATE, boundary, ALL_PACKS)
    b, _ = evaluate(rest, state, now, ALL_PACKS)
    key = [(x.subject, x.rule, x.time) for x in whole if x.rule != "wearable_silent"]
    split = [(x.subject, x.rule, x.time) for x in a + b if x.rule != "wearable_silent"]
    assert sorted(split) == sorted(key)


@settings(max_examples=40, deadline=None)
@given(readings())
def test_state_round_trips_through_json(batch: list[Reading]) -> None:
    """The ingest service can persist the state as JSON and get the same behaviour back."""
    _, state = evaluate(batch, EMPTY_STATE, T0 + timedelta(days=3), ALL_PACKS)
    text = json.dumps(state.to_json())
    restored = EngineState.from_json(json.loads(text))
    assert restored == state


def test_state_partitions_by_subject() -> None:
    batch = series("spo2", [89], subject="sim-a") + series("spo2", [88], subject="sim-b")
    _, state = evaluate(batch, EMPTY_STATE, T0)
    a = state.only(["sim-a"])
    assert set(a.subjects) == {"sim-a"}
    assert a.merge(state.only(["sim-b"])) == state
    # The partition alone continues sim-a's streak.
    found, _ = evaluate(series("spo2", [87], subject="sim-a", start=timedelta(minutes=1)), a, T0)
    assert [x.rule for x in found] == ["spo2_low"]


def test_the_engine_never_mutates_the_state_it_was_given() -> None:
    _, state = evaluate(series("spo2", [89]), EMPTY_STATE, T0)
    snapshot = json.dumps(state.to_json(), sort_keys=True)
    evaluate(series("spo2", [88, 87], start=timedelta(minutes=1)), state, T0)
    assert json.dumps(state.to_json(), sort_keys=True) == snapshot


def test_late_reading_is_not_judged() -> None:
    """Late-data policy: older than what was judged for that subject + metric -> skipped."""
    _, state = evaluate(series("spo2", [95, 96], start=timedelta(minutes=10)), EMPTY_STATE, T0)
    late = series("spo2", [80, 80])  # T0, T0+1 min: before T0+10 min
    output = run(
        [Observation(r.subject, r.metric, r.time.timestamp(), r.value) for r in late],
        state,
        T0.timestamp(),
    )
    assert output.alerts == () and output.late == 2


def test_delayed_but_in_order_reading_is_judged_and_says_so() -> None:
    """A reading backfilled from the edge outbox is judged, and the alert shows the delay."""
    found = alerts_of(series("bp_systolic", [185]), now=T0 + timedelta(hours=2))
    assert [a.rule for a in found] == ["bp_crisis_systolic"]
    assert "reading delayed by 2 h" in found[0].message
    assert found[0].time == T0


def test_implausible_values_are_device_faults_not_alarms() -> None:
    found = alerts_of(series("spo2", [0, 0, 0]))
    assert found == []


def test_clearances_are_reported_for_the_lifecycle() -> None:
    obs = [
        Observation("sim-a", "glucose", T0.timestamp() + i * 60, v)
        for i, v in enumerate([2.8, 3.5, 4.0])
    ]
    output = run(obs, EMPTY_STATE, T0.timestamp())
    assert [a.rule for a in output.alerts] == ["glucose_level2_hypo"]
    # 3.5 is inside the hysteresis band (3.0 + 0.9); 4.0 clears.
    assert [(c.rule, c.time - T0.timestamp()) for c in output.cleared] == [
        ("glucose_level2_hypo", 120.0)
    ]
