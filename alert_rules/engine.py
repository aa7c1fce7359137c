"""The rules engine: ``evaluate(readings, state, now, rules) -> (alerts, state)``, pure, no I/O.

Runs in the ingest service over newly stored readings, on the edge for local alarms, and
offline in ``vitalstream backtest``. The caller keeps the returned state between calls and
must adopt it only once the alerts that came with it are durably written.

Per subject, readings are judged in time order, grouped by timestamp (a cuff's systolic,
diastolic and mean taken together are one evaluation). Policies (docs/rules.md):

- **No value** (sensor off, NaN/NRes sentinel) and **implausible** values (outside the
  catalogue's plausible range: a device fault, not physiology) are skipped: never a breach,
  never a recovery, and they do not refresh staleness.
- **Late data**: a reading not newer than the newest already judged for the same subject and
  metric is skipped (it is stored, not judged): alerts are about the present and streaks only
  mean something in time order. A delayed reading that is still newer than everything judged
  is judged normally, and its alert says by how long it was delayed.
- **Dedup and hysteresis**: one open alert per subject and rule; it clears (``cleared``) only
  when the value is back past the bound by the rule's ``clear_margin``.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from operator import itemgetter
from types import MappingProxyType
from typing import NamedTuple

from alert_rules.compiled import (
    CONFIRM_CONSECUTIVE,
    CONFIRM_DURATION,
    CONFIRM_K_OF_N,
    SCHEDULE_ALWAYS,
    SCHEDULE_DAY,
    Assessment,
    CompiledRule,
    CompiledStale,
    Memo,
)
from alert_rules.packs import DEFAULT_PACKS
from alert_rules.ruleset import Profile, RuleSet, build_ruleset
from alert_rules.state import EMPTY_STATE, EngineState, RuleMemory, SubjectState
from vitals import Alert, Reading
from vitals.catalogue import CATALOGUE

__all__ = [
    "DEFAULT_RULESET",
    "EMPTY_STATE",
    "Clearance",
    "EngineOutput",
    "EngineState",
    "Observation",
    "ScorePoint",
    "evaluate",
    "next_stale_deadline",
    "run",
]

#: The default rule set: the packs that make sense for everyone (``core``).
DEFAULT_RULESET: RuleSet = build_ruleset(DEFAULT_PACKS)

_FRESH = RuleMemory()
_PLAUSIBLE = {name: (spec.plausible_min, spec.plausible_max) for name, spec in CATALOGUE.items()}


class Observation(NamedTuple):
    """The engine's view of a reading: subject, metric, POSIX time, value (None = no value)."""

    subject: str
    metric: str
    time: float
    value: float | None


#: Sort key (subject, time) for Observations, in C: the engine's hot path sorts every batch.
_BY_SUBJECT_TIME = itemgetter(0, 2)


class ScorePoint(NamedTuple):
    """A tracked score computed when one of its inputs had a reading."""

    subject: str
    time: float
    score: str
    value: float


class Clearance(NamedTuple):
    """An open alert whose condition cleared (past the hysteresis margin)."""

    subject: str
    rule: str
    time: float
    detail: str


@dataclass(frozen=True, slots=True)
class EngineOutput:
    """Everything one engine call found, and the new state."""

    alerts: tuple[Alert, ...]
    cleared: tuple[Clearance, ...]
    scores: tuple[ScorePoint, ...]
    state: EngineState
    no_value: int
    late: int
    implausible: int


def evaluate(
    readings: Iterable[Reading],
    state: EngineState,
    now: datetime,
    rules: RuleSet = DEFAULT_RULESET,
) -> tuple[list[Alert], EngineState]:
    """Judge ``readings`` against ``rules``; return the new alerts and the new state.

    ``now`` is the caller's clock (e.g. the commit time): stale-data rules compare it with the
    newest reading, and an alert from a reading much older than ``now`` says so.
    """
    observations = [Observation(r.subject, r.metric, r.time.timestamp(), r.value) for r in readings]
    output = run(observations, state, now.timestamp(), rules)
    return list(output.alerts), output.state


