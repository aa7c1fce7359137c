"""Shared pieces of the GATT decoders: the result type, the decode context, a bounds-checked
little-endian cursor, and the 7-byte Date Time used inside the measurement characteristics.

Everything that can go wrong with the bytes raises :class:`MalformedError` with the byte offset
where decoding stopped, never ``IndexError``/``struct.error`` and never a guessed value.

Trailing-bytes policy: a characteristic value longer than the fields its flags announce is
**rejected** (``MalformedError``). Extra bytes mean the device and this decoder disagree about the
layout (a newer spec revision, a vendor extension, a corrupted notification); guessing which
bytes are which is how a medical value gets misread, so the whole notification is refused and
the shell dead-letters it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Final, NoReturn

from firmware_bridge.errors import MalformedError
from firmware_bridge.ieee11073 import Number, float_from_raw, sfloat_from_raw
from firmware_bridge.measurement import Measurement


@dataclass(frozen=True, slots=True)
class GattResult:
    """One decoded characteristic value.

    ``characteristic`` is the UUID16 as the contract prints it (``"0x2A35"``); ``measurements``
    the catalogue-unit values; ``fields`` the spec fields (flags decoded, status bits by name,
    user id, ...), JSON-ready (str/int/float/bool/None, lists and dicts of those).
    """

    characteristic: str
    measurements: tuple[Measurement, ...]
    fields: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DecodeContext:
    """What a decoder needs besides the bytes; all of it comes from the caller (pure code).

    - ``feature``: the value of the service's Feature characteristic when the shell has read it
      (Weight Scale Feature 0x2A9E, CGM Feature 0x2AA8).
    - ``device_tz``: the zone of the device's wall clock. GATT Date Time carries no offset; a
      shell that knows the zone (Local Time Information 0x2A0F, configuration) passes it. When
      absent, UTC is used and each timestamped measurement carries the quality flag
      ``device_tz_assumed_utc`` so the assumption stays visible downstream.
    - ``session_start``: the CGM Session Start Time (0x2AAA) as an aware datetime; CGM records
      carry only minutes since that moment.
    """

    feature: bytes | None = None
    device_tz: tzinfo | None = None
    session_start: datetime | None = None


Decoder = Callable[[bytes, DecodeContext], GattResult]

#: Quality flag added to measurements whose device time was interpreted as UTC by default.
TZ_ASSUMED: Final = "device_tz_assumed_utc"


def uuid_label(uuid16: int) -> str:
    """``0x2a35`` -> ``"0x2A35"``, the contract's spelling."""
    return f"0x{uuid16:04X}"


class Cursor:
    """Reads little-endian fields front to back and says exactly where the bytes ran out."""

    __slots__ = ("data", "end", "label", "pos")

    def __init__(self, data: bytes, label: str, start: int = 0, end: int | None = None) -> None:
        self.data = data
        self.label = label
        self.pos = start
        self.end = len(data) if end is None else end

    def fail(self, reason: str, offset: int | None = None) -> NoReturn:
        """Raise the typed error for this characteristic at ``offset`` (default: here)."""
        raise MalformedError(
            f"{self.label}: {reason}", offset=self.pos if offset is None else offset
        )

    def _short(self, size: int, what: str) -> NoReturn:
        left = self.end - self.pos
        self.fail(f"{what} needs {size} byte(s) but only {left} remain")

    @property
    def remaining(self) -> int:
        """Bytes left before the end of this cursor's window."""
        return self.end - self.pos

    def u8(self, what: str) -> int:
        pos = self.pos
        if pos + 1 > self.end:
            self._short(1, what)
        self.pos = pos + 1
        return self.data[pos]

    def u16(self, what: str) -> int:
        pos = self.pos
        if pos + 2 > self.end:
            self._short(2, what)
        self.pos = pos + 2
        data = self.data
        return data[pos] | data[pos + 1] << 8

    def s16(self, what: str) -> int:
        raw = self.u16(what)
        return raw - 0x10000 if raw >= 0x8000 else raw

    def u24(self, what: str) -> int:
        pos = self.pos
        if pos + 3 > self.end:
            self._short(3, what)
        self.pos = pos + 3
        data = self.data
        return data[pos] | data[pos + 1] << 8 | data[pos + 2] << 16

    def u32(self, what: str) -> int:
        pos = self.pos
        if pos + 4 > self.end:
            self._short(4, what)
        self.pos = pos + 4
        return int.from_bytes(self.data[pos : pos + 4], "little")

    def sfloat(self, what: str) -> Number:
        return sfloat_from_raw(self.u16(what))

    def float32(self, what: str) -> Number:
        return float_from_raw(self.u32(what))

    def flags(self, what: str, allowed: int, width: int = 1) -> int:
        """Read a flags field and reject reserved bits (they would change the layout)."""
        start = self.pos
        value = self.u8(what) if width == 1 else self.u16(what) if width == 2 else self.u24(what)
        reserved = value & ~allowed
        if reserved:
            self.fail(
                f"{what} 0x{value:0{width * 2}X} sets reserved bit(s) 0x{reserved:0{width * 2}X}; "
                "the layout of the rest is unknown",
                offset=start,
            )
        return value

    def finish(self) -> None:
        """Reject trailing bytes (module docstring: trailing-bytes policy)."""
        if self.pos != self.end:
            self.fail(
                f"{self.end - self.pos} trailing byte(s) after the last field the flags announce "
                "(rejected: the layout is not what the spec says)"
            )

    def date_time(self, what: str, tz: tzinfo | None) -> tuple[datetime | None, dict[str, object]]:
        """The 7-byte Date Time (GSS "Date Time": year uint16, month, day, hours, minutes,
        seconds uint8). Year, month or day 0 mean "not known": no time at all, never a guess.

        Returns the aware time (or None) and the fields to report (local wall clock as
        ISO text, or the raw parts when the date is unknown).
        """
        start = self.pos
        if start + 7 > self.end:
            self._short(7, what)
        data = self.data
        year = data[start] | data[start + 1] << 8
        month, day, hours, minutes, seconds = data[start + 2 : start + 7]
        self.pos = start + 7
        moment = date_time_from_parts(
            year, month, day, hours, minutes, seconds, tz, self.label, what, start
        )
        if moment is None:
            return None, {
                "timestamp": None,
                "timestamp_raw": [year, month, day, hours, minutes, seconds],
            }
        return moment, {"timestamp": moment.replace(tzinfo=None).isoformat()}


