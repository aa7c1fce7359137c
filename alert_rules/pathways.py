"""Pre-hospital pathway activation rules (pure): which receiving team to pre-alert, and why.

Input: the incident's latest vitals (catalogue metric -> value in the canonical unit, ``None``
when not measured) and the crew's :class:`vitals.incident.Findings`, plus ``now``. Output: one
:class:`PathwayAssessment` per pathway saying whether it activates, the criteria met, the inputs
that were missing (never read as normal), and advice for the team. A pre-alert is a decision
support for the crew and the receiving hospital, not a diagnosis.

Sources (each rule's docstring says which part it follows):

- Stroke: BE-FAST - Aroor S, Singh R, Goldstein LB. BE-FAST (Balance, Eyes, Face, Arm, Speech,
  Time): reducing the proportion of strokes missed using the FAST mnemonic. Stroke
  2017;48:479-481. Treatment windows and glucose - Powers WJ, Rabinstein AA, et al. 2019 Update
  to the 2018 Guidelines for the Early Management of Acute Ischemic Stroke (AHA/ASA). Stroke
  2019;50:e344-e418: IV alteplase within 4.5 h of last known well (section 3.5), mechanical
  thrombectomy up to 24 h from last known well in selected patients (section 3.7, DAWN and
  DEFUSE 3 criteria), blood glucose the one test that must precede alteplase (section 3.2)
  and hypoglycaemia, blood glucose < 60 mg/dL (3.3 mmol/L), to be treated (section 4.5).
- STEMI: O'Gara PT, Kushner FG, et al. 2013 ACCF/AHA Guideline for the Management of
  ST-Elevation Myocardial Infarction. Circulation 2013;127:e362-e425, section 3.2 / Figure 1:
  primary PCI with first-medical-contact (FMC)-to-device time <= 90 min.
- Trauma: Newgard CD, Fischer PE, Gestring M, et al. National guideline for the field triage
  of injured patients: Recommendations of the National Expert Panel on Field Triage, 2021.
  J Trauma Acute Care Surg 2022;93(2):e49-e60 (American College of Surgeons). RED criteria,
  "Mental status & vital signs": unable to follow commands (motor GCS < 6); RR < 10 or > 29
  /min; room-air SpO2 < 90 %; age 0-9: SBP < 70 + 2 x age; age 10-64: SBP < 90 or HR > SBP;
  age >= 65: SBP < 110 or HR > SBP. (The 2011 CDC scheme's "GCS <= 13" was replaced by motor
  GCS < 6 in 2021.)
- Maternal: severe hypertension SBP >= 160 or DBP >= 110 mm Hg - ACOG Practice Bulletin No.
  222, Gestational Hypertension and Preeclampsia. Obstet Gynecol 2020;135:e237-e260, and ACOG
  Committee Opinion No. 767 (2019), acute-onset severe hypertension: treat within 30-60 min,
  confirm on a repeat reading after 15 min. Eclampsia = new-onset tonic-clonic seizure in
  pre-eclampsia (PB 222). Obstetric shock index - Nathan HL, El Ayadi A, Hezelgrave NL, et al.
  Shock index: an effective predictor of outcome in postpartum haemorrhage? BJOG
  2015;122:268-275: SI >= 0.9 predicts adverse outcome (normal pregnancy range 0.7-0.9,
  Le Bas A et al., Int J Gynaecol Obstet 2014;124:253-255).
- Sepsis: qSOFA >= 2 (Seymour CW et al., JAMA 2016;315:762-774; Singer M et al., JAMA
  2016;315:801-810) or NEWS2 >= 5 (RCP 2017, Chart 2; NICE NG51 uses NEWS2 >= 5 as high risk
  of severe illness from sepsis), each only with a suspected infection.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Final

from alert_rules.scores import news2, qsofa
from vitals import metric
from vitals.incident import TEAM_OF, Findings, Pathway, PathwayActivation, Team

Vitals = Mapping[str, float | None]

# --- stroke ---------------------------------------------------------------------------------
STROKE_GUIDELINE: Final = (
    "BE-FAST (Aroor et al., Stroke 2017); AHA/ASA acute ischaemic stroke guideline 2019 update "
    "(Powers et al., Stroke 2019;50:e344) sections 3.2, 3.5, 3.7, 4.5"
)
#: AHA/ASA 2019 section 3.5: IV alteplase within 4.5 h of last known well.
THROMBOLYSIS_WINDOW: Final = timedelta(hours=4, minutes=30)
#: AHA/ASA 2019 section 3.7: thrombectomy 6-24 h from last known well in selected patients.
THROMBECTOMY_WINDOW: Final = timedelta(hours=24)
#: AHA/ASA 2019 section 4.5: hypoglycaemia (< 60 mg/dL = 3.3 mmol/L) must be treated; it is
#: the classic stroke mimic, so it is excluded before a stroke pre-alert.
STROKE_GLUCOSE_MIN_MMOL: Final = 3.3

# --- STEMI ----------------------------------------------------------------------------------
STEMI_GUIDELINE: Final = (
    "2013 ACCF/AHA STEMI guideline (O'Gara et al., Circulation 2013;127:e362), section 3.2: "
    "FMC-to-device <= 90 min"
)
FMC_TO_DEVICE: Final = timedelta(minutes=90)

# --- trauma ---------------------------------------------------------------------------------
TRAUMA_GUIDELINE: Final = (
    "ACS National Guideline for the Field Triage of Injured Patients 2021 (Newgard et al., "
    "J Trauma Acute Care Surg 2022;93:e49), RED criteria: mental status & vital signs"
)
TRAUMA_MOTOR_GCS_BELOW: Final = 6
TRAUMA_RR_LOW: Final = 10  # RR < 10
TRAUMA_RR_HIGH: Final = 29  # RR > 29
TRAUMA_SPO2_BELOW: Final = 90  # room-air SpO2 < 90 %
TRAUMA_SBP_ADULT: Final = 90  # age 10-64
TRAUMA_SBP_OLDER: Final = 110  # age >= 65
TRAUMA_OLDER_AGE: Final = 65
TRAUMA_CHILD_AGE_BELOW: Final = 10  # age 0-9: SBP < 70 + 2 x age
#: GCS total = eye (1-4) + verbal (1-5) + motor (1-6), so motor <= total - 2: a total of 7 or
#: less proves motor < 6 even when the crew did not record the motor part.
GCS_TOTAL_IMPLYING_MOTOR_BELOW_6: Final = 7

# --- maternal -------------------------------------------------------------------------------
MATERNAL_GUIDELINE: Final = (
    "ACOG Practice Bulletin 222 (2020) and Committee Opinion 767 (2019): severe hypertension "
    "SBP >= 160 or DBP >= 110, eclampsia; obstetric shock index >= 0.9 in haemorrhage "
    "(Nathan et al., BJOG 2015;122:268)"
)
SEVERE_SYSTOLIC: Final = 160
SEVERE_DIASTOLIC: Final = 110
OBSTETRIC_SHOCK_INDEX: Final = 0.9

# --- sepsis ---------------------------------------------------------------------------------
SEPSIS_GUIDELINE: Final = (
    "Sepsis-3 qSOFA >= 2 (Seymour et al., JAMA 2016;315:762); NEWS2 >= 5 (RCP 2017 Chart 2; "
    "NICE NG51), with suspected infection"
)
QSOFA_POSITIVE: Final = 2
NEWS2_SEPSIS: Final = 5


@dataclass(frozen=True, slots=True)
class PathwayAssessment:
    """One pathway's verdict on one snapshot of an incident."""

    pathway: Pathway
    team: Team
    activated: bool
    guideline: str
    reasons: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    advice: tuple[str, ...] = ()
    deadline: datetime | None = None

    def activation(self, incident: str, now: datetime) -> PathwayActivation:
        """The contract record of this (activated) assessment."""
        if not self.activated:
            raise ValueError(f"the {self.pathway} pathway was not activated")
        return PathwayActivation(
            incident=incident,
            pathway=self.pathway,
            team=self.team,
            reasons=self.reasons,
            missing=self.missing,
            advice=self.advice,
            guideline=self.guideline,
            time=now,
            deadline=self.deadline,
        )


