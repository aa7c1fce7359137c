"""The schema of a rule pack (YAML), validated by pydantic. Data only; nothing here evaluates.

A pack is versioned and every rule cites its clinical source. Thresholds are numbers or
``$parameter`` references to a parameter the pack declares (with its own default and source),
so a doctor can set per-patient targets (e.g. COPD SpO2 88-92 %) without editing the pack.
docs/rules.md explains each field with examples.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal, Self

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from vitals import Severity
from vitals.catalogue import CATALOGUE

Op = Literal["<", "<=", ">", ">="]
Schedule = Literal["always", "day", "night"]

_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|min|h|d)\s*$")
_UNIT_SECONDS = {"s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0}
PARAMETER_PATTERN = r"^\$[a-z][a-z0-9_]*$"
NAME_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"


def parse_duration(raw: object) -> float:
    """Seconds from ``"30s"``, ``"10m"``, ``"4h"``, ``"3d"`` or a plain number of seconds."""
    if isinstance(raw, bool):
        raise ValueError("a duration is a number of seconds or text like '10m', '4h', '3d'")
    if isinstance(raw, int | float):
        seconds = float(raw)
    elif isinstance(raw, str) and (match := _DURATION_RE.match(raw)):
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    else:
        raise ValueError(f"{raw!r} is not a duration: use seconds or text like '10m', '4h', '3d'")
    if seconds <= 0:
        raise ValueError("a duration must be positive")
    return seconds


#: Seconds; YAML may say ``"10m"``, ``"4h"``, ``"3d"``.
Duration = Annotated[float, BeforeValidator(parse_duration)]
ParameterRef = Annotated[str, StringConstraints(pattern=PARAMETER_PATTERN)]
#: A bound: a number, or ``$name`` of a pack parameter (per-patient overridable).
Bound = float | ParameterRef
Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]


def _known_metric(name: str) -> str:
    if name not in CATALOGUE:
        raise ValueError(f"metric {name!r} is not in the catalogue")
    return name


MetricName = Annotated[str, BeforeValidator(_known_metric)]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Confirm(_Model):
    """How many breaching evaluations make an alert. Exactly one mode applies.

    - ``consecutive: n`` — n breaching evaluations in a row (the default, n = 1);
    - ``k`` of the last ``n`` evaluations;
    - ``duration`` — breaching continuously for this long (first to latest breaching reading,
      no non-breaching reading between, no gap longer than ``max_gap``, default = duration);
    - ``min_separation`` — two breaching evaluations at least this far apart, both within
      ``within`` (e.g. BP >= 140/90 on two occasions >= 4 h apart); a normal reading in between
      does not reset it, because the criterion counts occasions.
    """

    consecutive: int = Field(default=1, ge=1, le=1000)
    k: int | None = Field(default=None, ge=1, le=60)
    n: int | None = Field(default=None, ge=1, le=60)
    duration: Duration | None = None
    max_gap: Duration | None = None
    min_separation: Duration | None = None
    within: Duration | None = None

    @model_validator(mode="after")
    def _one_mode(self) -> Self:
        modes = [
            self.consecutive != 1,
            self.k is not None or self.n is not None,
            self.duration is not None,
            self.min_separation is not None,
        ]
        if sum(modes) > 1:
            raise ValueError("confirm takes one of: consecutive, k+n, duration, min_separation")
        if (self.k is None) != (self.n is None):
            raise ValueError("confirm k-of-n needs both k and n")
        if self.k is not None and self.n is not None and self.k > self.n:
            raise ValueError("confirm k must not exceed n")
        if self.max_gap is not None and self.duration is None:
            raise ValueError("max_gap applies only with duration")
        if self.within is not None and self.min_separation is None:
            raise ValueError("within applies only with min_separation")
        if (
            self.within is not None
            and self.min_separation is not None
            and self.within < self.min_separation
        ):
            raise ValueError("within must be at least min_separation")
        return self

    @property
    def mode(self) -> Literal["consecutive", "k_of_n", "duration", "separation"]:
        """The confirmation mode in force."""
        if self.k is not None:
            return "k_of_n"
        if self.duration is not None:
            return "duration"
        if self.min_separation is not None:
            return "separation"
        return "consecutive"


class _RuleBase(_Model):
    name: Name
    severity: Severity
    message: str = Field(min_length=1)
    #: The published source of the threshold (guideline, section/table); shown with the alert.
    source: str = Field(min_length=8)
    schedule: Schedule = "always"
    #: Hysteresis: an open alert clears only when the value is this far on the normal side
    #: of the bound (in the metric's unit; points for scores).
    clear_margin: float = Field(default=0.0, ge=0)
    confirm: Confirm = Confirm()
    description: str | None = None


class ThresholdRule(_RuleBase):
    """``metric op value``, by default on one reading (``confirm.consecutive`` for more)."""

    kind: Literal["threshold"]
    metric: MetricName
    op: Op
    value: Bound


class SustainedRule(ThresholdRule):
    """A threshold that must hold for a duration or on k of the last n readings."""

    kind: Literal["sustained"]  # type: ignore[assignment]

    @model_validator(mode="after")
    def _needs_duration_or_k_of_n(self) -> Self:
        if self.confirm.mode not in ("duration", "k_of_n"):
            raise ValueError("a sustained rule needs confirm.duration or confirm.k + confirm.n")
        return self


class RateOfChangeRule(_RuleBase):
    """A change of more than ``change`` within ``window``.

    A positive ``change`` is a rise: the newest value minus the lowest value in the window
    before it (e.g. weight gain > 2 kg in 3 days). A negative ``change`` is a fall: the newest
    minus the highest.
    """

    kind: Literal["rate_of_change"]
    metric: MetricName
    change: Bound
    window: Duration

    @field_validator("change")
    @classmethod
    def _non_zero(cls, change: float | str) -> float | str:
        if isinstance(change, float) and change == 0:
            raise ValueError("change must be non-zero (positive = rise, negative = fall)")
        return change


class StaleRule(_RuleBase):
    """No reading with a value of any of ``metrics`` for ``factor`` x ``cadence`` (needs now).

    Silence is judged only for a subject that has sent at least one such reading, so a
    device nobody gave the patient does not alarm.
    """

    kind: Literal["stale"]
    metrics: tuple[MetricName, ...] = Field(min_length=1)
    cadence: Duration
    factor: float = Field(gt=0, le=1000)


class Condition(_Model):
    """One comparison inside a composite rule, on the latest value or the mean in a window."""

    metric: MetricName
    op: Op
    value: Bound
    aggregate: Literal["latest", "mean"] = "latest"
    #: For ``latest``: the oldest value still used (default: the rule's window);
    #: for ``mean``: the averaging window (required).
    window: Duration | None = None
    #: For ``mean``: fewer readings in the window = not assessable (listed as missing).
    min_count: int = Field(default=1, ge=1)
    #: For ``mean``: the readings must span at least this long (e.g. 3 of the 7 days).
    min_span: Duration | None = None

    @model_validator(mode="after")
    def _mean_has_window(self) -> Self:
        if self.aggregate == "mean" and self.window is None:
            raise ValueError("a mean condition needs a window")
        if self.aggregate != "mean" and (self.min_count != 1 or self.min_span is not None):
            raise ValueError("min_count and min_span apply only to mean conditions")
        return self


class CompositeRule(_RuleBase):
    """All or any of several conditions, judged whenever one of their metrics has a reading."""

    kind: Literal["composite"]
    mode: Literal["all", "any"]
    conditions: tuple[Condition, ...] = Field(min_length=1)
    #: Default age limit of the ``latest`` values that may be combined.
    window: Duration = 900.0


class ScoreRule(_RuleBase):
    """An early-warning score from the latest values within ``window`` (alert_rules.scores).

    ``field``: ``total`` (the aggregate), ``max_subscore`` (NEWS2's "single parameter scoring
    3"), or ``value`` (the shock index).
    """

    kind: Literal["score"]
    score: Literal["news2", "mews", "qsofa", "shock_index"]
    field: Literal["total", "max_subscore", "value"] = "total"
    op: Op
    value: Bound
    window: Duration = 3600.0
    #: NEWS2 SpO2 scale (1, or 2 for hypercapnic respiratory failure); may be ``$parameter``.
    spo2_scale: int | ParameterRef = 1
    #: Fewer measured parameters than this and the score is not judged.
    min_measured: int = Field(default=1, ge=1)

    @model_validator(mode="after")
    def _field_fits_score(self) -> Self:
        if (self.score == "shock_index") != (self.field == "value"):
            raise ValueError("field 'value' is the shock index's; scores use total/max_subscore")
        if self.field == "max_subscore" and self.score == "shock_index":
            raise ValueError("the shock index has no subscores")
        return self


RuleSpec = Annotated[
    ThresholdRule | SustainedRule | RateOfChangeRule | StaleRule | CompositeRule | ScoreRule,
    Field(discriminator="kind"),
]


class Parameter(_Model):
    """A named, per-patient overridable bound with its default and source."""

    default: float
    unit: str
    description: str = Field(min_length=1)
    source: str = Field(min_length=8)


class Pack(_Model):
    """One YAML rule pack."""

    schema_version: Literal[1] = 1
    pack: Name
    version: Annotated[str, StringConstraints(pattern=r"^\d+\.\d+\.\d+$")]
    title: str = Field(min_length=1)
    description: str = Field(min_length=1)
    #: Full references; rules cite them in ``source``.
    references: dict[str, str] = Field(default_factory=dict)
    parameters: dict[Annotated[str, StringConstraints(pattern=NAME_PATTERN)], Parameter] = Field(
        default_factory=dict
    )
    rules: tuple[RuleSpec, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        names = [rule.name for rule in self.rules]
        duplicated = sorted({name for name in names if names.count(name) > 1})
        if duplicated:
            raise ValueError(f"rule names must be unique in a pack: {duplicated}")
        for rule in self.rules:
            for ref in _parameter_refs(rule):
                if ref[1:] not in self.parameters:
                    raise ValueError(f"rule {rule.name}: parameter {ref} is not declared")
        return self


def _parameter_refs(rule: RuleSpec) -> list[str]:
    refs: list[object] = []
    if isinstance(rule, ThresholdRule | ScoreRule):
        refs.append(rule.value)
    if isinstance(rule, ScoreRule):
        refs.append(rule.spo2_scale)
    if isinstance(rule, RateOfChangeRule):
        refs.append(rule.change)
    if isinstance(rule, CompositeRule):
        refs.extend(condition.value for condition in rule.conditions)
    return [ref for ref in refs if isinstance(ref, str)]
