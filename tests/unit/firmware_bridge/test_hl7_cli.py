"""``vitalstream decode hl7`` (CONTRACTS.md): exit 0 with the messages object, exit 3 on rejects."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

import vitalstream.commands.decode_hl7  # noqa: F401  (registers the hl7 command)
from firmware_bridge.mllp import frame
from vitalstream.commands.decode import decode_app

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "hl7"


@pytest.fixture
def app() -> typer.Typer:
    root = typer.Typer()
    root.add_typer(decode_app, name="decode")
    return root


def _run(app: typer.Typer, args: list[str], stdin: bytes | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["decode", "hl7", *args], input=stdin)
    return result.exit_code, result.stdout


def test_json_shape_for_a_real_message(app: typer.Typer) -> None:
    """Comen NC5 spot check (tests/fixtures/hl7/SOURCE.md)."""
    code, out = _run(app, [str(FIXTURES / "comen_nc5_spot_check.hl7"), "--json"])
    assert code == 0
    payload = json.loads(out)
    assert list(payload) == ["messages"]
    [message] = payload["messages"]
    assert set(message) == {
        "control_id",
        "processing_id",
        "patient",
        "readings",
        "alarms",
        "ignored",
    }
    assert message["control_id"] == "20260726231332.11090007"
    reading = message["readings"][0]
    assert {"metric", "value", "unit", "time", "channel", "code"} <= set(reading)
    assert reading["metric"] == "bp_systolic"
    assert reading["time"] == "2026-07-26T15:13:31+00:00"
    assert message["patient"]["identifiers"] == [{"id": "***********23", "field": "PID-3"}]
    assert "SYN0000000123" not in out
    assert {"code": "2267^COMEN_ACVPU^99COMEN", "reason": "vendor_context"} in message["ignored"]


def test_alarms_and_test_flag(app: typer.Typer) -> None:
    """Philips export with MSH-11 = T and an MDIL-ALERT INOP."""
    code, out = _run(app, [str(FIXTURES / "philips_iic_alert_setting_test.hl7"), "--json"])
    assert code == 0
    [message] = json.loads(out)["messages"]
    assert message["processing_id"] == "T"
    assert message["alarms"] == [
        {"code": "5^HardInop^MDIL-ALERT", "text": "SpO2T  No Pulse", "time": None}
    ]


def test_mllp_on_stdin_with_several_messages(app: typer.Typer) -> None:
    data = b"".join(
        frame((FIXTURES / name).read_bytes().replace(b"\n", b"\r"))
        for name in ("ge_vsp_b40_pcd01.hl7", "mindray_egateway_pcd01.hl7")
    )
    code, out = _run(app, ["-", "--json"], stdin=data)
    assert code == 0
    assert [m["control_id"] for m in json.loads(out)["messages"]] == ["0040971443EC", "23545"]


def test_device_tz_option(app: typer.Typer) -> None:
    path = str(FIXTURES / "mindray_xh80x_sentinels.hl7")
    code, out = _run(app, [path, "--json", "--device-tz", "+0800"])
    assert code == 0
    reading = json.loads(out)["messages"][0]["readings"][0]
    assert reading["time"] == "2021-06-11T02:20:47+00:00"
    assert reading["value"] is None
    assert reading["no_value"] == "not_measured"


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (b"this is not hl7", "malformed"),
        (b"MSH|^~\\&|A|B|||20250101||ADT^A08|1|P|2.6\r", "unsupported"),
    ],
)
def test_rejected_input_exits_3_with_error_object(
    app: typer.Typer, tmp_path: Path, data: bytes, kind: str
) -> None:
    path = tmp_path / "input.hl7"
    path.write_bytes(data)
    code, out = _run(app, [str(path), "--json"])
    assert code == 3
    error = json.loads(out)["error"]
    assert error["kind"] == kind
    assert error["detail"]


def test_human_output_without_json(app: typer.Typer) -> None:
    code, out = _run(app, [str(FIXTURES / "philips_iic_alert_setting_test.hl7")])
    assert code == 0
    assert "TEST MESSAGE" in out
    assert "heart_rate" in out


def test_help_teaches_with_an_example(app: typer.Typer) -> None:
    result = CliRunner().invoke(app, ["decode", "hl7", "--help"])
    assert result.exit_code == 0
    assert "Example" in result.stdout
    assert "MLLP" in result.stdout
