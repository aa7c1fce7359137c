"""``vitalstream decode hl7``: HL7 v2 ORU^R01 from a file or stdin -> readings (CONTRACTS.md).

Registered on the shared ``decode`` group; cli.py imports this module so the command exists.
The output is the contract's one JSON object; patient identifiers are masked by the decoder,
so nothing here can print a clear identifier.
"""

from __future__ import annotations

import sys
from datetime import UTC, timedelta, timezone, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import typer

from firmware_bridge.errors import DecodeError, MalformedError
from firmware_bridge.hl7 import decode_all
from vitalstream.commands.decode import decode_app
from vitalstream.output import emit_json, reject

_HELP = (
    "Decode HL7 v2 ORU^R01 messages (IHE PCD-01, Philips, Mindray, Comen) into readings.\n\n"
    "FILE holds one or more messages, as bare segments (CR, LF or CRLF line ends) or "
    "MLLP-framed (0x0B ... 0x1C 0x0D), e.g. a capture of a monitor's TCP stream. "
    "Use - for stdin.\n\n"
    "Every OBX row becomes a reading, an alarm, or an ignored entry with its reason (settings, "
    "unknown codes, empty values, escape sequences inside numbers ...). Values are converted "
    "once to the catalogue's canonical units; no-value sentinels (-999, 8388607 ...) give "
    "value null. Patient identifiers are always masked (last two characters kept).\n\n"
    """\b
Example (a Comen spot check shipped with the tests):
  vitalstream decode hl7 tests/fixtures/hl7/comen_nc5_spot_check.hl7 --json
  cat capture.mllp | vitalstream decode hl7 - --json
\b
  {"messages": [{"control_id": "20260726231332.11090007", "processing_id": "P",
    "patient": {"identifiers": [{"id": "***********23", "field": "PID-3"}]},
    "readings": [{"metric": "bp_systolic", "value": 120.0, "unit": "mm[Hg]",
      "time": "2026-07-26T15:13:31+00:00", "channel": "1.1.9.150301",
      "code": "150301^MDC_PRESS_CUFF_SYS^MDC", "reference_range": "90^160", ...}, ...],
    "alarms": [], "ignored": [{"code": "2267^COMEN_ACVPU^99COMEN",
      "reason": "vendor_context"}, ...]}]}

"""
    'Exit 3 with {"error": {"kind", "detail"}} when the input is not HL7 (malformed) '
    "or not ORU^R01 (unsupported)."
)


def _device_zone(text: str | None) -> tzinfo | None:
    if text is None:
        return None
    if text.upper() in ("UTC", "Z"):
        return UTC
    if len(text) == 5 and text[0] in "+-" and text[1:].isdigit():
        sign = -1 if text[0] == "-" else 1
        return timezone(sign * timedelta(hours=int(text[1:3]), minutes=int(text[3:5])))
    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise typer.BadParameter(f"unknown time zone {text!r}; use +HHMM or an IANA name") from None


def _read_input(file: str) -> bytes:
    if file == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(file).read_bytes()
    except OSError as error:
        raise typer.BadParameter(f"cannot read {file}: {error.strerror}") from None


@decode_app.command("hl7", help=_HELP)
def decode_hl7_command(
    file: str = typer.Argument(..., metavar="FILE|-", help="HL7 file (bare or MLLP), - = stdin."),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
    device_tz: str | None = typer.Option(
        None,
        "--device-tz",
        help="Time zone of monitors that send times without an offset (+0800 or an IANA "
        "name). Without it such readings keep local_time and get time null.",
    ),
) -> None:
    """Decode HL7 v2 ORU^R01 messages into catalogue readings."""
    zone = _device_zone(device_tz)
    data = _read_input(file)
    try:
        results = decode_all(data, default_tz=zone)
    except DecodeError as error:
        reject(error)
    except RecursionError:  # pathological nesting: still a rejected input, not a crash
        reject(MalformedError("HL7 input nested too deeply"))
    payload = {"messages": [result.as_dict() for result in results]}
    if json_output:
        emit_json(payload)
        return
    for result, message in zip(results, payload["messages"], strict=True):
        flag = " [TEST MESSAGE: MSH-11=T]" if result.is_test else ""
        typer.echo(f"message {result.control_id}{flag}")
        for reading in message["readings"]:
            value = reading["value"] if reading["value"] is not None else reading.get("no_value")
            channel = f" channel {reading['channel']}" if "channel" in reading else ""
            typer.echo(
                f"  {reading['metric']:<18} {value} {reading['unit']}  {reading['time']}{channel}"
            )
        for alarm in result.alarms:
            typer.echo(f"  alarm   {alarm.code}: {alarm.text}")
        for ignored in result.ignored:
            typer.echo(f"  ignored {ignored.code}: {ignored.reason}")