def next_stale_deadline(state: EngineState, rules: RuleSet, subject: str) -> float | None:
    """When (POSIX seconds) a stale-data rule of ``subject`` would fire if nothing arrives."""
    sub = state.subject(subject)
    if sub is None:
        return None
    deadlines = [
        last + rule.limit
        for rule in rules.profile(subject).stale
        if not sub.rules.get(rule.name, _FRESH).open
        and (last := rule.last_seen(sub.latest)) is not None
    ]
    return min(deadlines, default=None)


class _Work:
    """One subject's mutable working copy during a call (frozen again at the end)."""

    __slots__ = ("history", "latest", "profile", "rules")

    def __init__(self, profile: Profile, base: SubjectState | None) -> None:
        self.profile = profile
        if base is None:
            self.latest: dict[str, tuple[float, float]] = {}
            self.history: dict[str, tuple[tuple[float, float], ...]] = {}
            self.rules: dict[str, RuleMemory] = {}
        else:
            self.latest = dict(base.latest)
            self.history = dict(base.history)  # tuples: copied on write
            self.rules = dict(base.rules)

    def freeze(self) -> SubjectState:
        return SubjectState(
            latest=MappingProxyType(self.latest),
            history=MappingProxyType(self.history),
            rules=MappingProxyType(self.rules),
        )


