"""``vitalstream decode``: device bytes -> readings (CONTRACTS.md, ``vitalstream decode``).

``gatt``, ``sfloat`` and ``float`` live here; ``hl7`` is registered on :data:`decode_app` by
``vitalstream.commands.decode_hl7``.
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import typer

from firmware_bridge import Measurement
from firmware_bridge.errors import DecodeError, MalformedError
from firmware_bridge.gatt import NAMES, GattResult, decode_characteristic
from firmware_bridge.ieee11073 import Number, decode_float, decode_sfloat
from vitalstream.output import emit_json, reject

decode_app = typer.Typer(
    help="Decode device bytes (BLE GATT values, IEEE 11073 numbers, HL7 v2 messages) into "
    "catalogue readings, exactly as the edge agent does.",
    no_args_is_help=True,
)


def _hex(text: str, what: str) -> bytes:
    cleaned = "".join(text.split()).replace(":", "").replace("-", "")
    if cleaned.lower().startswith("0x"):
        cleaned = cleaned[2:]
    try:
        return bytes.fromhex(cleaned)
    except ValueError:
        reject(MalformedError(f"{what} {text!r} is not hexadecimal bytes"))


def _uuid16(text: str) -> int:
    cleaned = text.strip().lower().removeprefix("0x")
    if len(cleaned) == 36 and cleaned.endswith("-0000-1000-8000-00805f9b34fb"):
        cleaned = cleaned[4:8]  # the 128-bit Bluetooth base UUID form
    try:
        value = int(cleaned, 16)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a 16-bit UUID like 2A35 or 0x2A35") from None
    if not 0 <= value <= 0xFFFF:
        raise typer.BadParameter(f"{text!r} is not a 16-bit UUID")
    return value


def reading_json(measurement: Measurement) -> dict[str, Any]:
    """One reading as the contract prints it (optional keys only when they carry something)."""
    out: dict[str, Any] = {
        "metric": measurement.metric,
        "value": measurement.value,
        "unit": measurement.unit,
    }
    if measurement.time is not None:
        out["time"] = measurement.time.isoformat()
    if measurement.no_value is not None:
        out["no_value"] = measurement.no_value
    if measurement.quality:
        out["quality"] = list(measurement.quality)
    if measurement.original_unit is not None:
        out["original_value"] = measurement.original_value
        out["original_unit"] = measurement.original_unit
    if measurement.extra:
        out["extra"] = measurement.extra
    return out


def result_json(result: GattResult) -> dict[str, Any]:
    """The contract's ``decode gatt`` object."""
    return {
        "characteristic": result.characteristic,
        "readings": [reading_json(m) for m in result.measurements],
        "fields": result.fields,
    }


def _number_json(number: Number) -> dict[str, Any]:
    return {"value": number[0], "no_value": number[1]}


def _print_result(uuid16: int, result: GattResult) -> None:
    typer.echo(f"{result.characteristic} {NAMES.get(uuid16, '')}")
    for m in result.measurements:
        shown = f"no value ({m.no_value})" if m.value is None else f"{m.value:g} {m.unit}"
        when = f" at {m.time.isoformat()}" if m.time else ""
        flags = f" [{', '.join(m.quality)}]" if m.quality else ""
        typer.echo(f"  {m.metric:<18} {shown}{when}{flags}")
    for key, value in result.fields.items():
        typer.echo(f"  . {key} = {value}")


def _zone(name: str | None) -> tzinfo | None:
    if name is None:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise typer.BadParameter(f"{name!r} is not an IANA time zone (e.g. Europe/Paris)") from None


def _session_start(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        raise typer.BadParameter("--session-start needs a UTC offset, e.g. 2024-05-01T08:00Z")
    return moment


@decode_app.command("gatt")
def gatt_command(
    uuid16: str = typer.Argument(..., help="Characteristic UUID16, e.g. 2A35 or 0x2A35."),
    hex_value: str = typer.Argument(
        ..., metavar="HEX", help="The characteristic value as received, in hex (spaces allowed)."
    ),
    *,
    feature: str | None = typer.Option(
        None,
        "--feature",
        help="Feature characteristic value in hex (Weight Scale Feature 0x2A9E for 2A9D, "
        "CGM Feature 0x2AA8 for 2AA7). Example: --feature 3A000000",
    ),
    session_start: str | None = typer.Option(
        None,
        "--session-start",
        help="CGM session start (ISO 8601 with offset); CGM record times are offsets from it.",
    ),
    device_tz: str | None = typer.Option(
        None,
        "--device-tz",
        help="IANA zone of the device clock (GATT times carry none); default UTC, flagged.",
    ),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Decode one BLE GATT characteristic value into catalogue readings.

    Example: vitalstream decode gatt 2A37 1E5532002100 --json
    (heart rate 85/min, 50 kJ, one RR interval). Malformed, CRC-failed or unsupported input
    exits 3 with {"error": {"kind", "detail"}}.
    """
    uuid = _uuid16(uuid16)
    data = _hex(hex_value, "value")
    feature_bytes = None if feature is None else _hex(feature, "--feature")
    try:
        result = decode_characteristic(
            uuid,
            data,
            feature=feature_bytes,
            device_tz=_zone(device_tz),
            session_start=_session_start(session_start),
        )
    except DecodeError as error:  # MalformedError, CrcError, UnsupportedError
        reject(error)
    if json_output:
        emit_json(result_json(result))
    else:
        _print_result(uuid, result)


def _number_command(hex_value: str, size: int, json_output: bool, kind: str) -> None:
    data = _hex(hex_value, kind)
    if len(data) != size:
        reject(MalformedError(f"{kind} takes exactly {size} bytes, got {len(data)}"))
    number = decode_sfloat(data) if size == 2 else decode_float(data)
    if json_output:
        emit_json(_number_json(number))
    elif number[1] is not None:
        typer.echo(f"no value ({number[1]})")
    else:
        typer.echo(f"{number[0]:g}")


@decode_app.command("sfloat")
def sfloat_command(
    hex_value: str = typer.Argument(
        ..., metavar="HEX4", help="2 bytes, little-endian as received."
    ),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Decode an IEEE 11073-20601 SFLOAT (4-bit exponent, 12-bit mantissa).

    Example: vitalstream decode sfloat 6DF1 --json  ->  {"value": 36.5, "no_value": null};
    FF07 -> {"value": null, "no_value": "NaN"}.
    """
    _number_command(hex_value, 2, json_output, "SFLOAT")


@decode_app.command("float")
def float_command(
    hex_value: str = typer.Argument(
        ..., metavar="HEX8", help="4 bytes, little-endian as received."
    ),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Decode an IEEE 11073-20601 FLOAT (8-bit exponent, 24-bit mantissa).

    Example: vitalstream decode float 720100FF --json  ->  {"value": 37.0, "no_value": null};
    FFFF7F00 -> {"value": null, "no_value": "NaN"}.
    """
    _number_command(hex_value, 4, json_output, "FLOAT")
