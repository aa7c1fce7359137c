"""Rule packs: every shipped pack validates and cites sources; bad packs are rejected."""

from __future__ import annotations

import pytest

from alert_rules import (
    PackError,
    SubjectOverrides,
    build_ruleset,
    load_pack,
    pack_names,
    parse_pack,
)

EXPECTED = {
    "core",
    "hypertension",
    "diabetes",
    "heart_failure",
    "copd",
    "maternal",
    "elderly",
    "emergency",
}


def test_all_packs_are_shipped_and_valid() -> None:
    assert set(pack_names()) == EXPECTED
    for name in pack_names():
        pack = load_pack(name)
        assert pack.version.count(".") == 2
        assert pack.references, name
        for rule in pack.rules:
            assert len(rule.source) > 20, rule.name


def test_rule_names_are_unique_across_packs_unless_identical() -> None:
    seen: dict[str, object] = {}
    for name in pack_names():
        for rule in load_pack(name).rules:
            if rule.name in seen:
                assert seen[rule.name] == rule, rule.name
            seen[rule.name] = rule
    build_ruleset(pack_names())  # every pack together compiles


def test_foundation_names_are_in_the_default_rules() -> None:
    """The demo and integration tests count these names (docs/rules.md)."""
    names = {rule.name for rule in build_ruleset().default.rules}
    assert names == {"spo2_low", "bp_crisis_systolic", "glucose_level2_hypo"}


_GOOD = """
pack: mine
version: 1.0.0
title: t
description: d
rules:
  - {name: r1, kind: threshold, metric: spo2, op: "<", value: 90, severity: high,
     message: m, source: "A guideline 2020, table 1"}
"""


def test_a_clinic_can_write_its_own_pack() -> None:
    pack = parse_pack(_GOOD)
    rules = build_ruleset([pack])
    assert [r.name for r in rules.default.rules] == ["r1"]


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ("metric: spo2", "metric: oxygen"),
        ('source: "A guideline 2020, table 1"', 'source: ""'),
        ("value: 90", "value: $undeclared"),
        ("severity: high", "severity: loud"),
        ("kind: threshold", "kind: sustained"),
        ('op: "<"', 'op: "!="'),
    ],
)
def test_invalid_packs_are_rejected_with_a_reason(change: str, why: str) -> None:
    with pytest.raises(PackError):
        parse_pack(_GOOD.replace(change, why))


def test_confirm_modes_are_exclusive() -> None:
    bad = _GOOD.replace("severity: high", "severity: high, confirm: {consecutive: 2, k: 2, n: 3}")
    with pytest.raises(PackError, match="one of"):
        parse_pack(bad)


def test_unknown_pack_and_bad_overrides_are_errors() -> None:
    with pytest.raises(PackError):
        load_pack("nope")
    with pytest.raises(PackError, match="parameters"):
        build_ruleset(["core"], overrides={"s": SubjectOverrides(parameters={"nope": 1.0})})
    with pytest.raises(PackError, match="disable"):
        build_ruleset(["core"], overrides={"s": SubjectOverrides(disabled_rules=frozenset({"x"}))})


def test_per_subject_pack_assignment_and_disabled_rules() -> None:
    rules = build_ruleset(
        ["core"],
        overrides={
            "copd-1": SubjectOverrides(
                packs=("core", "copd"),
                parameters={"spo2_target_low": 88.0, "spo2_target_high": 92.0},
                disabled_rules=frozenset({"spo2_low"}),
            )
        },
    )
    copd = {r.name for r in rules.profile("copd-1").rules}
    assert "spo2_low" not in copd and "spo2_below_target" in copd
    assert {r.name for r in rules.profile("anyone").rules} == {
        "spo2_low",
        "bp_crisis_systolic",
        "glucose_level2_hypo",
    }
