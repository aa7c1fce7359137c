"""Temperature Measurement 0x2A1C and Intermediate Temperature 0x2A1E
(Health Thermometer Service 1.0, 3.1 and 3.3; GSS "Temperature Measurement").

Layout: flags (uint8) · temperature (IEEE 11073 FLOAT) · timestamp (Date Time, flags bit 1) ·
temperature type (uint8, bit 2). Flags bit 0 selects Celsius or Fahrenheit; Fahrenheit is
converted to ``Cel`` with the device value kept as ``original_value`` in ``[degF]``.

Intermediate Temperature values are what a thermometer shows while it settles; they are
emitted as ``body_temperature`` with the quality flag ``intermediate``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final, Literal

from firmware_bridge.gatt._core import (
    Cursor,
    DecodeContext,
    GattResult,
    encode_date_time,
    number_field,
    time_quality,
)
from firmware_bridge.gatt._values import Value, float_bytes
from firmware_bridge.measurement import Measurement

UUID_MEASUREMENT: Final = 0x2A1C
UUID_INTERMEDIATE: Final = 0x2A1E

# HTS 3.1.1.1 Flags field.
_FLAG_FAHRENHEIT: Final = 0x01  # bit 0: 0 = Celsius, 1 = Fahrenheit
_FLAG_TIMESTAMP: Final = 0x02  # bit 1: time stamp present
_FLAG_TYPE: Final = 0x04  # bit 2: temperature type present
_FLAGS_DEFINED: Final = 0x07  # bits 3-7 reserved

#: HTS 3.2 / GSS "Temperature Type": where on the body the temperature was taken.
TEMPERATURE_TYPES: Final[dict[int, str]] = {
    1: "armpit",
    2: "body",
    3: "ear",
    4: "finger",
    5: "gastrointestinal_tract",
    6: "mouth",
    7: "rectum",
    8: "toe",
    9: "tympanum",
}


def _decode(data: bytes, ctx: DecodeContext, label: str, intermediate: bool) -> GattResult:
    cur = Cursor(data, label)
    flags = cur.flags("flags", _FLAGS_DEFINED)
    fahrenheit = bool(flags & _FLAG_FAHRENHEIT)
    number = cur.float32("temperature")
    fields: dict[str, object] = {
        "flags": flags,
        "unit": "[degF]" if fahrenheit else "Cel",
        "temperature": number_field(number),
    }
    time = None
    if flags & _FLAG_TIMESTAMP:
        time, stamp = cur.date_time("timestamp (flags bit 1)", ctx.device_tz)
        fields.update(stamp)
    if flags & _FLAG_TYPE:
        code = cur.u8("temperature type (flags bit 2)")
        fields["temperature_type_code"] = code
        fields["temperature_type"] = TEMPERATURE_TYPES.get(code, "reserved")
    cur.finish()
    quality = time_quality(time, ctx)
    if intermediate:
        quality = ("intermediate", *quality)
    value, no_value = number
    if fahrenheit:
        celsius = None if value is None else round((value - 32.0) * 5.0 / 9.0, 6)
        measurement = Measurement(
            metric="body_temperature",
            value=celsius,
            unit="Cel",
            time=time,
            no_value=no_value,
            original_value=value,
            original_unit="[degF]",
            quality=quality,
        )
    else:
        measurement = Measurement(
            metric="body_temperature",
            value=value,
            unit="Cel",
            time=time,
            no_value=no_value,
            quality=quality,
        )
    return GattResult(label, (measurement,), fields)


def decode_measurement(data: bytes, ctx: DecodeContext) -> GattResult:
    """Temperature Measurement: one body_temperature in Cel."""
    return _decode(data, ctx, "0x2A1C", intermediate=False)


def decode_intermediate(data: bytes, ctx: DecodeContext) -> GattResult:
    """Intermediate Temperature: one body_temperature flagged ``intermediate``."""
    return _decode(data, ctx, "0x2A1E", intermediate=True)


def encode(
    temperature: Value,
    *,
    unit: Literal["Cel", "[degF]"] = "Cel",
    decimals: int | None = None,
    timestamp: datetime | Literal["unknown"] | None = None,
    temperature_type: int | None = None,
) -> bytes:
    """Build a Temperature Measurement / Intermediate Temperature value (``temperature`` in
    ``unit``, not converted)."""
    flags = _FLAG_FAHRENHEIT if unit == "[degF]" else 0
    body = float_bytes(temperature, decimals)
    if timestamp is not None:
        flags |= _FLAG_TIMESTAMP
        body += encode_date_time(None if timestamp == "unknown" else timestamp)
    if temperature_type is not None:
        flags |= _FLAG_TYPE
        body += bytes((temperature_type,))
    return bytes((flags,)) + body
