"""Rules compiled for one subject profile: parameters resolved, fast ``assess`` per kind.

``assess(latest, history, t)`` judges a rule at time ``t`` from the subject's latest values
and windowed history and returns an ``Assessment`` (or None when there is nothing to judge).
``breach``: the alert condition holds; ``clear``: the value is on the normal side by the
rule's hysteresis margin. Between the two (inside the margin) an open alert stays open.
The engine (engine.py) turns assessments into confirmations, alerts and clearances.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Final, NamedTuple

from alert_rules.pack_schema import Op
from alert_rules.scores import mews, news2, qsofa, shock_index
from vitals import ImplausibleValueError, Severity

Latest = Mapping[str, tuple[float, float]]
History = Mapping[str, Sequence[tuple[float, float]]]
#: Per-evaluation scratch space (one subject, one timestamp), e.g. shared score results.
Memo = dict[tuple[str, int, float], "ScoreResult"]

SCHEDULE_ALWAYS: Final = 0
SCHEDULE_DAY: Final = 1
SCHEDULE_NIGHT: Final = 2

CONFIRM_CONSECUTIVE: Final = 0
CONFIRM_K_OF_N: Final = 1
CONFIRM_DURATION: Final = 2
CONFIRM_SEPARATION: Final = 3


class Assessment(NamedTuple):
    """One judgement of one rule at one time."""

    breach: bool
    clear: bool
    value: float | None
    metric: str | None
    #: Human detail for the message (measured value, missing inputs), built only when an
    #: alert fires or clears: formatting on every reading would cost more than judging.
    detail: Callable[[], str]


def judge(op: Op, value: float, bound: float, margin: float) -> tuple[bool, bool]:
    """(breach, clear) of ``value op bound`` with a hysteresis ``margin`` for clearing."""
    if op == "<":
        return value < bound, value >= bound + margin
    if op == "<=":
        return value <= bound, value > bound + margin
    if op == ">":
        return value > bound, value <= bound - margin
    return value >= bound, value < bound - margin


def fmt(value: float) -> str:
    """A value as a clinician reads it: no trailing zeros, at most 2 decimals."""
    return f"{round(value, 2):g}"


@dataclass(frozen=True, slots=True)
class Confirmation:
    """Compiled ``Confirm``."""

    mode: int
    consecutive: int = 1
    k: int = 1
    mask: int = 1
    duration: float = 0.0
    max_gap: float = 0.0
    min_separation: float = 0.0
    within: float = math.inf


@dataclass(frozen=True, slots=True, eq=False)
class CompiledRule:
    """What every compiled rule has; subclasses implement ``assess``."""

    name: str
    pack: str
    pack_version: str
    severity: Severity
    message: str
    source: str
    schedule: int
    margin: float
    confirm: Confirmation
    #: Metrics whose readings trigger an evaluation of this rule.
    triggers: tuple[str, ...]

    def assess(self, latest: Latest, history: History, t: float, memo: Memo) -> Assessment | None:
        """Judge the rule at ``t``; None when it cannot be judged (no input).

        ``memo`` is shared by the rules judged for one subject at one time.
        """
        raise NotImplementedError


@dataclass(frozen=True, slots=True, eq=False)
class CompiledThreshold(CompiledRule):
    metric: str
    op: Op
    bound: float

    def assess(self, latest: Latest, history: History, t: float, memo: Memo) -> Assessment | None:
        pair = latest.get(self.metric)
        if pair is None or pair[0] != t:
            return None
        value = pair[1]
        breach, clear = judge(self.op, value, self.bound, self.margin)
        return Assessment(breach, clear, value, self.metric, lambda: f"{self.metric} {fmt(value)}")


@dataclass(frozen=True, slots=True, eq=False)
class CompiledRate(CompiledRule):
    metric: str
    change: float
    window: float

    def assess(self, latest: Latest, history: History, t: float, memo: Memo) -> Assessment | None:
        rows = history.get(self.metric, ())
        if len(rows) < 2 or rows[-1][0] != t:
            return None
        newest = rows[-1][1]
        earlier = [v for (time, v) in rows[:-1] if time >= t - self.window]
        if not earlier:
            return None
        if self.change > 0:
            delta = newest - min(earlier)
            breach, clear = delta > self.change, delta <= self.change - self.margin
        else:
            delta = newest - max(earlier)
            breach, clear = delta < self.change, delta >= self.change + self.margin

        def detail() -> str:
            days = self.window / 86400.0
            span = f"{fmt(days)} d" if days >= 1 else f"{fmt(self.window / 3600.0)} h"
            return f"{self.metric} changed by {delta:+.2f} within {span} (now {fmt(newest)})"

        return Assessment(breach, clear, delta, self.metric, detail)


@dataclass(frozen=True, slots=True, eq=False)
class CompiledStale(CompiledRule):
    metrics: tuple[str, ...]
    limit: float
    cadence: float

    def last_seen(self, latest: Latest) -> float | None:
        """Time of the newest reading with a value of any of the metrics."""
        times = [latest[m][0] for m in self.metrics if m in latest]
        return max(times) if times else None

    def assess(self, latest: Latest, history: History, t: float, memo: Memo) -> Assessment | None:
        # A reading arrived: the data is no longer stale.
        return Assessment(False, True, None, None, str)


@dataclass(frozen=True, slots=True, eq=False)
class CompiledCondition:
    metric: str
    op: Op
    bound: float
    mean_window: float | None
    max_age: float
    min_count: int
    min_span: float


@dataclass(frozen=True, slots=True, eq=False)
class CompiledComposite(CompiledRule):
    require_all: bool
    conditions: tuple[CompiledCondition, ...]

    def assess(self, latest: Latest, history: History, t: float, memo: Memo) -> Assessment | None:
        breaches: list[bool] = []
        clears: list[bool] = []
        missing: list[str] = []
        shown: list[tuple[str, float]] = []
        first: tuple[float, str] | None = None
        for cond in self.conditions:
            if cond.mean_window is None:
                pair = latest.get(cond.metric)
                if pair is None or pair[0] < t - cond.max_age or pair[0] > t:
                    missing.append(cond.metric)
                    continue
                value = pair[1]
                label = cond.metric
            else:
                start = t - cond.mean_window
                rows = [
                    (time, v) for (time, v) in history.get(cond.metric, ()) if start <= time <= t
                ]
                values = [v for _, v in rows]
                if len(values) < cond.min_count:
                    missing.append(
                        f"mean {cond.metric} (only {len(values)} of {cond.min_count} readings)"
                    )
                    continue
                if rows[-1][0] - rows[0][0] < cond.min_span:
                    missing.append(f"mean {cond.metric} (readings span too short)")
                    continue
                value = math.fsum(values) / len(values)
                label = f"mean {cond.metric}"
            breach, clear = judge(cond.op, value, cond.bound, self.margin)
            breaches.append(breach)
            clears.append(clear)
            shown.append((label, value))
            if breach and first is None:
                first = (value, cond.metric)
        if not breaches:
            return None
        if self.require_all:
            breach = not missing and all(breaches)
            clear = any(clears)
        else:
            breach = any(breaches)
            clear = all(clears)

        def detail() -> str:
            text = ", ".join(f"{label} {fmt(number)}" for label, number in shown)
            if missing:
                text += f"; not assessed: {', '.join(missing)}"
            return text

        if first is None:
            return Assessment(breach, clear, None, None, detail)
        return Assessment(breach, clear, first[0], first[1], detail)


#: Inputs per score, in a fixed order (the cache key is the tuple of their values).
SCORE_INPUTS: Final[dict[str, tuple[str, ...]]] = {
    "news2": (
        "respiratory_rate",
        "spo2",
        "supplemental_o2",
        "fio2",
        "bp_systolic",
        "heart_rate",
        "pulse_rate",
        "gcs",
        "body_temperature",
    ),
    "mews": (
        "bp_systolic",
        "heart_rate",
        "pulse_rate",
        "respiratory_rate",
        "body_temperature",
        "gcs",
    ),
    "qsofa": ("respiratory_rate", "bp_systolic", "gcs"),
    "shock_index": ("heart_rate", "pulse_rate", "bp_systolic"),
}


class ScoreResult(NamedTuple):
    """A score's numbers, whatever the score: ``value`` is the total or the shock index."""

    value: float | None
    max_subscore: int
    measured: int
    missing: tuple[str, ...]


