"""Glucose Measurement 0x2A18 (Glucose Service 1.0, 3.1; GSS "Glucose Measurement").

Layout: flags (uint8) · sequence number (uint16) · base time (Date Time) · time offset (sint16
minutes, bit 0) · concentration (SFLOAT) and type/sample location (two nibbles), both when bit 1
is set · sensor status annunciation (uint16, bit 3). Bit 2 selects the concentration unit
(0 = kg/L, 1 = mol/L); bit 4 says a Glucose Measurement Context with the same sequence number
follows (see ``glucose_context``).

Units: the catalogue's ``glucose`` is mmol/L. With the molar mass of glucose 180.156 g/mol:
``c [kg/L] * 1e6 / 180.156 = mmol/L`` (equivalently mg/dL = kg/L * 1e5, mmol/L = mg/dL /
18.0156) and ``c [mol/L] * 1000 = mmol/L``. The device's number and unit stay in
``original_value``/``original_unit``.

Measurement time = base time + time offset (GLS 3.1.1.3); unknown base time -> no time.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final, Literal

from firmware_bridge.gatt._core import (
    Cursor,
    DecodeContext,
    GattResult,
    bit_names,
    encode_date_time,
    number_field,
    reserved_bits,
    time_quality,
)
from firmware_bridge.gatt._values import Value, sfloat_bytes
from firmware_bridge.measurement import Measurement

UUID: Final = 0x2A18

#: g/mol (C6H12O6).
GLUCOSE_MOLAR_MASS: Final = 180.156
MMOL_PER_L_PER_KG_PER_L: Final = 1e6 / GLUCOSE_MOLAR_MASS
MMOL_PER_L_PER_MOL_PER_L: Final = 1000.0
#: 1 mmol/L of glucose in mg/dL (the CGM characteristic reports mg/dL).
MG_DL_PER_MMOL_L: Final = GLUCOSE_MOLAR_MASS / 10

# GLS 3.1.1.1 Flags.
_FLAG_OFFSET: Final = 0x01
_FLAG_CONCENTRATION: Final = 0x02
_FLAG_MOL_PER_L: Final = 0x04
_FLAG_STATUS: Final = 0x08
_FLAG_CONTEXT: Final = 0x10
_FLAGS_DEFINED: Final = 0x1F  # bits 5-7 reserved

#: GLS 3.1.1.5 Type (low nibble).
GLUCOSE_TYPES: Final[dict[int, str]] = {
    1: "capillary_whole_blood",
    2: "capillary_plasma",
    3: "venous_whole_blood",
    4: "venous_plasma",
    5: "arterial_whole_blood",
    6: "arterial_plasma",
    7: "undetermined_whole_blood",
    8: "undetermined_plasma",
    9: "interstitial_fluid",
    10: "control_solution",
}
#: GLS 3.1.1.6 Sample Location (high nibble); 15 = not available.
SAMPLE_LOCATIONS: Final[dict[int, str]] = {
    1: "finger",
    2: "alternate_site_test",
    3: "earlobe",
    4: "control_solution",
    15: "not_available",
}
#: GLS 3.1.1.7 Sensor Status Annunciation (bits 12-15 reserved).
SENSOR_STATUS: Final[dict[int, str]] = {
    0: "device_battery_low",
    1: "sensor_malfunction",
    2: "sample_size_insufficient",
    3: "strip_insertion_error",
    4: "strip_type_incorrect",
    5: "result_above_device_range",
    6: "result_below_device_range",
    7: "sensor_temperature_too_high",
    8: "sensor_temperature_too_low",
    9: "sensor_read_interrupted",
    10: "general_device_fault",
    11: "time_fault",
}
#: Annunciations that make the value itself doubtful (copied to quality).
_DOUBTFUL: Final = frozenset(
    {
        "sensor_malfunction",
        "sample_size_insufficient",
        "strip_insertion_error",
        "strip_type_incorrect",
        "result_above_device_range",
        "result_below_device_range",
        "sensor_temperature_too_high",
        "sensor_temperature_too_low",
        "sensor_read_interrupted",
        "general_device_fault",
        "time_fault",
    }
)


def decode(data: bytes, ctx: DecodeContext) -> GattResult:
    """Glucose Measurement: one ``glucose`` in mmol/L when the concentration is present."""
    cur = Cursor(data, "0x2A18")
    flags = cur.flags("flags", _FLAGS_DEFINED)
    sequence = cur.u16("sequence number")
    base, stamp = cur.date_time("base time", ctx.device_tz)
    fields: dict[str, object] = {
        "flags": flags,
        "sequence_number": sequence,
        "context_follows": bool(flags & _FLAG_CONTEXT),
        "base_time": stamp["timestamp"],
    }
    if "timestamp_raw" in stamp:
        fields["base_time_raw"] = stamp["timestamp_raw"]
    offset = 0
    if flags & _FLAG_OFFSET:
        offset = cur.s16("time offset (flags bit 0)")
        fields["time_offset_min"] = offset
    time: datetime | None = None if base is None else base + timedelta(minutes=offset)
    number = None
    if flags & _FLAG_CONCENTRATION:
        number = cur.sfloat("glucose concentration (flags bit 1)")
        type_location = cur.u8("type-sample location (flags bit 1)")
        fields["concentration"] = number_field(number)
        fields["concentration_unit"] = "mol/L" if flags & _FLAG_MOL_PER_L else "kg/L"
        fields["type"] = GLUCOSE_TYPES.get(type_location & 0x0F, "reserved")
        fields["sample_location"] = SAMPLE_LOCATIONS.get(type_location >> 4, "reserved")
    quality: tuple[str, ...] = time_quality(time, ctx)
    if flags & _FLAG_STATUS:
        status = cur.u16("sensor status annunciation (flags bit 3)")
        names = bit_names(status, SENSOR_STATUS)
        fields["sensor_status"] = names
        if reserved_bits(status, SENSOR_STATUS):
            fields["sensor_status_reserved_bits"] = reserved_bits(status, SENSOR_STATUS)
        quality = (*quality, *(n for n in names if n in _DOUBTFUL))
    cur.finish()
    if number is None:
        return GattResult("0x2A18", (), fields)
    value, no_value = number
    mol = bool(flags & _FLAG_MOL_PER_L)
    factor = MMOL_PER_L_PER_MOL_PER_L if mol else MMOL_PER_L_PER_KG_PER_L
    measurement = Measurement(
        metric="glucose",
        value=None if value is None else round(value * factor, 6),
        unit="mmol/L",
        time=time,
        no_value=no_value,
        original_value=value,
        original_unit="mol/L" if mol else "kg/L",
        quality=quality,
        extra={"sequence_number": sequence},
    )
    return GattResult("0x2A18", (measurement,), fields)


def encode(
    sequence_number: int,
    base_time: datetime | None,
    *,
    time_offset_min: int | None = None,
    concentration: Value | None = None,
    unit: Literal["kg/L", "mol/L"] = "kg/L",
    type_code: int = 1,
    sample_location_code: int = 1,
    sensor_status: int | None = None,
    context_follows: bool = False,
) -> bytes:
    """Build a Glucose Measurement (``concentration`` in ``unit``, e.g. 5.5 mmol/L = 0.0055 mol/L;
    ``base_time`` None writes the all-zero "unknown" Date Time)."""
    flags = _FLAG_CONTEXT if context_follows else 0
    body = sequence_number.to_bytes(2, "little") + encode_date_time(base_time)
    if time_offset_min is not None:
        flags |= _FLAG_OFFSET
        body += time_offset_min.to_bytes(2, "little", signed=True)
    if concentration is not None:
        flags |= _FLAG_CONCENTRATION | (_FLAG_MOL_PER_L if unit == "mol/L" else 0)
        body += sfloat_bytes(concentration)
        body += bytes(((sample_location_code & 0xF) << 4 | (type_code & 0xF),))
    if sensor_status is not None:
        flags |= _FLAG_STATUS
        body += sensor_status.to_bytes(2, "little")
    return bytes((flags,)) + body
