"""The outbox overflow policy (pure) and the bounded outbox that applies it."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.agent import _describe_drops
from edge_agent.outbox import Outbox
from edge_agent.overflow import DEFAULT_MAX_ROWS, DROP_ORDER, overflow_drops
from vitals import Lane, LocalAlarm, Reading, WaveformSnippet, encode_samples

T0 = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
LANES: tuple[Lane, ...] = ("alarm", "vitals", "waveform", "backfill")


def readings(n: int, device: str = "oxi-1", start: int = 0) -> list[Reading]:
    return [
        Reading(
            subject="sim-s1",
            device=device,
            metric="spo2",
            value=95.0,
            unit="%",
            time=T0 + timedelta(minutes=start + i),
            source="sim",
        )
        for i in range(n)
    ]


def alarm(i: int) -> LocalAlarm:
    return LocalAlarm(
        event_id=f"ev-{i}",
        gateway="gw-1",
        subject="sim-s1",
        rule="spo2_low",
        severity="high",
        time=T0,
        raised_at=T0,
        message="low",
    )


def snippet(i: int, device: str = "ecg-1") -> WaveformSnippet:
    return WaveformSnippet(
        subject="sim-s1",
        device=device,
        channel="ecg_ii",
        start=T0 + timedelta(seconds=10 * i),
        sample_rate_hz=360,
        scale=0.005,
        samples=encode_samples([0.0, 0.5, 1.0, -0.2], 0.005),
        source="sim",
    )


# -- the pure policy -----------------------------------------------------------------------------


def test_backfill_goes_first_then_waveform_then_vitals() -> None:
    counts: dict[Lane, int] = {"alarm": 2, "vitals": 5, "waveform": 3, "backfill": 4}
    assert overflow_drops(counts, 14) == {}
    assert overflow_drops(counts, 13) == {"backfill": 1}
    assert overflow_drops(counts, 10) == {"backfill": 4}
    assert overflow_drops(counts, 8) == {"backfill": 4, "waveform": 2}
    assert overflow_drops(counts, 4) == {"backfill": 4, "waveform": 3, "vitals": 3}


def test_alarms_are_never_dropped_even_beyond_the_bound() -> None:
    counts: dict[Lane, int] = {"alarm": 7, "vitals": 2}
    assert overflow_drops(counts, 3) == {"vitals": 2}
    assert overflow_drops({"alarm": 7}, 0) == {}


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="max_rows"):
        overflow_drops({"vitals": 1}, -1)
    with pytest.raises(ValueError, match="negative"):
        overflow_drops({"vitals": -1}, 1)


def test_the_default_bound_and_the_order_are_what_the_docs_say() -> None:
    assert DROP_ORDER == ("backfill", "waveform", "vitals")
    assert "alarm" not in DROP_ORDER
    assert DEFAULT_MAX_ROWS == 500_000


lane_counts = st.fixed_dictionaries({lane: st.integers(0, 1000) for lane in LANES})


@given(counts=lane_counts, max_rows=st.integers(0, 4000))
def test_policy_properties(counts: dict[Lane, int], max_rows: int) -> None:
    drops = overflow_drops(counts, max_rows)
    left = {lane: counts[lane] - drops.get(lane, 0) for lane in LANES}
    # never drops alarms, never more than a lane holds, never a zero entry
    assert "alarm" not in drops
    assert all(0 < n <= counts[lane] for lane, n in drops.items())
    # never exceeds the bound unless alarms alone exceed it
    if counts["alarm"] <= max_rows:
        assert sum(left.values()) == min(sum(counts.values()), max_rows)
    else:
        assert left == {"alarm": counts["alarm"], "vitals": 0, "waveform": 0, "backfill": 0}
    # a lane is touched only once every less urgent lane is empty
    for index, lane in enumerate(DROP_ORDER):
        if drops.get(lane):
            assert all(left[earlier] == 0 for earlier in DROP_ORDER[:index])


# -- the bounded outbox --------------------------------------------------------------------------


def test_a_bounded_outbox_drops_oldest_backfill_first_and_records_it(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite"
    with Outbox(path, max_rows=6) as outbox:
        outbox.put(readings(3, device="old-1"), lane="backfill")
        outbox.put_waveforms([snippet(0), snippet(1)])
        outbox.put_events([alarm(1)])
        assert outbox.take_drops() == []
        outbox.put(readings(2, device="oxi-1"))  # 8 rows: 2 oldest backfill go
        drops = outbox.take_drops()
        assert [(d.lane, d.device, d.metric) for d in drops] == [("backfill", "old-1", "spo2")] * 2
        assert [d.time for d in drops] == [
            T0.isoformat(),
            (T0 + timedelta(minutes=1)).isoformat(),
        ]
        assert outbox.depth() == 6
        assert outbox.lane_counts() == {"alarm": 1, "vitals": 2, "waveform": 2, "backfill": 1}
        outbox.put(readings(3, device="oxi-1", start=10))  # 9 rows: backfill 1, waveform 2
        assert [(d.lane, d.kind) for d in outbox.take_drops()] == [
            ("backfill", "reading"),
            ("waveform", "waveform"),
            ("waveform", "waveform"),
        ]
        assert _describe_drops([]) == ""
        outbox.put_events([alarm(i) for i in range(2, 10)])  # alarms beyond the bound stay
        assert outbox.lane_counts() == {"alarm": 9, "vitals": 0, "waveform": 0, "backfill": 0}
        assert sorted(outbox.drop_counts()) == [
            ("backfill", "old-1", 3),
            ("vitals", "oxi-1", 5),
            ("waveform", "ecg-1", 2),
        ]
    with Outbox(path, max_rows=6) as outbox:  # counts and summary survive a restart
        assert outbox.lane_counts()["alarm"] == 9
        assert sorted(outbox.drop_counts())[0] == ("backfill", "old-1", 3)
    db = sqlite3.connect(path)
    summary = db.execute(
        "SELECT device, metric, first_time, last_time, count FROM outbox_dropped ORDER BY device"
    ).fetchall()
    db.close()
    assert summary == [
        ("ecg-1", "ecg_ii", T0.isoformat(), (T0 + timedelta(seconds=10)).isoformat(), 2),
        ("old-1", "spo2", T0.isoformat(), (T0 + timedelta(minutes=2)).isoformat(), 3),
        ("oxi-1", "spo2", T0.isoformat(), (T0 + timedelta(minutes=12)).isoformat(), 5),
    ]


def test_lane_counts_follow_confirm_and_a_dropped_row_confirms_as_nothing(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.sqlite", max_rows=3) as outbox:
        outbox.put(readings(3))
        rows = outbox.due(0.0, 10)
        outbox.put(readings(1, start=5))  # drops the oldest vitals row (already sent)
        assert outbox.confirm([row.row_id for row in rows]) == 2
        assert outbox.lane_counts()["vitals"] == 1
        assert outbox.depth() == 1


def test_the_bound_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="max_rows"):
        Outbox(tmp_path / "o.sqlite", max_rows=0)


def test_waveform_rows_round_trip_in_their_lane(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.sqlite") as outbox:
        outbox.put_waveforms([snippet(0)])
        outbox.put(readings(1))
        rows = outbox.due(0.0, 10)
        assert [row.kind for row in rows] == ["reading", "waveform"]
        assert rows[1].item == snippet(0)
        assert outbox.depth_by_kind() == {"reading": 1, "event": 0, "waveform": 1}