@lru_cache(maxsize=65536)
def compute_score(score: str, spo2_scale: int, inputs: tuple[float | None, ...]) -> ScoreResult:
    """A score from its inputs (ordered as ``SCORE_INPUTS``), cached: vitals repeat a lot."""
    vitals = dict(zip(SCORE_INPUTS[score], inputs, strict=True))
    try:
        if score == "shock_index":
            index = shock_index(vitals)
            return ScoreResult(index.value, 0, 2 - len(index.missing), index.missing)
        if score == "news2":
            result = news2(vitals, spo2_scale=2 if spo2_scale == 2 else 1)
        elif score == "mews":
            result = mews(vitals)
        else:
            result = qsofa(vitals)
    except ImplausibleValueError:  # pragma: no cover - the engine drops implausible values
        return ScoreResult(None, 0, 0, SCORE_INPUTS[score])
    subscores = result.subscores.values()
    return ScoreResult(
        float(result.total), max(subscores, default=0), len(result.subscores), result.missing
    )


def score_inputs(score: str, latest: Latest, t: float, window: float) -> tuple[float | None, ...]:
    """The latest value of each input of ``score`` measured within ``window`` before ``t``."""
    start = t - window
    values: list[float | None] = []
    for name in SCORE_INPUTS[score]:
        pair = latest.get(name)
        values.append(pair[1] if pair is not None and start <= pair[0] <= t else None)
    return tuple(values)


