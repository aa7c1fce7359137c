"""The ambulatory glucose profile (AGP) and the CGM summary of a period (pure; docs/web.md).

AGP: the glucose readings of the last 14 days folded onto one day, in time-of-day slots
(15 minutes by default), with the 5th/25th/50th/75th/95th percentiles per slot: the
"modal day" of the AGP report (Bergenstal RM et al., Diabetes Technol Ther 2013;15(3):198-211;
14 days as the consensus asks, Battelino 2019). Percentiles use linear interpolation between
order statistics (the "inclusive" method, numpy's default), so the median of an even count is
the mean of the middle two.

The period summary (TIR/TBR/TAR/GMI/CV and met / not met) uses the ranges, the GMI formula and
the per-population targets of :mod:`alert_rules.cgm`, over every reading of the period rather
than one calendar day. No I/O, no clock: the caller passes ``end``.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo

from alert_rules.cgm import (
    MIN_COVERAGE,
    TAR2_ABOVE,
    TARGETS,
    TBR2_BELOW,
    TIR_HIGH,
    TIR_LOW,
    Population,
)

AGP_DAYS = 14
SLOT = timedelta(minutes=15)
CADENCE = timedelta(minutes=5)
PERCENTILES: tuple[int, ...] = (5, 25, 50, 75, 95)
#: A slot needs this many values before its percentiles are drawn (fewer: a gap).
MIN_SLOT_VALUES = 5


@dataclass(frozen=True, slots=True)
class AgpSlot:
    """One time-of-day slot: its start (minutes after local midnight) and percentiles."""

    minute: int
    values: int
    p5: float | None
    p25: float | None
    p50: float | None
    p75: float | None
    p95: float | None


@dataclass(frozen=True, slots=True)
class Agp:
    """The profile over ``[start, end)``: one slot per ``slot_minutes`` of the day."""

    start: datetime
    end: datetime
    slot_minutes: int
    samples: int
    days_with_data: int
    slots: tuple[AgpSlot, ...]

    def uplot_data(self) -> list[list[float | None]]:
        """uPlot's aligned data: seconds after midnight, then p5, p25, p50, p75, p95."""
        columns: list[list[float | None]] = [[s.minute * 60.0 for s in self.slots]]
        for name in ("p5", "p25", "p50", "p75", "p95"):
            columns.append([getattr(s, name) for s in self.slots])
        return columns


@dataclass(frozen=True, slots=True)
class TargetCheck:
    """One consensus target: the metric, its comparison, target, the value and whether met."""

    metric: str
    comparison: str
    target: float
    value: float
    met: bool


@dataclass(frozen=True, slots=True)
class CgmSummary:
    """TIR/TBR/TAR/GMI/CV over a period, the data coverage and each target's verdict."""

    samples: int
    coverage: float
    sufficient: bool
    mean: float | None
    gmi: float | None
    cv: float | None
    tir: float | None
    tbr: float | None
    tbr_level2: float | None
    tar: float | None
    tar_level2: float | None
    checks: tuple[TargetCheck, ...]