def date_time_from_parts(
    year: int,
    month: int,
    day: int,
    hours: int,
    minutes: int,
    seconds: int,
    tz: tzinfo | None,
    label: str,
    what: str,
    offset: int,
) -> datetime | None:
    """Validate Date Time parts (GSS ranges) and build the aware datetime, or None if unknown."""
    # GSS Date Time: year 1582..9999 or 0 (not known); month 1..12 or 0; day 1..31 or 0;
    # hours 0..23; minutes 0..59; seconds 0..59.
    bad = (
        (year != 0 and not 1582 <= year <= 9999)
        or month > 12
        or day > 31
        or hours > 23
        or minutes > 59
        or seconds > 59
    )
    if bad:
        raise MalformedError(
            f"{label}: {what} {year:04d}-{month:02d}-{day:02d} {hours:02d}:{minutes:02d}:"
            f"{seconds:02d} is outside the Date Time ranges",
            offset=offset,
        )
    if year == 0 or month == 0 or day == 0:
        return None
    try:
        return datetime(year, month, day, hours, minutes, seconds, tzinfo=tz or UTC)
    except ValueError as error:  # e.g. 31 February
        raise MalformedError(
            f"{label}: {what} is not a calendar date ({error})", offset=offset
        ) from None


def encode_date_time(moment: datetime | None) -> bytes:
    """The 7-byte Date Time for the device wall clock of ``moment`` (None -> all zero, unknown).

    The wall-clock fields of ``moment`` are written as they are (an aware datetime is *not*
    converted): the device clock is local time and the caller chooses the zone.
    """
    if moment is None:
        return bytes(7)
    if not 1582 <= moment.year <= 9999:
        raise ValueError("Date Time years run 1582..9999")
    return moment.year.to_bytes(2, "little") + bytes(
        (moment.month, moment.day, moment.hour, moment.minute, moment.second)
    )


def bit_names(value: int, names: dict[int, str]) -> list[str]:
    """The names of the set bits of ``value`` (``names``: bit index -> name), in bit order."""
    return [name for bit, name in names.items() if value >> bit & 1]


def reserved_bits(value: int, names: dict[int, str]) -> int:
    """Bits set in a status word that the table does not name (reported, not rejected)."""
    known = 0
    for bit in names:
        known |= 1 << bit
    return value & ~known


def number_measurement(
    metric: str,
    number: Number,
    unit: str,
    time: datetime | None,
    quality: tuple[str, ...] = (),
) -> Measurement:
    """A Measurement in canonical units straight from a decoded number (no conversion)."""
    return Measurement(
        metric=metric, value=number[0], unit=unit, time=time, no_value=number[1], quality=quality
    )


def converted_measurement(
    metric: str,
    number: Number,
    unit: str,
    factor: float,
    original_unit: str,
    *,
    time: datetime | None,
    quality: tuple[str, ...] = (),
) -> Measurement:
    """A Measurement converted by ``factor`` into ``unit``, keeping the device's value and unit.

    The converted value is rounded to 6 decimals only to drop binary noise (``16.0 kPa`` ->
    ``120.00992 mm[Hg]``, not ``120.00992000000001``); that is far below any device resolution.
    """
    value, no_value = number
    return Measurement(
        metric=metric,
        value=None if value is None else round(value * factor, 6),
        unit=unit,
        time=time,
        no_value=no_value,
        original_value=value,
        original_unit=original_unit,
        quality=quality,
    )


def time_quality(time: datetime | None, ctx: DecodeContext) -> tuple[str, ...]:
    """``(TZ_ASSUMED,)`` when a device time was read without a known zone."""
    return (TZ_ASSUMED,) if time is not None and ctx.device_tz is None else ()


def number_field(number: Number) -> float | str | None:
    """A decoded number as a JSON field: the value, or the special value's name."""
    value, no_value = number
    return value if no_value is None else no_value
