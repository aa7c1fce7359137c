"""Decoding rule-inbox rows (ingest_service.rule_consumer): what the engine gets from them."""

from __future__ import annotations

import logging

import pytest

from alert_rules import Observation
from ingest_service.rule_consumer import _observations


def test_rows_become_the_engines_observations_and_a_bad_row_is_skipped_loudly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rows = [
        (1, '[["s1","spo2",1764064800.0,97.0],["s1","heart_rate",1764064800,null]]'),
        (2, "not json"),
        (3, '[["s2","spo2","yesterday",95.0]]'),
        (4, '[["s2","spo2",1764064801.5,95.5]]'),
    ]
    with caplog.at_level(logging.ERROR, logger="vitalstream.ingest.rules"):
        observations = _observations(rows)
    assert observations == [
        Observation("s1", "spo2", 1764064800.0, 97.0),
        Observation("s1", "heart_rate", 1764064800.0, None),
        Observation("s2", "spo2", 1764064801.5, 95.5),
    ]
    assert all(type(o) is Observation for o in observations)
    assert [r.message.split(" is ")[0] for r in caplog.records] == [
        "rule_inbox row 2",
        "rule_inbox row 3",
    ]
