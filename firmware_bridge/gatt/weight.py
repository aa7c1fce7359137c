"""Weight Measurement 0x2A9D and Weight Scale Feature 0x2A9E
(Weight Scale Service 1.0, 3.1 and 3.2; GSS "Weight Measurement", "Weight Scale Feature").

Weight Measurement: flags (uint8) · weight (uint16) · timestamp (Date Time, bit 1) · user id
(uint8, bit 2) · BMI (uint16, 0.1 kg/m2) and height (uint16), both when bit 3 is set. Flags bit 0
selects SI (kg, m) or imperial (lb, in).

**Resolution.** The GSS fixes the *wire unit* of the fields: weight 0.005 kg (SI) or 0.01 lb
(imperial), height 0.001 m or 0.1 in, BMI 0.1 kg/m2 — whatever the feature says. The Weight
Scale Feature's "weight/height measurement resolution" is the scale's *measuring* resolution
(how fine its steps are), which the measurement itself does not carry. So:

- without the feature (``feature=None``), or when the feature says "not specified", the value
  is decoded with the GSS default resolution (0.005 kg / 0.01 lb; 0.001 m / 0.1 in) and each
  measurement carries the quality flag ``resolution_assumed`` — its precision is unknown;
- with the feature, the declared resolution is reported in ``fields`` and in
  ``Measurement.extra["resolution"]`` (in canonical units) and no flag is set.

The value 0xFFFF means "measurement unsuccessful" (WSS): a weight with no value
(``no_value="not_measured"``), never 655.35 kg.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final, Literal

from firmware_bridge.gatt._core import (
    Cursor,
    DecodeContext,
    GattResult,
    encode_date_time,
    time_quality,
)
from firmware_bridge.measurement import Measurement

UUID_MEASUREMENT: Final = 0x2A9D
UUID_FEATURE: Final = 0x2A9E

KG_PER_LB: Final = 0.45359237  # international avoirdupois pound, exact
M_PER_IN: Final = 0.0254  # international inch, exact
UNSUCCESSFUL: Final = 0xFFFF

# WSS 3.1.1.1 Flags.
_FLAG_IMPERIAL: Final = 0x01
_FLAG_TIMESTAMP: Final = 0x02
_FLAG_USER: Final = 0x04
_FLAG_BMI_HEIGHT: Final = 0x08
_FLAGS_DEFINED: Final = 0x0F  # bits 4-7 reserved

# WSS 3.2.1 Weight Scale Feature: bits 3-6 weight resolution, bits 7-9 height resolution,
# as (SI, imperial) steps.
_WEIGHT_RESOLUTION: Final[dict[int, tuple[float, float]]] = {
    1: (0.5, 1.0),
    2: (0.2, 0.5),
    3: (0.1, 0.2),
    4: (0.05, 0.1),
    5: (0.02, 0.05),
    6: (0.01, 0.02),
    7: (0.005, 0.01),
}
_HEIGHT_RESOLUTION: Final[dict[int, tuple[float, float]]] = {
    1: (0.01, 1.0),
    2: (0.005, 0.5),
    3: (0.001, 0.1),
}
_FEATURE_DEFINED: Final = 0x3FF  # bits 10-31 reserved


def decode_feature(data: bytes, ctx: DecodeContext | None = None) -> GattResult:
    """Weight Scale Feature: supported options and the scale's measuring resolutions."""
    cur = Cursor(data, "0x2A9E")
    raw = cur.u32("weight scale feature")
    cur.finish()
    weight_code = (raw >> 3) & 0xF
    height_code = (raw >> 7) & 0x7
    weight = _WEIGHT_RESOLUTION.get(weight_code)
    height = _HEIGHT_RESOLUTION.get(height_code)
    fields: dict[str, object] = {
        "feature": raw,
        "time_stamp_supported": bool(raw & 0x1),
        "multiple_users_supported": bool(raw & 0x2),
        "bmi_supported": bool(raw & 0x4),
        "weight_resolution_code": weight_code,
        "weight_resolution_kg": weight[0] if weight else None,
        "weight_resolution_lb": weight[1] if weight else None,
        "height_resolution_code": height_code,
        "height_resolution_m": height[0] if height else None,
        "height_resolution_in": height[1] if height else None,
    }
    if raw & ~_FEATURE_DEFINED:
        fields["reserved_bits"] = raw & ~_FEATURE_DEFINED
    return GattResult("0x2A9E", (), fields)


def feature_resolutions(feature: bytes, *, imperial: bool) -> tuple[float | None, float | None]:
    """(weight, height) measuring resolution from a Weight Scale Feature value, in the unit
    system of the measurement (kg/m or lb/in); None where the feature says "not specified"."""
    cur = Cursor(feature, "0x2A9E (feature)")
    raw = cur.u32("weight scale feature")
    cur.finish()
    weight = _WEIGHT_RESOLUTION.get((raw >> 3) & 0xF)
    height = _HEIGHT_RESOLUTION.get((raw >> 7) & 0x7)
    column = 1 if imperial else 0
    return (
        weight[column] if weight else None,
        height[column] if height else None,
    )


def _mass(raw: int, imperial: bool) -> tuple[float | None, float | None]:
    """(kg, original) for a mass field in its GSS wire unit; (None, None) if unsuccessful."""
    if raw == UNSUCCESSFUL:
        return None, None
    if imperial:
        pounds = raw / 100
        return round(pounds * KG_PER_LB, 6), pounds
    return raw * 5 / 1000, None


