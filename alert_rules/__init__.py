"""alert_rules: the pure rules engine, rule packs, lifecycle, early-warning scores and rhythm
analysis. No I/O."""

from alert_rules.af import AfEpisode, AfResult, BeatTimesError, detect_af
from alert_rules.engine import (
    DEFAULT_RULESET,
    Clearance,
    EngineOutput,
    Observation,
    ScorePoint,
    evaluate,
    next_stale_deadline,
    run,
)
from alert_rules.pack_schema import Pack
from alert_rules.packs import DEFAULT_PACKS, PackError, load_pack, pack_names, parse_pack
from alert_rules.ruleset import EngineConfig, RuleSet, SubjectOverrides, build_ruleset
from alert_rules.scores import mews, news2, qsofa, shock_index
from alert_rules.state import EMPTY_STATE, EngineState, RuleMemory, SubjectState

#: The foundation's name for the default rules (the ``core`` pack), kept for callers.
FOUNDATION_RULES = DEFAULT_RULESET

__all__ = [
    "DEFAULT_PACKS",
    "DEFAULT_RULESET",
    "EMPTY_STATE",
    "FOUNDATION_RULES",
    "AfEpisode",
    "AfResult",
    "BeatTimesError",
    "Clearance",
    "EngineConfig",
    "EngineOutput",
    "EngineState",
    "Observation",
    "Pack",
    "PackError",
    "RuleMemory",
    "RuleSet",
    "ScorePoint",
    "SubjectOverrides",
    "SubjectState",
    "build_ruleset",
    "detect_af",
    "evaluate",
    "load_pack",
    "mews",
    "news2",
    "next_stale_deadline",
    "pack_names",
    "parse_pack",
    "qsofa",
    "run",
    "shock_index",
]
