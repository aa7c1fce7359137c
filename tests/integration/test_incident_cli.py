"""`vitalstream incident list|show|ack` as a user runs it, against a real fresh database
(through `python -m vitalstream.commands.incident` until cli.py wires `incident_app`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from typing import Any

from test_api_support import audit_rows
from test_incident_support import STROKE, TRAUMA, seed_incidents


def _run(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "VITALSTREAM_DATABASE_URL": database_url}
    return subprocess.run(
        [sys.executable, "-m", "vitalstream.commands.incident", *args],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip


def _json(proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1, "--json prints exactly one object"
    value: dict[str, Any] = json.loads(lines[0])
    return value


def test_list_show_and_ack(database_url: str) -> None:
    seeded = seed_incidents(database_url, datetime.now(UTC))
    listed = _json(_run(database_url, "list", "--json"))
    assert [i["id"] for i in listed["incidents"]] == [STROKE, TRAUMA]
    assert [
        i["id"] for i in _json(_run(database_url, "list", "--open", "--json"))["incidents"]
    ] == [STROKE]
    text = _run(database_url, "list")
    assert text.returncode == 0 and "stroke_team (NOT acknowledged)" in text.stdout

    shown = _json(_run(database_url, "show", STROKE, "--json"))
    assert shown["id"] == STROKE and shown["atmist"]["mechanism"] == "Medical: suspected stroke"
    assert _run(database_url, "show", "nope").returncode == 1

    acked = _json(
        _run(database_url, "ack", STROKE, str(seeded.stroke_activation), "--by", "stroke-lead",
             "--note", "on our way", "--json")
    )  # fmt: skip
    assert acked["changed"] is True
    assert acked["activation"]["acknowledged_by"] == "cli:stroke-lead"
    again = _json(_run(database_url, "ack", STROKE, str(seeded.stroke_activation), "--json"))
    assert again["changed"] is False
    assert _run(database_url, "ack", STROKE, str(seeded.unsent_activation)).returncode == 1
    acks = [r for r in audit_rows(database_url) if r[1] == "activation_acknowledged"]
    assert [(r[0], r[3]["via"], r[3]["note"]) for r in acks] == [
        ("cli:stroke-lead", "cli", "on our way")
    ]
