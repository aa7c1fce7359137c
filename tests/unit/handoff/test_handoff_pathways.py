"""Pathway activation rules, one group per guideline (the source is in each test's name)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from alert_rules.pathways import (
    activations,
    assess_maternal,
    assess_pathways,
    assess_sepsis,
    assess_stemi,
    assess_stroke,
    assess_trauma,
)
from vitals.incident import Findings

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
STABLE = {"heart_rate": 80.0, "spo2": 97.0, "respiratory_rate": 16.0, "bp_systolic": 130.0}


# --- stroke: BE-FAST (Aroor 2017) + AHA/ASA 2019 windows and glucose ------------------------


def test_stroke_aha_asa_2019_befast_with_lkw_in_window_and_normal_glucose_activates() -> None:
    f = Findings(befast_positive=True, last_known_well=NOW - timedelta(hours=2))
    result = assess_stroke({"glucose": 6.0}, f, NOW)
    assert result.activated and result.team == "stroke_team"
    assert result.deadline == NOW - timedelta(hours=2) + timedelta(hours=4, minutes=30)
    assert any("thrombolysis window" in a for a in result.advice)
    assert result.missing == ()


def test_stroke_aha_asa_2019_section_4_5_hypoglycaemia_blocks_and_says_treat_first() -> None:
    f = Findings(befast_positive=True, last_known_well=NOW - timedelta(hours=1))
    result = assess_stroke({"glucose": 2.6}, f, NOW)
    assert not result.activated
    assert any("treat hypoglycaemia first" in a for a in result.advice)


def test_stroke_aha_asa_2019_glucose_missing_activates_but_is_reported() -> None:
    f = Findings(befast_positive=True, last_known_well=NOW - timedelta(hours=1))
    result = assess_stroke({}, f, NOW)
    assert result.activated
    assert "glucose" in result.missing
    assert any("hypoglycaemic mimic is not excluded" in a for a in result.advice)


def test_stroke_aha_asa_2019_section_3_7_lkw_beyond_24h_does_not_activate() -> None:
    f = Findings(befast_positive=True, last_known_well=NOW - timedelta(hours=25))
    assert not assess_stroke({"glucose": 6.0}, f, NOW).activated


def test_stroke_aha_asa_2019_thrombectomy_window_6_to_24h_activates_without_lysis_deadline() -> (
    None
):
    f = Findings(befast_positive=True, last_known_well=NOW - timedelta(hours=10))
    result = assess_stroke({"glucose": 6.0}, f, NOW)
    assert result.activated and result.deadline is None
    assert not any("thrombolysis" in a for a in result.advice)


def test_stroke_befast_aroor_2017_unknown_lkw_or_negative_screen_does_not_activate() -> None:
    assert (
        "last known well time"
        in assess_stroke({"glucose": 6}, Findings(befast_positive=True), NOW).missing
    )
    assert not assess_stroke({"glucose": 6}, Findings(befast_positive=True), NOW).activated
    negative = Findings(befast_positive=False, last_known_well=NOW - timedelta(hours=1))
    assert not assess_stroke({"glucose": 6}, negative, NOW).activated


# --- STEMI: 2013 ACCF/AHA, FMC-to-device <= 90 min -------------------------------------------


def test_stemi_accf_aha_2013_st_elevation_activates_cath_lab_with_fmc_plus_90_deadline() -> None:
    fmc = NOW - timedelta(minutes=20)
    result = assess_stemi({}, Findings(st_elevation=True, first_medical_contact=fmc), NOW)
    assert result.activated and result.team == "cath_lab"
    assert result.deadline == fmc + timedelta(minutes=90)
    assert any("70 min left" in a for a in result.advice)


def test_stemi_accf_aha_2013_missing_fmc_is_reported_and_no_st_elevation_no_activation() -> None:
    assert (
        "first medical contact time" in assess_stemi({}, Findings(st_elevation=True), NOW).missing
    )
    assert not assess_stemi({}, Findings(st_elevation=False), NOW).activated
    assert "12-lead ST-elevation read" in assess_stemi({}, Findings(), NOW).missing


# --- trauma: ACS 2021 National Guideline for the Field Triage of Injured Patients ------------

INJURED = Findings(injured=True, age_years=40, gcs_motor=6)


@pytest.mark.parametrize(
    ("vitals", "expected"),
    [
        ({"respiratory_rate": 9}, "respiratory rate 9/min"),
        ({"respiratory_rate": 30}, "respiratory rate 30/min"),
        ({"spo2": 89}, "SpO2 89 %"),
        ({"bp_systolic": 89}, "SBP 89"),
        ({"bp_systolic": 100, "heart_rate": 101}, "heart rate 101 > SBP 100"),
    ],
)
def test_trauma_acs_2021_field_triage_red_vital_sign_criteria(
    vitals: dict[str, float], expected: str
) -> None:
    result = assess_trauma({**STABLE, **vitals}, INJURED, NOW)
    assert result.activated and result.team == "trauma_team"
    assert any(expected in r for r in result.reasons)


def test_trauma_acs_2021_boundaries_rr_10_and_29_spo2_90_sbp_90_do_not_activate() -> None:
    vitals = {"respiratory_rate": 10, "spo2": 90, "bp_systolic": 90, "heart_rate": 90}
    assert not assess_trauma(vitals, INJURED, NOW).activated
    assert not assess_trauma({**vitals, "respiratory_rate": 29}, INJURED, NOW).activated


def test_trauma_acs_2021_motor_gcs_below_6_and_total_gcs_7_implies_it() -> None:
    assert assess_trauma(STABLE, Findings(injured=True, gcs_motor=5), NOW).activated
    assert assess_trauma({**STABLE, "gcs": 7}, Findings(injured=True), NOW).activated
    # GCS 8 could still be motor 6 (E1 V1 M6): not a red criterion by itself.
    assert not assess_trauma({**STABLE, "gcs": 8}, Findings(injured=True), NOW).activated


def test_trauma_acs_2021_age_65_or_more_uses_sbp_below_110() -> None:
    older = Findings(injured=True, age_years=70, gcs_motor=6)
    assert assess_trauma({**STABLE, "bp_systolic": 105}, older, NOW).activated
    assert not assess_trauma({**STABLE, "bp_systolic": 105}, INJURED, NOW).activated


def test_trauma_acs_2021_age_0_to_9_uses_sbp_below_70_plus_twice_age() -> None:
    child = Findings(injured=True, age_years=5, gcs_motor=6)
    assert assess_trauma({**STABLE, "bp_systolic": 79, "heart_rate": 120}, child, NOW).activated
    # HR > SBP is not a child criterion (age 0-9 uses the SBP formula only).
    assert not assess_trauma({**STABLE, "bp_systolic": 85, "heart_rate": 120}, child, NOW).activated


def test_trauma_acs_2021_applies_to_injured_patients_only() -> None:
    shocked = {**STABLE, "bp_systolic": 80}
    assert not assess_trauma(shocked, Findings(injured=False, gcs_motor=6), NOW).activated
    assert "injury (trauma mechanism)" in assess_trauma(shocked, Findings(), NOW).missing


# --- maternal: ACOG PB 222 / CO 767; obstetric shock index (Nathan 2015) ---------------------

PREGNANT = Findings(pregnant=True)


@pytest.mark.parametrize(("sbp", "dbp"), [(160, 90), (150, 110)])
def test_maternal_acog_pb222_severe_hypertension_activates_obstetric_team(
    sbp: float, dbp: float
) -> None:
    result = assess_maternal({"bp_systolic": sbp, "bp_diastolic": dbp}, PREGNANT, NOW)
    assert result.activated and result.team == "obstetric_team"
    assert any("ACOG CO 767" in a for a in result.advice)


def test_maternal_acog_pb222_below_severe_range_or_not_pregnant_does_not_activate() -> None:
    assert not assess_maternal({"bp_systolic": 159, "bp_diastolic": 109}, PREGNANT, NOW).activated
    severe = {"bp_systolic": 170, "bp_diastolic": 115}
    assert not assess_maternal(severe, Findings(pregnant=False), NOW).activated
    assert "pregnancy status" in assess_maternal(severe, Findings(), NOW).missing


def test_maternal_acog_pb222_eclampsia_seizure_activates() -> None:
    result = assess_maternal(STABLE, Findings(pregnant=True, seizure=True), NOW)
    assert result.activated and any("eclampsia" in r for r in result.reasons)


def test_maternal_nathan_2015_shock_index_0_9_in_haemorrhage() -> None:
    bleeding = Findings(postpartum=True, haemorrhage=True)
    assert assess_maternal({"heart_rate": 99, "bp_systolic": 110}, bleeding, NOW).activated
    assert not assess_maternal({"heart_rate": 88, "bp_systolic": 110}, bleeding, NOW).activated


# --- sepsis: qSOFA (Seymour 2016) / NEWS2 (RCP 2017) with suspected infection ----------------


def test_sepsis_qsofa_seymour_2016_two_criteria_with_infection_activates() -> None:
    vitals = {"respiratory_rate": 24, "bp_systolic": 98, "gcs": 15}
    result = assess_sepsis(vitals, Findings(suspected_infection=True), NOW)
    assert result.activated and result.team == "sepsis_team"
    assert any("qSOFA 2" in r for r in result.reasons)


def test_sepsis_news2_rcp_2017_five_or_more_with_infection_activates() -> None:
    vitals = {
        "respiratory_rate": 22,
        "spo2": 95,
        "bp_systolic": 120,
        "heart_rate": 112,
        "body_temperature": 38.5,
        "gcs": 15,
    }
    result = assess_sepsis(vitals, Findings(suspected_infection=True), NOW)
    assert result.activated and any("NEWS2" in r for r in result.reasons)


def test_sepsis_requires_suspected_infection() -> None:
    vitals = {"respiratory_rate": 24, "bp_systolic": 98, "gcs": 13}
    assert not assess_sepsis(vitals, Findings(suspected_infection=False), NOW).activated
    assert "suspected infection" in assess_sepsis(vitals, Findings(), NOW).missing


# --- the registry ---------------------------------------------------------------------------


def test_assess_pathways_covers_all_five_and_reports_implausible_values() -> None:
    results = assess_pathways({"heart_rate": 400.0, "glucose": None}, Findings(), NOW)
    assert [r.pathway for r in results] == ["stroke", "stemi", "trauma", "maternal", "sepsis"]
    assert all(any("implausible" in m for m in r.missing) for r in results)
    assert not any(r.activated for r in results)


def test_activations_are_contract_records_with_team_and_guideline() -> None:
    f = Findings(st_elevation=True, first_medical_contact=NOW)
    (only,) = activations("inc-1", STABLE, f, NOW)
    assert only.pathway == "stemi" and only.team == "cath_lab" and "O'Gara" in only.guideline
