"""Pure parts of the security report: the resident-ID scanner and the read_denied burst rule.

Every ID-like string here is SYNTHETIC (region 110101, made-up dates, computed check
characters); none is a real person's.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from ingest_service.identity import check_character
from ingest_service.security_report import (
    SecurityAlert,
    contains_resident_id,
    denied_bursts,
    resident_ids_in,
)

T0 = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
WINDOW = timedelta(minutes=10)


def synthetic_id(born: str = "19900307", sequence: str = "123") -> str:
    body = "110101" + born + sequence
    return body + check_character(body)


def test_scanner_finds_a_valid_id_anywhere_in_text() -> None:
    number = synthetic_id()
    assert resident_ids_in(number) == 1
    assert resident_ids_in(f'{{"subject":"{number}","v":1}}') == 1
    assert resident_ids_in(f"id={number.lower()};") == 1
    assert resident_ids_in(f"{number} and {synthetic_id('20010911', '456')}") == 2
    assert contains_resident_id(f"quality flags: late,{number}")


def test_scanner_ignores_near_misses() -> None:
    number = synthetic_id()
    wrong_check = number[:-1] + ("0" if number[-1] != "0" else "1")
    assert resident_ids_in(wrong_check) == 0
    assert resident_ids_in("9" + number[1:]) == 0  # region must start 1-8
    assert resident_ids_in("1" + number) == 0  # inside a longer run of digits
    assert resident_ids_in(number + "7") == 0
    bad_date = "110101" + "19901332" + "123"
    assert resident_ids_in(bad_date + check_character(bad_date)) == 0
    assert resident_ids_in("1732550400123456789") == 0  # an epoch-ms-like run
    future = synthetic_id("20300101", "001")
    assert resident_ids_in(future) == 1
    assert resident_ids_in(future, today=date(2026, 11, 25)) == 0


@given(st.text(alphabet="0123456789 ,:Xx", max_size=80))
def test_scanner_never_crashes(text: str) -> None:
    assert resident_ids_in(text) >= 0


def _times(minutes: list[float]) -> list[datetime]:
    return [T0 + timedelta(minutes=m) for m in minutes]


def test_burst_needs_threshold_denials_within_the_window() -> None:
    rows = [("doc-1", t) for t in _times([0, 1, 2, 3, 4])]
    rows += [("doc-2", t) for t in _times([0, 15, 30, 45, 60, 75])]  # spread out: fine
    alerts = denied_bursts(rows, window=WINDOW, threshold=5)
    assert len(alerts) == 1
    alert = alerts[0]
    assert isinstance(alert, SecurityAlert)
    assert (alert.kind, alert.severity, alert.count) == ("read_denied_burst", "high", 5)
    assert (alert.first_seen, alert.last_seen) == (T0, T0 + timedelta(minutes=4))
    assert "doc-1" in alert.detail and "up to 5" in alert.detail


def test_burst_counts_only_denials_inside_bursts() -> None:
    rows = [("doc-1", t) for t in _times([0, 30, 31, 32, 33, 34, 35, 90])]
    (alert,) = denied_bursts(reversed(rows), window=WINDOW, threshold=5)
    assert alert.count == 6
    assert alert.first_seen == T0 + timedelta(minutes=30)
    assert alert.last_seen == T0 + timedelta(minutes=35)


def test_no_rows_no_alerts() -> None:
    assert denied_bursts([], window=WINDOW, threshold=5) == []
    rows = [("doc-1", t) for t in _times([0, 1, 2, 3])]
    assert denied_bursts(rows, window=WINDOW, threshold=5) == []


@given(st.lists(st.integers(min_value=0, max_value=600), max_size=40), st.integers(1, 8))
def test_burst_count_is_bounded_and_consistent(minutes: list[int], threshold: int) -> None:
    rows = [("a", T0 + timedelta(minutes=m)) for m in minutes]
    alerts = denied_bursts(rows, window=WINDOW, threshold=threshold)
    assert len(alerts) <= 1
    for alert in alerts:
        assert threshold <= alert.count <= len(minutes)
        assert alert.first_seen is not None and alert.last_seen is not None
        assert alert.first_seen <= alert.last_seen
