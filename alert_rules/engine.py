"""The rules engine: ``evaluate(readings, state, now) -> (alerts, state)``, pure, no I/O.

Runs in the ingest service over newly stored readings and (later) on the edge for local alarms.
State is an immutable mapping keyed by (subject, rule); the caller keeps it between calls and
must only adopt the new state once the alerts it came with are durably written.

This is the foundation's engine: threshold rules with an "n consecutive readings" condition
and one open alert per (subject, rule) until the condition clears. Rule packs in YAML,
sustained/rate/stale/composite rules, scores and the full lifecycle build on this module.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from types import MappingProxyType
from typing import Literal

from vitals import Alert, Reading, Severity

Comparison = Literal["<", "<=", ">", ">="]
_COMPARE: dict[Comparison, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


@dataclass(frozen=True, slots=True)
class ThresholdRule:
    """Alert when ``metric <op> threshold`` holds on ``consecutive`` readings in a row.

    ``source`` names the clinical guideline the threshold comes from; it is shown to the
    doctor with the alert so that nobody has to trust a number without knowing its origin.
    """

    name: str
    metric: str
    comparison: Comparison
    threshold: float
    severity: Severity
    consecutive: int
    message: str
    source: str

    def breached_by(self, value: float) -> bool:
        """True when one value meets the alert condition."""
        return _COMPARE[self.comparison](value, self.threshold)


@dataclass(frozen=True, slots=True)
class RuleMemory:
    """What the engine remembers per (subject, rule) between readings."""

    streak: int = 0
    open: bool = False
    last_time: datetime | None = None


EngineState = Mapping[tuple[str, str], RuleMemory]
EMPTY_STATE: EngineState = MappingProxyType({})


#: The foundation's rules; each threshold cites its source.
FOUNDATION_RULES: tuple[ThresholdRule, ...] = (
    ThresholdRule(
        name="spo2_low",
        metric="spo2",
        comparison="<",
        threshold=90.0,
        severity="high",
        consecutive=2,
        message="SpO2 below 90 % on two consecutive readings",
        source="BTS guideline for oxygen use in adults 2017: target 94-98 %, <90 % needs review",
    ),
    ThresholdRule(
        name="bp_crisis_systolic",
        metric="bp_systolic",
        comparison=">=",
        threshold=180.0,
        severity="critical",
        consecutive=1,
        message="Systolic BP at or above 180 mmHg (hypertensive urgency/emergency range)",
        source="2018 Chinese Guidelines for the Management of Hypertension: SBP >= 180 grade 3",
    ),
    ThresholdRule(
        name="glucose_level2_hypo",
        metric="glucose",
        comparison="<",
        threshold=3.0,
        severity="critical",
        consecutive=1,
        message="Glucose below 3.0 mmol/L (level 2 hypoglycaemia)",
        source="ADA Standards of Care 2024, section 6: level 2 hypoglycaemia < 3.0 mmol/L",
    ),
)


def evaluate(
    readings: Iterable[Reading],
    state: EngineState,
    now: datetime,
    rules: tuple[ThresholdRule, ...] = FOUNDATION_RULES,
) -> tuple[list[Alert], EngineState]:
    """Run ``rules`` over ``readings`` (processed in time order) and return new alerts + state.

    A reading without a value (sensor off, NaN sentinel) never advances or breaks a streak:
    absence of data is not evidence of anything. ``now`` is accepted for rules that look at
    staleness; threshold rules take the reading's own time as the alert time.
    """
    del now  # threshold rules need only the readings' own times
    by_metric: dict[str, list[ThresholdRule]] = {}
    for rule in rules:
        by_metric.setdefault(rule.metric, []).append(rule)

    memory = dict(state)
    alerts: list[Alert] = []
    for reading in sorted(readings, key=lambda r: r.time):
        if reading.value is None:
            continue
        for rule in by_metric.get(reading.metric, ()):
            key = (reading.subject, rule.name)
            before = memory.get(key, RuleMemory())
            if before.last_time is not None and reading.time <= before.last_time:
                continue  # late or repeated reading: already judged in order
            if rule.breached_by(reading.value):
                streak = before.streak + 1
                fire = streak >= rule.consecutive and not before.open
                memory[key] = RuleMemory(
                    streak=streak, open=before.open or fire, last_time=reading.time
                )
                if fire:
                    alerts.append(
                        Alert(
                            subject=reading.subject,
                            rule=rule.name,
                            severity=rule.severity,
                            time=reading.time,
                            message=rule.message,
                            metric=reading.metric,
                            value=reading.value,
                        )
                    )
            else:
                memory[key] = replace(before, streak=0, open=False, last_time=reading.time)
    return alerts, MappingProxyType(memory)
