"""The OBX code, unit and sentinel tables (firmware_bridge/hl7_codes.py) are auditable data."""

from __future__ import annotations

import pytest

from firmware_bridge import hl7_codes
from vitals import CATALOGUE

ALL_ROWS = (
    *hl7_codes.MDC_ALIASES,
    *hl7_codes.MDIL_CODES,
    *hl7_codes.MINDRAY_PDS_CODES,
    *hl7_codes.COMEN_CODES,
)


@pytest.mark.parametrize("row", ALL_ROWS, ids=lambda row: f"{row.system}:{row.code}")
def test_every_row_names_a_catalogue_metric_and_a_source(row: hl7_codes.CodeRow) -> None:
    assert row.metric is None or row.metric in CATALOGUE
    assert row.source
    if row.implied_unit is not None:
        assert row.metric is not None
        assert row.implied_unit == CATALOGUE[row.metric].unit


def test_rows_are_unique_per_system_and_code() -> None:
    keys = [(row.system, row.code) for row in ALL_ROWS]
    assert len(keys) == len(set(keys))


@pytest.mark.parametrize(
    ("mdil", "mdc"),
    # Philips Information Center codes vs. the IEEE 11073 codes the catalogue carries.
    [("0002-4182", 147842), ("0002-4bb8", 150456), ("0002-4a05", 150021), ("x", None)],
)
def test_mdil_code_is_partition_and_term_in_hex(mdil: str, mdc: int | None) -> None:
    assert hl7_codes.mdil_to_mdc(mdil) == mdc


def test_mdil_codes_agree_with_the_catalogue_where_both_exist() -> None:
    for row in hl7_codes.MDIL_CODES:
        mdc = hl7_codes.mdil_to_mdc(row.code)
        assert mdc is not None
        catalogue_row = hl7_codes.mdc_row(mdc)
        if catalogue_row is not None and catalogue_row.source == hl7_codes.IEEE_10101:
            assert catalogue_row.metric == row.metric, row


@pytest.mark.parametrize(
    ("system", "code", "label", "metric"),
    [
        ("MDC", "150456", "MDC_PULS_OXIM_SAT_O2", "spo2"),
        ("MDC", "150488", "MDC_BLD_PERF_INDEX", "perfusion_index"),
        ("MDC", "150301", "MDC_PRESS_CUFF_SYS", "bp_systolic"),
        ("MDC", "", "MDC_ECG_HEART_RATE", "heart_rate"),
        ("MDIL", "0002-4BB8", "SpO2", "spo2"),
        ("MDIL", "0002-4b48", "Temp", "body_temperature"),
        ("", "101", "HR", "heart_rate"),
        ("", "101", "hr", "heart_rate"),
        ("", "101", "SpO2", None),
        ("99COMEN", "2267", "COMEN_ACVPU", None),
        ("MDC", "99999999999", "x", None),
    ],
)
def test_lookup(system: str, code: str, label: str, metric: str | None) -> None:
    row = hl7_codes.lookup(system, code, label)
    assert (row.metric if row else None) == metric


@pytest.mark.parametrize(
    ("unit_id", "text", "ucum"),
    [
        ("262688", "MDC_DIM_PERCENT", "%"),
        ("0004-0aa0", "bpm", "/min"),
        ("", "mmHg", "mm[Hg]"),
        ("268160", "MDC_DIM_FAHR", "[degF]"),
        ("unknown", "kPa", "kPa"),
        ("", "furlongs", None),
    ],
)
def test_unit_of(unit_id: str, text: str, ucum: str | None) -> None:
    assert hl7_codes.unit_of(unit_id, text) == ucum


def test_conversions() -> None:
    fahrenheit = hl7_codes.conversion("[degF]", "Cel", "body_temperature")
    assert fahrenheit is not None and fahrenheit(212.0) == pytest.approx(100.0)
    kpa = hl7_codes.conversion("kPa", "mm[Hg]", "bp_systolic")
    assert kpa is not None and kpa(101.325) == pytest.approx(760.0)
    glucose = hl7_codes.conversion("mg/dL", "mmol/L", "glucose")
    assert glucose is not None and glucose(180.16) == pytest.approx(10.0)
    # mg/dL -> mmol/L is glucose-specific (molar mass): never applied to another metric.
    assert hl7_codes.conversion("mg/dL", "mmol/L", "weight") is None


@pytest.mark.parametrize(
    ("value", "metric", "expected"),
    [
        (-999.0, "spo2", True),
        (-99.9, "body_temperature", True),
        (8388607.0, "heart_rate", True),
        (0.0, "weight", True),
        (0.0, "respiratory_rate", False),
        (98.0, "spo2", False),
    ],
)
def test_sentinels(value: float, metric: str, expected: bool) -> None:
    assert hl7_codes.is_sentinel(value, metric) is expected
