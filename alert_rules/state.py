"""The engine's memory between calls: immutable, keyed by subject, JSON-serialisable.

``EngineState`` maps subject -> ``SubjectState``. A shell may partition it by subject
(``only``/``merge``) and persist it with ``to_json``/``from_json``; the engine never mutates a
state it was given. Times are POSIX seconds (UTC) so the JSON form is plain numbers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

STATE_FORMAT = 1

_EMPTY: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class RuleMemory:
    """What one rule remembers about one subject.

    ``streak``: consecutive breaching evaluations; ``bits``: outcomes of the last n
    evaluations (k-of-n, newest in bit 0); ``since``: start of the breaching run (duration)
    or first breaching occasion (separation); ``last_breach``: time of the latest breach;
    ``open``: an alert is open (dedup, hysteresis); ``last_time``: the latest evaluation, which
    is how late readings are recognised; ``last_breached``: that evaluation's outcome.
    """

    streak: int = 0
    bits: int = 0
    since: float | None = None
    last_breach: float | None = None
    open: bool = False
    last_time: float | None = None
    last_breached: bool = False

    def to_json(self) -> list[Any]:
        """Compact JSON form: a list in field order."""
        return [
            self.streak,
            self.bits,
            self.since,
            self.last_breach,
            self.open,
            self.last_time,
            self.last_breached,
        ]

    @classmethod
    def from_json(cls, data: list[Any]) -> RuleMemory:
        """Inverse of ``to_json``."""
        streak, bits, since, last_breach, is_open, last_time, last_breached = data
        return cls(
            streak=int(streak),
            bits=int(bits),
            since=None if since is None else float(since),
            last_breach=None if last_breach is None else float(last_breach),
            open=bool(is_open),
            last_time=None if last_time is None else float(last_time),
            last_breached=bool(last_breached),
        )


@dataclass(frozen=True, slots=True)
class SubjectState:
    """One subject's memory: latest value per metric, windowed history, per-rule memory.

    ``latest[metric] = (time, value)`` of the newest reading with a plausible value; its time
    is the metric's watermark (older readings are late). ``history`` keeps only the metrics
    and the time span that windowed rules (rate of change, means) need.
    """

    latest: Mapping[str, tuple[float, float]] = field(default_factory=lambda: _EMPTY)
    history: Mapping[str, tuple[tuple[float, float], ...]] = field(default_factory=lambda: _EMPTY)
    rules: Mapping[str, RuleMemory] = field(default_factory=lambda: _EMPTY)

    def to_json(self) -> dict[str, Any]:
        """Plain JSON-able dict."""
        return {
            "latest": {name: list(pair) for name, pair in self.latest.items()},
            "history": {name: [list(pair) for pair in rows] for name, rows in self.history.items()},
            "rules": {name: memory.to_json() for name, memory in self.rules.items()},
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SubjectState:
        """Inverse of ``to_json``."""
        return cls(
            latest=MappingProxyType(
                {name: (float(t), float(v)) for name, (t, v) in data["latest"].items()}
            ),
            history=MappingProxyType(
                {
                    name: tuple((float(t), float(v)) for t, v in rows)
                    for name, rows in data["history"].items()
                }
            ),
            rules=MappingProxyType(
                {name: RuleMemory.from_json(raw) for name, raw in data["rules"].items()}
            ),
        )


@dataclass(frozen=True, slots=True)
class EngineState:
    """The engine's state: subject -> ``SubjectState`` (immutable; partition by subject)."""

    subjects: Mapping[str, SubjectState] = field(default_factory=lambda: _EMPTY)

    def subject(self, subject: str) -> SubjectState | None:
        """One subject's memory, if any."""
        return self.subjects.get(subject)

    def only(self, subjects: Iterable[str]) -> EngineState:
        """The partition holding just these subjects."""
        wanted = set(subjects)
        return EngineState(
            MappingProxyType({s: v for s, v in self.subjects.items() if s in wanted})
        )

    def merge(self, other: EngineState) -> EngineState:
        """This state with ``other``'s subjects replacing or adding to it."""
        return EngineState(MappingProxyType({**self.subjects, **other.subjects}))

    def to_json(self) -> dict[str, Any]:
        """Plain JSON-able dict (``json.dumps`` it to persist)."""
        return {
            "format": STATE_FORMAT,
            "subjects": {name: sub.to_json() for name, sub in self.subjects.items()},
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> EngineState:
        """Inverse of ``to_json``; a state of another format raises ``ValueError``."""
        if data.get("format") != STATE_FORMAT:
            raise ValueError(f"engine state format {data.get('format')!r} is not {STATE_FORMAT}")
        return cls(
            MappingProxyType(
                {name: SubjectState.from_json(raw) for name, raw in data["subjects"].items()}
            )
        )


EMPTY_STATE = EngineState()
