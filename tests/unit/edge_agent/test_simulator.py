"""The simulator: cadences, scripted events, determinism, and the time warp."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

from edge_agent.simulator import (
    LOCAL_ZONE,
    SimPatient,
    TimeWarpSource,
    simulate_ambulance,
    simulate_home,
)

END = datetime(2026, 11, 25, 0, 0, tzinfo=UTC)
START = END - timedelta(hours=24)


def test_home_cadences_match_how_devices_are_used() -> None:
    patient = SimPatient("sim-t-p1", "sim-t-gw1", "diabetes")
    out = simulate_home(patient, START, END, seed=1)
    per_metric = Counter(r.metric for r in out)
    assert per_metric["spo2"] == per_metric["heart_rate"] == 24 * 60 - 1  # every minute
    assert per_metric["bp_systolic"] == 2  # morning and evening
    assert per_metric["glucose"] == 3 + 2  # before meals + the hypo and its re-check
    bp_hours = sorted(
        {r.time.astimezone(LOCAL_ZONE).hour for r in out if r.metric == "bp_systolic"}
    )
    assert bp_hours == [7, 19]
    assert out == sorted(out, key=lambda r: r.time)


def test_scripted_events_are_present() -> None:
    copd = simulate_home(SimPatient("sim-t-c", "gw-c", "copd"), START, END, seed=2)
    assert sum(1 for r in copd if r.metric == "spo2" and r.value is not None and r.value < 90) >= 10
    htn = simulate_home(SimPatient("sim-t-h", "gw-h", "hypertension"), START, END, seed=3)
    assert max(r.value or 0 for r in htn if r.metric == "bp_systolic") >= 180
    elderly = simulate_home(SimPatient("sim-t-e", "gw-e", "elderly"), START, END, seed=4)
    assert any(r.metric == "pulse_rate" and r.value == 400 for r in elderly)  # the artifact


def test_night_heart_rate_is_lower() -> None:
    out = simulate_home(SimPatient("sim-t-n", "gw-n", "heart_failure"), START, END, seed=5)

    def mean_hr(night: bool) -> float:
        values = [
            r.value or 0
            for r in out
            if r.metric == "heart_rate" and (r.time.astimezone(LOCAL_ZONE).hour < 6) == night
        ]
        return sum(values) / len(values)

    assert mean_hr(True) < mean_hr(False) - 4


def test_simulation_is_deterministic_per_seed() -> None:
    p = SimPatient("sim-t-d", "gw-d", "elderly")
    assert simulate_home(p, START, END, 7) == simulate_home(p, START, END, 7)
    assert simulate_home(p, START, END, 7) != simulate_home(p, START, END, 8)


def test_ambulance_patient_deteriorates_and_carries_the_incident() -> None:
    p = SimPatient("sim-t-a", "amb", "ambulance", incident="sim-inc-1")
    out = simulate_ambulance(p, END - timedelta(minutes=40), END, seed=1)
    hr = [r.value or 0 for r in out if r.metric == "heart_rate"]
    assert sum(hr[-10:]) / 10 > sum(hr[:10]) / 10 + 25
    assert {r.incident for r in out} == {"sim-inc-1"}


def test_time_warp_releases_each_reading_once_in_order() -> None:
    out = simulate_home(SimPatient("sim-t-w", "gw-w", "copd"), START, END, seed=1)
    warp = TimeWarpSource(out, START, speed=3600.0)  # one simulated hour per second
    first = warp.due(1.0)
    assert first and all(r.time <= START + timedelta(hours=1) for r in first)
    assert warp.due(1.0) == []
    rest = warp.due(float("inf"))
    assert first + rest == out and warp.remaining == 0
