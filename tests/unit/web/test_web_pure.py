"""Pure parts of the web pages: ranking, BP means, bands, language choice, the catalogue,
rule-setting edits and the alert lifecycle decision."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from ingest_service.web.alert_actions import decide, tracked
from ingest_service.web.attention import PatientStatus, ago, rank_patients
from ingest_service.web.i18n import CATALOGUE, choose_lang, translate
from ingest_service.web.login import local_path
from ingest_service.web.queries import AlertRow
from ingest_service.web.rule_settings import describe, parse_edit
from ingest_service.web.trends import aligned, band, home_bp

NOW = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
DAY = timedelta(hours=24)


def test_ranking_puts_unacknowledged_severity_first_then_newest_then_silence() -> None:
    fresh = NOW - timedelta(minutes=5)
    patients = [
        PatientStatus("quiet", NOW - timedelta(hours=1)),
        PatientStatus("silent", NOW - timedelta(days=3)),
        PatientStatus("never", None),
        PatientStatus("seen-critical", fresh, acknowledged={"critical": 1}, newest_alert_at=fresh),
        PatientStatus("high-old", fresh, active={"high": 1}, newest_alert_at=NOW - DAY),
        PatientStatus("high-new", fresh, active={"high": 2}, newest_alert_at=fresh),
        PatientStatus("medium", fresh, active={"medium": 1}, newest_alert_at=fresh),
    ]
    ranked = rank_patients(patients, NOW, DAY)
    assert [r.status.subject for r in ranked] == [
        "high-new", "high-old", "medium", "seen-critical", "never", "silent", "quiet",
    ]  # fmt: skip
    flags = {r.status.subject: r.silent for r in ranked}
    assert flags["silent"] and flags["never"] and not flags["quiet"]
    assert ranked[0].status.top_severity == "high" and ranked[0].status.open_alerts == 2


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [(5, ("just_now", 0)), (600, ("minutes_ago", 10)), (7200, ("hours_ago", 2)),
     (3 * 86400, ("days_ago", 3))],
)  # fmt: skip
def test_relative_times(seconds: int, expected: tuple[str, int]) -> None:
    assert ago(NOW, NOW - timedelta(seconds=seconds)) == expected
    assert ago(NOW, None) is None


def test_home_bp_mean_counts_local_days_and_needs_twelve_readings() -> None:
    times = [NOW - timedelta(hours=12 * i) for i in range(12)]
    home = home_bp(
        [(t, 140.0) for t in times], [(t, 80.0) for t in times], (135.0, 85.0),
        ZoneInfo("Asia/Shanghai"),
    )  # fmt: skip
    assert (home.systolic, home.diastolic, home.readings) == (140.0, 80.0, 12)
    assert home.days == 6 and home.assessable and home.above_target
    few = home_bp([(NOW, 120.0)], [(NOW, 70.0)], (135.0, 85.0))
    assert not few.assessable and few.above_target is False
    empty = home_bp([], [], (130.0, 80.0))
    assert empty.systolic is None and empty.above_target is None


def test_aligned_series_share_one_time_axis() -> None:
    t0, t1 = NOW, NOW + timedelta(minutes=1)
    data = aligned({"a": [(t0, 1.0), (t1, 2.0)], "b": [(t1, 5.0)]}, ["a", "b"])
    assert data == [[t0.timestamp(), t1.timestamp()], [1.0, 2.0], [None, 5.0]]


@pytest.mark.parametrize(
    ("metric", "value", "expected"),
    [("bp_systolic", 140, "band_high"), ("bp_systolic", 120, "band_ok"),
     ("bp_systolic", 85, "band_low"), ("bp_diastolic", 85, "band_high"),
     ("glucose", 3.5, "band_low"), ("glucose", 6.0, "band_ok"), ("glucose", 12, "band_high"),
     ("spo2", 91, "band_low"), ("spo2", 97, "band_ok"), ("heart_rate", 120, "band_high"),
     ("weight", 70, "band_none"), ("spo2", None, "band_none")],
)  # fmt: skip
def test_plain_language_bands(metric: str, value: float | None, expected: str) -> None:
    assert band(metric, value) == expected


def test_language_choice_and_catalogue() -> None:
    assert choose_lang("en", "zh", None) == "en"
    assert choose_lang(None, "en", "zh-CN") == "en"
    assert choose_lang(None, None, "fr-FR, en-GB;q=0.8") == "en"
    assert choose_lang("xx", None, None) == "zh"
    assert all(entry["en"] and entry["zh"] for k, entry in CATALOGUE.items() if k != "band_none")
    assert translate("zh", "minutes_ago", n=5) == "5 分钟前"
    assert translate("en", "no-such-key") == "no-such-key"


def test_only_local_redirects() -> None:
    assert local_path("/doctor/subjects/p1?days=7") == "/doctor/subjects/p1?days=7"
    for bad in ("https://evil.example", "//evil.example", "/\\evil.example", "", None):
        assert local_path(bad) is None


def test_rule_edit_is_checked_like_the_engine_checks_it() -> None:
    form = {
        "packs": ["core", "hypertension"],
        "param.home_bp_mean_systolic": ["130"],
        "param.home_bp_mean_diastolic": ["85"],  # the default: not stored
        "param.spo2_low_alarm": [""],
        "disabled": ["bp_low_systolic"],
        "reason": ["target 130/80 for a diabetic patient"],
    }
    edit, problems = parse_edit("p1", form)
    assert problems == [] and edit is not None
    assert edit.packs == ("core", "hypertension")
    assert dict(edit.parameters) == {"home_bp_mean_systolic": 130.0}
    assert edit.disabled_rules == ("bp_low_systolic",)
    _, problems = parse_edit("p1", {**form, "reason": [""], "packs": ["nope"]})
    assert any("unknown packs" in p for p in problems) and any("reason" in p for p in problems)
    _, problems = parse_edit("p1", {**form, "param.home_bp_mean_systolic": ["nan"]})
    assert problems == ["home_bp_mean_systolic: not a number"]
    _, problems = parse_edit("p1", {**form, "disabled": ["no_such_rule"]})
    assert problems and "no_such_rule" in problems[0]
    view = describe(None)
    assert view.packs == ("core",) and view.packs_are_default and view.version == ""
    assert {p.name for p in view.parameters} >= {"spo2_low_alarm"}


def _alert(state: str) -> AlertRow:
    return AlertRow(
        id=7, subject="p1", rule="spo2_low", severity="high", time=NOW, message="SpO2 88",
        metric="spo2", value=88.0, state=state, occurrences=1, condition_cleared_at=None,
        last_seen_at=None,
    )  # fmt: skip


def test_the_lifecycle_decides_acknowledge_and_resolve() -> None:
    (ack,) = decide(_alert("active"), "acknowledge", "doctor:dr-li", NOW, "calling")
    assert (ack.from_status, ack.to_status, ack.by, ack.why) == (
        "active", "acknowledged", "doctor:dr-li", "calling",
    )  # fmt: skip
    assert decide(_alert("acknowledged"), "acknowledge", "d", NOW, "") == []  # idempotent
    (done,) = decide(_alert("acknowledged"), "resolve", "d", NOW, "rechecked: 95 %")
    assert done.to_status == "resolved" and done.why == "rechecked: 95 %"
    assert decide(_alert("resolved"), "resolve", "d", NOW, "again") == []
    assert tracked(_alert("resolved")) is None
