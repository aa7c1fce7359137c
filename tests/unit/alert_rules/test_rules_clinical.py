"""One test per shipped rule, each naming its clinical source (docs/rules.md)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from rules_support import T0, alerts_of, reading, rules_fired, series

from alert_rules import SubjectOverrides, build_ruleset, load_pack, pack_names

MIN = timedelta(minutes=1)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


# --- core ----------------------------------------------------------------------------------


def test_spo2_low_bts_2017_two_readings_below_90() -> None:
    """BTS oxygen guideline 2017: SpO2 < 90 % needs review; two readings rule out a blip."""
    assert rules_fired(series("spo2", [95, 89, 88])) == ["spo2_low"]
    assert rules_fired(series("spo2", [89, 95, 89])) == []


def test_spo2_low_hysteresis_clears_only_at_92() -> None:
    """Hysteresis: an open spo2_low clears at >= 90 + 2 %, so 90-91 % does not re-alert."""
    assert rules_fired(series("spo2", [89, 88, 91, 89, 88])) == ["spo2_low"]
    assert rules_fired(series("spo2", [89, 88, 92, 89, 88])) == ["spo2_low", "spo2_low"]


def test_bp_crisis_systolic_chinese_guideline_2018_grade_3() -> None:
    """2018 Chinese hypertension guideline: SBP >= 180 mmHg is grade 3."""
    assert rules_fired(series("bp_systolic", [179, 180])) == ["bp_crisis_systolic"]


def test_glucose_level2_hypo_ada_2024_below_3_0() -> None:
    """ADA Standards of Care 2024 section 6: level 2 hypoglycaemia < 3.0 mmol/L."""
    assert rules_fired(series("glucose", [3.0, 2.9])) == ["glucose_level2_hypo"]


# --- hypertension ----------------------------------------------------------------------------


def _home_bp(systolic: float, diastolic: float, days: int = 7) -> list:  # type: ignore[type-arg]
    out = []
    for day in range(days):
        for hour in (7, 20):  # morning and evening, as the HBPM guideline asks
            at = T0 + day * DAY + timedelta(hours=hour - 10)
            out += [reading("bp_systolic", systolic, at), reading("bp_diastolic", diastolic, at)]
    return out


def test_bp_home_mean_high_chinese_hbpm_2019_135_85_over_7_days() -> None:
    """Chinese HBPM guideline 2019: 7-day home mean >= 135/85 mmHg -> review."""
    assert rules_fired(_home_bp(138, 80), ["hypertension"]) == ["bp_home_mean_high"]
    assert rules_fired(_home_bp(128, 86), ["hypertension"]) == ["bp_home_mean_high"]
    assert rules_fired(_home_bp(130, 80), ["hypertension"]) == []


def test_bp_home_mean_needs_12_readings_over_3_days_esh_2021() -> None:
    """ESH 2021: a home mean needs >= 12 readings (ours: over >= 3 days); 2 days are too few."""
    assert rules_fired(_home_bp(150, 95, days=2), ["hypertension"]) == []


def test_bp_crisis_diastolic_chinese_guideline_2018_dbp_110() -> None:
    """2018 Chinese hypertension guideline: DBP >= 110 mmHg is grade 3 -> urgent."""
    assert rules_fired([reading("bp_diastolic", 112)], ["hypertension"]) == ["bp_crisis_diastolic"]


def test_bp_low_systolic_hypotension_below_90_elderly() -> None:
    """2018 Chinese guideline, elderly: SBP < 90 mmHg -> ask about symptoms, review doses."""
    alerts = alerts_of([reading("bp_systolic", 86)], ["hypertension"])
    assert [a.rule for a in alerts] == ["bp_low_systolic"]
    assert "symptoms are not measured" in alerts[0].message


# --- diabetes --------------------------------------------------------------------------------


def test_glucose_level1_hypo_ada_2024_below_3_9() -> None:
    """ADA 2024 section 6: level 1 hypoglycaemia < 3.9 mmol/L."""
    assert rules_fired([reading("glucose", 3.6)], ["diabetes"]) == ["glucose_level1_hypo"]


def test_glucose_level2_in_diabetes_pack_is_the_core_rule_ada_2024() -> None:
    """ADA 2024: < 3.0 mmol/L is level 2 (and level 1); the shared rule runs once with core."""
    fired = rules_fired([reading("glucose", 2.7)], ["core", "diabetes"])
    assert sorted(fired) == ["glucose_level1_hypo", "glucose_level2_hypo"]


def test_glucose_high_referral_chinese_primary_care_2022_16_7() -> None:
    """China primary-care diabetes guideline 2022: random glucose >= 16.7 mmol/L -> referral."""
    assert rules_fired([reading("glucose", 17.0)], ["diabetes"]) == ["glucose_high_referral"]


def test_glucose_hyperosmolar_risk_kitabchi_2009_33_3() -> None:
    """ADA hyperglycaemic crises consensus (Kitabchi 2009): HHS glucose > 600 mg/dL."""
    fired = rules_fired([reading("glucose", 34.0)], ["diabetes"])
    assert sorted(fired) == ["glucose_high_referral", "glucose_hyperosmolar_risk"]


# --- heart failure ---------------------------------------------------------------------------


def test_hf_weight_gain_esc_2021_more_than_2_kg_in_3_days() -> None:
    """ESC 2021 heart-failure guideline: weight gain > 2 kg in 3 days -> act."""
    gain = series("weight", [70.0, 70.4, 71.2, 72.3], step=DAY)
    alerts = alerts_of(gain, ["heart_failure"])
    assert [a.rule for a in alerts] == ["hf_weight_gain"]
    assert alerts[0].value is not None and abs(alerts[0].value - 2.3) < 1e-9
    assert rules_fired(series("weight", [70.0, 71.0, 72.0], step=DAY), ["heart_failure"]) == []
    # Slow gain: 2.5 kg over 5 days is never > 2 kg within 3 days.
    slow = series("weight", [70.0, 70.5, 71.0, 71.5, 72.0, 72.5], step=DAY)
    assert rules_fired(slow, ["heart_failure"]) == []


# --- COPD ------------------------------------------------------------------------------------


def test_spo2_below_target_bts_2017_default_94_and_copd_88() -> None:
    """BTS 2017: target 94-98 % by default, 88-92 % for hypercapnic COPD (per patient)."""
    low = series("spo2", [91, 90])
    assert rules_fired(low, ["copd"]) == ["spo2_below_target"]
    copd = build_ruleset(
        ["copd"],
        overrides={"sim-p1": SubjectOverrides(parameters={"spo2_target_low": 88.0})},
    )
    assert rules_fired(low, copd) == []
    alerts = alerts_of(series("spo2", [87, 86]), copd)
    assert [a.rule for a in alerts] == ["spo2_below_target"]
    assert "88-98 %" in alerts[0].message


def test_spo2_above_target_on_oxygen_bts_2017_copd_target_92() -> None:
    """BTS 2017: above the target range on oxygen -> reduce oxygen (hypercapnia risk)."""
    copd = build_ruleset(
        ["copd"],
        overrides={
            "sim-p1": SubjectOverrides(
                parameters={"spo2_target_low": 88.0, "spo2_target_high": 92.0}
            )
        },
    )
    on_o2 = [reading("supplemental_o2", 1), reading("spo2", 95, MIN)]
    assert rules_fired(on_o2, copd) == ["spo2_above_target_on_oxygen"]
    on_air = [reading("supplemental_o2", 0), reading("spo2", 95, MIN)]
    assert rules_fired(on_air, copd) == []
    assert rules_fired(on_o2, ["copd"]) == []  # default target 94-98 %: 95 % is fine


# --- maternal --------------------------------------------------------------------------------


def _bp(systolic: float, diastolic: float, at: timedelta) -> list:  # type: ignore[type-arg]
    return [reading("bp_systolic", systolic, at), reading("bp_diastolic", diastolic, at)]


def test_maternal_bp_raised_twice_acog_222_two_occasions_4h_apart() -> None:
    """ACOG Practice Bulletin 222: >= 140/90 on two occasions >= 4 h apart."""
    two_hours = _bp(142, 88, timedelta(0)) + _bp(138, 92, 2 * HOUR)
    assert rules_fired(two_hours, ["maternal"]) == []
    four_hours = two_hours + _bp(130, 80, 3 * HOUR) + _bp(141, 85, 4 * HOUR)
    alerts = alerts_of(four_hours, ["maternal"])
    assert [a.rule for a in alerts] == ["maternal_bp_raised_twice"]
    assert alerts[0].time == T0 + 4 * HOUR


def test_maternal_bp_severe_acog_222_160_110() -> None:
    """ACOG Practice Bulletin 222: >= 160 or >= 110 mmHg is severe range -> treat now."""
    assert rules_fired(_bp(150, 112, timedelta(0)), ["maternal"]) == ["maternal_bp_severe"]


# --- elderly ---------------------------------------------------------------------------------


def test_hr_low_day_acc_aha_2018_below_50_for_10_minutes() -> None:
    """2018 ACC/AHA/HRS bradycardia guideline: sinus bradycardia < 50/min (sustained)."""
    assert rules_fired(series("heart_rate", [48] * 10), ["elderly"]) == []  # 9 minutes
    assert rules_fired(series("heart_rate", [48] * 11), ["elderly"]) == ["hr_low_day"]
    broken = [48] * 5 + [55] + [48] * 6
    assert rules_fired(series("heart_rate", broken), ["elderly"]) == []


def test_hr_low_night_acc_aha_2018_sleep_rates_in_the_40s_are_normal() -> None:
    """2018 ACC/AHA/HRS: rates in the 40s are common in sleep -> at night only < 40 alerts."""
    night = datetime(2026, 11, 25, 16, 0, tzinfo=UTC)  # 00:00 in Asia/Shanghai
    asleep = series("heart_rate", [45] * 12, start=night - T0)
    assert rules_fired(asleep, ["elderly"]) == []
    very_low = series("heart_rate", [38] * 12, start=night - T0)
    assert rules_fired(very_low, ["elderly"]) == ["hr_low_night"]


def test_hr_high_acc_aha_2015_above_120_for_10_minutes() -> None:
    """ACC/AHA/HRS 2015 (tachycardia > 100/min), alert bound 120 like NEWS2's 111-130 band."""
    assert rules_fired(series("heart_rate", [128] * 11), ["elderly"]) == ["hr_high"]
    assert rules_fired(series("heart_rate", [118] * 30), ["elderly"]) == []


