"""Date Time 0x2A08 (GSS "Date Time"): year uint16, month, day, hours, minutes, seconds.

The same 7 bytes are embedded in the measurement characteristics (see ``_core.Cursor.date_time``).
Year, month or day 0 mean "not known": the result has no time, never a guessed one.
"""

from __future__ import annotations

from typing import Final

from firmware_bridge.gatt._core import Cursor, DecodeContext, GattResult, encode_date_time

UUID: Final = 0x2A08

__all__ = ["UUID", "decode", "encode_date_time"]


def decode(data: bytes, ctx: DecodeContext) -> GattResult:
    """Date Time: fields only (``timestamp`` as device-local ISO text, or None if unknown)."""
    cur = Cursor(data, "0x2A08")
    moment, stamp = cur.date_time("date time", ctx.device_tz)
    cur.finish()
    fields: dict[str, object] = dict(stamp)
    fields["known"] = moment is not None
    return GattResult("0x2A08", (), fields)
