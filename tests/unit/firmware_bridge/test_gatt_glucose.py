"""Glucose Measurement 0x2A18.

Vectors: NordicSemiconductor/Android-BLE-Common-Library,
ble-common/src/test/.../glucose/GlucoseMeasurementDataCallbackTest.java (valid: 1B 01 00 E3 07
02 1B 0B 0A 1E FB FF 1E 00 12 05 01 — seq 1, 2019-02-27 11:10:30 - 5 min, 30 kg/L (a test
value, not physiology), capillary plasma, finger, status 0x0105; invalid: the same layout with
the time offset missing). Other vectors are built from GLS 1.0 3.1.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from gatt_helpers import decode_hex
from hypothesis import given
from hypothesis import strategies as st

from firmware_bridge.errors import MalformedError
from firmware_bridge.gatt import DecodeContext, glucose


def test_nordic_vector() -> None:
    result = decode_hex(0x2A18, "1b0100e307021b0b0a1efbff1e00120501", device_tz=UTC)
    [m] = result.measurements
    assert m.time == datetime(2019, 2, 27, 11, 5, 30, tzinfo=UTC)
    assert (m.original_value, m.original_unit) == (30.0, "kg/L")
    assert m.value == pytest.approx(30 * 1e6 / 180.156, rel=1e-9)
    assert result.fields["sequence_number"] == 1
    assert result.fields["type"] == "capillary_plasma"
    assert result.fields["sample_location"] == "finger"
    assert result.fields["sensor_status"] == [
        "device_battery_low",
        "sample_size_insufficient",
        "sensor_temperature_too_low",
    ]
    assert result.fields["context_follows"] is True


def test_nordic_invalid_vector() -> None:
    with pytest.raises(MalformedError):
        decode_hex(0x2A18, "1b0000e207041a0b091e1e00120501")


def test_kg_per_litre_conversion_realistic() -> None:
    # Built: 99 mg/dL = 99e-5 kg/L (SFLOAT 99e-5 = 0xB063), mmol/L = 99 / 18.0156.
    data = glucose.encode(7, None, concentration=99e-5)
    [m] = decode_hex(0x2A18, data.hex()).measurements
    assert m.value == pytest.approx(99 / 18.0156, abs=1e-6)
    assert m.time is None  # base time all zero = unknown


def test_mol_per_litre() -> None:
    data = glucose.encode(8, datetime(2024, 1, 2, 3, 4, 5), concentration=0.0055, unit="mol/L")
    [m] = decode_hex(0x2A18, data.hex()).measurements
    assert m.value == 5.5


def test_reserved_flag() -> None:
    with pytest.raises(MalformedError, match="reserved"):
        decode_hex(0x2A18, "200100e307021b0b0a1e")


@given(
    st.integers(0, 0xFFFF),
    st.none() | st.integers(-32768, 32767),
    st.none() | st.integers(1, 2047),
    st.none() | st.integers(0, 0xFFF),
)
def test_round_trip(seq: int, offset: int | None, mg_dl: int | None, status: int | None) -> None:
    concentration = None if mg_dl is None else mg_dl / 10**5
    data = glucose.encode(
        seq,
        datetime(2024, 6, 1, 12, 0),
        time_offset_min=offset,
        concentration=concentration,
        sensor_status=status,
    )
    result = glucose.decode(data, DecodeContext(device_tz=UTC))
    assert result.fields["sequence_number"] == seq
    assert result.fields.get("time_offset_min") == offset
    assert result.fields.get("concentration") == concentration
