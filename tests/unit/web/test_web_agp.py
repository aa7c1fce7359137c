"""The ambulatory glucose profile and the period summary (ingest_service.web.agp) on
SYNTHETIC data built from a rule, so every expected number can be worked out by hand."""

from __future__ import annotations

import statistics
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from ingest_service.web import agp

SHANGHAI = ZoneInfo("Asia/Shanghai")
END = datetime(2026, 3, 15, 0, 0, tzinfo=SHANGHAI)  # local midnight: 14 whole local days


def synthetic_fortnight() -> list[tuple[datetime, float | None]]:
    """SYNTHETIC: one reading per 15-minute slot for 14 days; on day d (0-13) slot s reads
    4.0 + s / 12 + 0.1 d mmol/L. So each slot holds 14 values, base(s) + 0.0 ... base(s) + 1.3."""
    start = END - timedelta(days=14)
    out: list[tuple[datetime, float | None]] = []
    for d in range(14):
        for s in range(96):
            moment = start + timedelta(days=d, minutes=15 * s + 7)
            out.append((moment.astimezone(UTC), round(4.0 + s / 12 + 0.1 * d, 4)))
    return out


def test_percentile_interpolates_between_order_statistics() -> None:
    assert agp.percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert agp.percentile([1.0, 2.0, 3.0, 4.0], 0) == 1.0
    assert agp.percentile([1.0, 2.0, 3.0, 4.0], 100) == 4.0
    assert agp.percentile([5.0], 95) == 5.0
    assert agp.percentile([0.0, 10.0], 25) == 2.5
    with pytest.raises(ValueError, match="no values"):
        agp.percentile([], 50)


def test_profile_percentiles_per_slot_by_hand() -> None:
    profile = agp.profile(synthetic_fortnight(), end=END, zone=SHANGHAI)
    assert len(profile.slots) == 96 and profile.slot_minutes == 15
    assert profile.samples == 14 * 96 and profile.days_with_data == 14
    # 14 values base + 0.1 d: the q-th percentile sits at rank q/100 * 13, so it is
    # base + 0.013 q: p5 = +0.065, p25 = +0.325, p50 = +0.65, p75 = +0.975, p95 = +1.235.
    for s in (0, 1, 48, 95):
        slot = profile.slots[s]
        base = 4.0 + s / 12
        assert slot.minute == 15 * s and slot.values == 14
        assert slot.p5 == pytest.approx(base + 0.065, abs=0.006)
        assert slot.p25 == pytest.approx(base + 0.325, abs=0.006)
        assert slot.p50 == pytest.approx(base + 0.65, abs=0.006)
        assert slot.p75 == pytest.approx(base + 0.975, abs=0.006)
        assert slot.p95 == pytest.approx(base + 1.235, abs=0.006)
    data = profile.uplot_data()
    assert len(data) == 6 and data[0][:2] == [0.0, 900.0] and data[3][0] == profile.slots[0].p50


def test_profile_folds_in_local_time_and_leaves_thin_slots_empty() -> None:
    # SYNTHETIC: 6 readings at 16:05 UTC on 6 days = 00:05 in Shanghai, the first slot.
    samples: list[tuple[datetime, float | None]] = [
        (datetime(2026, 3, 8 + d, 16, 5, tzinfo=UTC), 5.0 + d) for d in range(6)
    ]
    samples.append((datetime(2026, 3, 14, 4, 0, tzinfo=UTC), 9.0))  # 12:00 local, alone
    samples.append((datetime(2026, 3, 14, 5, 0, tzinfo=UTC), None))  # no value: skipped
    samples.append((datetime(2026, 2, 1, 5, 0, tzinfo=UTC), 20.0))  # before the window
    profile = agp.profile(samples, end=END, zone=SHANGHAI)
    first = profile.slots[0]
    assert first.values == 6 and first.p50 == 7.5 and first.p5 == pytest.approx(5.25)
    noon = profile.slots[48]
    assert noon.values == 1 and noon.p50 is None  # fewer than MIN_SLOT_VALUES: a gap
    assert profile.samples == 7


def test_profile_refuses_a_slot_that_does_not_divide_a_day() -> None:
    with pytest.raises(ValueError, match="divide"):
        agp.profile([], end=END, zone=SHANGHAI, slot=timedelta(minutes=7))


def test_summary_against_the_consensus_targets_by_hand() -> None:
    # SYNTHETIC: 100 readings: 80 at 7.0, 3 at 3.5, 17 at 12.0 mmol/L.
    start = END - timedelta(days=1)
    values = [7.0] * 80 + [3.5] * 3 + [12.0] * 17
    samples: list[tuple[datetime, float | None]] = [
        (start + timedelta(minutes=5 * i), v) for i, v in enumerate(values)
    ]
    result = agp.summary(samples, end=END, days=14)
    assert result.samples == 100
    assert result.coverage == pytest.approx(100 / 4032, abs=0.001) and not result.sufficient
    assert (result.tir, result.tbr, result.tbr_level2, result.tar, result.tar_level2) == (
        80.0, 3.0, 0.0, 17.0, 0.0,
    )  # fmt: skip
    assert result.mean == pytest.approx(7.745, abs=0.006)  # (560 + 10.5 + 204) / 100, 2 dp
    assert result.gmi == round(3.31 + 0.43056 * 7.745, 2) == 6.64
    assert result.cv == round(statistics.pstdev(values) / 7.745 * 100, 2)
    verdicts = {c.metric: c.met for c in result.checks}
    assert verdicts == {
        "tir": True, "tbr": True, "tbr_level2": True, "tar": True, "tar_level2": True,
        "cv": result.cv is not None and result.cv <= 36.0,
    }  # fmt: skip
    older = agp.summary(samples, end=END, population="older_high_risk")
    assert {c.metric: c.met for c in older.checks}["tbr"] is False  # older: TBR < 1 %


def test_summary_of_nothing() -> None:
    empty = agp.summary([], end=END)
    assert empty.samples == 0 and empty.tir is None and empty.checks == ()


def test_meets_each_comparison() -> None:
    assert agp.meets(70.1, ">", 70) and not agp.meets(70.0, ">", 70)
    assert agp.meets(3.9, "<", 4) and not agp.meets(4.0, "<", 4)
    assert agp.meets(36.0, "<=", 36) and not agp.meets(36.1, "<=", 36)
