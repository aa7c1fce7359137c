"""What the per-patient page and the self-view compute from readings (pure; docs/web.md).

- **Home BP 7-day mean** against the target (the hypertension pack's
  ``home_bp_mean_systolic`` / ``home_bp_mean_diastolic``, 135/85 mmHg by default, or the
  patient's own values from ``subject_rules``): 2019 Chinese HBPM guideline; a mean is only
  "assessable" with >= 12 readings over >= 3 days (ESH 2021), as in the pack's rule.
- **Chart series**: the points of several metrics merged on one time axis (uPlot's aligned
  data), nulls where a metric has no point at that time.
- **Plain-language bands** for the patient's self-view. They are display aids, not alert
  rules: the rules engine decides what alerts; these only say "higher than your target".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo

HOME_BP_TARGET = (135.0, 85.0)
HOME_BP_WINDOW = timedelta(days=7)
HOME_BP_MIN_READINGS = 12
HOME_BP_MIN_DAYS = 3

#: Glucose time-in-range bounds (mmol/L; Battelino 2019, as alert_rules.cgm).
GLUCOSE_RANGE = (3.9, 10.0)


@dataclass(frozen=True)
class HomeBp:
    """The 7-day home BP mean and whether it is above target."""

    systolic: float | None
    diastolic: float | None
    readings: int
    days: int
    target_systolic: float
    target_diastolic: float

    @property
    def assessable(self) -> bool:
        """Enough readings over enough days for the guideline's mean."""
        return self.readings >= HOME_BP_MIN_READINGS and self.days >= HOME_BP_MIN_DAYS

    @property
    def above_target(self) -> bool | None:
        """Mean SBP >= target or mean DBP >= target; None when there is no mean."""
        if self.systolic is None or self.diastolic is None:
            return None
        return self.systolic >= self.target_systolic or self.diastolic >= self.target_diastolic


def bp_targets(parameters: Mapping[str, float]) -> tuple[float, float]:
    """The patient's home BP targets (their ``subject_rules`` parameters, else 135/85)."""
    return (
        float(parameters.get("home_bp_mean_systolic", HOME_BP_TARGET[0])),
        float(parameters.get("home_bp_mean_diastolic", HOME_BP_TARGET[1])),
    )


def home_bp(
    systolic: Sequence[tuple[datetime, float]],
    diastolic: Sequence[tuple[datetime, float]],
    targets: tuple[float, float],
    zone: tzinfo = UTC,
) -> HomeBp:
    """The mean of the readings given (the caller passes the last 7 days); days are counted
    in the patient's time zone ``zone``."""

    def mean(values: Sequence[tuple[datetime, float]]) -> float | None:
        return sum(v for _, v in values) / len(values) if values else None

    return HomeBp(
        systolic=mean(systolic),
        diastolic=mean(diastolic),
        readings=min(len(systolic), len(diastolic)),
        days=len({t.astimezone(zone).date() for t, _ in systolic}),
        target_systolic=targets[0],
        target_diastolic=targets[1],
    )


def aligned(
    series: Mapping[str, Sequence[tuple[datetime, float | None]]], names: Sequence[str]
) -> list[list[float | None]]:
    """uPlot's data: ``[xs (POSIX s), ys of names[0], ys of names[1], ...]`` on one axis."""
    times = sorted({t for name in names for t, _ in series.get(name, ())})
    index = {t: i for i, t in enumerate(times)}
    columns: list[list[float | None]] = [[t.timestamp() for t in times]]
    for name in names:
        ys: list[float | None] = [None] * len(times)
        for moment, value in series.get(name, ()):
            ys[index[moment]] = value
        columns.append(ys)
    return columns


def band(metric: str, value: float | None, targets: tuple[float, float] = HOME_BP_TARGET) -> str:
    """A plain-language band key of the catalogue ('band_high', 'band_ok', ...)."""
    if value is None:
        return "band_none"
    if metric == "bp_systolic":
        return "band_high" if value >= targets[0] else "band_low" if value < 90 else "band_ok"
    if metric == "bp_diastolic":
        return "band_high" if value >= targets[1] else "band_ok"
    if metric == "glucose":
        low, high = GLUCOSE_RANGE
        return "band_low" if value < low else "band_high" if value > high else "band_ok"
    if metric == "spo2":
        return "band_low" if value < 94 else "band_ok"
    if metric in ("heart_rate", "pulse_rate"):
        return "band_low" if value < 50 else "band_high" if value > 100 else "band_ok"
    return "band_none"
