"""Ambulance mode: NMEA 0183 parsing (checksummed), great-circle ETA, route simulation."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.ambulance import (
    AmbulanceTracker,
    Destination,
    NmeaSchedule,
    estimate_eta,
    fix_to_position,
    great_circle_km,
    simulate_route,
    speed_estimate,
)
from edge_agent.config import ConfigError, open_ambulance, parse_config
from edge_agent.nmea import (
    KMH_PER_KNOT,
    checksum,
    format_gga,
    format_rmc,
    parse_sentence,
    with_checksum,
)
from firmware_bridge.errors import CrcError, MalformedError, UnsupportedError
from vitals import Position

# The classic examples of the NMEA 0183 sentence descriptions (checksums verified here).
RMC = "$GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W*6A"
GGA = "$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47"
T0 = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)


def test_rmc_is_decoded() -> None:
    fix = parse_sentence(RMC)
    assert (fix.sentence, fix.talker, fix.valid) == ("RMC", "GP", True)
    assert fix.utc_time == time(12, 35, 19)
    assert fix.day == date(1994, 3, 23)
    assert fix.lat == pytest.approx(48 + 7.038 / 60)
    assert fix.lon == pytest.approx(11 + 31.0 / 60)
    assert fix.speed_kmh == pytest.approx(22.4 * KMH_PER_KNOT)
    assert fix.course_deg == pytest.approx(84.4)
    assert fix.moment() == datetime(1994, 3, 23, 12, 35, 19, tzinfo=UTC)


def test_gga_is_decoded_and_needs_a_day() -> None:
    fix = parse_sentence(GGA + "\r\n")
    assert (fix.sentence, fix.valid, fix.satellites, fix.altitude_m) == ("GGA", True, 8, 545.4)
    assert fix.lat == pytest.approx(48.1173)
    with pytest.raises(ValueError, match="date"):
        fix.moment()
    assert fix.moment(date(2026, 11, 25)).date() == date(2026, 11, 25)


def test_southern_and_western_hemispheres_are_negative() -> None:
    line = with_checksum("GPRMC,000000.00,A,3351.000,S,15112.000,W,0.0,0.0,010126,,,A")
    fix = parse_sentence(line)
    assert fix.lat == pytest.approx(-(33 + 51 / 60))
    assert fix.lon == pytest.approx(-(151 + 12 / 60))


def test_no_fix_is_not_a_position() -> None:
    rmc = parse_sentence(with_checksum("GPRMC,123519,V,,,,,,,230394,,"))
    gga = parse_sentence(with_checksum("GPGGA,123519,,,,,0,00,,,M,,M,,"))
    assert not rmc.valid and not gga.valid
    assert fix_to_position(rmc, date(1994, 3, 23)) is None
    assert fix_to_position(gga, date(1994, 3, 23)) is None


@pytest.mark.parametrize(
    ("line", "error", "match"),
    [
        (RMC[:-2] + "6B", CrcError, "does not match"),
        (RMC.replace("4807.038", "4807.039"), CrcError, "does not match"),
        (RMC.split("*", maxsplit=1)[0], MalformedError, "checksum delimiter"),
        ("GPRMC,1*00", MalformedError, r"starts with '\$'"),
        (RMC[:-2] + "zz", MalformedError, "hex"),
        (with_checksum("GPGSV,3,1,11,03,03,111,00"), UnsupportedError, "GPGSV"),
        (with_checksum("GPRMC,123519,X,,,,,,,230394,,"), MalformedError, "status"),
        (
            with_checksum("GPRMC,123519,A,4807.038,Q,01131.000,E,1,1,230394,,"),
            MalformedError,
            "N/S",
        ),
        (with_checksum("GPRMC,12,A,4807.038,N,01131.000,E,1,1,230394,,"), MalformedError, "time"),
        (
            with_checksum("GPRMC,123519,A,4807.038,N,01131.000,E,1,1,320394,,"),
            MalformedError,
            "date",
        ),
        (
            with_checksum("GPRMC,123519,A,4867.038,N,01131.000,E,1,1,230394,,"),
            MalformedError,
            "d..mm",
        ),
        (with_checksum("GPRMC,123519,A"), MalformedError, "missing"),
        (with_checksum("gprmc,1"), MalformedError, "talker"),
    ],
)
def test_bad_sentences_raise_typed_errors(line: str, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        parse_sentence(line)


def test_checksum_is_the_xor_between_dollar_and_star() -> None:
    body = RMC[1 : RMC.index("*")]
    assert f"{checksum(body):02X}" == "6A"


@given(
    lat=st.floats(-89.9, 89.9),
    lon=st.floats(-179.9, 179.9),
    speed=st.floats(0, 200),
    seconds=st.integers(0, 86_399),
)
def test_formatted_sentences_parse_back(lat: float, lon: float, speed: float, seconds: int) -> None:
    moment = T0 + timedelta(seconds=seconds)
    rmc = parse_sentence(format_rmc(moment, lat, lon, speed, 90.0))
    gga = parse_sentence(format_gga(moment, lat, lon))
    for fix in (rmc, gga):
        assert fix.lat == pytest.approx(lat, abs=1e-5)
        assert fix.lon == pytest.approx(lon, abs=1e-5)
        assert fix.moment(moment.date()) == moment
    assert rmc.speed_kmh == pytest.approx(speed, abs=0.2)


def test_great_circle_distance_and_eta() -> None:
    # Paris (48.8566, 2.3522) to London (51.5074, -0.1278): 343.5 km great circle
    assert great_circle_km(48.8566, 2.3522, 51.5074, -0.1278) == pytest.approx(343.5, abs=1.0)
    assert great_circle_km(10, 10, 10, 10) == 0.0
    position = Position(lat=31.2300, lon=121.4500, time=T0)
    eta = estimate_eta(position, Destination("H", 31.2300, 121.4500 + 0.1), 30.0, T0)
    assert eta.distance_km == pytest.approx(9.51, abs=0.05)
    assert abs((eta.arrival - T0) - timedelta(hours=eta.distance_km / 30.0)) < timedelta(seconds=1)
    with pytest.raises(ValueError, match="positive"):
        estimate_eta(position, Destination("H", 0, 0), 0.0, T0)


def test_speed_estimate_uses_the_recent_mean_or_the_default_when_standing() -> None:
    assert speed_estimate([50.0, 70.0]) == 60.0
    assert speed_estimate([1.0, 2.0]) == 40.0
    assert speed_estimate([], default_kmh=30.0) == 30.0
    with pytest.raises(ValueError, match="positive"):
        speed_estimate([], default_kmh=0)


def test_schedule_releases_epochs_and_the_tracker_keeps_the_last_fix() -> None:
    route = simulate_route([(31.23, 121.45), (31.22, 121.46)], 36.0, T0, step_s=1.0)
    assert all(parse_sentence(line) for line in route)
    schedule = NmeaSchedule([*route[:4], "", "$GPGSV,garbage*00"], speed=1.0)
    assert schedule.due(0.0) == route[:2]  # the first epoch: RMC + GGA
    assert schedule.due(1.0) == [*route[2:4], "$GPGSV,garbage*00"]
    assert schedule.finished
    lines = iter([route[:2], [RMC[:-2] + "00", "$GPGSV,1*00"], route[2:4]])
    tracker = AmbulanceTracker(lambda: next(lines), Destination("H", 31.22, 121.46))
    position, eta = tracker.report(T0)
    assert position is not None and eta is not None
    assert position.speed_kmh == pytest.approx(36.0, abs=0.2)
    tracker.poll(T0)
    assert tracker.rejected == 2  # bad checksum; "$GPGSV,1*00" fails its checksum too
    position, eta = tracker.report(T0)
    assert position is not None and position.time == T0 + timedelta(seconds=1)
    assert eta is not None and eta.speed_kmh == pytest.approx(36.0, abs=0.2)


def test_ambulance_config_opens_a_route_or_a_file_and_refuses_serial(tmp_path: Path) -> None:
    base = 'gateway = "amb-1"\n[ambulance]\ndestination = {name = "H", lat = 31.2, lon = 121.4}\n'
    config = parse_config(base + "route = [[31.23, 121.45], [31.22, 121.46]]\n", tmp_path)
    assert config.ambulance is not None
    tracker = open_ambulance(config.ambulance, T0)
    position, eta = tracker.report(T0)
    assert position is not None and position.source == "sim" and eta is not None
    (tmp_path / "drive.nmea").write_text(RMC + "\n" + GGA + "\n")
    config = parse_config(base + 'nmea_file = "drive.nmea"\n', tmp_path)
    assert config.ambulance is not None and config.ambulance.nmea_file == tmp_path / "drive.nmea"
    assert open_ambulance(config.ambulance, T0).report(T0)[0] is not None
    config = parse_config(base + 'serial_port = "/dev/ttyUSB0"\n', tmp_path)
    assert config.ambulance is not None
    with pytest.raises(ConfigError, match="pyserial"):
        open_ambulance(config.ambulance, T0)
    with pytest.raises(ConfigError, match="exactly one"):
        parse_config(base, tmp_path)
