"""Ambulance mode: where the ambulance is (NMEA 0183) and a crude ETA to the hospital.

Pure core (STYLE.md):

- :func:`great_circle_km` (haversine on a sphere of the Earth's mean radius) and
  :func:`estimate_eta`: distance / a speed estimate. **A crude estimate**: the road is longer
  than the great circle (typically 1.2-1.4 times in a city), traffic and lights are not
  modelled, and the speed is the recent mean speed over ground, or a default when the
  ambulance stands. It tells the receiving team "about 12 minutes", not a minute-exact time.
- :class:`NmeaSchedule` releases recorded NMEA sentences epoch by epoch as (accelerated) time
  passes, like :class:`edge_agent.replay.ReplaySchedule` does for readings.
- :func:`simulate_route` writes the sentences of a drive along waypoints at a constant speed
  (SYNTHETIC, labelled ``sim``).

Shell: :class:`AmbulanceTracker` reads sentences from a source (a file replay or the route
simulator; a serial GPS needs pyserial, which this gateway image does not ship: see
docs/edge.md), keeps the last valid fix and gives the status its ``position`` and ``eta``.
"""

from __future__ import annotations

import itertools
import logging
import math
import time as wallclock
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Final, Literal

from edge_agent.nmea import NmeaFix, format_gga, format_rmc, parse_sentence
from firmware_bridge.errors import DecodeError, UnsupportedError
from vitals import Eta, Position, VitalsError

log = logging.getLogger("vitalstream.edge.ambulance")

#: IUGG mean Earth radius (R1), km.
EARTH_RADIUS_KM: Final = 6371.0088
#: Speed assumed when the ambulance stands or reports no speed: an urban emergency drive's
#: average (a crude figure; set ``default_speed_kmh`` per region).
DEFAULT_SPEED_KMH: Final = 40.0
#: Below this the ambulance counts as standing (GPS speed noise is a few km/h).
STANDING_KMH: Final = 5.0


@dataclass(frozen=True, slots=True)
class Destination:
    """The hospital the ambulance drives to."""

    name: str
    lat: float
    lon: float


def great_circle_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in km (haversine formula, spherical Earth, error < 0.5 %)."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi = phi2 - phi1
    dlambda = math.radians(lon2 - lon1)
    a = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlambda / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


def speed_estimate(recent_kmh: Sequence[float], default_kmh: float = DEFAULT_SPEED_KMH) -> float:
    """Mean of the recent speeds over ground, or ``default_kmh`` when standing or unknown."""
    if default_kmh <= 0:
        raise ValueError("default speed must be positive")
    if not recent_kmh:
        return default_kmh
    mean = sum(recent_kmh) / len(recent_kmh)
    return mean if mean >= STANDING_KMH else default_kmh


def estimate_eta(
    position: Position, destination: Destination, speed_kmh: float, now: datetime
) -> Eta:
    """Arrival = ``now`` + great-circle distance / ``speed_kmh`` (a crude estimate)."""
    if speed_kmh <= 0:
        raise ValueError("speed must be positive")
    distance = great_circle_km(position.lat, position.lon, destination.lat, destination.lon)
    return Eta(
        destination=destination.name,
        distance_km=round(distance, 3),
        speed_kmh=round(speed_kmh, 1),
        arrival=now + timedelta(hours=distance / speed_kmh),
    )


def fix_to_position(
    fix: NmeaFix, day: date, source: Literal["gps", "replay", "sim"] = "gps"
) -> Position | None:
    """A valid fix as a :class:`vitals.Position` (None without a fix)."""
    if not fix.valid or fix.lat is None or fix.lon is None:
        return None
    return Position(
        lat=fix.lat,
        lon=fix.lon,
        time=fix.moment(day),
        speed_kmh=None if fix.speed_kmh is None else round(fix.speed_kmh, 2),
        course_deg=fix.course_deg,
        source=source,
    )


# -- recorded and simulated NMEA -------------------------------------------------------------------


def _epoch_seconds(line: str) -> float | None:
    """Seconds of day of an RMC/GGA line's UTC time field (None for other sentences)."""
    parts = line.split(",", 2)
    if len(parts) < 2 or parts[0][3:6] not in ("RMC", "GGA") or len(parts[1]) < 6:
        return None
    try:
        return int(parts[1][0:2]) * 3600 + int(parts[1][2:4]) * 60 + float(parts[1][4:])
    except ValueError:
        return None


class NmeaSchedule:
    """Releases recorded sentences as (accelerated) time passes, one receiver epoch at a time.

    Pure: the caller says how much wall time elapsed. An epoch is the run of sentences sharing
    a UTC time field (a receiver sends RMC + GGA + others once a second); its offset is the
    time since the first epoch (midnight roll-over handled). ``speed`` 10 = ten recorded
    seconds per wall second.
    """

    def __init__(self, lines: Sequence[str], speed: float = 1.0) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self._speed = speed
        self._items: list[tuple[float, str]] = []
        first: float | None = None
        last = 0.0
        offset = 0.0
        for raw in lines:
            line = raw.strip()
            if not line:
                continue
            seconds = _epoch_seconds(line)
            if seconds is not None:
                if first is None:
                    first = seconds
                elif seconds < last:  # past midnight UTC
                    offset += 86_400
                last = seconds
            self._items.append((offset + (last - (first or 0.0)), line))
        self._next = 0

    @property
    def finished(self) -> bool:
        """True once every sentence was released."""
        return self._next >= len(self._items)

    def due(self, elapsed_wall_s: float) -> list[str]:
        """Sentences whose offset is reached after ``elapsed_wall_s`` seconds of wall time."""
        horizon = elapsed_wall_s * self._speed
        out: list[str] = []
        while self._next < len(self._items) and self._items[self._next][0] <= horizon:
            out.append(self._items[self._next][1])
            self._next += 1
        return out


