"""CGM daily metrics (Battelino 2019 consensus) and alert burden per patient-day."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from alert_rules.burden import alert_burden
from alert_rules.cgm import daily_metrics
from vitals import Alert

SHANGHAI = ZoneInfo("Asia/Shanghai")
DAY = date(2026, 11, 25)
START = datetime(2026, 11, 25, 0, 0, tzinfo=SHANGHAI)


def _day(values: list[float]) -> list[tuple[datetime, float | None]]:
    step = timedelta(days=1) / len(values)
    return [(START + i * step, v) for i, v in enumerate(values)]


def test_cgm_day_meeting_battelino_2019_targets() -> None:
    """Battelino 2019: TIR > 70 %, TBR < 4 %, < 3.0 < 1 %, TAR < 25 %, > 13.9 < 5 %, CV <= 36 %."""
    values = [6.0] * 200 + [8.0] * 60 + [11.0] * 20 + [3.5] * 8
    result = daily_metrics(_day(values), DAY, zone=SHANGHAI)
    assert result.samples == 288 and result.sufficient
    assert result.tir == pytest.approx(100 * 260 / 288, abs=0.01)
    assert result.tbr == pytest.approx(100 * 8 / 288, abs=0.01)
    assert result.tbr_level2 == 0.0
    assert result.missed == ()


def test_cgm_day_missing_targets_and_gmi_bergenstal_2018() -> None:
    """GMI (%) = 3.31 + 0.02392 x mean mg/dL (Bergenstal 2018); 8.0 mmol/L -> 6.75 %."""
    result = daily_metrics(_day([8.0] * 288), DAY, zone=SHANGHAI)
    assert result.gmi == pytest.approx(3.31 + 0.02392 * 8.0 * 18.0, abs=0.01)
    bad = daily_metrics(_day([2.8] * 20 + [15.0] * 100 + [7.0] * 168), DAY, zone=SHANGHAI)
    assert set(bad.missed) >= {"tir", "tbr", "tbr_level2", "tar", "tar_level2", "cv"}


def test_cgm_day_with_little_data_is_not_sufficient() -> None:
    result = daily_metrics([*_day([6.0] * 100), (START, None)], DAY, zone=SHANGHAI)
    assert not result.sufficient and result.samples == 100
    empty = daily_metrics([], DAY, zone=SHANGHAI)
    assert empty.samples == 0 and empty.tir is None


def test_alert_burden_per_patient_day_and_subject_day() -> None:
    t0 = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)
    alerts = [
        Alert(subject="a", rule="spo2_low", severity="high", time=t0, message="m"),
        Alert(
            subject="a", rule="spo2_low", severity="high", time=t0 + timedelta(days=1), message="m"
        ),
        Alert(subject="b", rule="fever", severity="medium", time=t0, message="m"),
    ]
    observed = {"a": (t0, t0 + timedelta(days=2)), "b": (t0, t0 + timedelta(days=2))}
    burden = alert_burden(alerts, observed, SHANGHAI)
    assert burden.patient_days == 4.0
    assert burden.per_patient_day == 0.75
    assert burden.by_rule["spo2_low"].per_patient_day == 0.5
    assert burden.by_rule["spo2_low"].subjects == 1
    assert burden.by_subject_day["a"] == {"2026-11-25": 1, "2026-11-26": 1, "2026-11-27": 0}
    assert burden.subject_days == 6
