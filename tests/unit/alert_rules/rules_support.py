"""Helpers for the rules-engine tests: readings in a line, a one-call engine run."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta

from alert_rules import EMPTY_STATE, EngineState, RuleSet, build_ruleset, evaluate
from vitals import Alert, Reading, metric

T0 = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)  # 10:00 in Asia/Shanghai: daytime


def reading(
    name: str,
    value: float | None,
    at: datetime | timedelta = T0,
    subject: str = "sim-p1",
) -> Reading:
    """One reading of ``name`` (canonical unit) at ``at`` (absolute, or T0 + offset)."""
    moment = at if isinstance(at, datetime) else T0 + at
    return Reading(
        subject=subject,
        device=f"dev-{name}",
        metric=name,
        value=value,
        no_value=None if value is not None else "NaN",
        unit=metric(name).unit,
        time=moment,
        source="sim",
    )


def series(
    name: str,
    values: Sequence[float | None],
    step: timedelta = timedelta(minutes=1),
    subject: str = "sim-p1",
    start: timedelta = timedelta(0),
) -> list[Reading]:
    """Readings of one metric, ``step`` apart from T0 + ``start``."""
    return [reading(name, v, start + i * step, subject) for i, v in enumerate(values)]


def alerts_of(
    readings: Iterable[Reading],
    packs: Sequence[str] | RuleSet = ("core",),
    now: datetime | None = None,
    state: EngineState = EMPTY_STATE,
) -> list[Alert]:
    """The alerts one engine call raises (``now`` = the newest reading's time)."""
    items = list(readings)
    rules = packs if isinstance(packs, RuleSet) else build_ruleset(packs)
    moment = now or max((r.time for r in items), default=T0)
    found, _ = evaluate(items, state, moment, rules)
    return found


def rules_fired(
    readings: Iterable[Reading],
    packs: Sequence[str] | RuleSet = ("core",),
    now: datetime | None = None,
) -> list[str]:
    """Names of the rules that fired, in order."""
    return [a.rule for a in alerts_of(readings, packs, now)]