def test_fever_idsa_2008_at_or_above_38() -> None:
    """Fever >= 38.0 C (IDSA 2008 allows 37.8 for frail elderly: a per-patient parameter)."""
    assert rules_fired([reading("body_temperature", 38.0)], ["elderly"]) == ["fever"]
    assert rules_fired([reading("body_temperature", 37.9)], ["elderly"]) == []
    frail = build_ruleset(
        ["elderly"],
        overrides={"sim-p1": SubjectOverrides(parameters={"fever_threshold": 37.8})},
    )
    assert rules_fired([reading("body_temperature", 37.9)], frail) == ["fever"]


def test_wearable_silent_iec_60601_1_8_loss_of_data_after_an_hour() -> None:
    """IEC 60601-1-8 technical alarm (loss of data): no value for 6 x 10 min cadence."""
    last = [reading("heart_rate", 70)]
    assert rules_fired(last, ["elderly"], now=T0 + 59 * MIN) == []
    alerts = alerts_of(last, ["elderly"], now=T0 + 61 * MIN)
    assert [a.rule for a in alerts] == ["wearable_silent"]
    assert alerts[0].time == T0 + 61 * MIN
    # Sensor-off readings are not data: the wearable is still silent.
    off = [*last, *series("heart_rate", [None] * 30, start=2 * MIN)]
    assert rules_fired(off, ["elderly"], now=T0 + 61 * MIN) == ["wearable_silent"]


