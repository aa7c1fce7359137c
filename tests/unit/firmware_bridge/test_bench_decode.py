"""The decode benchmark runs and reports the contract's key (short run; not a performance test)."""

from __future__ import annotations

import json

import pytest
import typer
from typer.testing import CliRunner

from firmware_bridge.bench import bench_decode
from vitalstream.commands.bench_decode import bench_decode_command


def test_bench_decode_short_run() -> None:
    result = bench_decode(0.05)
    assert isinstance(result["notifications_per_s"], float)
    assert result["notifications_per_s"] > 0


def test_bench_cli_json(monkeypatch: pytest.MonkeyPatch) -> None:
    import vitalstream.commands.bench_decode as module

    monkeypatch.setattr(module, "DEFAULT_DURATION_S", 0.05)
    app = typer.Typer()
    app.command()(bench_decode_command)
    result = CliRunner().invoke(app, ["--json"])
    assert result.exit_code == 0
    assert "notifications_per_s" in json.loads(result.stdout)
