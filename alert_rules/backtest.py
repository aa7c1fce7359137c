"""Offline replay of observations through the engine (pure; ``vitalstream backtest``'s core).

Each subject is replayed on its own (state is partitioned by subject) from an empty state, in
time order, with ``replay=True``: every timestamp is "now" when it is judged, and stale-data
rules fire at the moment they would have fired live. A subject's data ending is the end of
its record (discharge), not silence, so no stale alert is raised after its last reading.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from alert_rules.burden import AlertBurden, alert_burden
from alert_rules.engine import Observation, ScorePoint, run
from alert_rules.ruleset import RuleSet
from alert_rules.state import EMPTY_STATE
from vitals import Alert


@dataclass(frozen=True, slots=True)
class SubjectReplay:
    """What one subject's replay produced."""

    subject: str
    alerts: tuple[Alert, ...]
    scores: tuple[ScorePoint, ...]
    first: float
    last: float
    readings: int
    no_value: int
    late: int
    implausible: int


def replay_subjects(observations: Iterable[Observation], rules: RuleSet) -> Iterator[SubjectReplay]:
    """Replay each subject's observations; yields one result per subject (sorted by subject)."""
    by_subject: dict[str, list[Observation]] = {}
    for obs in observations:
        by_subject.setdefault(obs.subject, []).append(obs)
    for subject in sorted(by_subject):
        rows = by_subject.pop(subject)
        first = min(o.time for o in rows)
        last = max(o.time for o in rows)
        output = run(rows, EMPTY_STATE, last, rules, replay=True)
        yield SubjectReplay(
            subject=subject,
            alerts=output.alerts,
            scores=output.scores,
            first=first,
            last=last,
            readings=len(rows),
            no_value=output.no_value,
            late=output.late,
            implausible=output.implausible,
        )


def burden_of(replays: Iterable[SubjectReplay], rules: RuleSet) -> AlertBurden:
    """Alert burden of finished replays, subject-days in the rule set's time zone."""
    alerts: list[Alert] = []
    observed: dict[str, tuple[datetime, datetime]] = {}
    for replay in replays:
        alerts.extend(replay.alerts)
        observed[replay.subject] = (
            datetime.fromtimestamp(replay.first, UTC),
            datetime.fromtimestamp(replay.last, UTC),
        )
    return alert_burden(alerts, observed, rules.zone)
