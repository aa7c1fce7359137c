"""Blood Pressure Measurement 0x2A35 and Intermediate Cuff Pressure 0x2A36
(Blood Pressure Service 1.1, 3.1 and 3.2; GSS "Blood Pressure Measurement").

Layout: flags (uint8) · systolic, diastolic, MAP (SFLOAT each; in the ICP the first is the
current cuff pressure and the other two are unused) · timestamp (Date Time, flags bit 1) ·
pulse rate (SFLOAT /min, bit 2) · user id (uint8, bit 3) · measurement status (uint16, bit 4).

Units: flags bit 0 selects mmHg (canonical ``mm[Hg]``) or kPa; kPa is converted with
1 kPa = 7.50062 mm[Hg] and the device's value is kept in ``original_value``/``original_unit``.

Intermediate Cuff Pressure is progress during inflation, not a result: the cuff pressure is not
a catalogue metric and goes to ``fields`` only; a pulse rate it carries is emitted with the
quality flag ``intermediate`` so the shell can tell it from a final measurement.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final, Literal

from firmware_bridge.gatt._core import (
    Cursor,
    DecodeContext,
    GattResult,
    bit_names,
    converted_measurement,
    encode_date_time,
    number_field,
    number_measurement,
    reserved_bits,
    time_quality,
)
from firmware_bridge.gatt._values import Value, sfloat_bytes
from firmware_bridge.ieee11073 import Number
from firmware_bridge.measurement import Measurement

UUID_MEASUREMENT: Final = 0x2A35
UUID_INTERMEDIATE: Final = 0x2A36

#: 1 kPa in mm[Hg] (101.325 kPa = 760 mmHg).
MMHG_PER_KPA: Final = 7.50062

# BLS 3.1.1.1 Flags field.
_FLAG_KPA: Final = 0x01  # bit 0: units (0 = mmHg, 1 = kPa)
_FLAG_TIMESTAMP: Final = 0x02  # bit 1: time stamp present
_FLAG_PULSE: Final = 0x04  # bit 2: pulse rate present
_FLAG_USER: Final = 0x08  # bit 3: user ID present
_FLAG_STATUS: Final = 0x10  # bit 4: measurement status present
_FLAGS_DEFINED: Final = 0x1F  # bits 5-7 reserved

# BLS 3.1.1.7 Measurement Status (bits 3-4 are the 2-bit pulse rate range, decoded apart).
_STATUS_BITS: Final[dict[int, str]] = {
    0: "body_movement",
    1: "cuff_too_loose",
    2: "irregular_pulse",
    5: "improper_position",
}
_PULSE_RANGE: Final[dict[int, str]] = {
    0: "within_range",
    1: "above_upper_limit",
    2: "below_lower_limit",
    3: "reserved",
}
_PULSE_RANGE_QUALITY: Final[dict[int, tuple[str, ...]]] = {
    0: (),
    1: ("pulse_rate_above_range",),
    2: ("pulse_rate_below_range",),
    3: (),
}
_STATUS_NAMED: Final = {**_STATUS_BITS, 3: "pulse_rate_range_0", 4: "pulse_rate_range_1"}

#: BLS 3.1.1.6: user id 255 means "unknown user".
USER_UNKNOWN: Final = 0xFF


def _pressure(
    metric: str, number: Number, kpa: bool, time: datetime | None, quality: tuple[str, ...]
) -> Measurement:
    if kpa:
        return converted_measurement(
            metric, number, "mm[Hg]", MMHG_PER_KPA, "kPa", time=time, quality=quality
        )
    return number_measurement(metric, number, "mm[Hg]", time, quality)


def _decode(data: bytes, ctx: DecodeContext, label: str, intermediate: bool) -> GattResult:
    cur = Cursor(data, label)
    flags = cur.flags("flags", _FLAGS_DEFINED)
    kpa = bool(flags & _FLAG_KPA)
    first = cur.sfloat("cuff pressure" if intermediate else "systolic")
    diastolic = cur.sfloat("diastolic")
    mean = cur.sfloat("mean arterial pressure")
    fields: dict[str, object] = {"flags": flags, "unit": "kPa" if kpa else "mmHg"}
    time = None
    if flags & _FLAG_TIMESTAMP:
        time, stamp = cur.date_time("timestamp (flags bit 1)", ctx.device_tz)
        fields.update(stamp)
    pulse = cur.sfloat("pulse rate (flags bit 2)") if flags & _FLAG_PULSE else None
    if flags & _FLAG_USER:
        user = cur.u8("user id (flags bit 3)")
        fields["user_id"] = user
        fields["user_known"] = user != USER_UNKNOWN
    status_quality: tuple[str, ...] = ()
    pulse_quality: tuple[str, ...] = ()
    if flags & _FLAG_STATUS:
        status = cur.u16("measurement status (flags bit 4)")
        named = bit_names(status, _STATUS_BITS)
        pulse_range = (status >> 3) & 0x3
        fields["measurement_status"] = named
        fields["pulse_rate_range"] = _PULSE_RANGE[pulse_range]
        extra_bits = reserved_bits(status, _STATUS_NAMED)
        if extra_bits:
            fields["measurement_status_reserved_bits"] = extra_bits
        status_quality = tuple(named)
        pulse_quality = _PULSE_RANGE_QUALITY[pulse_range]
    cur.finish()

    quality = (*time_quality(time, ctx), *status_quality)
    if intermediate:
        quality = ("intermediate", *quality)
    measurements: list[Measurement] = []
    if intermediate:
        cuff = _pressure("cuff_pressure", first, kpa, time, ())
        fields["cuff_pressure"] = number_field((cuff.value, cuff.no_value))
        fields["cuff_pressure_unit"] = "mm[Hg]"
        if kpa:
            fields["cuff_pressure_original"] = number_field(first)
    else:
        measurements.append(_pressure("bp_systolic", first, kpa, time, quality))
        measurements.append(_pressure("bp_diastolic", diastolic, kpa, time, quality))
        measurements.append(_pressure("bp_mean", mean, kpa, time, quality))
    if pulse is not None:
        fields["pulse_rate"] = number_field(pulse)
        measurements.append(
            number_measurement("pulse_rate", pulse, "/min", time, (*quality, *pulse_quality))
        )
    return GattResult(label, tuple(measurements), fields)


def decode_measurement(data: bytes, ctx: DecodeContext) -> GattResult:
    """Blood Pressure Measurement: bp_systolic, bp_diastolic, bp_mean (+ pulse_rate)."""
    return _decode(data, ctx, "0x2A35", intermediate=False)


def decode_intermediate(data: bytes, ctx: DecodeContext) -> GattResult:
    """Intermediate Cuff Pressure: cuff pressure in fields; pulse rate flagged intermediate."""
    return _decode(data, ctx, "0x2A36", intermediate=True)


def encode(
    systolic: Value,
    diastolic: Value = "NaN",
    mean: Value = "NaN",
    *,
    unit: Literal["mmHg", "kPa"] = "mmHg",
    decimals: int | None = None,
    timestamp: datetime | Literal["unknown"] | None = None,
    pulse_rate: Value | None = None,
    user_id: int | None = None,
    status: int | None = None,
) -> bytes:
    """Build a Blood Pressure Measurement (or, with ``systolic`` = cuff pressure and the rest
    NaN, an Intermediate Cuff Pressure) value. Values are in ``unit``, not converted.

    ``timestamp="unknown"`` writes a present but all-zero Date Time; ``status`` is the raw
    16-bit measurement status.
    """
    flags = _FLAG_KPA if unit == "kPa" else 0
    body = sfloat_bytes(systolic, decimals) + sfloat_bytes(diastolic, decimals)
    body += sfloat_bytes(mean, decimals)
    if timestamp is not None:
        flags |= _FLAG_TIMESTAMP
        body += encode_date_time(None if timestamp == "unknown" else timestamp)
    if pulse_rate is not None:
        flags |= _FLAG_PULSE
        body += sfloat_bytes(pulse_rate)
    if user_id is not None:
        flags |= _FLAG_USER
        body += bytes((user_id,))
    if status is not None:
        flags |= _FLAG_STATUS
        body += status.to_bytes(2, "little")
    return bytes((flags,)) + body
