"""``vitalstream decode gatt|sfloat|float`` through typer's CliRunner on ``decode_app``.

Vectors: the Nordic HRS/BPS/CGMS test vectors used in the per-characteristic tests.
"""

from __future__ import annotations

import json

from typer.testing import CliRunner

from vitalstream.commands.decode import decode_app

runner = CliRunner()


def _json(args: list[str]) -> tuple[int, dict[str, object]]:
    result = runner.invoke(decode_app, args)
    return result.exit_code, json.loads(result.stdout.strip().splitlines()[-1])


def test_gatt_heart_rate_json() -> None:
    code, out = _json(["gatt", "2A37", "1E5532002100", "--json"])
    assert code == 0
    assert out["characteristic"] == "0x2A37"
    assert out["readings"][0] == {"metric": "heart_rate", "value": 85.0, "unit": "/min"}  # type: ignore[index]
    assert out["fields"]["sensor_contact"] == "detected"  # type: ignore[index]


def test_gatt_uuid_spellings_and_nan() -> None:
    code, out = _json(["gatt", "0x2a35", "00 7800 ff07 5a00", "--json"])
    assert code == 0
    assert out["readings"][1] == {
        "metric": "bp_diastolic",
        "value": None,
        "unit": "mm[Hg]",
        "no_value": "NaN",
    }  # type: ignore[index]


def test_gatt_time_and_zone() -> None:
    code, out = _json(
        ["gatt", "2A1C", "06b00e00fedc070c050b321b04", "--device-tz", "UTC", "--json"]
    )
    assert code == 0
    assert out["readings"][0]["time"] == "2012-12-05T11:50:27+00:00"  # type: ignore[index]


def test_gatt_crc_error_exit_3() -> None:
    code, out = _json(["gatt", "2AA7", "08000c100600586f", "--json"])
    assert code == 3
    assert out["error"]["kind"] == "crc_error"  # type: ignore[index]


def test_gatt_malformed_and_unsupported_exit_3() -> None:
    code, out = _json(["gatt", "2A37", "10", "--json"])
    assert (code, out["error"]["kind"]) == (3, "malformed")  # type: ignore[index]
    code, out = _json(["gatt", "2A00", "00", "--json"])
    assert (code, out["error"]["kind"]) == (3, "unsupported")  # type: ignore[index]
    code, out = _json(["gatt", "2A37", "zz", "--json"])
    assert (code, out["error"]["kind"]) == (3, "malformed")  # type: ignore[index]


def test_gatt_bad_uuid_is_usage_error() -> None:
    assert runner.invoke(decode_app, ["gatt", "nope", "00"]).exit_code == 2


def test_sfloat_and_float() -> None:
    assert _json(["sfloat", "6DF1", "--json"]) == (0, {"value": 36.5, "no_value": None})
    assert _json(["sfloat", "FF07", "--json"]) == (0, {"value": None, "no_value": "NaN"})
    assert _json(["float", "720100FF", "--json"]) == (0, {"value": 37.0, "no_value": None})
    assert _json(["float", "0000800", "--json"])[0] == 3
    _code, out = _json(["sfloat", "0008", "--json"])
    assert out == {"value": None, "no_value": "NRes"}


def test_human_output() -> None:
    result = runner.invoke(decode_app, ["gatt", "2A37", "0055"])
    assert result.exit_code == 0
    assert "heart_rate" in result.stdout


def test_help_has_examples() -> None:
    for command in ("gatt", "sfloat", "float"):
        assert "Example" in runner.invoke(decode_app, [command, "--help"]).stdout