def percentile(ordered: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of sorted values, linear between order statistics."""
    if not ordered:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} outside 0-100")
    rank = q / 100 * (len(ordered) - 1)
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def _finite(
    samples: Iterable[tuple[datetime, float | None]], start: datetime, end: datetime
) -> list[tuple[datetime, float]]:
    return [
        (moment, value)
        for moment, value in samples
        if value is not None and math.isfinite(value) and start <= moment < end
    ]


def profile(
    samples: Iterable[tuple[datetime, float | None]],
    *,
    end: datetime,
    zone: tzinfo,
    days: int = AGP_DAYS,
    slot: timedelta = SLOT,
) -> Agp:
    """The AGP of the readings in ``[end - days, end)``, slots in local time ``zone``.

    ``slot`` must divide a day. A slot with fewer than :data:`MIN_SLOT_VALUES` values has
    no percentiles (None: uPlot leaves a gap) rather than percentiles of two readings.
    """
    slot_minutes = int(slot.total_seconds() // 60)
    if slot_minutes <= 0 or (24 * 60) % slot_minutes:
        raise ValueError(f"slot {slot} does not divide a day")
    start = end - timedelta(days=days)
    kept = _finite(samples, start, end)
    buckets: list[list[float]] = [[] for _ in range(24 * 60 // slot_minutes)]
    local_days = set()
    for moment, value in kept:
        local = moment.astimezone(zone)
        local_days.add(local.date())
        buckets[(local.hour * 60 + local.minute) // slot_minutes].append(value)
    slots: list[AgpSlot] = []
    for index, values in enumerate(buckets):
        values.sort()
        if len(values) >= MIN_SLOT_VALUES:
            p5, p25, p50, p75, p95 = (round(percentile(values, q), 2) for q in PERCENTILES)
            slots.append(AgpSlot(index * slot_minutes, len(values), p5, p25, p50, p75, p95))
        else:
            slots.append(AgpSlot(index * slot_minutes, len(values), None, None, None, None, None))
    return Agp(
        start=start,
        end=end,
        slot_minutes=slot_minutes,
        samples=len(kept),
        days_with_data=len(local_days),
        slots=tuple(slots),
    )


def meets(value: float, comparison: str, target: float) -> bool:
    """Whether ``value`` meets a target of :data:`alert_rules.cgm.TARGETS` ('>', '<', '<=')."""
    if comparison == ">":
        return value > target
    if comparison == "<":
        return value < target
    return value <= target


def checks(metrics: Mapping[str, float | None], population: Population) -> tuple[TargetCheck, ...]:
    """Each consensus target of ``population`` with its value (targets of missing metrics are
    left out)."""
    return tuple(
        TargetCheck(name, op, target, value, meets(value, op, target))
        for name, op, target in TARGETS[population]
        if (value := metrics.get(name)) is not None
    )


def summary(
    samples: Iterable[tuple[datetime, float | None]],
    *,
    end: datetime,
    days: int = AGP_DAYS,
    cadence: timedelta = CADENCE,
    population: Population = "standard",
) -> CgmSummary:
    """TIR/TBR/TAR/GMI/CV of the readings in ``[end - days, end)`` against the targets.

    The same definitions as :func:`alert_rules.cgm.daily_metrics`, over the whole period:
    coverage is readings over the readings a sensor at ``cadence`` would give, and the
    consensus asks for >= 70 % of 14 days before the numbers are read as representative.
    """
    values = [v for _, v in _finite(samples, end - timedelta(days=days), end)]
    expected = timedelta(days=days) / cadence
    coverage = round(min(len(values) / expected, 1.0), 3)
    if not values:
        return CgmSummary(0, 0.0, False, None, None, None, None, None, None, None, None, ())
    n = len(values)

    def pct(count: int) -> float:
        return round(100.0 * count / n, 2)

    mean = statistics.fmean(values)
    metrics = {
        "tir": pct(sum(TIR_LOW <= v <= TIR_HIGH for v in values)),
        "tbr": pct(sum(v < TIR_LOW for v in values)),
        "tbr_level2": pct(sum(v < TBR2_BELOW for v in values)),
        "tar": pct(sum(v > TIR_HIGH for v in values)),
        "tar_level2": pct(sum(v > TAR2_ABOVE for v in values)),
        "cv": round(statistics.pstdev(values) / mean * 100.0 if n > 1 else 0.0, 2),
    }
    return CgmSummary(
        samples=n,
        coverage=coverage,
        sufficient=coverage >= MIN_COVERAGE,
        mean=round(mean, 2),
        gmi=round(3.31 + 0.43056 * mean, 2),
        cv=metrics["cv"],
        tir=metrics["tir"],
        tbr=metrics["tbr"],
        tbr_level2=metrics["tbr_level2"],
        tar=metrics["tar"],
        tar_level2=metrics["tar_level2"],
        checks=checks(metrics, population),
    )