# --- emergency -------------------------------------------------------------------------------


def _obs(at: timedelta, **vitals: float) -> list:  # type: ignore[type-arg]
    return [reading(name, value, at) for name, value in vitals.items()]


_SICK = {  # NEWS2: RR 24 (2) + SpO2 93 (2) + SBP 105 (1) + HR 115 (2) + T 38.5 (1) = 8
    "respiratory_rate": 24,
    "spo2": 93,
    "bp_systolic": 105,
    "heart_rate": 115,
    "body_temperature": 38.5,
}


def test_news2_emergency_rcp_2017_aggregate_7_fires_at_once() -> None:
    """RCP NEWS2 2017, Chart 2: aggregate >= 7 = high risk, emergency response."""
    alerts = alerts_of(_obs(timedelta(0), **_SICK), ["emergency"])
    assert "news2_emergency" in [a.rule for a in alerts]
    message = next(a.message for a in alerts if a.rule == "news2_emergency")
    assert "NEWS2 8" in message
    assert "air_or_oxygen, consciousness not measured" in message


def test_news2_urgent_rcp_2017_aggregate_5_confirmed_after_5_minutes() -> None:
    """RCP NEWS2 2017, Chart 2: aggregate 5-6 = medium risk; persists 5 min or next set."""
    medium = {"respiratory_rate": 22, "spo2": 94, "heart_rate": 112, "bp_systolic": 120}
    first = _obs(timedelta(0), **medium)  # 2 + 1 + 2 = 5
    assert "news2_urgent" not in rules_fired(first, ["emergency"])
    again = first + _obs(15 * MIN, **medium)
    assert "news2_urgent" in rules_fired(again, ["emergency"])


