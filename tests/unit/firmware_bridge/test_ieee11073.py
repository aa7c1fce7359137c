"""IEEE 11073-20601 SFLOAT/FLOAT.

Vectors: the special values are those of IEEE 11073-20601 Annex F.8 (also listed in the
RivieraWaves CGMP header, CGMP_NAN 0x07FF, CGMP_NRES 0x0800, +INF 0x07FE, -INF 0x0802).
Numeric vectors are the byte patterns asserted by NordicSemiconductor/Android-BLE-Common-Library
tests (BloodPressureMeasurementDataCallbackTest: 0xF0BD = 189e-1, TemperatureMeasurement
DataCallbackTest: FLOAT B0 0E 00 FE = 3760e-2 = 37.60) and hand-built ones from the definition.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware_bridge.ieee11073 import (
    decode_float,
    decode_sfloat,
    encode_float,
    encode_sfloat,
    float_from_raw,
    sfloat_from_raw,
)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [(0x07FF, "NaN"), (0x0800, "NRes"), (0x07FE, "+INF"), (0x0802, "-INF"), (0x0801, "reserved")],
)
def test_sfloat_specials_are_no_value(raw: int, reason: str) -> None:
    assert decode_sfloat(raw.to_bytes(2, "little")) == (None, reason)
    assert encode_sfloat(None, no_value=reason) == raw.to_bytes(2, "little")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (0x007FFFFF, "NaN"),
        (0x00800000, "NRes"),
        (0x007FFFFE, "+INF"),
        (0x00800002, "-INF"),
        (0x00800001, "reserved"),
    ],
)
def test_float_specials_are_no_value(raw: int, reason: str) -> None:
    assert decode_float(raw.to_bytes(4, "little")) == (None, reason)
    assert encode_float(None, no_value=reason) == raw.to_bytes(4, "little")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("hex_value", "value"),
    [
        ("bdf0", 18.9),  # Nordic BPS test: 189e-1
        ("9ff0", 15.9),  # Nordic BPS test: 159e-1
        ("8a00", 138.0),  # Nordic BPS test: 138e0
        ("0c10", 120.0),  # Nordic CGMS test: 12e1
        ("d2e4", 12.34),  # Nordic CGMS test: 1234e-2
        ("ff0f", -1.0),  # built: mantissa -1, exponent 0
        ("0000", 0.0),
        ("ff17", 20470.0),  # built: 0x7FF with exponent 1 is a number, not NaN
    ],
)
def test_sfloat_values(hex_value: str, value: float) -> None:
    assert decode_sfloat(bytes.fromhex(hex_value)) == (value, None)


def test_float_values() -> None:
    assert decode_float(bytes.fromhex("b00e00fe")) == (37.6, None)  # Nordic HTS test
    assert decode_float(bytes.fromhex("720100ff")) == (37.0, None)  # built: 370e-1
    assert decode_float(bytes.fromhex("ffffff00")) == (-1.0, None)


def test_encode_respects_decimals() -> None:
    assert encode_sfloat(36.5) == bytes.fromhex("6df1")
    assert encode_sfloat(12.34, decimals=2) == bytes.fromhex("d2e4")
    assert encode_sfloat(1.5, decimals=3) == bytes.fromhex("dcd5")  # 1500e-3 kept as asked
    # 3650e-2 does not fit 12 bits: the trailing zero moves into the exponent (still exact).
    assert encode_sfloat(36.5, decimals=2) == bytes.fromhex("6df1")
    assert decode_sfloat(encode_sfloat(120.0, decimals=1)) == (120.0, None)
    with pytest.raises(ValueError, match="not exact"):
        encode_sfloat(36.55, decimals=1)
    with pytest.raises(ValueError):
        encode_sfloat(math.nan)


def test_short_input_is_value_error() -> None:
    with pytest.raises(ValueError):
        decode_sfloat(b"\x01")
    with pytest.raises(ValueError):
        decode_float(b"\x01\x02\x03")


@given(st.integers(0, 0xFFFF))
def test_every_sfloat_word_decodes_to_finite_or_reason(raw: int) -> None:
    value, reason = sfloat_from_raw(raw)
    assert (value is None) != (reason is None)
    if value is not None:
        assert math.isfinite(value)


@given(st.integers(0, 0xFFFFFFFF))
def test_every_float_word_decodes_to_finite_or_reason(raw: int) -> None:
    value, reason = float_from_raw(raw)
    assert (value is None) != (reason is None)
    if value is not None:
        assert math.isfinite(value)


@given(st.integers(-2045, 2045), st.integers(-8, 7))
def test_sfloat_round_trip(mantissa: int, exponent: int) -> None:
    value = float(mantissa * 10**exponent) if exponent >= 0 else mantissa / 10**-exponent
    assert decode_sfloat(encode_sfloat(value)) == (value, None)


@given(st.integers(-(2**23) + 3, 2**23 - 3), st.integers(-20, 20))
def test_float_round_trip(mantissa: int, exponent: int) -> None:
    value = float(mantissa * 10**exponent) if exponent >= 0 else mantissa / 10**-exponent
    assert decode_float(encode_float(value)) == (value, None)
