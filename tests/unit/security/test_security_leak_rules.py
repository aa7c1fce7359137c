"""The audit-log leak rules of ``vitalstream security report`` on planted synthetic audit
rows: bulk browsing, off-hours reads from a new address, bulk exports, failed-login and
refused-card bursts (issue 10 item 5). Pure: no database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from ingest_service.audit import AuditEntry
from ingest_service.security_report import (
    LeakRuleSettings,
    bulk_browsing,
    bulk_exports,
    card_denied_bursts,
    failed_login_bursts,
    is_export,
    off_hours_new_address,
    subject_read,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
#: 10:00 in Shanghai (02:00 UTC): working hours.
DAY = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)
#: 02:30 in Shanghai the next night (18:30 UTC).
NIGHT = datetime(2026, 11, 25, 18, 30, tzinfo=UTC)


def row(
    actor: str,
    time: datetime,
    action: str = "read",
    resource: str = "subjects",
    **detail: Any,
) -> AuditEntry:
    role = actor.split(":", 1)[0]
    return AuditEntry(time=time, actor=actor, action=action, resource=resource,
                      detail={"role": role, **detail})  # fmt: skip


def reads_of(actor: str, subjects: int, start: datetime, step: timedelta) -> list[AuditEntry]:
    return [
        row(actor, start + i * step, resource=f"subject/p{i:04d}/readings", subject=f"p{i:04d}")
        for i in range(subjects)
    ]


# --------------------------------------------------------------------------- helpers


def test_subject_read_and_is_export_recognise_the_recorded_shapes() -> None:
    assert subject_read(row("doctor:a", DAY, resource="subject/palpha/latest")) == "palpha"
    assert subject_read(row("doctor:a", DAY, resource="web/doctor/subjects/pb", subject="pb")) == (
        "pb"
    )
    assert subject_read(row("er:a", DAY, "card_resolve", "subject/pc")) == "pc"
    assert subject_read(row("doctor:a", DAY, resource="web/doctor/alerts")) is None  # a list
    assert subject_read(row("doctor:a", DAY, "read_denied", "subject/pd/latest")) is None
    export = row("patient:u", DAY, resource="web/me/export", subject="pa", format="csv")
    assert is_export(export)
    assert is_export(row("admin:o", DAY, "export", "audit"))
    assert not is_export(row("patient:u", DAY, resource="web/me", subject="pa"))


# --------------------------------------------------------------------------- bulk browsing


def test_bulk_browsing_flags_many_distinct_subjects_in_the_window() -> None:
    harvest = reads_of("doctor:dr-x", 60, DAY, timedelta(seconds=30))  # 60 subjects in 30 min
    ward_round = reads_of("doctor:dr-li", 20, DAY, timedelta(minutes=2))
    slow = reads_of("doctor:dr-slow", 60, DAY, timedelta(minutes=5))  # 60 over 5 h: 12 an hour
    again = [row("doctor:dr-re", DAY + timedelta(seconds=i), resource="subject/pa/readings")
             for i in range(500)]  # fmt: skip
    alerts = bulk_browsing(
        [*harvest, *ward_round, *slow, *again], window=timedelta(hours=1), threshold=50
    )
    assert [(a.kind, a.count) for a in alerts] == [("bulk_browsing", 60)]
    assert "dr-x" in alerts[0].detail
    assert alerts[0].first_seen == DAY and alerts[0].last_seen == harvest[-1].time


def test_bulk_browsing_exempts_services_and_ignores_list_views() -> None:
    platform = reads_of("service:regional", 200, DAY, timedelta(seconds=1))
    lists = [row("doctor:dr-li", DAY, resource="web/doctor/alerts",
                 subjects=[f"p{i}" for i in range(300)])]  # fmt: skip
    assert bulk_browsing([*platform, *lists], window=timedelta(hours=1), threshold=50,
                         exempt_roles=frozenset({"service"})) == []  # fmt: skip
    with pytest.raises(ValueError, match="at least 1"):
        bulk_browsing([], window=timedelta(hours=1), threshold=0)


# --------------------------------------------------------------------------- off hours


def test_a_night_read_from_a_new_address_is_flagged_once_per_address() -> None:
    known = {"doctor:dr-li": {"10.1.1.5"}}
    rows = [
        row("doctor:dr-li", DAY, subject="pa", **{"from": "10.1.1.5"}),
        row("doctor:dr-li", NIGHT, subject="pa", **{"from": "10.1.1.5"}),  # usual PC at night
        row("doctor:dr-li", NIGHT + timedelta(minutes=1), subject="pb", **{"from": "203.0.113.9"}),
        row("doctor:dr-li", NIGHT + timedelta(minutes=3), subject="pc", **{"from": "203.0.113.9"}),
    ]
    alerts = off_hours_new_address(rows, known=known, tz=SHANGHAI)
    assert len(alerts) == 1
    assert alerts[0].kind == "off_hours_new_address" and alerts[0].count == 2
    assert "203.0.113.9" in alerts[0].detail and "dr-li" in alerts[0].detail
    assert alerts[0].first_seen == NIGHT + timedelta(minutes=1)


def test_off_hours_rule_spares_daytime_new_addresses_new_accounts_and_er() -> None:
    known = {"doctor:dr-li": {"10.1.1.5"}, "er:nurse-wu": {"10.2.0.1"}}
    rows = [
        # a new address by day becomes known, so the same address at night is fine
        row("doctor:dr-li", DAY, subject="pa", **{"from": "10.1.1.77"}),
        row("doctor:dr-li", NIGHT, subject="pa", **{"from": "10.1.1.77"}),
        # an account with no history at all is not judged
        row("doctor:dr-new", NIGHT, subject="pa", **{"from": "198.51.100.1"}),
        # ER works nights
        row("er:nurse-wu", NIGHT, subject="pz", **{"from": "10.2.0.99"}),
        # a failed login is not a read
        row("doctor:dr-li", NIGHT, "login_failed", "auth/token", **{"from": "198.51.100.2"}),
    ]
    assert (
        off_hours_new_address(rows, known=known, tz=SHANGHAI, exempt_roles=frozenset({"er"})) == []
    )
    # in UTC the same rows are day-time reads, hence no alert either way: the zone matters
    shifted = [row("doctor:dr-li", DAY + timedelta(hours=14), subject="p", **{"from": "1.2.3.4"})]
    assert off_hours_new_address(shifted, known=known, tz=SHANGHAI) != []
    assert off_hours_new_address(shifted, known=known, tz=UTC) == []


# --------------------------------------------------------------------------- exports


def test_repeated_exports_and_one_huge_read_are_flagged() -> None:
    exports = [row("patient:u-1", DAY + timedelta(hours=i), resource="web/me/export",
                   subject="pa", format="csv") for i in range(4)]  # fmt: skip
    once = [row("patient:u-2", DAY, resource="web/me/export", subject="pb", format="csv")]
    dump = [row("service:regional", DAY, resource="subject/pa/readings", subject="pa",
                returned=100_000)]  # fmt: skip
    normal = [row("doctor:dr-li", DAY, resource="subject/pa/readings", subject="pa",
                  returned=1_500)]  # fmt: skip
    alerts = bulk_exports(
        [*exports, *once, *dump, *normal],
        window=timedelta(hours=24),
        threshold=3,
        large_read_rows=50_000,
    )
    assert [(a.kind, a.count) for a in alerts] == [("bulk_export", 4), ("bulk_export", 1)]
    assert "u-1" in alerts[0].detail and "regional" in alerts[1].detail
    assert "100000" in alerts[1].detail


def test_exports_spread_over_days_are_not_a_burst() -> None:
    spread = [row("patient:u-1", DAY + timedelta(days=i), resource="web/me/export",
                  format="csv") for i in range(5)]  # fmt: skip
    assert bulk_exports(spread, window=timedelta(hours=24), threshold=3, large_read_rows=10) == []


# --------------------------------------------------------------------------- bursts


def test_failed_login_bursts_per_account_and_per_address() -> None:
    guessing = [row("doctor:dr-li", DAY + timedelta(seconds=10 * i), "login_failed",
                    "auth/token", reason="bad_password", **{"from": f"10.9.0.{i}"})
                for i in range(12)]  # fmt: skip
    spraying = [row("anonymous", DAY + timedelta(seconds=5 * i), "login_failed", "auth/token",
                    reason="unknown_user", **{"from": "198.51.100.7"})
                for i in range(15)]  # fmt: skip
    typo = [row("doctor:dr-wang", DAY, "login_failed", "auth/web", **{"from": "10.1.1.5"})]
    alerts = failed_login_bursts(
        [*guessing, *spraying, *typo], window=timedelta(minutes=10), threshold=10
    )
    assert [(a.kind, a.count) for a in alerts] == [
        ("login_failure_burst", 12),
        ("login_failure_burst", 15),
    ]
    assert alerts[0].detail.startswith("account 'doctor:dr-li'")
    assert alerts[1].detail.startswith("address '198.51.100.7'")


def test_refused_card_lookups_burst() -> None:
    tries = [row("er:tablet-3", DAY + timedelta(seconds=20 * i), "card_denied", "health_cards",
                 reason="card_revoked") for i in range(6)]  # fmt: skip
    fine = [row("er:tablet-4", DAY, "card_denied", "health_cards")]
    alerts = card_denied_bursts([*tries, *fine], window=timedelta(minutes=10), threshold=5)
    assert [(a.kind, a.count, a.severity) for a in alerts] == [("card_denied_burst", 6, "high")]
    assert alerts[0].first_seen == DAY


def test_default_settings_are_the_documented_ones() -> None:
    rules = LeakRuleSettings()
    assert (rules.browse_threshold, rules.browse_window) == (50, timedelta(hours=1))
    assert rules.working_hours == (7, 20) and str(rules.tz) == "Asia/Shanghai"
    assert (rules.export_threshold, rules.large_read_rows) == (3, 50_000)
    assert (rules.login_threshold, rules.card_threshold) == (10, 5)
