"""Replay: a real MIMIC-II numerics record and long-format CSV, re-based onto a chosen start."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from shared_data import MIMIC_DIR

from edge_agent.replay import (
    OFFSET_FLAG,
    REPLAYED,
    RecordedValue,
    ReplayError,
    ReplaySchedule,
    ReplaySource,
    csv_to_recorded,
    load_recording,
    numerics_to_recorded,
    unmapped_signals,
)
from vitals import Reading

RECORD = MIMIC_DIR / "s00001-2896-10-10-00-31n.hea"
START = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)

needs_record = pytest.mark.skipif(not RECORD.is_file(), reason="shared MIMIC record absent")


@needs_record
def test_mimic_numerics_zero_is_sensor_off_nan_is_not_measured() -> None:
    pytest.importorskip("wfdb")
    recorded = load_recording(RECORD)
    per_metric = Counter(r.metric for r in recorded)
    # 1936 minutes x 7 mapped signals (ABP* is not mapped).
    assert set(per_metric.values()) == {1936}
    assert len(per_metric) == 7
    off = Counter(r.metric for r in recorded if r.no_value == "sensor_off")
    missing = Counter(r.metric for r in recorded if r.no_value == "not_measured")
    # SOURCE.md: SpO2 0 (probe off) in 363 minutes, HR 0 in 46, NBP only 152 cuff readings.
    assert off["spo2"] == 363
    assert off["heart_rate"] == 46
    assert missing["bp_systolic"] == 1936 - 152
    assert all(r.value is None or r.value > 0 for r in recorded)  # never 0 as a value
    assert recorded[0].subject == "replay-s00001-2896-10-10-00-31n"
    assert recorded[7].offset_s == 60.0  # minute cadence, no float drift


@needs_record
def test_mimic_replay_is_rebased_and_accelerated() -> None:
    pytest.importorskip("wfdb")
    schedule = ReplaySchedule(load_recording(RECORD, subject="s-train-1"), START, speed=60)
    first = schedule.due(0.0)
    assert {r.time for r in first} == {START}
    assert len(schedule.due(1.0)) == 7  # one recorded minute per wall second
    later = schedule.due(10.0)
    assert max(r.time for r in later) == START + timedelta(minutes=10)
    reading = later[-1]
    assert reading.source == "replay"
    assert reading.subject == "s-train-1"
    assert REPLAYED in reading.quality
    assert f"{OFFSET_FLAG}600" in reading.quality
    schedule.due(float("1e9"))
    assert schedule.finished


def test_unmapped_signals_are_reported_not_guessed() -> None:
    names = ["HR", "ABPSys", "SpO2", "NBPSys"]
    assert unmapped_signals(names) == ["ABPSys"]
    recorded = numerics_to_recorded(
        names, [[70.0, 120.0, 0.0, float("nan")]], 1 / 60, subject="s1", device="d1"
    )
    assert [(r.metric, r.value, r.no_value) for r in recorded] == [
        ("heart_rate", 70.0, None),
        ("spo2", None, "sensor_off"),
        ("bp_systolic", None, "not_measured"),
    ]
    quiet = numerics_to_recorded(
        names,
        [[70.0, 0.0, 97.0, float("nan")]],
        1.0,
        subject="s1",
        device="d1",
        emit_not_measured=False,
    )
    assert [r.metric for r in quiet] == ["heart_rate", "spo2"]


def test_csv_seconds_and_iso() -> None:
    seconds = csv_to_recorded(
        "subject,time,metric,value\np1,60,heart_rate,72\np1,0,spo2,\np2,0,weight,71.5\n"
    )
    assert [(r.offset_s, r.subject, r.metric, r.value, r.no_value) for r in seconds] == [
        (0.0, "p1", "spo2", None, "not_measured"),
        (0.0, "p2", "weight", 71.5, None),
        (60.0, "p1", "heart_rate", 72.0, None),
    ]
    assert seconds[0].device == "replay-p1"
    iso = csv_to_recorded(
        "subject,time,metric,value,device\n"
        "p1,2020-01-01T00:10:00+08:00,heart_rate,80,cuff-9\n"
        "p1,2020-01-01T00:00:00+08:00,heart_rate,70,cuff-9\n"
    )
    assert [(r.offset_s, r.value, r.device) for r in iso] == [
        (0.0, 70.0, "cuff-9"),
        (600.0, 80.0, "cuff-9"),
    ]


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("subject,time,value\n", "lacks metric"),
        ("subject,time,metric,value\np1,0,pulse,70\n", "line 2"),
        ("subject,time,metric,value\np1,0,heart_rate,fast\n", "not a number"),
        ("subject,time,metric,value\np1,yesterday,heart_rate,70\n", "ISO 8601"),
        ("subject,time,metric,value\np1,2020-01-01T00:00:00,heart_rate,70\n", "UTC offset"),
        ("subject,time,metric,value\np/1,0,heart_rate,70\n", "identifier"),
        (
            "subject,time,metric,value\np1,0,heart_rate,70\np1,2020-01-01T00:00Z,spo2,97\n",
            "mixes",
        ),
    ],
)
def test_csv_rejections_name_the_line(text: str, fragment: str) -> None:
    with pytest.raises(ReplayError, match=fragment):
        csv_to_recorded(text)


def test_loop_never_repeats_a_key() -> None:
    recorded = [
        RecordedValue(0.0, "p1", "d1", "heart_rate", 70.0),
        RecordedValue(60.0, "p1", "d1", "heart_rate", 71.0),
    ]
    schedule = ReplaySchedule(recorded, START, speed=60, loop=True)
    out = schedule.due(10.0)  # 600 recorded seconds: passes of 120 s, one value a minute
    times = [r.time for r in out]
    assert len(times) == len(set(times)) == 11
    assert times == [START + timedelta(minutes=m) for m in range(11)]
    assert not schedule.finished


def test_source_starts_its_clock_on_first_call() -> None:
    ticks = iter([100.0, 100.5, 161.0])
    recorded = [
        RecordedValue(0.0, "p1", "d1", "heart_rate", 70.0),
        RecordedValue(60.0, "p1", "d1", "heart_rate", 71.0),
    ]
    source = ReplaySource(ReplaySchedule(recorded, START), clock=lambda: next(ticks))
    assert [r.value for r in source() if isinstance(r, Reading)] == [70.0]
    assert source() == []
    assert [r.value for r in source() if isinstance(r, Reading)] == [71.0]


def test_rejects_bad_schedule_arguments() -> None:
    with pytest.raises(ValueError, match="speed"):
        ReplaySchedule([], START, speed=0)
    with pytest.raises(ValueError, match="aware"):
        ReplaySchedule([], datetime(2026, 1, 1), speed=1)