class _Run:
    """One call of the engine: accumulates alerts, clearances and scores."""

    def __init__(self, rules: RuleSet, now: float) -> None:
        self.rules = rules
        self.now = now
        self.alerts: list[Alert] = []
        self.cleared: list[Clearance] = []
        self.scores: list[ScorePoint] = []
        self.no_value = 0
        self.late = 0
        self.implausible = 0
        self._day_at = -1.0
        self._day = True

    # --- schedules ---------------------------------------------------------------------------
    def in_schedule(self, schedule: int, t: float) -> bool:
        if t != self._day_at:
            config = self.rules.config
            local = datetime.fromtimestamp(t, self.rules.zone).time()
            if config.day_start < config.night_start:
                self._day = config.day_start <= local < config.night_start
            else:  # pragma: no cover - a day that starts after the night (odd, but allowed)
                self._day = not (config.night_start <= local < config.day_start)
            self._day_at = t
        return self._day if schedule == SCHEDULE_DAY else not self._day

    # --- one timestamp of one subject --------------------------------------------------------
    def group(self, subject: str, work: _Work, t: float, group: Sequence[Observation]) -> None:
        profile = work.profile
        latest = work.latest
        touched: list[str] = []
        for obs in group:
            value = obs.value
            if value is None:
                self.no_value += 1
                continue
            bounds = _PLAUSIBLE.get(obs.metric)
            if bounds is None or not bounds[0] <= value <= bounds[1]:
                self.implausible += 1
                continue
            previous = latest.get(obs.metric)
            if previous is not None and t <= previous[0]:
                self.late += 1
                continue
            latest[obs.metric] = (t, value)
            window = profile.history_windows.get(obs.metric)
            if window is not None:
                rows = work.history.get(obs.metric, ())
                start = bisect_left(rows, (t - window,))
                work.history[obs.metric] = (*rows[start:], (t, value))
            touched.append(obs.metric)
        if not touched:
            return
        by_metric = profile.by_metric
        if len(touched) == 1:
            selected: Iterable[CompiledRule] = by_metric.get(touched[0], ())
        else:
            selected = dict.fromkeys(r for m in touched for r in by_metric.get(m, ()))
        memo: Memo = {}
        for rule in selected:
            self.judge(subject, work, rule, t, memo)
        if profile.trackers:
            trackers = dict.fromkeys(tr for m in touched for tr in profile.trackers.get(m, ()))
            for tracker in trackers:
                value = tracker.compute(latest, t)
                if value is not None:
                    self.scores.append(ScorePoint(subject, t, tracker.score, value))

    def judge(self, subject: str, work: _Work, rule: CompiledRule, t: float, memo: Memo) -> None:
        if rule.schedule != SCHEDULE_ALWAYS and not self.in_schedule(rule.schedule, t):
            return
        memory = work.rules.get(rule.name, _FRESH)
        if isinstance(rule, CompiledStale):
            last = rule.last_seen(work.latest)
            if memory.open and last is not None and self.now - last <= rule.limit:
                work.rules[rule.name] = _FRESH
                self.cleared.append(Clearance(subject, rule.name, t, "readings resumed"))
            return
        last_time = memory.last_time
        if last_time is not None and (t < last_time or (t == last_time and memory.last_breached)):
            return  # already judged at this time, or older than what was judged
        assessment = rule.assess(work.latest, work.history, t, memo)
        if assessment is None:
            return
        idle = not memory.open and memory.streak == 0 and memory.bits == 0
        if idle and not assessment.breach and memory.since is None:
            return  # idle and still normal: nothing to remember (the common case)
        if memory.open:
            if assessment.clear:
                work.rules[rule.name] = RuleMemory(last_time=t)
                self.cleared.append(Clearance(subject, rule.name, t, assessment.detail()))
            else:
                work.rules[rule.name] = RuleMemory(
                    streak=memory.streak,
                    open=True,
                    last_time=t,
                    last_breached=assessment.breach,
                )
            return
        work.rules[rule.name], fire = _confirm(rule, memory, assessment.breach, t)
        if fire:
            self.alerts.append(self.alert(subject, rule, t, assessment))

    def alert(self, subject: str, rule: CompiledRule, t: float, found: Assessment) -> Alert:
        detail = found.detail()
        message = f"{rule.message} ({detail})" if detail else rule.message
        delay = self.now - t
        if delay > self.rules.config.delayed_after_s:
            message += f" [reading delayed by {_span(delay)}]"
        return Alert(
            subject=subject,
            rule=rule.name,
            severity=rule.severity,
            time=datetime.fromtimestamp(t, UTC),
            message=message,
            metric=found.metric,
            value=found.value,
        )

    # --- stale data --------------------------------------------------------------------------
    def stale(self, subject: str, work: _Work, now: float) -> None:
        for rule in work.profile.stale:
            if rule.schedule != SCHEDULE_ALWAYS and not self.in_schedule(rule.schedule, now):
                continue
            if work.rules.get(rule.name, _FRESH).open:
                continue
            last = rule.last_seen(work.latest)
            if last is None or now - last <= rule.limit:
                continue
            work.rules[rule.name] = RuleMemory(open=True, last_time=now)
            detail = (
                f"no {' or '.join(rule.metrics)} reading for {_span(now - last)}; "
                f"expected every {_span(rule.cadence)}"
            )
            self.alerts.append(
                Alert(
                    subject=subject,
                    rule=rule.name,
                    severity=rule.severity,
                    time=datetime.fromtimestamp(now, UTC),
                    message=f"{rule.message} ({detail})",
                    metric=rule.metrics[0],
                )
            )


