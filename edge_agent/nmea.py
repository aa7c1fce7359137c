"""NMEA 0183 position sentences (``$GPRMC``, ``$GPGGA``) -> fixes: a pure, table-free parser.

A GPS receiver on a serial port (or a recorded log of one) writes lines like::

    $GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W*6A
    $GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47

NMEA 0183 v4.11 section 5.2.1: a sentence is ``$``, address (talker ``GP``/``GN``/``GL``/``GA``
+ sentence formatter), comma-separated fields, ``*`` and a two-hex-digit checksum: the XOR of
every character between ``$`` and ``*``. This parser **requires** the checksum (a line torn by
a serial buffer overrun must not move the ambulance across the map) and raises a typed
:class:`firmware_bridge.errors.DecodeError` with the character offset otherwise.

Fields used (NMEA 0183 sentence descriptions, RMC and GGA):

- RMC: 1 UTC time ``hhmmss.ss``, 2 status ``A`` valid / ``V`` warning, 3-4 latitude
  ``ddmm.mmmm`` + ``N``/``S``, 5-6 longitude ``dddmm.mmmm`` + ``E``/``W``, 7 speed over ground
  in knots, 8 course over ground in degrees true, 9 date ``ddmmyy``.
- GGA: 1 UTC time, 2-5 latitude/longitude as above, 6 fix quality (0 = no fix), 7 satellites
  in use, 8 HDOP, 9 altitude (m). GGA has no date: the caller supplies the day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Final, Literal

from firmware_bridge.errors import CrcError, MalformedError, UnsupportedError

#: 1 knot = 1 852 m/h (international nautical mile).
KMH_PER_KNOT: Final = 1.852
#: Sentence formatters this parser understands (any talker id).
SUPPORTED: Final = ("RMC", "GGA")


@dataclass(frozen=True, slots=True)
class NmeaFix:
    """One decoded RMC or GGA sentence.

    ``valid`` is False for an RMC with status ``V`` or a GGA with fix quality 0: the receiver
    has no position, and ``lat``/``lon`` are then None. ``day`` is set by RMC only.
    """

    sentence: Literal["RMC", "GGA"]
    talker: str
    utc_time: time
    valid: bool
    lat: float | None
    lon: float | None
    day: date | None = None
    speed_kmh: float | None = None
    course_deg: float | None = None
    satellites: int | None = None
    altitude_m: float | None = None

    def moment(self, day: date | None = None) -> datetime:
        """The fix time as an aware UTC datetime (GGA needs ``day``; RMC carries its own)."""
        on = self.day or day
        if on is None:
            raise ValueError("a GGA fix has no date; give the day")
        return datetime.combine(on, self.utc_time, tzinfo=UTC)


def checksum(body: str) -> int:
    """XOR of the characters between ``$`` and ``*`` (NMEA 0183 5.2.1)."""
    value = 0
    for char in body:
        value ^= ord(char)
    return value


def with_checksum(body: str) -> str:
    """``$body*HH``: a complete sentence for ``body`` (used by the route simulator and tests)."""
    return f"${body}*{checksum(body):02X}"


def sentence_formatter(line: str) -> str | None:
    """``RMC`` for ``$GPRMC,...`` (no validation; None if the line does not look like NMEA)."""
    text = line.strip()
    if not text.startswith("$") or len(text) < 6:
        return None
    return text[3:6]


def parse_sentence(line: str) -> NmeaFix:
    """Parse one ``$..RMC`` or ``$..GGA`` sentence (checksum required).

    Raises :class:`CrcError` on a checksum mismatch, :class:`UnsupportedError` for other
    sentence types (GSV, VTG, ...), :class:`MalformedError` for anything else wrong; the
    ``offset`` is the character position in the line.
    """
    text = line.strip()
    if not text.startswith("$"):
        raise MalformedError("an NMEA sentence starts with '$'", offset=0)
    star = text.rfind("*")
    if star < 0:
        raise MalformedError(
            "no '*' checksum delimiter (the checksum is required)", offset=len(text)
        )
    body, given = text[1:star], text[star + 1 :]
    if len(given) != 2 or any(c not in "0123456789abcdefABCDEF" for c in given):
        raise MalformedError(f"checksum {given!r} is not two hex digits", offset=star + 1)
    if int(given, 16) != checksum(body):
        raise CrcError(
            f"checksum {given.upper()} does not match the computed {checksum(body):02X}",
            offset=star + 1,
        )
    fields = body.split(",")
    address = fields[0]
    if len(address) != 5 or not address.isalpha() or not address.isupper():
        raise MalformedError(f"address {address!r} is not talker + formatter", offset=1)
    talker, formatter = address[:2], address[2:]
    if formatter == "RMC":
        return _rmc(talker, fields)
    if formatter == "GGA":
        return _gga(talker, fields)
    raise UnsupportedError(f"sentence {address} is not one of {', '.join(SUPPORTED)}", offset=1)


def _field(fields: list[str], index: int, what: str) -> str:
    if index >= len(fields):
        raise MalformedError(f"{fields[0]}: field {index} ({what}) is missing")
    return fields[index]


def _utc_time(text: str, sentence: str) -> time:
    # hhmmss or hhmmss.sss
    try:
        hours, minutes = int(text[0:2]), int(text[2:4])
        seconds = float(text[4:]) if len(text) > 4 else -1.0
    except ValueError:
        seconds = -1.0
        hours = minutes = 0
    if len(text) < 6 or not 0 <= seconds < 61 or not 0 <= hours < 24 or not 0 <= minutes < 60:
        raise MalformedError(f"{sentence}: UTC time {text!r} is not hhmmss[.ss]")
    whole = int(seconds)
    micro = round((seconds - whole) * 1_000_000)
    moment = datetime(2000, 1, 1, hours, minutes, min(whole, 59)) + timedelta(microseconds=micro)
    return moment.time()


def _coordinate(value: str, hemisphere: str, *, degree_digits: int, sentence: str) -> float:
    """``ddmm.mmmm`` (latitude) / ``dddmm.mmmm`` (longitude) + hemisphere -> signed degrees."""
    positive, negative = ("N", "S") if degree_digits == 2 else ("E", "W")
    if hemisphere not in (positive, negative):
        raise MalformedError(f"{sentence}: hemisphere {hemisphere!r} is not {positive}/{negative}")
    try:
        degrees = int(value[:degree_digits])
        minutes = float(value[degree_digits:])
    except ValueError:
        raise MalformedError(f"{sentence}: coordinate {value!r} is not d..mm.mmmm") from None
    if len(value) < degree_digits + 2 or not 0 <= minutes < 60:
        raise MalformedError(f"{sentence}: coordinate {value!r} is not d..mm.mmmm")
    result = degrees + minutes / 60
    limit = 90 if degree_digits == 2 else 180
    if result > limit:
        raise MalformedError(f"{sentence}: coordinate {value!r} is beyond {limit} degrees")
    return -result if hemisphere == negative else result


def _optional_float(text: str, sentence: str, what: str) -> float | None:
    if text == "":
        return None
    try:
        return float(text)
    except ValueError:
        raise MalformedError(f"{sentence}: {what} {text!r} is not a number") from None


def _rmc(talker: str, fields: list[str]) -> NmeaFix:
    utc_time = _utc_time(_field(fields, 1, "time"), "RMC")
    status = _field(fields, 2, "status")
    if status not in ("A", "V"):
        raise MalformedError(f"RMC: status {status!r} is not A/V")
    day_text = _field(fields, 9, "date")
    try:
        day = datetime.strptime(day_text, "%d%m%y").date()
    except ValueError:
        raise MalformedError(f"RMC: date {day_text!r} is not ddmmyy") from None
    if status == "V":
        return NmeaFix("RMC", talker, utc_time, False, None, None, day=day)
    lat = _coordinate(_field(fields, 3, "latitude"), fields[4], degree_digits=2, sentence="RMC")
    lon = _coordinate(_field(fields, 5, "longitude"), fields[6], degree_digits=3, sentence="RMC")
    knots = _optional_float(_field(fields, 7, "speed"), "RMC", "speed")
    course = _optional_float(_field(fields, 8, "course"), "RMC", "course")
    return NmeaFix(
        "RMC",
        talker,
        utc_time,
        True,
        lat,
        lon,
        day=day,
        speed_kmh=None if knots is None else knots * KMH_PER_KNOT,
        course_deg=None if course is None else course % 360,
    )


def _gga(talker: str, fields: list[str]) -> NmeaFix:
    utc_time = _utc_time(_field(fields, 1, "time"), "GGA")
    quality_text = _field(fields, 6, "fix quality")
    if not quality_text.isdigit():
        raise MalformedError(f"GGA: fix quality {quality_text!r} is not a digit")
    satellites_text = _field(fields, 7, "satellites")
    satellites = int(satellites_text) if satellites_text.isdigit() else None
    if int(quality_text) == 0:
        return NmeaFix("GGA", talker, utc_time, False, None, None, satellites=satellites)
    lat = _coordinate(fields[2], _field(fields, 3, "N/S"), degree_digits=2, sentence="GGA")
    lon = _coordinate(fields[4], _field(fields, 5, "E/W"), degree_digits=3, sentence="GGA")
    altitude = _optional_float(fields[9], "GGA", "altitude") if len(fields) > 9 else None
    return NmeaFix(
        "GGA", talker, utc_time, True, lat, lon, satellites=satellites, altitude_m=altitude
    )


def format_rmc(moment: datetime, lat: float, lon: float, speed_kmh: float, course: float) -> str:
    """A valid ``$GPRMC`` sentence (route simulator, tests); :func:`parse_sentence` reads it."""
    utc_moment = moment.astimezone(UTC)
    body = ",".join(
        (
            "GPRMC",
            utc_moment.strftime("%H%M%S.") + f"{utc_moment.microsecond // 10_000:02d}",
            "A",
            *_format_coordinate(lat, 2, "N", "S"),
            *_format_coordinate(lon, 3, "E", "W"),
            f"{speed_kmh / KMH_PER_KNOT:.1f}",
            f"{course % 360:.1f}",
            utc_moment.strftime("%d%m%y"),
            "",
            "",
            "A",  # NMEA 2.3 mode indicator: autonomous
        )
    )
    return with_checksum(body)


def format_gga(moment: datetime, lat: float, lon: float, satellites: int = 8) -> str:
    """A valid ``$GPGGA`` sentence (fix quality 1 = GPS) for the route simulator and tests."""
    utc_moment = moment.astimezone(UTC)
    body = ",".join(
        (
            "GPGGA",
            utc_moment.strftime("%H%M%S.") + f"{utc_moment.microsecond // 10_000:02d}",
            *_format_coordinate(lat, 2, "N", "S"),
            *_format_coordinate(lon, 3, "E", "W"),
            "1",
            f"{satellites:02d}",
            "0.9",
            "10.0",
            "M",
            "0.0",
            "M",
            "",
            "",
        )
    )
    return with_checksum(body)


def _format_coordinate(value: float, digits: int, positive: str, negative: str) -> tuple[str, str]:
    magnitude = abs(value)
    degrees = int(magnitude)
    minutes = (magnitude - degrees) * 60
    if round(minutes, 4) >= 60:  # 59.99999 would print as 60.0000
        degrees, minutes = degrees + 1, 0.0
    return f"{degrees:0{digits}d}{minutes:07.4f}", positive if value >= 0 else negative
