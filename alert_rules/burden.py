"""Alert burden: alerts per patient-day, per rule and per subject-day (pure).

Alarm fatigue is measured, not guessed: a rule that fires several times per patient-day
on stable patients will be ignored, and then it protects nobody.

- ``patient_days``: observed time, summed over subjects (first to last reading), in days;
- ``subject_days``: local calendar days (time zone given) between each subject's first and
  last reading, inclusive; ``by_subject_day`` lists every such day, with zero alerts too.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from types import MappingProxyType
from zoneinfo import ZoneInfo

from vitals import Alert


@dataclass(frozen=True, slots=True)
class RuleBurden:
    """One rule's alerts, how many subjects had one, and the rate per patient-day."""

    alerts: int
    subjects: int
    per_patient_day: float | None


@dataclass(frozen=True, slots=True)
class AlertBurden:
    """The burden of a set of alerts over the observed time."""

    alerts: int
    patient_days: float
    subject_days: int
    per_patient_day: float | None
    by_rule: Mapping[str, RuleBurden]
    by_subject_day: Mapping[str, Mapping[str, int]]

    def as_dict(self) -> dict[str, object]:
        """JSON-able form (the backtest summary)."""
        return {
            "alerts": self.alerts,
            "patient_days": round(self.patient_days, 4),
            "subject_days": self.subject_days,
            "alerts_per_patient_day": _round(self.per_patient_day),
            "alerts_by_rule": {rule: b.alerts for rule, b in self.by_rule.items()},
            "alerts_per_patient_day_by_rule": {
                rule: _round(b.per_patient_day) for rule, b in self.by_rule.items()
            },
            "subjects_with_alert_by_rule": {rule: b.subjects for rule, b in self.by_rule.items()},
            "alerts_per_subject_day": {s: dict(days) for s, days in self.by_subject_day.items()},
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def alert_burden(
    alerts: Iterable[Alert],
    observed: Mapping[str, tuple[datetime, datetime]],
    zone: ZoneInfo,
) -> AlertBurden:
    """Alerts per patient-day (overall and per rule) and per subject-day.

    ``observed`` maps each subject to its first and last reading time; alerts of subjects
    not in it still count, and extend nothing.
    """
    patient_days = sum((last - first).total_seconds() for first, last in observed.values())
    patient_days /= 86400.0
    by_subject_day: dict[str, dict[str, int]] = {}
    for subject, (first, last) in sorted(observed.items()):
        day: date = first.astimezone(zone).date()
        end = last.astimezone(zone).date()
        days: dict[str, int] = {}
        while day <= end:
            days[day.isoformat()] = 0
            day += timedelta(days=1)
        by_subject_day[subject] = days
    per_rule: Counter[str] = Counter()
    rule_subjects: dict[str, set[str]] = {}
    total = 0
    for alert in alerts:
        total += 1
        per_rule[alert.rule] += 1
        rule_subjects.setdefault(alert.rule, set()).add(alert.subject)
        key = alert.time.astimezone(zone).date().isoformat()
        days = by_subject_day.setdefault(alert.subject, {})
        days[key] = days.get(key, 0) + 1

    def rate(count: int) -> float | None:
        return count / patient_days if patient_days > 0 else None

    return AlertBurden(
        alerts=total,
        patient_days=patient_days,
        subject_days=sum(len(days) for days in by_subject_day.values()),
        per_patient_day=rate(total),
        by_rule=MappingProxyType(
            {
                rule: RuleBurden(count, len(rule_subjects[rule]), rate(count))
                for rule, count in sorted(per_rule.items())
            }
        ),
        by_subject_day=MappingProxyType(
            {s: MappingProxyType(days) for s, days in by_subject_day.items()}
        ),
    )