def test_news2_single_parameter_3_rcp_2017_red_score() -> None:
    """RCP NEWS2 2017, Chart 2: a single parameter scoring 3 = low-medium risk."""
    red = _obs(timedelta(0), respiratory_rate=7) + _obs(6 * MIN, respiratory_rate=8)
    assert rules_fired(red, ["emergency"]) == ["news2_single_parameter_3"]
    blip = _obs(timedelta(0), respiratory_rate=7) + _obs(MIN, respiratory_rate=12)
    assert rules_fired(blip, ["emergency"]) == []


def test_news2_uses_scale_2_for_a_hypercapnic_patient_rcp_2017() -> None:
    """RCP NEWS2 2017, Chart 1: SpO2 scale 2 (88-92 % scores 0) when the doctor prescribes it."""
    at_target = _obs(timedelta(0), spo2=88) + _obs(6 * MIN, spo2=88)
    assert rules_fired(at_target, ["emergency"]) == ["news2_single_parameter_3"]
    scale2 = build_ruleset(
        ["emergency"],
        overrides={"sim-p1": SubjectOverrides(parameters={"news2_spo2_scale": 2})},
    )
    assert rules_fired(at_target, scale2) == []


def test_mews_high_subbe_2001_at_least_5() -> None:
    """Subbe et al. QJM 2001: MEWS >= 5 associated with death and ICU admission."""
    sick = {"heart_rate": 132, "respiratory_rate": 22, "bp_systolic": 150}  # 3 + 2 + 0 = 5
    fired = rules_fired(_obs(timedelta(0), **sick) + _obs(6 * MIN, **sick), ["emergency"])
    assert "mews_high" in fired


def test_qsofa_positive_seymour_2016_two_criteria() -> None:
    """Sepsis-3 (Seymour 2016): qSOFA >= 2 of RR >= 22, SBP <= 100, GCS < 15."""
    alerts = alerts_of(_obs(timedelta(0), respiratory_rate=23, bp_systolic=98), ["emergency"])
    qsofa = [a for a in alerts if a.rule == "qsofa_positive"]
    assert len(qsofa) == 1
    assert "altered_mentation not measured" in qsofa[0].message


def test_shock_index_high_allgower_1967_at_least_1() -> None:
    """Allgower & Burri 1967: shock index >= 1.0 indicates shock."""
    fired = rules_fired(_obs(timedelta(0), heart_rate=105, bp_systolic=100), ["emergency"])
    assert "shock_index_high" in fired
    assert "shock_index_high" not in rules_fired(
        _obs(timedelta(0), heart_rate=80, bp_systolic=120), ["emergency"]
    )


def test_every_shipped_rule_has_a_test_here() -> None:
    """Guard: a new rule in a pack needs its clinical test in this file."""
    text = Path(__file__).read_text("utf-8")
    untested = [
        rule.name
        for name in pack_names()
        for rule in load_pack(name).rules
        if f"test_{rule.name}" not in text
    ]
    assert untested == []


def test_day_night_schedule_uses_the_configured_time_zone() -> None:
    """Schedules follow local time (default Asia/Shanghai); configurable per rule set."""
    from alert_rules import EngineConfig

    start = datetime(2026, 11, 25, 16, 0, tzinfo=UTC)  # 00:00 Shanghai, 16:00 UTC
    brady = series("heart_rate", [45] * 12, start=start - T0)
    assert rules_fired(brady, ["elderly"]) == []  # night in Shanghai: 45 is fine
    utc = build_ruleset(["elderly"], config=EngineConfig(timezone="UTC"))
    assert rules_fired(brady, utc) == ["hr_low_day"]  # 16:00 UTC: day
