"""Local alarms (rules over accepted readings), the down-link config, events in the outbox."""

from __future__ import annotations

import json
import sqlite3
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from edge_agent.agent import _chunks
from edge_agent.alarms import LocalAlarms, LocalAlarmSettings, local_ruleset
from edge_agent.config import parse_config
from edge_agent.downlink import (
    ConfigRefusedError,
    check_version,
    load_saved_config,
    parse_downlink,
    read_config_file,
    save_config,
    saved_config_path,
)
from edge_agent.outbox import Outbox
from vitals import AlarmThreshold, GatewayConfig, LocalAlarm, Reading, encode
from vitals.errors import VitalsError

T0 = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)


def reading(metric: str, value: float, unit: str, minute: int, device: str = "d1") -> Reading:
    return Reading(
        subject="s1",
        device=device,
        metric=metric,
        value=value,
        unit=unit,
        time=T0 + timedelta(minutes=minute),
        source="sim",
    )


def config(version: int = 1, **extra: object) -> GatewayConfig:
    return GatewayConfig.model_validate(
        {"gateway": "gw-1", "version": version, "issued_at": T0.isoformat(), **extra}
    )


def test_critical_reading_raises_a_local_alarm_once_and_notifies() -> None:
    heard: list[LocalAlarm] = []
    alarms = LocalAlarms("gw-1", LocalAlarmSettings(hooks=(heard.append,)))
    raised = alarms.judge([reading("bp_systolic", 190, "mm[Hg]", 0, "cuff")], T0, uplink_up=False)
    assert [(a.rule, a.severity, a.device, a.uplink) for a in raised] == [
        ("bp_crisis_systolic", "critical", "cuff", "down")
    ]
    alarms.notify(raised, uplink_up=False)
    assert heard == raised
    # Still high: the engine keeps one open alert, no second alarm.
    assert (
        alarms.judge([reading("bp_systolic", 192, "mm[Hg]", 1, "cuff")], T0, uplink_up=False) == []
    )


def test_min_severity_and_offline_only_notification() -> None:
    heard: list[LocalAlarm] = []
    settings = LocalAlarmSettings(min_severity="critical", notify="offline", hooks=(heard.append,))
    alarms = LocalAlarms("gw-1", settings)
    low_spo2 = [reading("spo2", 85, "%", 0), reading("spo2", 84, "%", 1)]
    assert alarms.judge(low_spo2, T0, uplink_up=True) == []  # spo2_low is "high"
    raised = alarms.judge([reading("glucose", 2.5, "mmol/L", 2)], T0, uplink_up=True)
    assert [a.rule for a in raised] == ["glucose_level2_hypo"]
    alarms.notify(raised, uplink_up=True)
    assert heard == []  # the platform is reachable: it alerts
    alarms.notify(raised, uplink_up=False)
    assert heard == raised


def test_pushed_thresholds_join_the_packs_and_clashes_are_refused() -> None:
    threshold = AlarmThreshold(name="hr_high", metric="heart_rate", op=">", value=120)
    alarms = LocalAlarms("gw-1", LocalAlarmSettings())
    alarms.set_rules(local_ruleset(("core",), [threshold]))
    raised = alarms.judge([reading("heart_rate", 130, "/min", 0)], T0, uplink_up=True)
    assert [a.rule for a in raised] == ["hr_high"]
    with pytest.raises(VitalsError, match="spo2_low"):
        local_ruleset(("core",), [threshold.model_copy(update={"name": "spo2_low"})])


def test_the_command_gets_the_alarm_in_its_environment(tmp_path: Path) -> None:
    out = tmp_path / "alarm.json"
    script = (
        f'import os, pathlib; pathlib.Path("{out}")'
        '.write_text(os.environ["VITALSTREAM_ALARM_JSON"])'
    )

    alarms = LocalAlarms("gw-1", LocalAlarmSettings(command=(sys.executable, "-c", script)))
    raised = alarms.judge([reading("glucose", 2.0, "mmol/L", 0)], T0, uplink_up=False)
    alarms.notify(raised, uplink_up=False)
    for child in alarms._children:
        child.wait(10)
    assert json.loads(out.read_text())["rule"] == "glucose_level2_hypo"


def test_downlink_validation() -> None:
    good = config(devices=[{"device": "d1", "subject": "s2"}])
    assert parse_downlink(encode(good), "gw-1") == good
    with pytest.raises(ConfigRefusedError, match="for gateway gw-1"):
        parse_downlink(encode(good), "gw-2")
    with pytest.raises(ConfigRefusedError, match="not a valid"):
        parse_downlink(b'{"version": 0}', "gw-1")
    with pytest.raises(ValueError, match="bound twice"):
        config(devices=[{"device": "d1", "subject": "a"}, {"device": "d1", "subject": "b"}])
    with pytest.raises(ValueError, match="not in the catalogue"):
        AlarmThreshold(name="x", metric="nope", op=">", value=1)


