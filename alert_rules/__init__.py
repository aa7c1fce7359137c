"""alert_rules: the pure rules engine, scores and rhythm analysis. No I/O."""

from alert_rules.engine import (
    EMPTY_STATE,
    FOUNDATION_RULES,
    EngineState,
    RuleMemory,
    ThresholdRule,
    evaluate,
)

__all__ = [
    "EMPTY_STATE",
    "FOUNDATION_RULES",
    "EngineState",
    "RuleMemory",
    "ThresholdRule",
    "evaluate",
]