@dataclass
class _Verdict:
    """Mutable scratch of one rule while it runs."""

    reasons: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    advice: list[str] = field(default_factory=list)


def _clean(vitals: Vitals) -> tuple[dict[str, float], list[str]]:
    """Measured, plausible values only; implausible ones are named (ingest dead-letters them,
    so they only reach here from a faulty caller, and must not drive an activation)."""
    clean: dict[str, float] = {}
    rejected: list[str] = []
    for name, raw in vitals.items():
        if raw is None or math.isnan(raw):
            continue
        if not metric(name).is_plausible(raw):
            rejected.append(f"{name} (implausible {raw:g})")
            continue
        clean[name] = float(raw)
    return clean, rejected


def _pulse(v: Mapping[str, float]) -> float | None:
    return v.get("heart_rate", v.get("pulse_rate"))


def _hhmm(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def assess_stroke(v: Mapping[str, float], f: Findings, now: datetime) -> PathwayAssessment:
    """Stroke pre-alert: BE-FAST positive, last known well within 24 h, no hypoglycaemia.

    AHA/ASA 2019: alteplase up to 4.5 h (section 3.5) and thrombectomy up to 24 h (section
    3.7) from last known well, so 24 h bounds the pre-alert. Glucose below 3.3 mmol/L
    (60 mg/dL, section 4.5) is a hypoglycaemic mimic: no stroke activation, treat it first. A
    missing glucose does not delay the pre-alert but is reported (section 3.2: it must be
    measured before thrombolysis).
    """
    out = _Verdict()
    screen = f.befast_positive
    if screen is None:
        out.missing.append("BE-FAST screen")
    elif screen:
        out.reasons.append("BE-FAST positive")
    lkw = f.last_known_well
    in_window = False
    if lkw is None:
        out.missing.append("last known well time")
        out.advice.append("record the last-known-well time: it decides thrombolysis")
    elif lkw > now:
        out.missing.append("last known well time (in the future: check the entry)")
    else:
        since = now - lkw
        hours = since.total_seconds() / 3600
        if since <= THROMBECTOMY_WINDOW:
            in_window = True
            out.reasons.append(f"last known well {hours:.1f} h ago (<= 24 h)")
            if since <= THROMBOLYSIS_WINDOW:
                out.advice.append(f"IV thrombolysis window ends {_hhmm(lkw + THROMBOLYSIS_WINDOW)}")
            out.advice.append(
                f"thrombectomy window (selected patients) ends {_hhmm(lkw + THROMBECTOMY_WINDOW)}"
            )
        else:
            out.advice.append(f"last known well {hours:.1f} h ago: outside the 24 h window")
    glucose = v.get("glucose")
    hypoglycaemic = False
    if glucose is None:
        out.missing.append("glucose")
        out.advice.append("check capillary glucose: a hypoglycaemic mimic is not excluded")
    elif glucose < STROKE_GLUCOSE_MIN_MMOL:
        hypoglycaemic = True
        out.advice.append(
            f"glucose {glucose:g} mmol/L < {STROKE_GLUCOSE_MIN_MMOL}: treat hypoglycaemia "
            "first and reassess (stroke mimic)"
        )
    else:
        out.reasons.append(f"glucose {glucose:g} mmol/L (hypoglycaemia excluded)")
    activated = bool(screen) and in_window and not hypoglycaemic
    deadline = lkw + THROMBOLYSIS_WINDOW if activated and lkw is not None else None
    if deadline is not None and deadline < now:
        deadline = None
    return _result("stroke", activated, STROKE_GUIDELINE, out, deadline)


def assess_stemi(v: Mapping[str, float], f: Findings, now: datetime) -> PathwayAssessment:
    """Cath-lab pre-alert: ST elevation on the 12-lead; the deadline is FMC + 90 min.

    2013 ACCF/AHA STEMI guideline, section 3.2: primary PCI with an FMC-to-device time of
    90 min or less. Without the FMC time the lab is still activated (the ECG decides) and the
    missing clock is reported.
    """
    out = _Verdict()
    if f.st_elevation is None:
        out.missing.append("12-lead ST-elevation read")
    elif f.st_elevation:
        reason = "ST elevation on the 12-lead ECG"
        if f.ecg_12lead_at is not None:
            reason += f" ({_hhmm(f.ecg_12lead_at)})"
        out.reasons.append(reason)
    deadline = None
    if f.first_medical_contact is None:
        out.missing.append("first medical contact time")
    else:
        deadline = f.first_medical_contact + FMC_TO_DEVICE
        minutes = (deadline - now).total_seconds() / 60
        out.advice.append(
            f"FMC-to-device deadline {_hhmm(deadline)} ({minutes:.0f} min left)"
            if minutes >= 0
            else f"FMC-to-device deadline {_hhmm(deadline)} passed {-minutes:.0f} min ago"
        )
    return _result("stemi", bool(f.st_elevation), STEMI_GUIDELINE, out, deadline)


def assess_trauma(v: Mapping[str, float], f: Findings, now: datetime) -> PathwayAssessment:
    """Trauma-team activation: an injured patient meeting a 2021 field-triage RED criterion
    of mental status or vital signs (ACS 2021; see the module docstring for the list).

    SpO2 counts only on room air (the guideline says "room-air pulse oximetry"): on oxygen a
    low value still counts, a normal one proves nothing. The age bands decide the SBP limit;
    without the age the adult limit (SBP < 90) is used and the age is reported missing.
    """
    out = _Verdict()
    if f.injured is None:
        out.missing.append("injury (trauma mechanism)")
    if f.gcs_motor is not None:
        if f.gcs_motor < TRAUMA_MOTOR_GCS_BELOW:
            out.reasons.append(f"motor GCS {f.gcs_motor} < 6 (unable to follow commands)")
    elif (gcs := v.get("gcs")) is not None and gcs <= GCS_TOTAL_IMPLYING_MOTOR_BELOW_6:
        out.reasons.append(f"GCS {gcs:g} <= 7, so motor GCS < 6")
    else:
        out.missing.append("motor GCS")
    rr = v.get("respiratory_rate")
    if rr is None:
        out.missing.append("respiratory rate")
    elif rr < TRAUMA_RR_LOW or rr > TRAUMA_RR_HIGH:
        out.reasons.append(f"respiratory rate {rr:g}/min (< 10 or > 29)")
    spo2 = v.get("spo2")
    if spo2 is None:
        out.missing.append("SpO2")
    elif spo2 < TRAUMA_SPO2_BELOW:
        on_oxygen = v.get("supplemental_o2", 0.0) >= 0.5 or v.get("fio2", 21.0) > 21.0
        out.reasons.append(f"SpO2 {spo2:g} % < 90 %" + (" on oxygen" if on_oxygen else ""))
    sbp = v.get("bp_systolic")
    hr = _pulse(v)
    age = f.age_years
    if age is None:
        out.missing.append("age (adult SBP limit used)")
    if sbp is None:
        out.missing.append("systolic BP")
    else:
        if age is not None and age < TRAUMA_CHILD_AGE_BELOW:
            limit, band = 70 + 2 * age, f"age {age}: SBP < 70 + 2 x age"
        elif age is not None and age >= TRAUMA_OLDER_AGE:
            limit, band = TRAUMA_SBP_OLDER, f"age {age} >= 65: SBP < 110"
        else:
            limit, band = TRAUMA_SBP_ADULT, "SBP < 90"
        if sbp < limit:
            out.reasons.append(f"SBP {sbp:g} mm Hg ({band})")
        children = age is not None and age < TRAUMA_CHILD_AGE_BELOW
        if hr is not None and hr > sbp and not children:
            out.reasons.append(f"heart rate {hr:g} > SBP {sbp:g} (shock)")
    activated = bool(f.injured) and bool(out.reasons)
    return _result("trauma", activated, TRAUMA_GUIDELINE, out, None)


def assess_maternal(v: Mapping[str, float], f: Findings, now: datetime) -> PathwayAssessment:
    """Obstetric-team pre-alert in pregnancy or postpartum: severe hypertension (ACOG PB 222:
    SBP >= 160 or DBP >= 110), eclampsia (seizure), or haemorrhage with a shock index >= 0.9
    (Nathan et al. 2015: SI >= 0.9 predicts adverse outcome in obstetric haemorrhage; the
    non-obstetric >= 1.0 of Allgöwer misses shock in pregnancy's raised baseline).
    """
    out = _Verdict()
    obstetric = bool(f.pregnant) or bool(f.postpartum)
    if f.pregnant is None and f.postpartum is None:
        out.missing.append("pregnancy status")
    sbp = v.get("bp_systolic")
    dbp = v.get("bp_diastolic")
    if sbp is None and dbp is None:
        out.missing.append("blood pressure")
    severe = (sbp is not None and sbp >= SEVERE_SYSTOLIC) or (
        dbp is not None and dbp >= SEVERE_DIASTOLIC
    )
    if severe:
        out.reasons.append(
            f"severe hypertension {_fmt(sbp)}/{_fmt(dbp)} mm Hg (SBP >= 160 or DBP >= 110)"
        )
        out.advice.append(
            "treat within 30-60 min; confirm with a repeat reading after 15 min (ACOG CO 767)"
        )
    if f.seizure:
        out.reasons.append("seizure: eclampsia until proven otherwise")
        out.advice.append("magnesium sulfate per local eclampsia protocol")
    if f.haemorrhage:
        hr = _pulse(v)
        if hr is None or sbp is None:
            out.missing.append("heart rate and SBP for the shock index")
        elif (index := hr / sbp) >= OBSTETRIC_SHOCK_INDEX:
            out.reasons.append(f"haemorrhage with shock index {index:.2f} >= 0.9")
        else:
            out.advice.append(f"haemorrhage, shock index {index:.2f} < 0.9: keep measuring")
    activated = obstetric and bool(out.reasons)
    return _result("maternal", activated, MATERNAL_GUIDELINE, out, None)


def assess_sepsis(v: Mapping[str, float], f: Findings, now: datetime) -> PathwayAssessment:
    """Sepsis-team pre-alert: suspected infection with qSOFA >= 2 or NEWS2 >= 5.

    Reuses :func:`alert_rules.scores.qsofa` and :func:`~alert_rules.scores.news2`; a partial
    score is a lower bound, so it can activate but never clears the pathway.
    """
    out = _Verdict()
    if f.suspected_infection is None:
        out.missing.append("suspected infection")
    q = qsofa(v)
    n = news2(v)
    if q.total >= QSOFA_POSITIVE:
        out.reasons.append(f"qSOFA {q.total} >= 2")
    if n.total >= NEWS2_SEPSIS:
        out.reasons.append(f"NEWS2 {n.total} >= 5")
    if not out.reasons and (q.missing or n.missing):
        out.missing.extend(f"{name} (score partial)" for name in sorted({*q.missing, *n.missing}))
    activated = bool(f.suspected_infection) and bool(out.reasons)
    if activated:
        out.reasons.insert(0, "suspected infection")
    return _result("sepsis", activated, SEPSIS_GUIDELINE, out, None)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def _result(
    pathway: Pathway, activated: bool, guideline: str, out: _Verdict, deadline: datetime | None
) -> PathwayAssessment:
    return PathwayAssessment(
        pathway=pathway,
        team=TEAM_OF[pathway],
        activated=activated,
        guideline=guideline,
        reasons=tuple(out.reasons),
        missing=tuple(out.missing),
        advice=tuple(out.advice),
        deadline=deadline,
    )


Rule = Callable[[Mapping[str, float], Findings, datetime], PathwayAssessment]

#: Registry: pathway -> rule (auditable against the sources above).
RULES: Final[dict[Pathway, Rule]] = {
    "stroke": assess_stroke,
    "stemi": assess_stemi,
    "trauma": assess_trauma,
    "maternal": assess_maternal,
    "sepsis": assess_sepsis,
}


def assess_pathways(vitals: Vitals, findings: Findings, now: datetime) -> list[PathwayAssessment]:
    """Every pathway's assessment of one snapshot (latest vitals + findings) at ``now``."""
    clean, rejected = _clean(vitals)
    out: list[PathwayAssessment] = []
    for rule in RULES.values():
        result = rule(clean, findings, now)
        if rejected:
            result = replace(result, missing=(*result.missing, *rejected))
        out.append(result)
    return out


def activations(
    incident: str, vitals: Vitals, findings: Findings, now: datetime
) -> list[PathwayActivation]:
    """The activated pathways of one snapshot as contract records."""
    return [
        assessment.activation(incident, now)
        for assessment in assess_pathways(vitals, findings, now)
        if assessment.activated
    ]
