"""A rule set: the packs in force, per-subject pack assignment and overrides, and the clock.

``build_ruleset(packs, overrides=..., config=...)`` compiles packs once into per-subject
profiles (parameters resolved, rules indexed by metric), so the engine's inner loop does no
lookups by name. ``SubjectOverrides`` is how a doctor's decisions reach the engine: which packs
a patient is on, their targets (e.g. COPD SpO2 88-92 %: ``spo2_target_low=88``,
``spo2_target_high=92``, ``news2_spo2_scale=2``), and rules switched off for them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import time
from types import MappingProxyType
from zoneinfo import ZoneInfo

from alert_rules.compiled import (
    CONFIRM_CONSECUTIVE,
    CONFIRM_DURATION,
    CONFIRM_K_OF_N,
    CONFIRM_SEPARATION,
    SCHEDULE_ALWAYS,
    SCHEDULE_DAY,
    SCHEDULE_NIGHT,
    SCORE_INPUTS,
    CompiledComposite,
    CompiledCondition,
    CompiledRate,
    CompiledRule,
    CompiledScore,
    CompiledStale,
    CompiledThreshold,
    Confirmation,
    ScoreTracker,
)
from alert_rules.pack_schema import (
    CompositeRule,
    Confirm,
    Pack,
    Parameter,
    RateOfChangeRule,
    RuleSpec,
    ScoreRule,
    StaleRule,
    ThresholdRule,
)
from alert_rules.packs import DEFAULT_PACKS, PackError, load_pack

_SCHEDULES = {"always": SCHEDULE_ALWAYS, "day": SCHEDULE_DAY, "night": SCHEDULE_NIGHT}


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """Clock settings: local time zone and when the day and the night start (schedules)."""

    timezone: str = "Asia/Shanghai"
    day_start: time = time(7, 0)
    night_start: time = time(22, 0)
    #: A reading judged this long after it was taken gets "(reading delayed by …)" in the
    #: alert message: the alert is about the past and the doctor should know.
    delayed_after_s: float = 900.0

    def __post_init__(self) -> None:
        ZoneInfo(self.timezone)  # fail early on a misspelt zone
        if self.day_start == self.night_start:
            raise ValueError("day_start and night_start must differ")


@dataclass(frozen=True, slots=True)
class SubjectOverrides:
    """A doctor's per-patient settings.

    ``packs``: the packs this patient is on (None = the rule set's default packs);
    ``parameters``: per-patient values of pack parameters (e.g. ``spo2_target_low``);
    ``disabled_rules``: rule names not evaluated for this patient.
    """

    packs: tuple[str, ...] | None = None
    parameters: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    disabled_rules: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Profile:
    """The compiled rules that apply to one subject (or to every subject without overrides)."""

    rules: tuple[CompiledRule, ...]
    by_metric: Mapping[str, tuple[CompiledRule, ...]]
    stale: tuple[CompiledStale, ...]
    #: metric -> how far back history must reach (rate of change, means).
    history_windows: Mapping[str, float]
    trackers: Mapping[str, tuple[ScoreTracker, ...]]
    #: True when some rule has a day/night schedule (local time needed).
    scheduled: bool


@dataclass(frozen=True, slots=True)
class RuleSet:
    """Packs compiled into profiles; what ``evaluate(..., rules=)`` takes."""

    packs: tuple[Pack, ...]
    default: Profile
    profiles: Mapping[str, Profile]
    config: EngineConfig
    zone: ZoneInfo

    def profile(self, subject: str) -> Profile:
        """The profile for one subject: its overrides', else the default."""
        return self.profiles.get(subject, self.default)

    @property
    def pack_names(self) -> tuple[str, ...]:
        """Names of every pack compiled in (default and per-subject)."""
        return tuple(pack.pack for pack in self.packs)


def build_ruleset(
    packs: Iterable[str | Pack] = DEFAULT_PACKS,
    *,
    overrides: Mapping[str, SubjectOverrides] | None = None,
    config: EngineConfig | None = None,
    track_scores: Iterable[str] = (),
    score_window_s: float = 3600.0,
) -> RuleSet:
    """Compile packs (names of shipped packs, or ``Pack`` objects) into a ``RuleSet``.

    ``track_scores`` (e.g. ``("news2",)``) computes those scores whenever an input changes,
    for the backtest's scores.csv, from the latest values within ``score_window_s``.
    """
    config = config or EngineConfig()
    overrides = overrides or {}
    loaded: dict[str, Pack] = {}

    def resolve(names: Iterable[str | Pack]) -> tuple[Pack, ...]:
        out: list[Pack] = []
        for item in names:
            pack = item if isinstance(item, Pack) else load_pack(item)
            known = loaded.setdefault(pack.pack, pack)
            if known != pack:
                raise PackError(f"two different packs are called {pack.pack!r}")
            out.append(pack)
        return tuple(out)

    for name in track_scores:
        if name not in SCORE_INPUTS:
            raise PackError(f"unknown score {name!r}; known: {', '.join(SCORE_INPUTS)}")
    trackers = tuple(ScoreTracker(name, score_window_s) for name in track_scores)
    default_packs = resolve(packs)
    default = _profile(default_packs, SubjectOverrides(), trackers)
    profiles: dict[str, Profile] = {}
    for subject, override in overrides.items():
        subject_packs = resolve(override.packs) if override.packs is not None else default_packs
        profiles[subject] = _profile(subject_packs, override, trackers)
    return RuleSet(
        packs=tuple(loaded.values()),
        default=default,
        profiles=MappingProxyType(profiles),
        config=config,
        zone=ZoneInfo(config.timezone),
    )


def _profile(
    packs: tuple[Pack, ...], override: SubjectOverrides, trackers: tuple[ScoreTracker, ...]
) -> Profile:
    parameters: dict[str, Parameter] = {}
    specs: dict[str, tuple[RuleSpec, Pack]] = {}
    for pack in packs:
        for name, parameter in pack.parameters.items():
            known = parameters.setdefault(name, parameter)
            if known.default != parameter.default:
                raise PackError(
                    f"parameter {name!r} has different defaults in two packs "
                    f"({known.default} and {parameter.default})"
                )
        for spec in pack.rules:
            seen = specs.get(spec.name)
            if seen is not None and seen[0] != spec:
                raise PackError(
                    f"rule {spec.name!r} is defined differently in packs "
                    f"{seen[1].pack!r} and {pack.pack!r}"
                )
            specs.setdefault(spec.name, (spec, pack))
    unknown_params = sorted(set(override.parameters) - set(parameters))
    if unknown_params:
        raise PackError(f"overrides name parameters no selected pack declares: {unknown_params}")
    unknown_rules = sorted(override.disabled_rules - set(specs))
    if unknown_rules:
        raise PackError(f"overrides disable rules no selected pack has: {unknown_rules}")
    values = {name: p.default for name, p in parameters.items()}
    values.update(override.parameters)

    rules: list[CompiledRule] = []
    for spec, pack in specs.values():
        if spec.name in override.disabled_rules:
            continue
        rules.append(_compile(spec, pack, values))

    by_metric: dict[str, list[CompiledRule]] = {}
    history: dict[str, float] = {}
    for rule in rules:
        for metric in rule.triggers:
            by_metric.setdefault(metric, []).append(rule)
        if isinstance(rule, CompiledRate):
            history[rule.metric] = max(history.get(rule.metric, 0.0), rule.window)
        if isinstance(rule, CompiledComposite):
            for cond in rule.conditions:
                if cond.mean_window is not None:
                    history[cond.metric] = max(history.get(cond.metric, 0.0), cond.mean_window)
    tracked: dict[str, list[ScoreTracker]] = {}
    for tracker in trackers:
        for metric in SCORE_INPUTS[tracker.score]:
            tracked.setdefault(metric, []).append(tracker)
    return Profile(
        rules=tuple(rules),
        by_metric=MappingProxyType({m: tuple(rs) for m, rs in by_metric.items()}),
        stale=tuple(rule for rule in rules if isinstance(rule, CompiledStale)),
        history_windows=MappingProxyType(history),
        trackers=MappingProxyType({m: tuple(ts) for m, ts in tracked.items()}),
        scheduled=any(rule.schedule != SCHEDULE_ALWAYS for rule in rules),
    )


def _fill(message: str, values: Mapping[str, float]) -> str:
    """Replace ``{parameter}`` in a message by the subject's value of that parameter."""
    for name, value in values.items():
        message = message.replace("{" + name + "}", f"{value:g}")
    return message


def _bound(raw: float | str, values: Mapping[str, float]) -> float:
    return values[raw[1:]] if isinstance(raw, str) else float(raw)


def _confirmation(confirm: Confirm) -> Confirmation:
    mode = confirm.mode
    if mode == "k_of_n":
        assert confirm.k is not None and confirm.n is not None
        return Confirmation(CONFIRM_K_OF_N, k=confirm.k, mask=(1 << confirm.n) - 1)
    if mode == "duration":
        assert confirm.duration is not None
        gap = confirm.max_gap if confirm.max_gap is not None else confirm.duration
        return Confirmation(CONFIRM_DURATION, duration=confirm.duration, max_gap=gap)
    if mode == "separation":
        assert confirm.min_separation is not None
        within = confirm.within if confirm.within is not None else math.inf
        return Confirmation(
            CONFIRM_SEPARATION, min_separation=confirm.min_separation, within=within
        )
    return Confirmation(CONFIRM_CONSECUTIVE, consecutive=confirm.consecutive)


def _compile(spec: RuleSpec, pack: Pack, values: Mapping[str, float]) -> CompiledRule:
    common = {
        "name": spec.name,
        "pack": pack.pack,
        "pack_version": pack.version,
        "severity": spec.severity,
        "message": _fill(spec.message, values),
        "source": spec.source,
        "schedule": _SCHEDULES[spec.schedule],
        "margin": spec.clear_margin,
        "confirm": _confirmation(spec.confirm),
    }
    if isinstance(spec, ThresholdRule):  # also SustainedRule
        return CompiledThreshold(
            **common,  # type: ignore[arg-type]
            triggers=(spec.metric,),
            metric=spec.metric,
            op=spec.op,
            bound=_bound(spec.value, values),
        )
    if isinstance(spec, RateOfChangeRule):
        return CompiledRate(
            **common,  # type: ignore[arg-type]
            triggers=(spec.metric,),
            metric=spec.metric,
            change=_bound(spec.change, values),
            window=spec.window,
        )
    if isinstance(spec, StaleRule):
        return CompiledStale(
            **common,  # type: ignore[arg-type]
            triggers=spec.metrics,
            metrics=spec.metrics,
            limit=spec.cadence * spec.factor,
            cadence=spec.cadence,
        )
    if isinstance(spec, CompositeRule):
        conditions = tuple(
            CompiledCondition(
                metric=cond.metric,
                op=cond.op,
                bound=_bound(cond.value, values),
                mean_window=cond.window if cond.aggregate == "mean" else None,
                max_age=cond.window if cond.window is not None else spec.window,
                min_count=cond.min_count,
                min_span=cond.min_span or 0.0,
            )
            for cond in spec.conditions
        )
        return CompiledComposite(
            **common,  # type: ignore[arg-type]
            triggers=tuple(dict.fromkeys(cond.metric for cond in spec.conditions)),
            require_all=spec.mode == "all",
            conditions=conditions,
        )
    assert isinstance(spec, ScoreRule)
    scale = int(_bound(spec.spo2_scale, values)) if isinstance(spec.spo2_scale, str) else 1
    if not isinstance(spec.spo2_scale, str):
        scale = spec.spo2_scale
    if scale not in (1, 2):
        raise PackError(f"rule {spec.name}: NEWS2 SpO2 scale must be 1 or 2, not {scale}")
    return CompiledScore(
        **common,  # type: ignore[arg-type]
        triggers=SCORE_INPUTS[spec.score],
        score=spec.score,
        field=spec.field,
        op=spec.op,
        bound=_bound(spec.value, values),
        window=spec.window,
        spo2_scale=scale,
        min_measured=spec.min_measured,
    )