def _score_at(
    score: str, scale: int, latest: Latest, t: float, window: float, memo: Memo
) -> ScoreResult:
    """``compute_score`` on the current inputs, once per evaluation: the NEWS2 rules of one
    evaluation (aggregate, single parameter, emergency) share one computation."""
    key = (score, scale, window)
    result = memo.get(key)
    if result is None:
        result = memo[key] = compute_score(score, scale, score_inputs(score, latest, t, window))
    return result


@dataclass(frozen=True, slots=True, eq=False)
class CompiledScore(CompiledRule):
    score: str
    field: str
    op: Op
    bound: float
    window: float
    spo2_scale: int
    min_measured: int

    def assess(self, latest: Latest, history: History, t: float, memo: Memo) -> Assessment | None:
        result = _score_at(self.score, self.spo2_scale, latest, t, self.window, memo)
        if result.value is None or result.measured < self.min_measured:
            return None
        value = float(result.max_subscore) if self.field == "max_subscore" else result.value
        breach, clear = judge(self.op, value, self.bound, self.margin)

        def detail() -> str:
            label = self.score.upper() if self.score != "shock_index" else "shock index"
            text = f"{label} {fmt(result.value or 0.0)}"
            if self.field == "max_subscore":
                text += f", highest single parameter {result.max_subscore}"
            if result.missing:
                text += f"; partial, a lower bound: {', '.join(result.missing)} not measured"
            return text

        return Assessment(breach, clear, value, None, detail)


@dataclass(frozen=True, slots=True)
class ScoreTracker:
    """A score computed whenever one of its inputs has a reading (backtest scores.csv)."""

    score: str
    window: float
    spo2_scale: int = 1

    def compute(self, latest: Latest, t: float) -> float | None:
        """The score at ``t``, or None when none of its inputs is available."""
        result = compute_score(
            self.score, self.spo2_scale, score_inputs(self.score, latest, t, self.window)
        )
        if result.measured == 0:
            return None
        return result.value