def simulate_route(
    waypoints: Sequence[tuple[float, float]],
    speed_kmh: float,
    start: datetime,
    *,
    step_s: float = 1.0,
) -> list[str]:
    """SYNTHETIC NMEA ($GPRMC + $GPGGA per epoch) of a drive along ``waypoints`` (lat, lon).

    Constant ``speed_kmh``, straight (great-circle-ish, linearly interpolated) legs; ends
    standing at the last waypoint (one final epoch at speed 0).
    """
    if len(waypoints) < 2:
        raise ValueError("a route needs at least two waypoints")
    if speed_kmh <= 0 or step_s <= 0:
        raise ValueError("speed and step must be positive")
    lines: list[str] = []
    moment = start
    step_km = speed_kmh * step_s / 3600
    for (lat1, lon1), (lat2, lon2) in itertools.pairwise(waypoints):
        leg = great_circle_km(lat1, lon1, lat2, lon2)
        course = _bearing(lat1, lon1, lat2, lon2)
        steps = max(1, math.ceil(leg / step_km))
        for index in range(steps):
            f = index / steps
            lat, lon = lat1 + (lat2 - lat1) * f, lon1 + (lon2 - lon1) * f
            lines += [format_rmc(moment, lat, lon, speed_kmh, course), format_gga(moment, lat, lon)]
            moment += timedelta(seconds=step_s)
    lat, lon = waypoints[-1]
    lines += [format_rmc(moment, lat, lon, 0.0, 0.0), format_gga(moment, lat, lon)]
    return lines


def _bearing(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Initial great-circle bearing, degrees true."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dlambda = math.radians(lon2 - lon1)
    y = math.sin(dlambda) * math.cos(phi2)
    x = math.cos(phi1) * math.sin(phi2) - math.sin(phi1) * math.cos(phi2) * math.cos(dlambda)
    return math.degrees(math.atan2(y, x)) % 360


def read_nmea_file(path: Path) -> list[str]:
    """The lines of an NMEA log (one sentence per line; ASCII)."""
    try:
        return path.read_text(encoding="ascii", errors="replace").splitlines()
    except OSError as exc:
        raise VitalsError(f"cannot read NMEA log {path}: {exc}", kind="not_found") from None


class NmeaReplaySource:
    """Sentences of an :class:`NmeaSchedule` against the monotonic clock (first call = start)."""

    def __init__(
        self, schedule: NmeaSchedule, clock: Callable[[], float] = wallclock.monotonic
    ) -> None:
        self._schedule = schedule
        self._clock = clock
        self._started: float | None = None

    def __call__(self) -> list[str]:
        now = self._clock()
        if self._started is None:
            self._started = now
        return self._schedule.due(now - self._started)


# -- the shell the agent holds ---------------------------------------------------------------------


class AmbulanceTracker:
    """Keeps the last valid fix from an NMEA source and reports position + ETA.

    ``source`` returns the sentences received since the last call. Sentences that fail their
    checksum or do not parse are counted (``rejected``) and skipped; other sentence types
    (GSV, VTG, ...) are ignored.
    """

    def __init__(
        self,
        source: Callable[[], Sequence[str]],
        destination: Destination | None,
        *,
        default_speed_kmh: float = DEFAULT_SPEED_KMH,
        position_source: Literal["gps", "replay", "sim"] = "gps",
        speed_window: int = 30,
    ) -> None:
        self._source = source
        self.destination = destination
        self._default_speed = default_speed_kmh
        self._position_source: Literal["gps", "replay", "sim"] = position_source
        self._speeds: deque[float] = deque(maxlen=speed_window)
        self._day: date | None = None
        self.position: Position | None = None
        self.rejected = 0

    def poll(self, now: datetime) -> None:
        """Take the sentences that arrived and update the last fix."""
        for line in self._source():
            try:
                fix = parse_sentence(line)
            except UnsupportedError:
                continue
            except DecodeError as exc:
                self.rejected += 1
                log.warning("ignoring an NMEA sentence: %s", exc.detail)
                continue
            if fix.day is not None:
                self._day = fix.day
            position = fix_to_position(fix, self._day or now.date(), self._position_source)
            if position is None:
                continue
            if fix.sentence == "RMC" and position.speed_kmh is not None:
                self._speeds.append(position.speed_kmh)
            if fix.sentence == "GGA" and self.position is not None:
                # GGA has no speed/course: keep those of the RMC of the same epoch.
                position = position.model_copy(
                    update={
                        "speed_kmh": self.position.speed_kmh,
                        "course_deg": self.position.course_deg,
                    }
                )
            self.position = position

    def report(self, now: datetime) -> tuple[Position | None, Eta | None]:
        """Poll, then the last position and the ETA from it (None without a fix/destination)."""
        self.poll(now)
        if self.position is None or self.destination is None:
            return self.position, None
        speed = speed_estimate(list(self._speeds), self._default_speed)
        return self.position, estimate_eta(self.position, self.destination, speed, now)
