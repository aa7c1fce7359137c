"""alert_rules: the pure rules engine, early-warning scores and rhythm analysis. No I/O."""

from alert_rules.af import AfEpisode, AfResult, BeatTimesError, detect_af
from alert_rules.engine import (
    EMPTY_STATE,
    FOUNDATION_RULES,
    EngineState,
    RuleMemory,
    ThresholdRule,
    evaluate,
)
from alert_rules.scores import mews, news2, qsofa, shock_index

__all__ = [
    "EMPTY_STATE",
    "FOUNDATION_RULES",
    "AfEpisode",
    "AfResult",
    "BeatTimesError",
    "EngineState",
    "RuleMemory",
    "ThresholdRule",
    "detect_af",
    "evaluate",
    "mews",
    "news2",
    "qsofa",
    "shock_index",
]