def _confirm(
    rule: CompiledRule, memory: RuleMemory, breach: bool, t: float
) -> tuple[RuleMemory, bool]:
    """The confirmation step of a rule without an open alert: (new memory, fire?)."""
    confirm = rule.confirm
    mode = confirm.mode
    if mode == CONFIRM_CONSECUTIVE:
        streak = memory.streak + 1 if breach else 0
        fire = breach and streak >= confirm.consecutive
        return RuleMemory(streak=streak, open=fire, last_time=t, last_breached=breach), fire
    if mode == CONFIRM_K_OF_N:
        bits = ((memory.bits << 1) | int(breach)) & confirm.mask
        fire = breach and bits.bit_count() >= confirm.k
        return RuleMemory(bits=bits, open=fire, last_time=t, last_breached=breach), fire
    if mode == CONFIRM_DURATION:
        if not breach:
            return RuleMemory(last_time=t), False
        since = memory.since
        if since is None or memory.last_breach is None or t - memory.last_breach > confirm.max_gap:
            since = t
        fire = t - since >= confirm.duration
        return (
            RuleMemory(since=since, last_breach=t, open=fire, last_time=t, last_breached=True),
            fire,
        )
    # CONFIRM_SEPARATION: occasions, a normal reading between them does not reset.
    if not breach:
        return (
            RuleMemory(since=memory.since, last_breach=memory.last_breach, last_time=t),
            False,
        )
    since = memory.since
    if since is None or t - since > confirm.within:
        last = memory.last_breach
        since = last if last is not None and t - last <= confirm.within else t
    fire = t - since >= confirm.min_separation
    return (
        RuleMemory(since=since, last_breach=t, open=fire, last_time=t, last_breached=True),
        fire,
    )


def _span(seconds: float) -> str:
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{hours / 24:.1f} d"


def run(
    observations: Iterable[Observation],
    state: EngineState,
    now: float,
    rules: RuleSet = DEFAULT_RULESET,
    *,
    replay: bool = False,
    sweep_absent: bool = True,
) -> EngineOutput:
    """The engine on observations (POSIX times); ``evaluate`` is this for Readings.

    ``replay=True`` is for offline replays (backtest): each timestamp is judged as if it were
    "now" (no delay notes) and stale-data rules are checked at the exact moment they would
    have fired between readings, then at ``now``.

    ``sweep_absent=False`` checks stale-data rules only for the subjects in ``observations``,
    not for every subject in ``state``: a streaming caller that also ticks on a timer (the
    ingest service) then pays per batch for the subjects in it, not for the whole fleet.
    """
    engine = _Run(rules, now)
    ordered = sorted(observations, key=_BY_SUBJECT_TIME)
    works: dict[str, _Work] = {}
    i = 0
    count = len(ordered)
    while i < count:
        first = ordered[i]
        subject, t = first.subject, first.time
        j = i + 1
        while j < count and ordered[j].time == t and ordered[j].subject == subject:
            j += 1
        work = works.get(subject)
        if work is None:
            work = works[subject] = _Work(rules.profile(subject), state.subject(subject))
        if replay:
            engine.now = t
            if work.profile.stale:
                _stale_until(engine, subject, work, t)
        engine.group(subject, work, t, ordered[i:j])
        i = j
    engine.now = now
    if any(p.stale for p in (rules.default, *rules.profiles.values())):
        for subject, work in works.items():
            if replay:
                _stale_until(engine, subject, work, now)
            engine.stale(subject, work, now)
        for subject, sub in state.subjects.items() if sweep_absent else ():
            if subject in works:
                continue
            profile = rules.profile(subject)
            if profile.stale:
                work = _Work(profile, sub)
                before = len(engine.alerts)
                if replay:
                    _stale_until(engine, subject, work, now)
                engine.stale(subject, work, now)
                if len(engine.alerts) > before:
                    works[subject] = work
    subjects = dict(state.subjects)
    for subject, work in works.items():
        subjects[subject] = work.freeze()
    return EngineOutput(
        alerts=tuple(engine.alerts),
        cleared=tuple(engine.cleared),
        scores=tuple(engine.scores),
        state=EngineState(MappingProxyType(subjects)),
        no_value=engine.no_value,
        late=engine.late,
        implausible=engine.implausible,
    )


def _stale_until(engine: _Run, subject: str, work: _Work, t: float) -> None:
    """Replay: fire stale rules at their deadlines that fall before ``t``."""
    for rule in work.profile.stale:
        if work.rules.get(rule.name, _FRESH).open:
            continue
        last = rule.last_seen(work.latest)
        if last is not None and last + rule.limit < t:
            deadline = last + rule.limit + 1e-6
            saved = engine.now
            engine.now = deadline
            engine.stale(subject, work, deadline)
            engine.now = saved
