"""Routing: minimum severity, quiet hours for non-critical alerts (doctors must not drown)."""

from __future__ import annotations

from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingest_service.notifier import QuietHours, RoutingPolicy, route
from ingest_service.settings import IngestSettings
from vitals import Severity

SHANGHAI = ZoneInfo("Asia/Shanghai")
NIGHT = QuietHours.parse("22:00-07:00")
#: 23:30 and 12:00 in Shanghai (UTC+8).
AT_NIGHT = datetime(2024, 5, 1, 15, 30, tzinfo=UTC)
AT_NOON = datetime(2024, 5, 1, 4, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("severity", "decision"),
    [
        ("info", "below_minimum"),
        ("low", "below_minimum"),
        ("medium", "below_minimum"),
        ("high", "send"),
        ("critical", "send"),
    ],
)
def test_by_default_only_high_and_critical_alerts_are_sent(
    severity: Severity, decision: str
) -> None:
    assert route(severity, AT_NOON, RoutingPolicy()) == decision


def test_a_lower_minimum_lets_medium_alerts_through() -> None:
    policy = RoutingPolicy(min_severity="medium")
    assert route("medium", AT_NOON, policy) == "send"
    assert route("low", AT_NOON, policy) == "below_minimum"


def test_quiet_hours_hold_back_non_critical_alerts_but_never_critical_ones() -> None:
    policy = RoutingPolicy(quiet_hours=NIGHT, zone=SHANGHAI)
    assert route("high", AT_NIGHT, policy) == "quiet_hours"
    assert route("critical", AT_NIGHT, policy) == "send"
    assert route("high", AT_NOON, policy) == "send"
    # Below the minimum is decided first: a low alert is never even "suppressed".
    assert route("low", AT_NIGHT, policy) == "below_minimum"


def test_quiet_hours_are_judged_in_local_time_not_utc() -> None:
    # 23:30 UTC is 07:30 in Shanghai: quiet hours are over there.
    policy = RoutingPolicy(quiet_hours=NIGHT, zone=SHANGHAI)
    assert route("high", datetime(2024, 5, 1, 23, 30, tzinfo=UTC), policy) == "send"
    assert route("high", datetime(2024, 5, 1, 22, 59, tzinfo=UTC), policy) == "quiet_hours"


@pytest.mark.parametrize(
    ("local", "inside"),
    [(time(21, 59), False), (time(22, 0), True), (time(3, 0), True), (time(7, 0), False)],
)
def test_a_window_wrapping_midnight(local: time, inside: bool) -> None:
    assert NIGHT.contains(local) is inside


def test_a_daytime_window() -> None:
    lunch = QuietHours.parse("12:00-13:30")
    assert lunch.contains(time(12, 0))
    assert lunch.contains(time(13, 29))
    assert not lunch.contains(time(13, 30))
    assert not lunch.contains(time(11, 59))


@given(st.times())
def test_critical_is_always_sent_whatever_the_time(moment: time) -> None:
    policy = RoutingPolicy(quiet_hours=NIGHT, zone=SHANGHAI, min_severity="low")
    now = datetime.combine(datetime(2024, 5, 1).date(), moment, tzinfo=SHANGHAI)
    assert route("critical", now, policy) == "send"


@pytest.mark.parametrize("text", ["22-07", "22:00", "25:00-07:00", "night"])
def test_malformed_quiet_hours_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="quiet hours"):
        QuietHours.parse(text)


def test_settings_read_the_notify_fields_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("VITALSTREAM_NOTIFY_URLS", "json://127.0.0.1:9/a, json://127.0.0.1:9/b")
    monkeypatch.setenv("VITALSTREAM_NOTIFY_MIN_SEVERITY", "medium")
    monkeypatch.setenv("VITALSTREAM_NOTIFY_QUIET_HOURS", "22:00-07:00")
    settings = IngestSettings()
    assert settings.notify_urls == "json://127.0.0.1:9/a, json://127.0.0.1:9/b"
    assert settings.notify_min_severity == "medium"
    assert settings.notify_quiet_hours == "22:00-07:00"
    monkeypatch.setenv("VITALSTREAM_NOTIFY_QUIET_HOURS", "night")
    with pytest.raises(ValueError, match="pattern"):
        IngestSettings()
