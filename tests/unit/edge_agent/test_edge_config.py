"""Edge config files (the shipped examples parse) and `edge status` on a real outbox file."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from edge_agent.config import (
    BleSourceConfig,
    ConfigError,
    Hl7SourceConfig,
    ReplaySourceConfig,
    load_config,
    parse_config,
)
from edge_agent.outbox import Outbox
from vitals import Reading
from vitalstream.commands.edge import outbox_status

EXAMPLES = Path(__file__).parents[3] / "docs" / "examples"


def test_home_example() -> None:
    config = load_config(EXAMPLES / "edge-home.toml")
    assert config.gateway == "home-0001"
    [ble] = config.sources
    assert isinstance(ble, BleSourceConfig)
    cuff = next(d for d in ble.devices if d.device == "home-0001-cuff")
    assert cuff.subject_for(2) == "s-0b21e4"
    assert cuff.subject_for(3) is None


def test_ambulance_example() -> None:
    config = load_config(EXAMPLES / "edge-ambulance.toml")
    [hl7] = config.sources
    assert isinstance(hl7, Hl7SourceConfig)
    assert (hl7.port, hl7.incident, hl7.timezone) == (2575, "inc-20261125-0042", "Asia/Shanghai")


def test_relative_paths_follow_the_file(tmp_path: Path) -> None:
    text = 'gateway = "gw-1"\noutbox = "box.sqlite"\n[[sources]]\nkind = "replay"\nfile = "r.csv"\n'
    config = parse_config(text, tmp_path)
    assert config.outbox == tmp_path / "box.sqlite"
    [replay] = config.sources
    assert isinstance(replay, ReplaySourceConfig)
    assert replay.file == tmp_path / "r.csv"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ('gateway = "gw/1"', "gateway"),
        ('gateway = "gw-1"\nbroker_url = "http://x"', "broker URL"),
        ('gateway = "gw-1"\n[[sources]]\nkind = "usb"', "kind"),
        ('gateway = "gw-1"\n[[sources]]\nkind = "hl7"\ntimezone = "Mars/Olympus"', "time zone"),
        ('gateway = "gw-1"\n[[sources]]\nkind = "hl7"\n[[sources.patients]]\nsubject = "s"', "pid"),
        ('gateway = "gw-1"\nspeling = 1', "speling"),
        ("gateway = ", "TOML"),
    ],
)
def test_invalid_configs_say_what_is_wrong(text: str, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        parse_config(text, Path())


def test_status_reads_the_outbox_without_a_broker(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite"
    now = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)

    def reading(minutes_ago: int, device: str = "dev-1") -> Reading:
        return Reading(
            subject="s-1",
            device=device,
            metric="heart_rate",
            value=70.0,
            unit="/min",
            time=now - timedelta(minutes=minutes_ago),
            source="sim",
        )

    with Outbox(path) as outbox:
        outbox.put([reading(30), reading(20)])
        outbox.put([reading(90, "dev-2")], lane="backfill")
        outbox.put([reading(5)], lane="alarm")
        rows = outbox.due(now.timestamp(), 1)
        outbox.mark_sent([rows[0].row_id], now.timestamp() + 60)
    report = outbox_status(path, now)
    assert report["depth"] == 4
    assert report["lanes"] == {"alarm": 1, "vitals": 2, "waveform": 0, "backfill": 1}
    assert report["awaiting_ack"] == 1
    assert report["oldest_unconfirmed_age_s"] == 90 * 60
    assert report["devices_last_seq"] == {"dev-1": 3, "dev-2": 1}


def test_status_of_a_missing_outbox(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="no outbox"):
        outbox_status(tmp_path / "none.sqlite", datetime.now(UTC))