def _length(raw: int, imperial: bool) -> tuple[float, float | None]:
    if imperial:
        inches = raw / 10
        return round(inches * M_PER_IN, 6), inches
    return raw / 1000, None


def decode_measurement(data: bytes, ctx: DecodeContext) -> GattResult:
    """Weight Measurement: weight (+ bmi, height) in kg, kg/m2, m. See the module docstring
    for how resolution is handled with and without the Weight Scale Feature."""
    cur = Cursor(data, "0x2A9D")
    flags = cur.flags("flags", _FLAGS_DEFINED)
    imperial = bool(flags & _FLAG_IMPERIAL)
    weight_raw = cur.u16("weight")
    fields: dict[str, object] = {"flags": flags, "unit_system": "imperial" if imperial else "SI"}
    time = None
    if flags & _FLAG_TIMESTAMP:
        time, stamp = cur.date_time("timestamp (flags bit 1)", ctx.device_tz)
        fields.update(stamp)
    if flags & _FLAG_USER:
        user = cur.u8("user id (flags bit 2)")
        fields["user_id"] = user
        fields["user_known"] = user != 0xFF
    bmi_raw = height_raw = None
    if flags & _FLAG_BMI_HEIGHT:
        bmi_raw = cur.u16("BMI (flags bit 3)")
        height_raw = cur.u16("height (flags bit 3)")
    cur.finish()

    weight_res: float | None = None
    height_res: float | None = None
    if ctx.feature is not None:
        weight_res, height_res = feature_resolutions(ctx.feature, imperial=imperial)
        fields["weight_resolution"] = weight_res
        fields["height_resolution"] = height_res
    base_quality = time_quality(time, ctx)
    measurements: list[Measurement] = []

    kg, pounds = _mass(weight_raw, imperial)
    fields["weight_raw"] = weight_raw
    weight_quality = base_quality if weight_res else (*base_quality, "resolution_assumed")
    weight_extra: dict[str, object] = {}
    if weight_res:
        weight_extra["resolution"] = round(weight_res * KG_PER_LB, 9) if imperial else weight_res
    measurements.append(
        Measurement(
            metric="weight",
            value=kg,
            unit="kg",
            time=time,
            no_value="not_measured" if weight_raw == UNSUCCESSFUL else None,
            original_value=pounds,
            original_unit="[lb_av]" if imperial and pounds is not None else None,
            quality=weight_quality,
            extra=weight_extra,
        )
    )
    if fields["weight_raw"] == UNSUCCESSFUL:
        fields["measurement_unsuccessful"] = True
    if bmi_raw is not None and height_raw is not None:
        fields["bmi_raw"] = bmi_raw
        fields["height_raw"] = height_raw
        measurements.append(
            Measurement(
                metric="bmi", value=bmi_raw / 10, unit="kg/m2", time=time, quality=base_quality
            )
        )
        metres, inches = _length(height_raw, imperial)
        height_quality = base_quality if height_res else (*base_quality, "resolution_assumed")
        height_extra: dict[str, object] = {}
        if height_res:
            height_extra["resolution"] = round(height_res * M_PER_IN, 9) if imperial else height_res
        measurements.append(
            Measurement(
                metric="height",
                value=metres,
                unit="m",
                time=time,
                original_value=inches,
                original_unit="[in_i]" if imperial else None,
                quality=height_quality,
                extra=height_extra,
            )
        )
    return GattResult("0x2A9D", tuple(measurements), fields)


def encode_measurement(
    weight_raw: int,
    *,
    imperial: bool = False,
    timestamp: datetime | Literal["unknown"] | None = None,
    user_id: int | None = None,
    bmi_raw: int | None = None,
    height_raw: int | None = None,
) -> bytes:
    """Build a Weight Measurement from wire-unit integers (weight in 0.005 kg or 0.01 lb steps,
    BMI in 0.1 kg/m2, height in 0.001 m or 0.1 in; see :func:`weight_raw_from_kg`)."""
    flags = _FLAG_IMPERIAL if imperial else 0
    body = weight_raw.to_bytes(2, "little")
    if timestamp is not None:
        flags |= _FLAG_TIMESTAMP
        body += encode_date_time(None if timestamp == "unknown" else timestamp)
    if user_id is not None:
        flags |= _FLAG_USER
        body += bytes((user_id,))
    if (bmi_raw is None) != (height_raw is None):
        raise ValueError("BMI and height travel together (flags bit 3)")
    if bmi_raw is not None and height_raw is not None:
        flags |= _FLAG_BMI_HEIGHT
        body += bmi_raw.to_bytes(2, "little") + height_raw.to_bytes(2, "little")
    return bytes((flags,)) + body


def weight_raw_from_kg(kg: float) -> int:
    """The SI wire value (0.005 kg steps) for ``kg``; raises if ``kg`` is not on a step."""
    raw = round(kg * 200)
    if raw * 5 / 1000 != kg or not 0 <= raw < UNSUCCESSFUL:
        raise ValueError(f"{kg} kg is not a multiple of 0.005 kg in range")
    return raw


def encode_feature(
    *,
    time_stamp: bool = True,
    multiple_users: bool = False,
    bmi: bool = True,
    weight_resolution_code: int = 0,
    height_resolution_code: int = 0,
) -> bytes:
    """Build a Weight Scale Feature value (resolution codes as in WSS 3.2.1)."""
    raw = (
        int(time_stamp)
        | int(multiple_users) << 1
        | int(bmi) << 2
        | (weight_resolution_code & 0xF) << 3
        | (height_resolution_code & 0x7) << 7
    )
    return raw.to_bytes(4, "little")