def test_versions_only_go_forward() -> None:
    one, two = config(1), config(2)
    assert check_version(one, None)
    assert check_version(two, one)
    assert not check_version(one, one)  # the retained copy seen again
    with pytest.raises(ConfigRefusedError, match="older"):
        check_version(one, two)
    with pytest.raises(ConfigRefusedError, match="differs"):
        check_version(config(1, cadence_s=2.0), one)


def test_saved_config_round_trip_and_corruption(tmp_path: Path) -> None:
    path = saved_config_path(tmp_path / "outbox.sqlite")
    assert path.name == "outbox.sqlite.config.json"
    assert load_saved_config(path, "gw-1") is None
    save_config(path, config(3))
    assert load_saved_config(path, "gw-1") == config(3)
    path.write_text("{broken")
    assert load_saved_config(path, "gw-1") is None


def test_config_files_for_push(tmp_path: Path) -> None:
    toml = tmp_path / "c.toml"
    toml.write_text(
        "version = 4\ncadence_s = 2\n"
        '[[thresholds]]\nname = "t"\nmetric = "spo2"\nop = "<"\nvalue = 85\n'
    )
    parsed = read_config_file(toml, "gw-1", T0)
    assert (parsed.gateway, parsed.version, parsed.issued_at) == ("gw-1", 4, T0)
    js = tmp_path / "c.json"
    js.write_text(json.dumps({"version": 1, "gateway": "gw-9"}))
    with pytest.raises(ConfigRefusedError, match="gw-9"):
        read_config_file(js, "gw-1", T0)


def test_events_wait_in_the_alarm_lane_ahead_of_readings(tmp_path: Path) -> None:
    alarms = LocalAlarms("gw-1", LocalAlarmSettings())
    with Outbox(tmp_path / "o.sqlite") as outbox:
        outbox.put([reading("heart_rate", 70, "/min", i) for i in range(3)])
        event = alarms.judge([reading("glucose", 2.0, "mmol/L", 9)], T0, uplink_up=False)
        outbox.put_events(event)
        rows = outbox.due(0.0, 10)
        assert [row.kind for row in rows] == ["event", "reading", "reading", "reading"]
        assert rows[0].item == event[0]
        with pytest.raises(TypeError):
            _ = rows[0].reading
        assert outbox.depth_by_kind() == {"reading": 3, "event": 1, "waveform": 0}
        chunks = _chunks(rows, 2)
        assert [[r.kind for r in c] for c in chunks] == [["event"], ["reading"] * 2, ["reading"]]


def test_an_outbox_from_before_events_gets_the_kind_column(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.executescript(
        "CREATE TABLE outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, lane INTEGER NOT NULL,"
        " device TEXT NOT NULL, seq INTEGER NOT NULL, payload BLOB NOT NULL,"
        " attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at REAL NOT NULL DEFAULT 0);"
    )
    db.execute(
        "INSERT INTO outbox (lane, device, seq, payload) VALUES (1, 'd1', 1, ?)",
        (encode(reading("heart_rate", 70, "/min", 0)),),
    )
    db.commit()
    db.close()
    with Outbox(path) as outbox:
        assert [row.kind for row in outbox.due(0.0, 10)] == ["reading"]


def test_edge_config_tls_and_local_alarms(tmp_path: Path) -> None:
    parsed = parse_config(
        'gateway = "gw-1"\nbroker_url = "mqtts://broker:8883"\ntls_ca_file = "ca.crt"\n'
        'tls_cert_file = "gw-1.crt"\ntls_key_file = "gw-1.key"\n'
        '[local_alarms]\nmin_severity = "critical"\nnotify = "offline"\ncommand = ["/bin/true"]\n',
        tmp_path,
    )
    tls = parsed.link_tls()
    assert tls is not None and tls.ca_file == tmp_path / "ca.crt"
    settings = parsed.alarm_settings()
    assert settings is not None and settings.command == ("/bin/true",)
    assert settings.notify == "offline"
    with pytest.raises(VitalsError, match="mqtts"):
        parse_config('gateway = "g"\ntls_ca_file = "ca.crt"\n', tmp_path)
    with pytest.raises(VitalsError, match="both"):
        parse_config('gateway = "g"\nbroker_url = "mqtts://b"\ntls_cert_file = "c.crt"\n', tmp_path)
    with pytest.raises(VitalsError, match="unknown rule pack"):
        parse_config('gateway = "g"\n[local_alarms]\npacks = ["nope"]\n', tmp_path)
    off = parse_config('gateway = "g"\n[local_alarms]\nenabled = false\n', tmp_path)
    assert off.alarm_settings() is None and off.link_tls() is None
