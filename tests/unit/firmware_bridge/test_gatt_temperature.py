"""Temperature Measurement 0x2A1C and Intermediate Temperature 0x2A1E.

Vectors: NordicSemiconductor/Android-BLE-Common-Library,
ble-common/src/test/.../ht/TemperatureMeasurementDataCallbackTest.java (06 B0 0E 00 FE DC 07 0C
05 0B 32 1B 04 = 37.60 Cel, 2012-12-05 11:50:27, finger; the same minus its last byte is
invalid). Fahrenheit and NaN vectors are built from HTS 1.0 3.1.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from gatt_helpers import decode_hex
from hypothesis import given
from hypothesis import strategies as st

from firmware_bridge.errors import MalformedError
from firmware_bridge.gatt import DecodeContext, temperature

NORDIC = "06b00e00fedc070c050b321b04"


def test_nordic_vector() -> None:
    result = decode_hex(0x2A1C, NORDIC, device_tz=UTC)
    [m] = result.measurements
    assert (m.metric, m.value, m.unit) == ("body_temperature", 37.6, "Cel")
    assert m.time == datetime(2012, 12, 5, 11, 50, 27, tzinfo=UTC)
    assert result.fields["temperature_type"] == "finger"


def test_device_zone_applies_to_wall_clock() -> None:
    paris = ZoneInfo("Europe/Paris")
    [m] = decode_hex(0x2A1C, NORDIC, device_tz=paris).measurements
    assert m.time == datetime(2012, 12, 5, 11, 50, 27, tzinfo=paris)


def test_nordic_missing_type_byte_is_malformed() -> None:
    with pytest.raises(MalformedError, match="temperature type"):
        decode_hex(0x2A1C, NORDIC[:-2])


def test_fahrenheit_converted() -> None:
    # Built: flags 0x01 (Fahrenheit), FLOAT 986e-1 = 98.6 [degF].
    [m] = decode_hex(0x2A1C, "01da0300ff").measurements
    assert m.value == pytest.approx(37.0)
    assert (m.original_value, m.original_unit) == (98.6, "[degF]")


def test_nan_is_no_value() -> None:
    # Built: FLOAT NaN 0x007FFFFF.
    [m] = decode_hex(0x2A1C, "00ffff7f00").measurements
    assert (m.value, m.no_value) == (None, "NaN")


def test_intermediate_flagged() -> None:
    data = temperature.encode(36.8)
    [m] = decode_hex(0x2A1E, data.hex()).measurements
    assert m.quality == ("intermediate",)


def test_reserved_flag() -> None:
    with pytest.raises(MalformedError, match="reserved"):
        decode_hex(0x2A1C, "08720100ff")


@given(st.integers(300, 450), st.booleans(), st.none() | st.integers(0, 255))
def test_round_trip(tenths: int, fahrenheit: bool, kind: int | None) -> None:
    value = tenths / 10
    data = temperature.encode(value, unit="[degF]" if fahrenheit else "Cel", temperature_type=kind)
    result = temperature.decode_measurement(data, DecodeContext())
    assert result.fields["temperature"] == value
    assert result.fields.get("temperature_type_code") == kind
