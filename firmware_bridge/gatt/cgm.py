"""CGM Measurement 0x2AA7 and CGM Feature 0x2AA8 (Continuous Glucose Monitoring Service 1.0.1,
3.1 and 3.2; GSS "CGM Measurement", "CGM Feature").

One notification carries one or more records, each starting with its own size byte:
size (uint8, the record's length including itself and the CRC) · flags (uint8) · glucose
concentration (SFLOAT mg/dL) · time offset (uint16 minutes since the session start) · sensor
status annunciation (flags bits 7/6/5: Status, Cal/Temp, Warning octets, each only when its bit
is set, in that order — the order of the 24-bit CGM Status field, low octet first) · trend
(SFLOAT (mg/dL)/min, bit 0) · quality (SFLOAT %, bit 1) · E2E-CRC (uint16, when the sensor
supports it).

E2E-CRC presence: with the CGM Feature (``feature=``) its bit 12 decides; without it, the size
byte decides (size = fields + 2 means a CRC follows). A CRC that is present is always checked
(CRC-16/MCRF4XX over the record before it): a mismatch raises ``CrcError``.

Time: ``ctx.session_start`` (the CGM Session Start Time, aware) + time offset minutes. Without
a session start the records have ``time=None`` and the offset stays in ``fields``: the shell
must not stamp backfilled records with receipt time, so it should always pass the start time.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Final

from firmware_bridge.crc import crc16_mcrf4xx
from firmware_bridge.errors import CrcError
from firmware_bridge.gatt._core import Cursor, DecodeContext, GattResult, bit_names, number_field
from firmware_bridge.gatt._values import Value, sfloat_bytes
from firmware_bridge.gatt.glucose import GLUCOSE_TYPES, MG_DL_PER_MMOL_L, SAMPLE_LOCATIONS
from firmware_bridge.measurement import Measurement

UUID_MEASUREMENT: Final = 0x2AA7
UUID_FEATURE: Final = 0x2AA8

# CGMS 3.1.1.2 Flags.
_FLAG_TREND: Final = 0x01
_FLAG_QUALITY: Final = 0x02
_FLAG_WARNING: Final = 0x20
_FLAG_CAL_TEMP: Final = 0x40
_FLAG_STATUS: Final = 0x80
_FLAGS_DEFINED: Final = 0xE3  # bits 2-4 reserved
_MIN_RECORD: Final = 6  # size, flags, concentration, time offset

# CGMS 3.1.1.5 Sensor Status Annunciation, by octet.
STATUS_OCTET: Final[dict[int, str]] = {
    0: "session_stopped",
    1: "device_battery_low",
    2: "sensor_type_incorrect",
    3: "sensor_malfunction",
    4: "device_specific_alert",
    5: "general_device_fault",
}
CAL_TEMP_OCTET: Final[dict[int, str]] = {
    0: "time_synchronization_required",
    1: "calibration_not_allowed",
    2: "calibration_recommended",
    3: "calibration_required",
    4: "sensor_temperature_too_high",
    5: "sensor_temperature_too_low",
    6: "calibration_pending",
}
WARNING_OCTET: Final[dict[int, str]] = {
    0: "below_patient_low_level",
    1: "above_patient_high_level",
    2: "below_hypo_level",
    3: "above_hyper_level",
    4: "rate_of_decrease_exceeded",
    5: "rate_of_increase_exceeded",
    6: "result_below_device_range",
    7: "result_above_device_range",
}
#: Annunciations that make the value doubtful (copied to quality). Patient alert levels are
#: clinical findings about a valid value, so they are reported but are not quality flags.
_DOUBTFUL: Final = frozenset(
    {
        "session_stopped",
        "sensor_type_incorrect",
        "sensor_malfunction",
        "general_device_fault",
        "time_synchronization_required",
        "calibration_required",
        "sensor_temperature_too_high",
        "sensor_temperature_too_low",
        "result_below_device_range",
        "result_above_device_range",
    }
)
#: CGM Feature bit 12: E2E-CRC supported.
_FEATURE_E2E_CRC: Final = 1 << 12


def decode_feature(data: bytes, ctx: DecodeContext | None = None) -> GattResult:
    """CGM Feature: 24 feature bits, type/sample location, and its own E2E-CRC (checked when
    the E2E-CRC bit is set; 0xFFFF otherwise)."""
    cur = Cursor(data, "0x2AA8")
    features = cur.u24("CGM features")
    type_location = cur.u8("type-sample location")
    crc = cur.u16("E2E-CRC")
    cur.finish()
    supported = bool(features & _FEATURE_E2E_CRC)
    if supported and crc16_mcrf4xx(data[:4]) != crc:
        raise CrcError(f"0x2AA8: E2E-CRC 0x{crc:04X} does not match", offset=4)
    return GattResult(
        "0x2AA8",
        (),
        {
            "features": features,
            "e2e_crc_supported": supported,
            "type": GLUCOSE_TYPES.get(type_location & 0x0F, "reserved"),
            "sample_location": SAMPLE_LOCATIONS.get(type_location >> 4, "reserved"),
        },
    )


def _crc_from_feature(feature: bytes | None) -> bool | None:
    if feature is None:
        return None
    if len(feature) < 3:
        Cursor(feature, "0x2AA8 (feature)").u24("CGM features")
    return bool((feature[0] | feature[1] << 8 | feature[2] << 16) & _FEATURE_E2E_CRC)


def decode(data: bytes, ctx: DecodeContext) -> GattResult:
    """CGM Measurement: one ``glucose`` (mmol/L) per record; per-record spec fields in
    ``fields["records"]``."""
    crc_supported = _crc_from_feature(ctx.feature)
    start_time = ctx.session_start
    measurements: list[Measurement] = []
    records: list[dict[str, object]] = []
    pos = 0
    total = len(data)
    if total == 0:
        Cursor(data, "0x2AA7").fail("empty value: at least one record is required")
    while pos < total:
        size = data[pos]
        if size < _MIN_RECORD:
            Cursor(data, "0x2AA7", pos).fail(f"record size {size} is below the minimum 6")
        if pos + size > total:
            Cursor(data, "0x2AA7", pos).fail(
                f"record size {size} runs past the end ({total - pos} byte(s) left)"
            )
        cur = Cursor(data, "0x2AA7", pos + 1, pos + size)
        flags = cur.flags("record flags", _FLAGS_DEFINED)
        number = cur.sfloat("glucose concentration")
        offset = cur.u16("time offset")
        record: dict[str, object] = {"size": size, "flags": flags, "time_offset_min": offset}
        record["glucose_mg_dl"] = number_field(number)
        # Octet order: Status, Cal/Temp, Warning (see module docstring).
        names: list[str] = []
        if flags & _FLAG_STATUS:
            octet = bit_names(cur.u8("status octet (flags bit 7)"), STATUS_OCTET)
            record["status"] = octet
            names += octet
        if flags & _FLAG_CAL_TEMP:
            octet = bit_names(cur.u8("cal/temp octet (flags bit 6)"), CAL_TEMP_OCTET)
            record["cal_temp"] = octet
            names += octet
        if flags & _FLAG_WARNING:
            octet = bit_names(cur.u8("warning octet (flags bit 5)"), WARNING_OCTET)
            record["warning"] = octet
            names += octet
        if flags & _FLAG_TREND:
            record["trend_mg_dl_per_min"] = number_field(cur.sfloat("trend (flags bit 0)"))
        if flags & _FLAG_QUALITY:
            record["quality_percent"] = number_field(cur.sfloat("quality (flags bit 1)"))
        left = cur.remaining
        has_crc = crc_supported if crc_supported is not None else left == 2
        if has_crc:
            crc_at = cur.pos
            crc = cur.u16("E2E-CRC")
            expected = crc16_mcrf4xx(data[pos:crc_at])
            if crc != expected:
                raise CrcError(
                    f"0x2AA7: record E2E-CRC 0x{crc:04X} != computed 0x{expected:04X}",
                    offset=crc_at,
                )
        record["e2e_crc"] = has_crc
        cur.finish()
        value, no_value = number
        time = None if start_time is None else start_time + timedelta(minutes=offset)
        measurements.append(
            Measurement(
                metric="glucose",
                value=None if value is None else round(value / MG_DL_PER_MMOL_L, 6),
                unit="mmol/L",
                time=time,
                no_value=no_value,
                original_value=value,
                original_unit="mg/dL",
                quality=tuple(n for n in names if n in _DOUBTFUL),
                extra={"time_offset_min": offset},
            )
        )
        records.append(record)
        pos += size
    fields: dict[str, object] = {"records": records, "record_count": len(records)}
    return GattResult("0x2AA7", tuple(measurements), fields)


def encode_record(
    glucose_mg_dl: Value,
    time_offset_min: int,
    *,
    status: int | None = None,
    cal_temp: int | None = None,
    warning: int | None = None,
    trend: Value | None = None,
    quality: Value | None = None,
    e2e_crc: bool = False,
) -> bytes:
    """One CGM Measurement record (concatenate records for a multi-record notification)."""
    flags = 0
    body = sfloat_bytes(glucose_mg_dl) + time_offset_min.to_bytes(2, "little")
    for bit, octet in (
        (_FLAG_STATUS, status),
        (_FLAG_CAL_TEMP, cal_temp),
        (_FLAG_WARNING, warning),
    ):
        if octet is not None:
            flags |= bit
            body += bytes((octet,))
    if trend is not None:
        flags |= _FLAG_TREND
        body += sfloat_bytes(trend)
    if quality is not None:
        flags |= _FLAG_QUALITY
        body += sfloat_bytes(quality)
    size = 2 + len(body) + (2 if e2e_crc else 0)
    record = bytes((size, flags)) + body
    if e2e_crc:
        record += crc16_mcrf4xx(record).to_bytes(2, "little")
    return record


def encode_feature(features: int, type_code: int = 9, sample_location_code: int = 5) -> bytes:
    """Build a CGM Feature value (CRC filled in when bit 12 is set, else 0xFFFF)."""
    head = features.to_bytes(3, "little") + bytes(
        ((sample_location_code & 0xF) << 4 | (type_code & 0xF),)
    )
    crc = crc16_mcrf4xx(head) if features & _FEATURE_E2E_CRC else 0xFFFF
    return head + crc.to_bytes(2, "little")
