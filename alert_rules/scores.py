"""Early-warning scores from one set of vital signs (pure): NEWS2, MEWS, qSOFA, shock index.

Inputs are a mapping from catalogue metric name to value in the catalogue's canonical unit
(``None`` or NaN = not measured). Each score names the parameters it could not score in
``missing`` and leaves them out of ``subscores``. A partial total is a lower bound: a missing
parameter never adds points and is never a silent 0.

Values are rounded to the resolution of the published chart before banding (whole numbers;
0.1 °C for temperature), half up, so a respiratory rate of 20.5/min scores like 21. The charts
are written for whole numbers, and rounding is how a nurse would chart a monitor's value.

A value outside the catalogue's plausible range raises ``ImplausibleValueError``. Ingest
dead-letters such values, and here they would only produce a confident wrong score.

Sources:
- NEWS2: Royal College of Physicians. National Early Warning Score (NEWS) 2: Standardising the
  assessment of acute-illness severity in the NHS. London: RCP, 2017. Chart 1 (scoring),
  Chart 2 (thresholds and triggers), Chart 4 (clinical response).
- MEWS: Subbe CP, Kruger M, Rutherford P, Gemmel L. Validation of a modified Early Warning
  Score in medical admissions. QJM 2001;94(10):521-526, Table 1.
- qSOFA: Seymour CW, Liu VX, Iwashyna TJ, et al. Assessment of clinical criteria for sepsis
  (Sepsis-3). JAMA 2016;315(8):762-774.
- Shock index: Allgöwer M, Burri C. "Schockindex". Dtsch Med Wochenschr 1967;92:1947-1950.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from types import MappingProxyType
from typing import Final, Literal

from vitals import ImplausibleValueError, metric

Vitals = Mapping[str, float | None]

#: A scoring table: ``(inclusive upper bound, points)`` rows in ascending order; the last row
#: has ``math.inf``. Written exactly as the published chart reads, so it can be audited.
Bands = tuple[tuple[float, int], ...]

INF: Final = math.inf

# --- NEWS2: RCP 2017, Chart 1 -----------------------------------------------------------------
NEWS2_RESPIRATION: Final[Bands] = ((8, 3), (11, 1), (20, 0), (24, 2), (INF, 3))
NEWS2_SPO2_SCALE_1: Final[Bands] = ((91, 3), (93, 2), (95, 1), (INF, 0))
#: Scale 2 (hypercapnic respiratory failure, target 88-92 %), at or below 92 %: air or oxygen.
NEWS2_SPO2_SCALE_2_LOW: Final[Bands] = ((83, 3), (85, 2), (87, 1), (92, 0))
#: Scale 2 above 92 %: 0 on air; on oxygen, over-oxygenation scores (93-94 → 1, 95-96 → 2,
#: ≥ 97 → 3).
NEWS2_SPO2_SCALE_2_HIGH_ON_OXYGEN: Final[Bands] = ((94, 1), (96, 2), (INF, 3))
NEWS2_OXYGEN_POINTS: Final = 2
NEWS2_SYSTOLIC: Final[Bands] = ((90, 3), (100, 2), (110, 1), (219, 0), (INF, 3))
NEWS2_PULSE: Final[Bands] = ((40, 3), (50, 1), (90, 0), (110, 1), (130, 2), (INF, 3))
#: Consciousness: Alert = 0; new Confusion, Voice, Pain, Unresponsive = 3. The catalogue
#: carries GCS, so GCS 15 = Alert and anything lower = not alert.
NEWS2_NOT_ALERT_POINTS: Final = 3
NEWS2_TEMPERATURE: Final[Bands] = ((35.0, 3), (36.0, 1), (38.0, 0), (39.0, 1), (INF, 2))
#: RCP 2017 Chart 2: aggregate 5-6 = medium (key threshold for urgent response), ≥ 7 = high.
NEWS2_MEDIUM_TOTAL: Final = 5
NEWS2_HIGH_TOTAL: Final = 7
#: A single parameter scoring 3 (a "red score") = low-medium: urgent ward-based response.
NEWS2_RED_SCORE: Final = 3

# --- MEWS: Subbe et al. 2001, Table 1 ------------------------------------------------------
MEWS_SYSTOLIC: Final[Bands] = ((70, 3), (80, 2), (100, 1), (199, 0), (INF, 2))
MEWS_HEART_RATE: Final[Bands] = ((40, 2), (50, 1), (100, 0), (110, 1), (129, 2), (INF, 3))
MEWS_RESPIRATION: Final[Bands] = ((8, 2), (14, 0), (20, 1), (29, 2), (INF, 3))
MEWS_TEMPERATURE: Final[Bands] = ((34.9, 2), (38.4, 0), (INF, 2))
#: AVPU from GCS (MEWS scores AVPU: A 0, V 1, P 2, U 3). There is no exact mapping. The
#: bounds are midway between the mean GCS of each AVPU level in Kelly CA, Upex A, Bateman DN,
#: Ann Emerg Med 2004;44:108-113 (A 15, V 13, P 8, U 6), except that only GCS 15 is Alert,
#: to match NEWS2 and qSOFA.
MEWS_AVPU_FROM_GCS: Final[Bands] = ((6, 3), (10, 2), (14, 1), (INF, 0))
#: Subbe 2001: MEWS ≥ 5 is associated with increased risk of death and ICU/HDU admission.
MEWS_HIGH_TOTAL: Final = 5

# --- qSOFA: Seymour et al. 2016 ------------------------------------------------------------
QSOFA_RESPIRATION_MIN: Final = 22  # ≥ 22/min
QSOFA_SYSTOLIC_MAX: Final = 100  # ≤ 100 mm Hg
QSOFA_GCS_ALERT: Final = 15  # altered mentation: GCS < 15
QSOFA_POSITIVE_TOTAL: Final = 2  # ≥ 2 criteria: high risk of poor outcome
#: (criterion, catalogue metric, comparison, threshold): one point when the comparison holds.
QSOFA_CRITERIA: Final[tuple[tuple[str, str, Callable[[float, float], bool], float], ...]] = (
    ("respiratory_rate", "respiratory_rate", operator.ge, QSOFA_RESPIRATION_MIN),
    ("systolic_bp", "bp_systolic", operator.le, QSOFA_SYSTOLIC_MAX),
    ("altered_mentation", "gcs", operator.lt, QSOFA_GCS_ALERT),
)

# --- Shock index: Allgöwer & Burri 1967 ------------------------------------------------------
#: Normal 0.5-0.7; ≥ 1.0 indicates shock.
SHOCK_INDEX_ELEVATED: Final = 0.7
SHOCK_INDEX_HIGH: Final = 1.0

News2Risk = Literal["low", "low-medium", "medium", "high"]


def _partial(response: str, missing: list[str]) -> str:
    """Say in the response text itself that a score with missing parameters is partial."""
    if not missing:
        return response
    return f"{response} (partial score, a lower bound: {', '.join(missing)} not measured)"


@dataclass(frozen=True, slots=True)
class EarlyWarningScore:
    """One aggregate score, its parts, and what was not there to score.

    ``subscores`` holds only the parameters that were measured; ``missing`` names the others.
    With anything missing, ``total`` and ``risk`` are lower bounds (``complete`` is False).
    """

    score: str
    total: int
    subscores: Mapping[str, int] = field(hash=False)
    risk: str
    response: str
    missing: tuple[str, ...]

    @property
    def complete(self) -> bool:
        """True when every parameter of the score was measured."""
        return not self.missing


@dataclass(frozen=True, slots=True)
class ShockIndex:
    """Heart rate / systolic pressure; ``value`` and ``risk`` are None when either is missing."""

    value: float | None
    risk: Literal["normal", "elevated", "high"] | None
    missing: tuple[str, ...]


# --- NEWS2 ---------------------------------------------------------------------------------


def news2(vitals: Vitals, *, spo2_scale: Literal[1, 2] = 1) -> EarlyWarningScore:
    """NEWS2 (RCP 2017, Chart 1) with the clinical risk and response of Charts 2 and 4.

    ``spo2_scale=2`` is for patients with confirmed hypercapnic respiratory failure and a
    prescribed target of 88-92 %. That is a clinical decision recorded with the patient, not
    a vital sign. Oxygen: ``supplemental_o2`` = 1, or ``fio2`` > 21 %. If either says oxygen,
    the patient is on oxygen.
    """
    subscores: dict[str, int] = {}
    missing: list[str] = []
    respiration = _value(vitals, "respiratory_rate")
    oxygen = _on_oxygen(vitals)
    spo2 = _value(vitals, "spo2")
    systolic = _value(vitals, "bp_systolic")
    pulse = _pulse(vitals)
    gcs = _value(vitals, "gcs")
    temperature = _value(vitals, "body_temperature")

    _score(subscores, missing, "respiration_rate", respiration, NEWS2_RESPIRATION)
    if spo2 is None:
        missing.append("spo2")
    elif spo2_scale == 1:
        subscores["spo2"] = _band(_round(spo2), NEWS2_SPO2_SCALE_1)
    else:
        # Scale 2 above 92 % depends on oxygen. With oxygen unknown, score as air (0): a
        # missing input never adds points, and "air_or_oxygen" is already listed as missing.
        subscores["spo2"] = _spo2_scale_2(_round(spo2), on_oxygen=bool(oxygen))
    if oxygen is None:
        missing.append("air_or_oxygen")
    else:
        subscores["air_or_oxygen"] = NEWS2_OXYGEN_POINTS if oxygen else 0
    _score(subscores, missing, "systolic_bp", systolic, NEWS2_SYSTOLIC)
    _score(subscores, missing, "pulse", pulse, NEWS2_PULSE)
    if gcs is None:
        missing.append("consciousness")
    else:
        subscores["consciousness"] = 0 if _round(gcs) >= 15 else NEWS2_NOT_ALERT_POINTS
    _score(subscores, missing, "temperature", temperature, NEWS2_TEMPERATURE, decimals=1)

    total = sum(subscores.values())
    risk, response = _news2_risk(total, red_score=NEWS2_RED_SCORE in subscores.values())
    return EarlyWarningScore(
        score="news2",
        total=total,
        subscores=MappingProxyType(subscores),
        risk=risk,
        response=_partial(response, missing),
        missing=tuple(missing),
    )


def _spo2_scale_2(spo2: float, *, on_oxygen: bool) -> int:
    """RCP 2017 Chart 1, SpO2 scale 2: low values as scale 1 shifted; high only on oxygen."""
    if spo2 <= NEWS2_SPO2_SCALE_2_LOW[-1][0]:
        return _band(spo2, NEWS2_SPO2_SCALE_2_LOW)
    if not on_oxygen:
        return 0
    return _band(spo2, NEWS2_SPO2_SCALE_2_HIGH_ON_OXYGEN)


def _news2_risk(total: int, *, red_score: bool) -> tuple[News2Risk, str]:
    """RCP 2017 Chart 2 (clinical risk) and Chart 4 (response), the higher one winning."""
    if total >= NEWS2_HIGH_TOTAL:
        return "high", "urgent or emergency response"
    if total >= NEWS2_MEDIUM_TOTAL:
        return "medium", "urgent response (key threshold)"
    if red_score:
        return "low-medium", "urgent ward-based response"
    if total == 0:
        return "low", "routine monitoring"
    return "low", "ward-based response"


# --- MEWS ----------------------------------------------------------------------------------


def mews(vitals: Vitals) -> EarlyWarningScore:
    """Modified Early Warning Score (Subbe et al. 2001, Table 1); ≥ 5 = high risk."""
    subscores: dict[str, int] = {}
    missing: list[str] = []
    _score(subscores, missing, "systolic_bp", _value(vitals, "bp_systolic"), MEWS_SYSTOLIC)
    _score(subscores, missing, "heart_rate", _pulse(vitals), MEWS_HEART_RATE)
    respiration = _value(vitals, "respiratory_rate")
    temperature = _value(vitals, "body_temperature")
    _score(subscores, missing, "respiratory_rate", respiration, MEWS_RESPIRATION)
    _score(subscores, missing, "temperature", temperature, MEWS_TEMPERATURE, decimals=1)
    _score(subscores, missing, "avpu", _value(vitals, "gcs"), MEWS_AVPU_FROM_GCS)
    total = sum(subscores.values())
    high = total >= MEWS_HIGH_TOTAL
    return EarlyWarningScore(
        score="mews",
        total=total,
        subscores=MappingProxyType(subscores),
        risk="high" if high else "low",
        response=_partial("urgent medical review" if high else "routine observation", missing),
        missing=tuple(missing),
    )


# --- qSOFA ---------------------------------------------------------------------------------


def qsofa(vitals: Vitals) -> EarlyWarningScore:
    """quick SOFA (Seymour et al. 2016): RR ≥ 22, SBP ≤ 100, GCS < 15; ≥ 2 = positive."""
    subscores: dict[str, int] = {}
    missing: list[str] = []
    for name, metric_name, met, threshold in QSOFA_CRITERIA:
        value = _value(vitals, metric_name)
        if value is None:
            missing.append(name)
        else:
            subscores[name] = int(met(_round(value), threshold))
    total = sum(subscores.values())
    positive = total >= QSOFA_POSITIVE_TOTAL
    return EarlyWarningScore(
        score="qsofa",
        total=total,
        subscores=MappingProxyType(subscores),
        risk="high" if positive else "low",
        response=_partial(
            "assess for sepsis and organ dysfunction" if positive else "routine", missing
        ),
        missing=tuple(missing),
    )


# --- Shock index ---------------------------------------------------------------------------


def shock_index(vitals: Vitals) -> ShockIndex:
    """Heart rate / systolic BP (Allgöwer & Burri 1967): < 0.7 normal, ≥ 1.0 high."""
    heart_rate = _pulse(vitals)
    systolic = _value(vitals, "bp_systolic")
    missing = tuple(
        name
        for name, value in (("heart_rate", heart_rate), ("systolic_bp", systolic))
        if value is None
    )
    if heart_rate is None or systolic is None:
        return ShockIndex(value=None, risk=None, missing=missing)
    value = heart_rate / systolic
    if value >= SHOCK_INDEX_HIGH:
        return ShockIndex(value=value, risk="high", missing=())
    if value >= SHOCK_INDEX_ELEVATED:
        return ShockIndex(value=value, risk="elevated", missing=())
    return ShockIndex(value=value, risk="normal", missing=())


# --- helpers -------------------------------------------------------------------------------


def _value(vitals: Vitals, name: str) -> float | None:
    """The value of a metric, None when absent or NaN, or ``ImplausibleValueError``."""
    raw = vitals.get(name)
    if raw is None:
        return None
    value = float(raw)
    if math.isnan(value):
        return None
    spec = metric(name)
    if not spec.is_plausible(value):
        raise ImplausibleValueError(
            f"{name} = {value} {spec.unit} is outside the plausible range "
            f"{spec.plausible_min}-{spec.plausible_max}: a device or entry fault, not scored"
        )
    return value


def _pulse(vitals: Vitals) -> float | None:
    """ECG heart rate when there is one, else the oximeter/cuff pulse rate."""
    heart_rate = _value(vitals, "heart_rate")
    return heart_rate if heart_rate is not None else _value(vitals, "pulse_rate")


def _on_oxygen(vitals: Vitals) -> bool | None:
    """On supplemental oxygen: ``supplemental_o2`` ≥ 0.5 or ``fio2`` > 21 %; None if neither."""
    flag = _value(vitals, "supplemental_o2")
    fio2 = _value(vitals, "fio2")
    if flag is None and fio2 is None:
        return None
    return (flag is not None and flag >= 0.5) or (fio2 is not None and fio2 > 21.0)


def _round(value: float, decimals: int = 0) -> float:
    """Half-up rounding to the chart's resolution (``repr`` digits, so 36.05 → 36.1)."""
    quantum = Decimal(1).scaleb(-decimals)
    return float(Decimal(repr(value)).quantize(quantum, rounding=ROUND_HALF_UP))


def _band(value: float, bands: Bands) -> int:
    for upper, points in bands:
        if value <= upper:
            return points
    raise AssertionError("a bands table must end at +inf")  # pragma: no cover


def _score(
    subscores: dict[str, int],
    missing: list[str],
    name: str,
    value: float | None,
    bands: Bands,
    *,
    decimals: int = 0,
) -> None:
    if value is None:
        missing.append(name)
    else:
        subscores[name] = _band(_round(value, decimals), bands)
