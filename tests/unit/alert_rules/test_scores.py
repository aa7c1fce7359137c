"""Early-warning scores (alert_rules.scores) at every boundary of the published charts.

NEWS2: Royal College of Physicians 2017, Chart 1 (scoring) and Chart 2 (thresholds/triggers).
MEWS: Subbe et al., QJM 2001, Table 1. qSOFA: Seymour et al., JAMA 2016. Shock index:
Allgöwer & Burri 1967.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alert_rules.scores import EarlyWarningScore, Vitals, mews, news2, qsofa, shock_index
from vitals import ImplausibleValueError

NORMAL = {
    "respiratory_rate": 16.0,
    "spo2": 97.0,
    "supplemental_o2": 0.0,
    "bp_systolic": 125.0,
    "heart_rate": 72.0,
    "gcs": 15.0,
    "body_temperature": 37.0,
}
NEWS2_PARAMETERS = {
    "respiration_rate",
    "spo2",
    "air_or_oxygen",
    "systolic_bp",
    "pulse",
    "consciousness",
    "temperature",
}


def _news2_sub(parameter: str, metric: str, value: float, scale: int = 1) -> int:
    vitals: dict[str, float | None] = {**NORMAL, metric: value}
    result = news2(vitals, spo2_scale=2) if scale == 2 else news2(vitals)
    return result.subscores[parameter]


# --- NEWS2, RCP 2017 Chart 1, parameter by parameter ------------------------------------------


@pytest.mark.parametrize(
    ("rate", "points"),
    [(0, 3), (8, 3), (9, 1), (11, 1), (12, 0), (20, 0), (21, 2), (24, 2), (25, 3), (60, 3)],
)
def test_news2_rcp2017_chart1_respiration_rate(rate: float, points: int) -> None:
    """RCP 2017 Chart 1: ≤8 → 3, 9-11 → 1, 12-20 → 0, 21-24 → 2, ≥25 → 3."""
    assert _news2_sub("respiration_rate", "respiratory_rate", rate) == points


@pytest.mark.parametrize(
    ("spo2", "points"),
    [(40, 3), (91, 3), (92, 2), (93, 2), (94, 1), (95, 1), (96, 0), (100, 0)],
)
def test_news2_rcp2017_chart1_spo2_scale_1(spo2: float, points: int) -> None:
    """RCP 2017 Chart 1 SpO2 scale 1: ≤91 → 3, 92-93 → 2, 94-95 → 1, ≥96 → 0."""
    assert _news2_sub("spo2", "spo2", spo2) == points


@pytest.mark.parametrize(
    ("spo2", "oxygen", "points"),
    [
        (83, 0, 3),
        (84, 0, 2),
        (85, 0, 2),
        (86, 0, 1),
        (87, 0, 1),
        (88, 0, 0),
        (92, 0, 0),
        (93, 0, 0),  # ≥93 on air
        (100, 0, 0),
        (83, 1, 3),
        (88, 1, 0),
        (92, 1, 0),
        (93, 1, 1),  # 93-94 on oxygen
        (94, 1, 1),
        (95, 1, 2),  # 95-96 on oxygen
        (96, 1, 2),
        (97, 1, 3),  # ≥97 on oxygen
        (100, 1, 3),
    ],
)
def test_news2_rcp2017_chart1_spo2_scale_2(spo2: float, oxygen: float, points: int) -> None:
    """RCP 2017 Chart 1 SpO2 scale 2 (hypercapnic respiratory failure, target 88-92 %)."""
    vitals: dict[str, float | None] = {**NORMAL, "spo2": spo2, "supplemental_o2": oxygen}
    assert news2(vitals, spo2_scale=2).subscores["spo2"] == points


def test_news2_rcp2017_chart1_spo2_scale_2_with_oxygen_unknown_scores_as_air() -> None:
    """Missing oxygen status never adds points; it is reported as missing instead."""
    vitals: dict[str, float | None] = {**NORMAL, "spo2": 99, "supplemental_o2": None}
    result = news2(vitals, spo2_scale=2)
    assert result.subscores["spo2"] == 0
    assert result.missing == ("air_or_oxygen",)


@pytest.mark.parametrize(
    ("supplemental_o2", "fio2", "points"),
    [(0, None, 0), (1, None, 2), (None, 21, 0), (None, 21.5, 2), (None, 40, 2), (0, 28, 2)],
)
def test_news2_rcp2017_chart1_air_or_oxygen(
    supplemental_o2: float | None, fio2: float | None, points: int
) -> None:
    """RCP 2017 Chart 1: oxygen → 2, air → 0; FiO2 above 21 % means oxygen."""
    vitals: dict[str, float | None] = {**NORMAL, "supplemental_o2": supplemental_o2}
    vitals["fio2"] = fio2
    assert news2(vitals).subscores["air_or_oxygen"] == points


@pytest.mark.parametrize(
    ("systolic", "points"),
    [(40, 3), (90, 3), (91, 2), (100, 2), (101, 1), (110, 1), (111, 0), (219, 0), (220, 3)],
)
def test_news2_rcp2017_chart1_systolic_bp(systolic: float, points: int) -> None:
    """RCP 2017 Chart 1: ≤90 → 3, 91-100 → 2, 101-110 → 1, 111-219 → 0, ≥220 → 3."""
    assert _news2_sub("systolic_bp", "bp_systolic", systolic) == points


@pytest.mark.parametrize(
    ("pulse", "points"),
    [
        (15, 3),
        (40, 3),
        (41, 1),
        (50, 1),
        (51, 0),
        (90, 0),
        (91, 1),
        (110, 1),
        (111, 2),
        (130, 2),
        (131, 3),
        (250, 3),
    ],
)
def test_news2_rcp2017_chart1_pulse(pulse: float, points: int) -> None:
    """RCP 2017 Chart 1: ≤40 → 3, 41-50 → 1, 51-90 → 0, 91-110 → 1, 111-130 → 2, ≥131 → 3."""
    assert _news2_sub("pulse", "heart_rate", pulse) == points


def test_news2_rcp2017_chart1_pulse_falls_back_to_pulse_rate() -> None:
    vitals: dict[str, float | None] = {**NORMAL, "heart_rate": None, "pulse_rate": 135}
    assert news2(vitals).subscores["pulse"] == 3


@pytest.mark.parametrize(("gcs", "points"), [(15, 0), (14, 3), (8, 3), (3, 3)])
def test_news2_rcp2017_chart1_consciousness_from_gcs(gcs: float, points: int) -> None:
    """RCP 2017 Chart 1: Alert → 0; new confusion/V/P/U → 3 (GCS < 15 = not alert)."""
    assert _news2_sub("consciousness", "gcs", gcs) == points


@pytest.mark.parametrize(
    ("temperature", "points"),
    [
        (30.0, 3),
        (35.0, 3),
        (35.1, 1),
        (36.0, 1),
        (36.1, 0),
        (38.0, 0),
        (38.1, 1),
        (39.0, 1),
        (39.1, 2),
        (42.0, 2),
        (35.04, 3),  # charted as 35.0
        (36.05, 0),  # charted as 36.1 (half up)
    ],
)
def test_news2_rcp2017_chart1_temperature(temperature: float, points: int) -> None:
    """RCP 2017 Chart 1: ≤35.0 → 3, 35.1-36.0 → 1, 36.1-38.0 → 0, 38.1-39.0 → 1, ≥39.1 → 2."""
    assert _news2_sub("temperature", "body_temperature", temperature) == points


def test_news2_rounds_to_the_chart_resolution_half_up() -> None:
    assert _news2_sub("respiration_rate", "respiratory_rate", 20.49) == 0
    assert _news2_sub("respiration_rate", "respiratory_rate", 20.5) == 2


# --- NEWS2, RCP 2017 Chart 2: aggregate thresholds and triggers -------------------------------


def _with(**changes: float) -> dict[str, float | None]:
    return {**NORMAL, **changes}


@pytest.mark.parametrize(
    ("vitals", "total", "risk"),
    [
        (_with(), 0, "low"),
        (_with(respiratory_rate=10), 1, "low"),  # 1
        (_with(respiratory_rate=10, heart_rate=115, body_temperature=38.5), 4, "low"),  # 1+2+1
        (_with(gcs=14), 3, "low-medium"),  # single red score
        (_with(spo2=90, respiratory_rate=10), 4, "low-medium"),  # red score 3 + 1
        (_with(respiratory_rate=22, heart_rate=115, body_temperature=38.5), 5, "medium"),
        (_with(respiratory_rate=22, heart_rate=115, supplemental_o2=1), 6, "medium"),
        (_with(respiratory_rate=22, heart_rate=115, supplemental_o2=1, spo2=95), 7, "high"),
        (_with(respiratory_rate=30, heart_rate=140, bp_systolic=85, gcs=9), 12, "high"),
    ],
)
def test_news2_rcp2017_chart2_aggregate_risk(
    vitals: dict[str, float | None], total: int, risk: str
) -> None:
    """RCP 2017 Chart 2: 0-4 low; a 3 in any one parameter low-medium; 5-6 medium; ≥7 high."""
    result = news2(vitals)
    assert result.total == total
    assert result.risk == risk
    assert result.complete


@pytest.mark.parametrize(
    ("risk", "response"),
    [
        ("low", "ward-based response"),
        ("low-medium", "urgent ward-based response"),
        ("medium", "urgent response (key threshold)"),
        ("high", "urgent or emergency response"),
    ],
)
def test_news2_rcp2017_chart4_response_text(risk: str, response: str) -> None:
    examples = {
        "low": _with(respiratory_rate=10),
        "low-medium": _with(gcs=14),
        "medium": _with(respiratory_rate=22, heart_rate=115, body_temperature=38.5),
        "high": _with(respiratory_rate=30, heart_rate=140, body_temperature=38.5),
    }
    result = news2(examples[risk])
    assert result.risk == risk
    assert result.response == response


def test_news2_zero_is_routine_monitoring() -> None:
    assert news2(NORMAL).response == "routine monitoring"


# --- partial input -----------------------------------------------------------------------------


def test_news2_partial_input_names_what_is_missing_and_never_scores_it() -> None:
    result = news2({"respiratory_rate": 26, "spo2": None, "heart_rate": float("nan")})
    assert result.subscores == {"respiration_rate": 3}
    assert result.total == 3
    assert set(result.missing) == NEWS2_PARAMETERS - {"respiration_rate"}
    assert not result.complete
    assert "partial score" in result.response


def test_news2_nothing_measured_is_an_empty_partial_score() -> None:
    result = news2({})
    assert result.total == 0
    assert dict(result.subscores) == {}
    assert set(result.missing) == NEWS2_PARAMETERS


def test_implausible_values_are_rejected_not_scored() -> None:
    with pytest.raises(ImplausibleValueError):
        news2({"bp_systolic": 900})
    with pytest.raises(ImplausibleValueError):
        qsofa({"gcs": 16})


# --- MEWS, Subbe 2001 Table 1 ------------------------------------------------------------------


def _mews_sub(parameter: str, metric: str, value: float) -> int:
    return mews({**NORMAL, metric: value}).subscores[parameter]


@pytest.mark.parametrize(
    ("systolic", "points"),
    [(40, 3), (70, 3), (71, 2), (80, 2), (81, 1), (100, 1), (101, 0), (199, 0), (200, 2)],
)
def test_mews_subbe2001_systolic_bp(systolic: float, points: int) -> None:
    assert _mews_sub("systolic_bp", "bp_systolic", systolic) == points


@pytest.mark.parametrize(
    ("rate", "points"),
    [
        (40, 2),
        (41, 1),
        (50, 1),
        (51, 0),
        (100, 0),
        (101, 1),
        (110, 1),
        (111, 2),
        (129, 2),
        (130, 3),
    ],
)
def test_mews_subbe2001_heart_rate(rate: float, points: int) -> None:
    assert _mews_sub("heart_rate", "heart_rate", rate) == points


@pytest.mark.parametrize(
    ("rate", "points"),
    [(0, 2), (8, 2), (9, 0), (14, 0), (15, 1), (20, 1), (21, 2), (29, 2), (30, 3)],
)
def test_mews_subbe2001_respiratory_rate(rate: float, points: int) -> None:
    assert _mews_sub("respiratory_rate", "respiratory_rate", rate) == points


@pytest.mark.parametrize(
    ("temperature", "points"), [(34.9, 2), (35.0, 0), (38.4, 0), (38.5, 2), (41.0, 2)]
)
def test_mews_subbe2001_temperature(temperature: float, points: int) -> None:
    assert _mews_sub("temperature", "body_temperature", temperature) == points


@pytest.mark.parametrize(
    ("gcs", "points"), [(15, 0), (14, 1), (11, 1), (10, 2), (7, 2), (6, 3), (3, 3)]
)
def test_mews_subbe2001_avpu_from_gcs(gcs: float, points: int) -> None:
    assert _mews_sub("avpu", "gcs", gcs) == points


def test_mews_subbe2001_five_or_more_is_high_risk() -> None:
    four = mews(_with(respiratory_rate=22, heart_rate=112))  # 2 + 2
    five = mews(_with(respiratory_rate=22, heart_rate=112, bp_systolic=95))  # 2 + 2 + 1
    assert (four.total, four.risk) == (4, "low")
    assert (five.total, five.risk) == (5, "high")


def test_mews_partial() -> None:
    result = mews({"bp_systolic": 65})
    assert result.subscores == {"systolic_bp": 3}
    assert result.missing == ("heart_rate", "respiratory_rate", "temperature", "avpu")


# --- qSOFA, Seymour 2016 -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "total", "risk"),
    [
        ({}, 0, "low"),
        ({"respiratory_rate": 21}, 0, "low"),
        ({"respiratory_rate": 22}, 1, "low"),
        ({"bp_systolic": 101}, 0, "low"),
        ({"bp_systolic": 100}, 1, "low"),
        ({"gcs": 14}, 1, "low"),
        ({"respiratory_rate": 22, "bp_systolic": 100}, 2, "high"),
        ({"respiratory_rate": 30, "bp_systolic": 80, "gcs": 10}, 3, "high"),
    ],
)
def test_qsofa_seymour2016_criteria(changes: dict[str, float], total: int, risk: str) -> None:
    """Seymour 2016: RR ≥ 22, SBP ≤ 100, altered mentation (GCS < 15); ≥ 2 positive."""
    result = qsofa({**NORMAL, **changes})
    assert (result.total, result.risk) == (total, risk)


def test_qsofa_partial_can_already_be_positive() -> None:
    result = qsofa({"respiratory_rate": 24, "bp_systolic": 90})
    assert result.total == 2
    assert result.risk == "high"
    assert result.missing == ("altered_mentation",)


# --- shock index -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("heart_rate", "systolic", "risk"),
    [(69, 100, "normal"), (70, 100, "elevated"), (99, 100, "elevated"), (100, 100, "high")],
)
def test_shock_index_allgower1967_bands(heart_rate: float, systolic: float, risk: str) -> None:
    result = shock_index({"heart_rate": heart_rate, "bp_systolic": systolic})
    assert result.value == pytest.approx(heart_rate / systolic)
    assert result.risk == risk
    assert result.missing == ()


def test_shock_index_missing_input_gives_no_value() -> None:
    result = shock_index({"heart_rate": 120})
    assert (result.value, result.risk, result.missing) == (None, None, ("systolic_bp",))
    assert shock_index({"pulse_rate": 120, "bp_systolic": 100}).risk == "high"


# --- properties ----------------------------------------------------------------------------

# (score function, subscore name, metric, plausible range, the normal value the chart is
# monotone away from). The charts are monotone on each side of normal.
MONOTONE = [
    (news2, "respiration_rate", "respiratory_rate", (0.0, 80.0), 16.0),
    (news2, "spo2", "spo2", (40.0, 100.0), 100.0),
    (news2, "systolic_bp", "bp_systolic", (40.0, 300.0), 150.0),
    (news2, "pulse", "heart_rate", (15.0, 300.0), 70.0),
    (news2, "consciousness", "gcs", (3.0, 15.0), 15.0),
    (news2, "temperature", "body_temperature", (25.0, 45.0), 37.0),
    (mews, "systolic_bp", "bp_systolic", (40.0, 300.0), 150.0),
    (mews, "heart_rate", "heart_rate", (15.0, 300.0), 75.0),
    (mews, "respiratory_rate", "respiratory_rate", (0.0, 80.0), 12.0),
    (mews, "temperature", "body_temperature", (25.0, 45.0), 37.0),
    (mews, "avpu", "gcs", (3.0, 15.0), 15.0),
    (qsofa, "respiratory_rate", "respiratory_rate", (0.0, 80.0), 0.0),
    (qsofa, "systolic_bp", "bp_systolic", (40.0, 300.0), 300.0),
    (qsofa, "altered_mentation", "gcs", (3.0, 15.0), 15.0),
]


@given(st.sampled_from(MONOTONE), st.booleans(), st.floats(0, 1), st.floats(0, 1))
def test_subscore_is_monotone_in_distance_from_normal(
    case: tuple[Callable[[Vitals], EarlyWarningScore], str, str, tuple[float, float], float],
    below_normal: bool,
    u: float,
    v: float,
) -> None:
    """Further from normal on the same side never scores fewer points (every chart here)."""
    score, parameter, metric, (low, high), normal = case
    near, far = sorted((u, v))  # fractions of the way from normal to the plausible limit
    limit = low if below_normal else high
    near_value = normal + near * (limit - normal)
    far_value = normal + far * (limit - normal)
    near_points = score({metric: near_value}).subscores[parameter]
    far_points = score({metric: far_value}).subscores[parameter]
    assert far_points >= near_points


@given(
    st.sampled_from([(0.0, 1.0), (1.0, 0.0)]),
    st.floats(88.0, 100.0),
    st.floats(88.0, 100.0),
)
def test_news2_scale_2_on_oxygen_is_monotone_above_target(
    oxygen: tuple[float, float], a: float, b: float
) -> None:
    """RCP 2017 Chart 1 scale 2: above the 88-92 % target, more SpO2 on oxygen never scores
    less; on air it scores nothing."""
    on_oxygen = oxygen[0]
    low, high = sorted((a, b))
    points_low = news2({"spo2": low, "supplemental_o2": on_oxygen}, spo2_scale=2)
    points_high = news2({"spo2": high, "supplemental_o2": on_oxygen}, spo2_scale=2)
    if on_oxygen:
        assert points_high.subscores["spo2"] >= points_low.subscores["spo2"]
    else:
        assert points_high.subscores["spo2"] == points_low.subscores["spo2"] == 0


VITALS = st.fixed_dictionaries(
    {
        "respiratory_rate": st.floats(0, 80),
        "spo2": st.floats(40, 100),
        "supplemental_o2": st.sampled_from([0.0, 1.0]),
        "fio2": st.floats(21, 100),
        "bp_systolic": st.floats(40, 300),
        # pulse_rate left out: it stands in for a missing heart_rate, so dropping heart_rate
        # would swap in a different measurement rather than remove one.
        "heart_rate": st.floats(15, 300),
        "gcs": st.integers(3, 15).map(float),
        "body_temperature": st.floats(25, 45),
    }
)


@given(VITALS, st.sets(st.sampled_from([*sorted(NORMAL), "fio2"])), st.booleans())
def test_missing_inputs_never_add_points(
    vitals: dict[str, float], dropped: set[str], scale_2: bool
) -> None:
    full: dict[str, float | None] = dict(vitals)
    partial: dict[str, float | None] = {k: (None if k in dropped else v) for k, v in full.items()}
    scale: Literal[1, 2] = 2 if scale_2 else 1
    scores: tuple[Callable[[Vitals], EarlyWarningScore], ...] = (
        lambda x: news2(x, spo2_scale=scale),
        mews,
        qsofa,
    )
    for score in scores:
        whole = score(full)
        part = score(partial)
        assert part.total <= whole.total
        assert part.total == sum(part.subscores.values())
        assert not set(part.missing) & set(part.subscores)
        assert whole.complete
        for name, points in part.subscores.items():
            assert points <= whole.subscores[name]


@given(VITALS)
def test_totals_are_sums_of_subscores_within_chart_maxima(vitals: dict[str, float]) -> None:
    full: dict[str, float | None] = dict(vitals)
    assert 0 <= news2(full).total <= 20  # RCP 2017: max 3 x 6 parameters + 2 for oxygen
    assert 0 <= mews(full).total <= 14
    assert 0 <= qsofa(full).total <= 3
    index = shock_index(full)
    assert index.value is not None and math.isfinite(index.value) and index.value > 0
