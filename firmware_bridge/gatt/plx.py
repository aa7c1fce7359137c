"""PLX Spot-check Measurement 0x2A5E and PLX Continuous Measurement 0x2A5F
(Pulse Oximeter Service 1.0, 3.1 and 3.2; GSS "PLX Spot-check/Continuous Measurement").

Spot-check: flags (uint8) · SpO2, PR (SFLOAT) · timestamp (Date Time, bit 0) · measurement
status (uint16, bit 1) · device and sensor status (uint24, bit 2) · pulse amplitude index
(SFLOAT %, bit 3); bit 4 = "device clock is not set".

Continuous: flags (uint8) · SpO2PR-Normal · SpO2PR-Fast (bit 0) · SpO2PR-Slow (bit 1) ·
measurement status (bit 2) · device and sensor status (bit 3) · pulse amplitude index (bit 4).

The Normal pair becomes ``spo2`` and ``pulse_rate``; Fast and Slow are other averagings of the
same quantity at the same moment and go to ``fields`` (emitting them as readings would give
three values for one (device, metric, time) key). The pulse amplitude index is the catalogue's
``perfusion_index`` (%). Status bits that make a value doubtful become quality flags.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final, Literal

from firmware_bridge.gatt._core import (
    Cursor,
    DecodeContext,
    GattResult,
    bit_names,
    encode_date_time,
    number_field,
    number_measurement,
    reserved_bits,
    time_quality,
)
from firmware_bridge.gatt._values import Value, sfloat_bytes
from firmware_bridge.ieee11073 import Number

UUID_SPOT_CHECK: Final = 0x2A5E
UUID_CONTINUOUS: Final = 0x2A5F

# PLXS 3.1.1.1 Spot-check flags.
_SPOT_TIMESTAMP: Final = 0x01
_SPOT_MEAS_STATUS: Final = 0x02
_SPOT_DEVICE_STATUS: Final = 0x04
_SPOT_PAI: Final = 0x08
_SPOT_CLOCK_NOT_SET: Final = 0x10
_SPOT_DEFINED: Final = 0x1F
# PLXS 3.2.1.1 Continuous flags.
_CONT_FAST: Final = 0x01
_CONT_SLOW: Final = 0x02
_CONT_MEAS_STATUS: Final = 0x04
_CONT_DEVICE_STATUS: Final = 0x08
_CONT_PAI: Final = 0x10
_CONT_DEFINED: Final = 0x1F

# PLXS 3.1.1.4 Measurement Status (bits 0-4 reserved).
MEASUREMENT_STATUS: Final[dict[int, str]] = {
    5: "measurement_ongoing",
    6: "early_estimated_data",
    7: "validated_data",
    8: "fully_qualified_data",
    9: "data_from_measurement_storage",
    10: "data_for_demonstration",
    11: "data_for_testing",
    12: "calibration_ongoing",
    13: "measurement_unavailable",
    14: "questionable_measurement_detected",
    15: "invalid_measurement_detected",
}
# PLXS 3.1.1.5 Device and Sensor Status (bits 16-23 reserved).
DEVICE_SENSOR_STATUS: Final[dict[int, str]] = {
    0: "extended_display_update_ongoing",
    1: "equipment_malfunction_detected",
    2: "signal_processing_irregularity_detected",
    3: "inadequate_signal_detected",
    4: "poor_signal_detected",
    5: "low_perfusion_detected",
    6: "erratic_signal_detected",
    7: "nonpulsatile_signal_detected",
    8: "questionable_pulse_detected",
    9: "signal_analysis_ongoing",
    10: "sensor_interference_detected",
    11: "sensor_unconnected_to_user",
    12: "unknown_sensor_connected",
    13: "sensor_displaced",
    14: "sensor_malfunctioning",
    15: "sensor_disconnected",
}
#: Status bits that make the numbers doubtful, copied onto each measurement as quality flags.
_DOUBTFUL: Final = frozenset(
    {
        "early_estimated_data",
        "data_for_demonstration",
        "data_for_testing",
        "calibration_ongoing",
        "measurement_unavailable",
        "questionable_measurement_detected",
        "invalid_measurement_detected",
        "equipment_malfunction_detected",
        "signal_processing_irregularity_detected",
        "inadequate_signal_detected",
        "poor_signal_detected",
        "low_perfusion_detected",
        "erratic_signal_detected",
        "nonpulsatile_signal_detected",
        "questionable_pulse_detected",
        "sensor_interference_detected",
        "sensor_unconnected_to_user",
        "unknown_sensor_connected",
        "sensor_displaced",
        "sensor_malfunctioning",
        "sensor_disconnected",
    }
)


def _statuses(
    cur: Cursor, fields: dict[str, object], measurement_status: bool, device_status: bool
) -> tuple[str, ...]:
    doubtful: list[str] = []
    if measurement_status:
        raw = cur.u16("measurement status")
        names = bit_names(raw, MEASUREMENT_STATUS)
        fields["measurement_status"] = names
        if reserved_bits(raw, MEASUREMENT_STATUS):
            fields["measurement_status_reserved_bits"] = reserved_bits(raw, MEASUREMENT_STATUS)
        doubtful += [n for n in names if n in _DOUBTFUL]
    if device_status:
        raw = cur.u24("device and sensor status")
        names = bit_names(raw, DEVICE_SENSOR_STATUS)
        fields["device_and_sensor_status"] = names
        if reserved_bits(raw, DEVICE_SENSOR_STATUS):
            fields["device_and_sensor_status_reserved_bits"] = reserved_bits(
                raw, DEVICE_SENSOR_STATUS
            )
        doubtful += [n for n in names if n in _DOUBTFUL]
    return tuple(doubtful)


def _result(
    label: str,
    spo2: Number,
    pulse: Number,
    pai: Number | None,
    *,
    time: datetime | None,
    quality: tuple[str, ...],
    fields: dict[str, object],
) -> GattResult:
    measurements = [
        number_measurement("spo2", spo2, "%", time, quality),
        number_measurement("pulse_rate", pulse, "/min", time, quality),
    ]
    fields["spo2"] = number_field(spo2)
    fields["pulse_rate"] = number_field(pulse)
    if pai is not None:
        fields["pulse_amplitude_index"] = number_field(pai)
        measurements.append(number_measurement("perfusion_index", pai, "%", time, quality))
    return GattResult(label, tuple(measurements), fields)


def decode_spot_check(data: bytes, ctx: DecodeContext) -> GattResult:
    """PLX Spot-check: spo2, pulse_rate (+ perfusion_index).

    When flags bit 4 says the device clock is not set, a timestamp that is present is
    reported in ``fields`` but not used as the measurement time (it would be a guess).
    """
    cur = Cursor(data, "0x2A5E")
    flags = cur.flags("flags", _SPOT_DEFINED)
    spo2 = cur.sfloat("SpO2")
    pulse = cur.sfloat("pulse rate")
    clock_not_set = bool(flags & _SPOT_CLOCK_NOT_SET)
    fields: dict[str, object] = {"flags": flags, "device_clock_not_set": clock_not_set}
    time = None
    if flags & _SPOT_TIMESTAMP:
        time, stamp = cur.date_time("timestamp (flags bit 0)", ctx.device_tz)
        fields.update(stamp)
        if clock_not_set:
            time = None
    quality = _statuses(
        cur, fields, bool(flags & _SPOT_MEAS_STATUS), bool(flags & _SPOT_DEVICE_STATUS)
    )
    pai = cur.sfloat("pulse amplitude index (flags bit 3)") if flags & _SPOT_PAI else None
    cur.finish()
    return _result(
        "0x2A5E",
        spo2,
        pulse,
        pai,
        time=time,
        quality=(*time_quality(time, ctx), *quality),
        fields=fields,
    )


def decode_continuous(data: bytes, ctx: DecodeContext) -> GattResult:
    """PLX Continuous: spo2, pulse_rate from SpO2PR-Normal (+ perfusion_index); no device time."""
    cur = Cursor(data, "0x2A5F")
    flags = cur.flags("flags", _CONT_DEFINED)
    spo2 = cur.sfloat("SpO2 (normal)")
    pulse = cur.sfloat("pulse rate (normal)")
    fields: dict[str, object] = {"flags": flags}
    if flags & _CONT_FAST:
        fields["spo2_fast"] = number_field(cur.sfloat("SpO2 fast (flags bit 0)"))
        fields["pulse_rate_fast"] = number_field(cur.sfloat("PR fast (flags bit 0)"))
    if flags & _CONT_SLOW:
        fields["spo2_slow"] = number_field(cur.sfloat("SpO2 slow (flags bit 1)"))
        fields["pulse_rate_slow"] = number_field(cur.sfloat("PR slow (flags bit 1)"))
    quality = _statuses(
        cur, fields, bool(flags & _CONT_MEAS_STATUS), bool(flags & _CONT_DEVICE_STATUS)
    )
    pai = cur.sfloat("pulse amplitude index (flags bit 4)") if flags & _CONT_PAI else None
    cur.finish()
    return _result("0x2A5F", spo2, pulse, pai, time=None, quality=quality, fields=fields)


def encode_spot_check(
    spo2: Value,
    pulse_rate: Value,
    *,
    timestamp: datetime | Literal["unknown"] | None = None,
    measurement_status: int | None = None,
    device_status: int | None = None,
    pulse_amplitude_index: Value | None = None,
    clock_not_set: bool = False,
) -> bytes:
    """Build a PLX Spot-check Measurement value."""
    flags = _SPOT_CLOCK_NOT_SET if clock_not_set else 0
    body = sfloat_bytes(spo2) + sfloat_bytes(pulse_rate)
    if timestamp is not None:
        flags |= _SPOT_TIMESTAMP
        body += encode_date_time(None if timestamp == "unknown" else timestamp)
    if measurement_status is not None:
        flags |= _SPOT_MEAS_STATUS
        body += measurement_status.to_bytes(2, "little")
    if device_status is not None:
        flags |= _SPOT_DEVICE_STATUS
        body += device_status.to_bytes(3, "little")
    if pulse_amplitude_index is not None:
        flags |= _SPOT_PAI
        body += sfloat_bytes(pulse_amplitude_index)
    return bytes((flags,)) + body


def encode_continuous(
    spo2: Value,
    pulse_rate: Value,
    *,
    fast: tuple[Value, Value] | None = None,
    slow: tuple[Value, Value] | None = None,
    measurement_status: int | None = None,
    device_status: int | None = None,
    pulse_amplitude_index: Value | None = None,
) -> bytes:
    """Build a PLX Continuous Measurement value (``fast``/``slow``: (SpO2, PR) pairs)."""
    flags = 0
    body = sfloat_bytes(spo2) + sfloat_bytes(pulse_rate)
    if fast is not None:
        flags |= _CONT_FAST
        body += sfloat_bytes(fast[0]) + sfloat_bytes(fast[1])
    if slow is not None:
        flags |= _CONT_SLOW
        body += sfloat_bytes(slow[0]) + sfloat_bytes(slow[1])
    if measurement_status is not None:
        flags |= _CONT_MEAS_STATUS
        body += measurement_status.to_bytes(2, "little")
    if device_status is not None:
        flags |= _CONT_DEVICE_STATUS
        body += device_status.to_bytes(3, "little")
    if pulse_amplitude_index is not None:
        flags |= _CONT_PAI
        body += sfloat_bytes(pulse_amplitude_index)
    return bytes((flags,)) + body
