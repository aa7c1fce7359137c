"""Blood Pressure Measurement 0x2A35.

Vectors: NordicSemiconductor/Android-BLE-Common-Library,
ble-common/src/test/.../bps/BloodPressureMeasurementDataCallbackTest.java (the byte arrays its
assertArrayEquals pins: "full" 1E 8A 00 58 00 78 00 00 00 04 11 14 29 3B 3C 00 01 27 00;
"some" (kPa) 15 BD F0 0B 00 9F F0 3C 00 12 00; "minimal" 00 BD F0 0B 00 9F F0; too short
01..06; no timestamp 03 02..07).
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from gatt_helpers import decode_hex
from hypothesis import given
from hypothesis import strategies as st

from firmware_bridge.errors import MalformedError
from firmware_bridge.gatt import DecodeContext, blood_pressure


def test_nordic_full_year_zero_means_no_time() -> None:
    result = decode_hex(0x2A35, "1e8a00580078000000041114293b3c00012700")
    values = {m.metric: m.value for m in result.measurements}
    assert values == {
        "bp_systolic": 138.0,
        "bp_diastolic": 88.0,
        "bp_mean": 120.0,
        "pulse_rate": 60.0,
    }
    assert all(m.time is None for m in result.measurements)  # year 0 = unknown, never guessed
    assert result.fields["timestamp"] is None
    assert result.fields["timestamp_raw"] == [0, 4, 17, 20, 41, 59]
    assert result.fields["user_id"] == 1
    assert result.fields["measurement_status"] == [
        "body_movement",
        "cuff_too_loose",
        "irregular_pulse",
        "improper_position",
    ]
    assert result.fields["pulse_rate_range"] == "within_range"


def test_nordic_kpa_converted_with_original_kept() -> None:
    result = decode_hex(0x2A35, "15bdf00b009ff03c001200")
    systolic = result.measurements[0]
    assert systolic.unit == "mm[Hg]"
    assert systolic.value == pytest.approx(18.9 * 7.50062)
    assert (systolic.original_value, systolic.original_unit) == (18.9, "kPa")
    pulse = result.measurements[3]
    assert "pulse_rate_below_range" in pulse.quality
    assert result.fields["pulse_rate_range"] == "below_lower_limit"


def test_nordic_minimal() -> None:
    result = decode_hex(0x2A35, "00bdf00b009ff0")
    assert [m.value for m in result.measurements] == [18.9, 11.0, 15.9]


def test_nan_diastolic_is_no_value_not_zero() -> None:
    # Built from BLS 3.1: systolic 120, diastolic NaN (0x07FF), MAP 90.
    result = decode_hex(0x2A35, "007800ff075a00")
    diastolic = result.measurements[1]
    assert (diastolic.value, diastolic.no_value) == (None, "NaN")


def test_timestamp_with_zone() -> None:
    data = blood_pressure.encode(120, 80, 93, timestamp=datetime(2024, 3, 1, 8, 30, 5))
    result = blood_pressure.decode_measurement(data, DecodeContext(device_tz=UTC))
    assert result.measurements[0].time == datetime(2024, 3, 1, 8, 30, 5, tzinfo=UTC)
    assert result.measurements[0].quality == ()
    assumed = blood_pressure.decode_measurement(data, DecodeContext())
    assert assumed.measurements[0].quality == ("device_tz_assumed_utc",)


@pytest.mark.parametrize(
    ("hex_value", "reason"),
    [
        ("010203040506", "needs 2 byte"),  # Nordic "too short"
        ("03020304050607", "timestamp"),  # Nordic "no timestamp"
        ("20780050006000", "reserved"),  # built: reserved flag bit 5
        ("00780050006000" + "00", "trailing"),  # built: trailing bytes
        ("02780050006000" + "e807" + "0d01000000", "outside"),  # built: month 13
        ("02780050006000" + "e807" + "021e000000", "calendar"),  # built: 30 February
    ],
)
def test_malformed(hex_value: str, reason: str) -> None:
    with pytest.raises(MalformedError, match=reason):
        decode_hex(0x2A35, hex_value)


@given(
    st.integers(40, 300),
    st.integers(15, 200),
    st.integers(20, 250),
    st.none() | st.integers(15, 250),
    st.none() | st.integers(0, 255),
    st.none() | st.integers(0, 0x3F),
)
def test_round_trip(
    sys: int, dia: int, mean: int, pulse: int | None, user: int | None, status: int | None
) -> None:
    data = blood_pressure.encode(sys, dia, mean, pulse_rate=pulse, user_id=user, status=status)
    result = blood_pressure.decode_measurement(data, DecodeContext())
    assert [m.value for m in result.measurements[:3]] == [sys, dia, mean]
    assert result.fields.get("user_id") == user
    # byte-exact: re-encoding the decoded values gives the same bytes
    values = [int(m.value or 0) for m in result.measurements]
    again = blood_pressure.encode(
        values[0], values[1], values[2], pulse_rate=pulse, user_id=user, status=status
    )
    assert again == data
