"""Daily CGM metrics against the international consensus targets (pure).

Battelino T, Danne T, Bergenstal RM, et al. Clinical targets for continuous glucose
monitoring data interpretation: recommendations from the international consensus on time in
range. Diabetes Care 2019;42(8):1593-1603 (Table 1 metrics, Table 2 / Figure 2 targets).
GMI: Bergenstal RM, Beck RW, Close KL, et al. Glucose Management Indicator (GMI). Diabetes
Care 2018;41(11):2275-2280: GMI (%) = 3.31 + 0.02392 x mean glucose (mg/dL)
= 3.31 + 0.43056 x mean glucose (mmol/L).

Ranges (mmol/L): TBR level 2 < 3.0; TBR level 1 3.0-3.8; TIR 3.9-10.0; TAR level 1
10.1-13.9; TAR level 2 > 13.9. Each sample stands for the same time (CGM cadence), so the
percentages are sample fractions. Coverage below 70 % of the expected samples makes the day
``sufficient=False`` (the consensus asks for >= 70 % of data).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from types import MappingProxyType
from typing import Literal
from zoneinfo import ZoneInfo

Population = Literal["standard", "older_high_risk"]

TBR2_BELOW = 3.0
TIR_LOW = 3.9
TIR_HIGH = 10.0
TAR2_ABOVE = 13.9
CV_TARGET = 36.0  # % (Battelino 2019: <= 36 % = stable glucose)
MIN_COVERAGE = 0.70

#: (metric, comparison, target %) per population (Battelino 2019, Figure 2).
TARGETS: Mapping[Population, tuple[tuple[str, str, float], ...]] = MappingProxyType(
    {
        "standard": (
            ("tir", ">", 70.0),
            ("tbr", "<", 4.0),  # < 3.9 mmol/L, including level 2
            ("tbr_level2", "<", 1.0),
            ("tar", "<", 25.0),  # > 10.0 mmol/L, including level 2
            ("tar_level2", "<", 5.0),
            ("cv", "<=", CV_TARGET),
        ),
        "older_high_risk": (
            ("tir", ">", 50.0),
            ("tbr", "<", 1.0),
            ("tar_level2", "<", 10.0),
            ("cv", "<=", CV_TARGET),
        ),
    }
)


@dataclass(frozen=True, slots=True)
class CgmDay:
    """One day's CGM metrics (percentages 0-100) and which consensus targets were missed."""

    day: date
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
    missed: tuple[str, ...]


def daily_metrics(
    samples: Iterable[tuple[datetime, float | None]],
    day: date,
    *,
    zone: ZoneInfo | None = None,
    cadence: timedelta = timedelta(minutes=5),
    population: Population = "standard",
) -> CgmDay:
    """TIR/TBR/TAR/GMI/CV for one local calendar day; None values (no reading) are skipped."""
    zone = zone or ZoneInfo("Asia/Shanghai")
    values = [
        v
        for moment, v in samples
        if v is not None and math.isfinite(v) and moment.astimezone(zone).date() == day
    ]
    expected = timedelta(days=1) / cadence
    coverage = min(len(values) / expected, 1.0)
    if not values:
        return CgmDay(day, 0, 0.0, False, None, None, None, None, None, None, None, None, missed=())
    n = len(values)

    def pct(count: int) -> float:
        return round(100.0 * count / n, 2)

    mean = statistics.fmean(values)
    cv = statistics.pstdev(values) / mean * 100.0 if n > 1 else 0.0
    metrics = {
        "tir": pct(sum(TIR_LOW <= v <= TIR_HIGH for v in values)),
        "tbr": pct(sum(v < TIR_LOW for v in values)),
        "tbr_level2": pct(sum(v < TBR2_BELOW for v in values)),
        "tar": pct(sum(v > TIR_HIGH for v in values)),
        "tar_level2": pct(sum(v > TAR2_ABOVE for v in values)),
        "cv": round(cv, 2),
    }
    missed = tuple(
        name
        for name, op, target in TARGETS[population]
        if not (
            metrics[name] > target
            if op == ">"
            else metrics[name] < target
            if op == "<"
            else metrics[name] <= target
        )
    )
    return CgmDay(
        day=day,
        samples=n,
        coverage=round(coverage, 3),
        sufficient=coverage >= MIN_COVERAGE,
        mean=round(mean, 2),
        gmi=round(3.31 + 0.43056 * mean, 2),
        cv=metrics["cv"],
        tir=metrics["tir"],
        tbr=metrics["tbr"],
        tbr_level2=metrics["tbr_level2"],
        tar=metrics["tar"],
        tar_level2=metrics["tar_level2"],
        missed=missed,
    )
