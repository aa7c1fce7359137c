"""Weight Measurement 0x2A9D and Weight Scale Feature 0x2A9E.

The wire units (weight 0.005 kg / 0.01 lb, height 0.001 m / 0.1 in, BMI 0.1) are those of the
GSS and agree with open-source parsers (e.g. blessed-android's example WeightMeasurement,
RonanB96/bluetooth-sig-python's weight_measurement docs). Vectors are BUILT FROM THE SPEC
(WSS 1.0 3.1/3.2), not captures.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from gatt_helpers import decode_hex
from hypothesis import given
from hypothesis import strategies as st

from firmware_bridge.errors import MalformedError
from firmware_bridge.gatt import DecodeContext, weight

# Built: flags 0x0E, 14444 x 0.005 = 72.22 kg, 2020-12-30 10:30:00, user 1, BMI 24.0,
# height 1.714 m.
FULL = "0e6c38e4070c1e0a1e0001f000b206"


def test_without_feature_resolution_assumed() -> None:
    result = decode_hex(0x2A9D, FULL, device_tz=UTC)
    weight_m, bmi, height = result.measurements
    assert (weight_m.metric, weight_m.value, weight_m.unit) == ("weight", 72.22, "kg")
    assert "resolution_assumed" in weight_m.quality
    assert (bmi.value, bmi.unit) == (24.0, "kg/m2")
    assert (height.value, height.unit) == (1.714, "m")
    assert weight_m.time == datetime(2020, 12, 30, 10, 30, tzinfo=UTC)
    assert result.fields["user_id"] == 1


def test_with_feature_resolution_reported() -> None:
    feature = weight.encode_feature(weight_resolution_code=3, height_resolution_code=3)
    result = decode_hex(0x2A9D, FULL, feature=feature, device_tz=UTC)
    weight_m = result.measurements[0]
    assert weight_m.quality == ()
    assert weight_m.extra["resolution"] == 0.1
    assert weight_m.value == 72.22  # the wire unit is fixed by the GSS, not by the feature
    assert result.fields["weight_resolution"] == 0.1


def test_imperial_converted() -> None:
    data = weight.encode_measurement(15900, imperial=True)  # built: 159.00 lb
    [m] = decode_hex(0x2A9D, data.hex()).measurements
    assert m.value == pytest.approx(159 * 0.45359237)
    assert (m.original_value, m.original_unit) == (159.0, "[lb_av]")


def test_unsuccessful_is_no_value() -> None:
    [m] = decode_hex(0x2A9D, "00ffff").measurements
    assert (m.value, m.no_value) == (None, "not_measured")


def test_feature_decoded() -> None:
    result = decode_hex(0x2A9E, weight.encode_feature(weight_resolution_code=7).hex())
    assert result.fields["weight_resolution_kg"] == 0.005


@pytest.mark.parametrize(
    ("hex_value", "reason"),
    [("08b036", "BMI"), ("10b036", "reserved"), ("00b03600", "trailing"), ("00b0", "weight")],
)
def test_malformed(hex_value: str, reason: str) -> None:
    with pytest.raises(MalformedError, match=reason):
        decode_hex(0x2A9D, hex_value)


@given(st.integers(0, 0xFFFE), st.none() | st.integers(0, 255), st.booleans())
def test_round_trip(raw: int, user: int | None, with_bmi: bool) -> None:
    data = weight.encode_measurement(
        raw,
        user_id=user,
        bmi_raw=240 if with_bmi else None,
        height_raw=1714 if with_bmi else None,
    )
    result = weight.decode_measurement(data, DecodeContext())
    assert result.fields["weight_raw"] == raw
    assert result.measurements[0].value == raw * 5 / 1000
    assert (
        weight.encode_measurement(
            weight.weight_raw_from_kg(raw * 5 / 1000),
            user_id=user,
            bmi_raw=240 if with_bmi else None,
            height_raw=1714 if with_bmi else None,
        )
        == data
    )
