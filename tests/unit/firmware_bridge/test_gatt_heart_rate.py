"""Heart Rate Measurement 0x2A37.

Vectors: NordicSemiconductor/Android-BLE-Common-Library,
ble-common/src/test/.../hr/HeartRateMeasurementDataCallbackTest.java (byte arrays and expected
values: {0,85}; {0x04,0xFF}; {0x1E,85,50,0,33,0}; {0x1F,1,1,50,1,1,0,2,1,0xFF,0xFF};
invalid {0x17,1,1}). Other vectors are built from HRS 1.0 3.1 and labelled so.
"""

from __future__ import annotations

import pytest
from gatt_helpers import decode_hex
from hypothesis import given
from hypothesis import strategies as st

from firmware_bridge.errors import MalformedError
from firmware_bridge.gatt import DecodeContext, heart_rate


def test_nordic_simple() -> None:
    result = decode_hex(0x2A37, "0055")
    assert result.characteristic == "0x2A37"
    [hr] = result.measurements
    assert (hr.metric, hr.value, hr.unit, hr.time) == ("heart_rate", 85.0, "/min", None)
    assert result.fields["sensor_contact"] == "not_supported"


def test_nordic_no_contact_keeps_value_and_flags_it() -> None:
    [hr] = decode_hex(0x2A37, "04ff").measurements
    assert hr.value == 255.0
    assert hr.quality == ("no_sensor_contact",)


def test_nordic_uint8_energy_rr() -> None:
    result = decode_hex(0x2A37, "1e5532002100")
    metrics = [(m.metric, m.value, m.unit) for m in result.measurements]
    assert metrics == [
        ("heart_rate", 85.0, "/min"),
        ("energy_expended", 50.0, "kJ"),
        ("rr_interval", 33 * 1000 / 1024, "ms"),
    ]
    assert result.fields["sensor_contact"] == "detected"
    assert result.fields["rr_intervals_1024"] == [33]


def test_nordic_uint16_three_rr() -> None:
    result = decode_hex(0x2A37, "1f0101320101000201ffff")
    assert result.measurements[0].value == 257.0
    assert result.fields["energy_expended_kj"] == 306
    assert result.fields["rr_intervals_1024"] == [1, 258, 65535]
    rr = [m for m in result.measurements if m.metric == "rr_interval"]
    assert [m.extra["index"] for m in rr] == [0, 1, 2]
    assert rr[1].original_value == 258.0


@pytest.mark.parametrize(
    ("hex_value", "reason"),
    [
        ("170101", "none follow"),  # Nordic invalid vector: uint16 HR, RR flagged, none sent
        ("", "flags"),  # built: empty
        ("01", "heart rate"),  # built: uint16 announced, absent
        ("105501", "odd"),  # built: RR needs pairs
        ("1055", "none follow"),  # built: RR flagged but absent
        ("2055", "reserved"),  # built: reserved flag bit 5
        ("005500", "trailing"),  # built: trailing byte
    ],
)
def test_malformed(hex_value: str, reason: str) -> None:
    with pytest.raises(MalformedError, match=reason) as caught:
        decode_hex(0x2A37, hex_value)
    assert caught.value.offset is not None


@given(
    st.integers(0, 0xFFFF),
    st.sampled_from(["not_supported", "not_detected", "detected"]),
    st.none() | st.integers(0, 0xFFFF),
    st.lists(st.integers(0, 0xFFFF), max_size=8),
)
def test_round_trip(
    rate: int, contact: heart_rate.SensorContact, energy: int | None, rr: list[int]
) -> None:
    data = heart_rate.encode(
        rate, sensor_contact=contact, energy_expended_kj=energy, rr_intervals_1024=rr
    )
    result = heart_rate.decode(data, DecodeContext())
    assert result.fields["heart_rate"] == rate
    assert result.fields["sensor_contact"] == contact
    assert result.fields.get("energy_expended_kj") == energy
    assert result.fields.get("rr_intervals_1024", []) == rr
